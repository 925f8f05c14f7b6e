//! `Helper { … }` section (docs/config.md §4.8).

use crate::lexer::{Token, TokenKind};
use crate::model::{
    HelperL3, HelperL4, HelperPolicy, HelperType, KNOWN_HELPERS, MAX_QUEUE_NUM, helper_serves,
};
use crate::parser::{PResult, Parser};

pub(crate) const HELPER: crate::parser::KeyBlock = crate::parser::key_block!("Helper");
pub(crate) const TYPE: crate::parser::KeyBlock = crate::parser::key_block!("Helper.Type");
pub(crate) const POLICY: crate::parser::KeyBlock = crate::parser::key_block!("Helper.Type.Policy");
/// Longest accepted policy name.
const MAX_POLICY_NAME: usize = 16;

impl<'a> Parser<'a> {
    pub(crate) fn helper_section(&mut self, opener: &Token<'a>) -> PResult<()> {
        self.helper_span.get_or_insert_with(|| opener.span.clone());
        let mut section = self.config.helper.take().unwrap_or_default();
        let result = self.block(opener, HELPER, |p, t| match (t.kind, t.text) {
            (TokenKind::Keyword, "Setup") => {
                section.setup = p.boolean(&t)?;
                Ok(())
            }
            (TokenKind::Keyword, "Type") => {
                let helper = p.helper_type(&t)?;
                section.types.push(helper);
                Ok(())
            }
            _ => Err(p.unknown_item(&t, HELPER)),
        });
        self.config.helper = Some(section);
        result
    }

    fn helper_type(&mut self, key: &Token<'a>) -> PResult<HelperType> {
        let name = self.string(key, "a helper name")?;
        let l3 = self.string(key, "a layer 3 protocol (inet or inet6)")?;
        let l4 = self.string(key, "a layer 4 protocol (tcp or udp)")?;
        let mut failed = false;
        if !KNOWN_HELPERS.contains(&name.text) {
            self.error_help(
                name.span.clone(),
                format!("Unknown `{}' helper", name.text),
                format!("installed helpers: {}", KNOWN_HELPERS.join(", ")),
            );
            failed = true;
        }
        let l3v = match l3.text {
            "inet" => HelperL3::Inet,
            "inet6" => HelperL3::Inet6,
            _ => {
                self.error_help(
                    l3.span.clone(),
                    "unknown layer 3 protocol",
                    "use `inet' or `inet6'",
                );
                failed = true;
                HelperL3::Inet
            }
        };
        let l4v = match l4.text {
            "tcp" => HelperL4::Tcp,
            "udp" => HelperL4::Udp,
            _ => {
                self.error_help(
                    l4.span.clone(),
                    "unknown layer 4 protocol",
                    "use `tcp' or `udp'",
                );
                failed = true;
                HelperL4::Tcp
            }
        };
        if !failed && !helper_serves(name.text, l4v) {
            self.error_help(
                name.span.clone(),
                format!("Unknown `{}' helper", name.text),
                format!(
                    "the `{}' helper serves {}",
                    name.text,
                    if helper_serves(name.text, HelperL4::Tcp) {
                        "tcp"
                    } else {
                        "udp"
                    }
                ),
            );
            failed = true;
        }
        let mut helper = HelperType {
            name: name.text.to_owned(),
            l3: l3v,
            l4: l4v,
            queue_num: None,
            queue_len: None,
            policies: Vec::new(),
            span: key.span.clone(),
        };
        let opener = name.clone();
        self.block(&opener, TYPE, |p, t| match (t.kind, t.text) {
            (TokenKind::Keyword, "QueueNum") => {
                let (value, span) = p.number(&t)?;
                if value > MAX_QUEUE_NUM {
                    // 1.4.7 would bind queue VALUE modulo 65536.
                    p.error_help(
                        span,
                        format!("`QueueNum' {value} is above {MAX_QUEUE_NUM}"),
                        "NFQUEUE numbers go from 0 to 65535",
                    );
                }
                helper.queue_num = Some(value);
                Ok(())
            }
            (TokenKind::Keyword, "QueueLen") => {
                helper.queue_len = Some(p.number(&t)?.0);
                Ok(())
            }
            (TokenKind::Keyword, "Policy") => {
                let policy = p.helper_policy(&t, &helper.name, failed)?;
                helper.policies.push(policy);
                Ok(())
            }
            _ => Err(p.unknown_item(&t, TYPE)),
        })?;
        Ok(helper)
    }

    fn helper_policy(
        &mut self,
        key: &Token<'a>,
        helper: &str,
        helper_unknown: bool,
    ) -> PResult<HelperPolicy> {
        let name = self.string(key, "a policy name")?;
        if name.text.len() > MAX_POLICY_NAME {
            self.error(
                name.span.clone(),
                "Helper Policy is longer than 16 characters",
            );
        } else if !helper_unknown && name.text != helper {
            self.error_help(
                name.span.clone(),
                format!("Unknown policy `{}' in helper configuration", name.text),
                format!("the `{helper}' helper has one policy, named `{helper}'"),
            );
        }
        let mut policy = HelperPolicy {
            name: name.text.to_owned(),
            expect_max: None,
            expect_timeout: None,
        };
        let opener = name.clone();
        self.block(&opener, POLICY, |p, t| match (t.kind, t.text) {
            (TokenKind::Keyword, "ExpectMax") => {
                policy.expect_max = Some(p.number(&t)?.0);
                Ok(())
            }
            (TokenKind::Keyword, "ExpectTimeout") => {
                policy.expect_timeout = Some(p.number(&t)?.0);
                Ok(())
            }
            _ => Err(p.unknown_item(&t, POLICY)),
        })?;
        if policy.expect_max.is_none() && policy.expect_timeout.is_none() {
            self.error(
                name.span.clone(),
                "Helper policy configuration empty, fix your configuration file, please",
            );
        }
        Ok(policy)
    }
}

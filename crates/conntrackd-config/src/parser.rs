//! Recursive-descent parser: token stream to typed [`Config`], collecting
//! every diagnostic and recovering at the next item or closing brace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::diag::{Diagnostic, Severity, Span, line_col};
use crate::lexer::{KEYWORDS, Token, TokenKind, tokenize};
use crate::limits::{MAX_FILE_PATH_LEN, MAX_INTERFACE_NAME_LEN};
use crate::model::{
    Channel, Config, DEFAULT_ACK_WINDOW_SIZE, DEFAULT_RESEND_QUEUE_SIZE, IpNet, Policy, SyncSection,
};
use crate::reference;
use crate::suggest::closest;

/// Block name used for items outside any section.
const TOP_LEVEL: &str = "top level";

/// The items a block of keys accepts: the keys the reference documents for
/// its section (see [`key_block!`]), and where the reference says so the
/// keys removed in conntrackd 1.4.5. [`Parser::block`] reports anything
/// else, so the parser accepts no key that is not documented.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyBlock {
    /// [`reference::Section::id`] of the block.
    pub(crate) section: &'static str,
    /// Its keys, in documentation order (of equally close keys, "did you
    /// mean" suggests the first).
    pub(crate) keys: &'static [&'static str],
}

impl KeyBlock {
    /// How diagnostics name the block: its opener (`Mode FTFW`, `Address`),
    /// or `top level`.
    pub(crate) fn name(self) -> &'static str {
        if self.section == reference::TOP {
            return TOP_LEVEL;
        }
        self.section.rsplit('.').next().unwrap_or(self.section)
    }

    /// Whether an item starting with the word `text` belongs to this block.
    pub(crate) fn accepts(self, text: &str) -> bool {
        self.keys.contains(&text)
            || (reference::REMOVED_IN.contains(&self.section)
                && reference::REMOVED.iter().any(|r| r.name == text))
    }
}

/// The [`KeyBlock`] of a section of the reference, built at compile time
/// from its documented keys.
macro_rules! key_block {
    ($section:expr) => {
        $crate::parser::KeyBlock {
            section: $section,
            keys: &$crate::reference::key_names::<{ $crate::reference::key_count($section) }>(
                $section,
            ),
        }
    };
}
pub(crate) use key_block;

/// The top level: sections and legacy top-level blocks.
pub(crate) const TOP_SECTIONS: KeyBlock = key_block!(reference::TOP);
/// `Stats { … }`.
pub(crate) const STATS: KeyBlock = key_block!("Stats");

/// Marker: an error was reported, the caller must resynchronise.
#[derive(Debug)]
pub(crate) struct Reported;

pub(crate) type PResult<T> = Result<T, Reported>;

/// Options that make parsing depend on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Warn about interfaces that do not exist on this host
    /// (`/sys/class/net/NAME`), like the C daemon.
    pub check_interfaces: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            check_interfaces: true,
        }
    }
}

/// Channel under construction.
pub(crate) struct ChannelBuilder {
    pub(crate) channel: Channel,
    pub(crate) checksum_set: bool,
    pub(crate) marked_default: bool,
}

/// `Sync` settings accumulated across blocks (all timers are global).
pub(crate) struct SyncBuilder {
    /// The settings that do not depend on others, as parsed so far (the
    /// defaults where nothing is written). The mode, the channels and the
    /// settings below are filled in when parsing finishes.
    pub(crate) settings: SyncSection,
    pub(crate) span: Span,
    pub(crate) ftfw: bool,
    pub(crate) alarm: bool,
    pub(crate) notrack: bool,
    pub(crate) commit_timeout_span: Option<Span>,
    pub(crate) resend_queue_size: u32,
    pub(crate) ack_window_size: u32,
    pub(crate) disable_external_cache: bool,
    pub(crate) disable_internal_cache: bool,
    /// `StartupResync` as written, if it was.
    pub(crate) startup_resync: Option<bool>,
    pub(crate) channels: Vec<ChannelBuilder>,
    pub(crate) legacy_checksum: Option<bool>,
    /// `Authentication { KeyFile … }`: the path and where it was given.
    pub(crate) key_file: Option<(String, Span)>,
    /// `Authentication { AcceptKeyFile … }`: a second key, accepted only.
    pub(crate) accept_key_file: Option<(String, Span)>,
    /// `RequireEncryption`; follows `Encrypt` when not given.
    pub(crate) require_encryption: Option<bool>,
}

impl Default for SyncBuilder {
    fn default() -> Self {
        SyncBuilder {
            settings: SyncSection::default(),
            span: Span::default(),
            ftfw: false,
            alarm: false,
            notrack: false,
            commit_timeout_span: None,
            resend_queue_size: DEFAULT_RESEND_QUEUE_SIZE,
            ack_window_size: DEFAULT_ACK_WINDOW_SIZE,
            disable_external_cache: false,
            disable_internal_cache: false,
            startup_resync: None,
            channels: Vec::new(),
            legacy_checksum: None,
            key_file: None,
            accept_key_file: None,
            require_encryption: None,
        }
    }
}

/// Filter accumulators with their policies.
#[derive(Default)]
pub(crate) struct FilterBuilder {
    pub(crate) protocol: Option<(Policy, Vec<u8>)>,
    pub(crate) address: Option<(Policy, Vec<IpNet>)>,
    pub(crate) state: Option<(Policy, Vec<u8>)>,
}

/// Parser state.
pub(crate) struct Parser<'a> {
    pub(crate) source: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) options: ParseOptions,
    pub(crate) config: Config,
    pub(crate) sync: Option<SyncBuilder>,
    pub(crate) filter: FilterBuilder,
    pub(crate) stats_span: Option<(Span, usize)>,
    pub(crate) stats_syslog_span: Option<Span>,
    /// Where `NetlinkBufferSize` was last written.
    pub(crate) netlink_buffer_size_span: Option<Span>,
    /// The first `Helper` keyword.
    pub(crate) helper_span: Option<Span>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(source: &'a str, options: ParseOptions) -> Self {
        Parser {
            source,
            tokens: tokenize(source),
            pos: 0,
            diagnostics: Vec::new(),
            options,
            config: Config::default(),
            sync: None,
            filter: FilterBuilder::default(),
            stats_span: None,
            stats_syslog_span: None,
            netlink_buffer_size_span: None,
            helper_span: None,
        }
    }

    // ---- token access -------------------------------------------------

    pub(crate) fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.pos)
    }

    pub(crate) fn peek_kind(&self) -> Option<TokenKind> {
        self.peek().map(|t| t.kind)
    }

    pub(crate) fn bump(&mut self) -> Option<Token<'a>> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    // ---- diagnostics ----------------------------------------------------

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        span: Span,
        message: String,
        help: Option<String>,
    ) {
        let (line, column) = line_col(self.source, span.start);
        self.diagnostics.push(Diagnostic {
            severity,
            span,
            line,
            column,
            message,
            help,
            symbol: None,
        });
    }

    pub(crate) fn warn(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Warning, span, message.into(), None);
    }

    pub(crate) fn warn_help(
        &mut self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Warning, span, message.into(), Some(help.into()));
    }

    /// Something written that the daemon leaves unused (see
    /// [`Severity::Ignored`]).
    pub(crate) fn ignored(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Ignored, span, message.into(), None);
    }

    pub(crate) fn ignored_help(
        &mut self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Ignored, span, message.into(), Some(help.into()));
    }

    pub(crate) fn error(&mut self, span: Span, message: impl Into<String>) -> Reported {
        self.push(Severity::Error, span, message.into(), None);
        Reported
    }

    pub(crate) fn error_help(
        &mut self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Reported {
        self.push(Severity::Error, span, message.into(), Some(help.into()));
        Reported
    }

    /// Syntax error at `token` (or at end of file when `None`).
    pub(crate) fn syntax(
        &mut self,
        token: Option<&Token<'a>>,
        expected: &str,
        help: Option<String>,
    ) -> Reported {
        let (span, symbol, found) = match token {
            Some(t) => (
                t.span.clone(),
                t.text.to_owned(),
                format!("`{}'", t.text.escape_debug()),
            ),
            None => (
                self.source.len()..self.source.len(),
                String::new(),
                "end of file".to_owned(),
            ),
        };
        let (line, column) = line_col(self.source, span.start);
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            span,
            line,
            column,
            message: format!("syntax error: unexpected {found}, expected {expected}"),
            help,
            symbol: Some(symbol),
        });
        Reported
    }

    /// Reports an item keyword that is not valid in `block`, suggesting the
    /// closest valid key.
    pub(crate) fn unknown_item(&mut self, token: &Token<'a>, block: KeyBlock) -> Reported {
        let top = block.section == reference::TOP;
        let keys = block.keys;
        let block = block.name();
        let help = if matches!(token.kind, TokenKind::Keyword | TokenKind::Str) {
            if let Some(best) = closest(token.text, keys) {
                Some(format!("did you mean `{best}'?"))
            } else if KEYWORDS.contains(&token.text) && top {
                Some(format!(
                    "`{}' must be inside a section such as `General {{ … }}'",
                    token.text
                ))
            } else if KEYWORDS.contains(&token.text) {
                Some(format!("`{}' is not valid inside `{block}'", token.text))
            } else {
                None
            }
        } else {
            None
        };
        let expected = if top {
            "a section (`General', `Sync', `Stats' or `Helper')".to_owned()
        } else {
            format!("an item of `{block}' or `}}'")
        };
        self.syntax(Some(token), &expected, help)
    }

    // ---- recovery ------------------------------------------------------

    /// Skips a balanced `{ … }` group if one starts here.
    fn skip_group(&mut self) {
        if self.peek_kind() != Some(TokenKind::OpenBrace) {
            return;
        }
        let mut depth = 0usize;
        while let Some(t) = self.bump() {
            match t.kind {
                TokenKind::OpenBrace => depth += 1,
                TokenKind::CloseBrace => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// Skips tokens until a key valid in the current block, a `}` or EOF.
    pub(crate) fn recover(&mut self, valid: &[&str]) {
        while let Some(t) = self.peek() {
            match t.kind {
                TokenKind::CloseBrace => return,
                TokenKind::OpenBrace => self.skip_group(),
                TokenKind::Keyword | TokenKind::Str if valid.contains(&t.text) => return,
                _ => {
                    self.bump();
                }
            }
        }
    }

    /// Parses a block of keys, `{ items }`, calling `item` with the first
    /// token of each item that `keys` accepts; others are reported here.
    pub(crate) fn block(
        &mut self,
        opener: &Token<'a>,
        keys: KeyBlock,
        mut item: impl FnMut(&mut Self, Token<'a>) -> PResult<()>,
    ) -> PResult<()> {
        self.items(opener, keys.keys, |p, token| {
            if keys.accepts(token.text) {
                item(p, token)
            } else {
                Err(p.unknown_item(&token, keys))
            }
        })
    }

    /// Parses a list of values, `{ values }` (protocol or helper names),
    /// calling `item` for each token.
    pub(crate) fn list(
        &mut self,
        opener: &Token<'a>,
        item: impl FnMut(&mut Self, Token<'a>) -> PResult<()>,
    ) -> PResult<()> {
        self.items(opener, &[], item)
    }

    /// Parses `{ items }`, calling `item` for each item's first token; after
    /// an error, resumes at the next of `valid`.
    fn items(
        &mut self,
        opener: &Token<'a>,
        valid: &[&str],
        mut item: impl FnMut(&mut Self, Token<'a>) -> PResult<()>,
    ) -> PResult<()> {
        self.expect_open(opener)?;
        loop {
            match self.peek_kind() {
                None => {
                    let help = format!(
                        "the `{}' block opened at line {} is not closed",
                        opener.text, opener.line
                    );
                    return Err(self.syntax(None, "`}'", Some(help)));
                }
                Some(TokenKind::CloseBrace) => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => {
                    let Some(token) = self.bump() else { continue };
                    if item(self, token).is_err() {
                        self.recover(valid);
                    }
                }
            }
        }
    }

    pub(crate) fn expect_open(&mut self, after: &Token<'a>) -> PResult<()> {
        match self.peek() {
            Some(t) if t.kind == TokenKind::OpenBrace => {
                self.bump();
                Ok(())
            }
            other => {
                let other = other.cloned();
                let expected = format!("`{{' after `{}'", after.text);
                Err(self.syntax(other.as_ref(), &expected, None))
            }
        }
    }

    // ---- values --------------------------------------------------------

    fn value(
        &mut self,
        key: &Token<'a>,
        what: &str,
        ok: impl Fn(TokenKind) -> bool,
    ) -> PResult<Token<'a>> {
        match self.peek() {
            Some(t) if ok(t.kind) => Ok(self.bump().ok_or(Reported)?),
            other => {
                let other = other.cloned();
                let expected = format!("{what} after `{}'", key.text);
                let help = other.as_ref().and_then(|t| value_hint(t, what));
                Err(self.syntax(other.as_ref(), &expected, help))
            }
        }
    }

    /// Unsigned decimal number (checked to fit u32).
    pub(crate) fn number(&mut self, key: &Token<'a>) -> PResult<(u32, Span)> {
        let t = self.value(key, "a number", |k| k == TokenKind::Number)?;
        match t.text.parse::<u32>() {
            Ok(n) => Ok((n, t.span)),
            Err(_) => Err(self.error(
                t.span,
                format!("number {} is too large (maximum {})", t.text, u32::MAX),
            )),
        }
    }

    /// Unsigned number where 0 stands for `default`, as 1.4.7 reads its
    /// sizes and timers.
    pub(crate) fn number_or_default(&mut self, key: &Token<'a>, default: u32) -> PResult<u32> {
        let (n, _) = self.number(key)?;
        Ok(if n == 0 { default } else { n })
    }

    /// Port number (0..=65535).
    pub(crate) fn port(&mut self, key: &Token<'a>) -> PResult<u16> {
        let (n, span) = self.number(key)?;
        u16::try_from(n).map_err(|_| {
            self.error(
                span,
                format!("`{}' value {n} is not a valid port (0-65535)", key.text),
            )
        })
    }

    pub(crate) fn boolean(&mut self, key: &Token<'a>) -> PResult<bool> {
        let t = self.value(key, "`on', `off', `yes' or `no'", |k| {
            matches!(k, TokenKind::Bool(_))
        })?;
        Ok(matches!(t.kind, TokenKind::Bool(true)))
    }

    pub(crate) fn string(&mut self, key: &Token<'a>, what: &str) -> PResult<Token<'a>> {
        self.value(key, what, |k| k == TokenKind::Str)
    }

    /// IPv4 or IPv6 token (validated by the caller).
    pub(crate) fn ip_token(&mut self, key: &Token<'a>) -> PResult<Token<'a>> {
        self.value(key, "an IP address", |k| {
            matches!(k, TokenKind::Ipv4 | TokenKind::Ipv6)
        })
    }

    /// IPv4 address value; an invalid one is ignored, as in 1.4.7.
    pub(crate) fn ipv4(&mut self, key: &Token<'a>) -> PResult<Option<Ipv4Addr>> {
        let t = self.ip_token(key)?;
        match t.text.parse::<Ipv4Addr>() {
            Ok(a) => Ok(Some(a)),
            Err(_) => {
                self.ignored(t.span, format!("{} is not a valid IPv4 address", t.text));
                Ok(None)
            }
        }
    }

    /// IPv6 address value; an invalid one is ignored, as in 1.4.7.
    pub(crate) fn ipv6(&mut self, key: &Token<'a>) -> PResult<Option<Ipv6Addr>> {
        let t = self.ip_token(key)?;
        match t.text.parse::<Ipv6Addr>() {
            Ok(a) => Ok(Some(a)),
            Err(_) => {
                self.ignored(t.span, format!("{} is not a valid IPv6 address", t.text));
                Ok(None)
            }
        }
    }

    /// Absolute path, length-checked against `max` with the C message `too_long`.
    pub(crate) fn path(&mut self, key: &Token<'a>, max: usize, too_long: &str) -> PResult<String> {
        let t = self.value(key, "an absolute path", |k| k == TokenKind::Path)?;
        self.path_checks(&t, max, too_long)
    }

    pub(crate) fn path_checks(
        &mut self,
        t: &Token<'a>,
        max: usize,
        too_long: &str,
    ) -> PResult<String> {
        if t.text.len() > max {
            return Err(self.error(t.span.clone(), too_long));
        }
        if let Some(c) = t
            .text
            .chars()
            .find(|c| matches!(c, '{' | '}' | '#' | '\t' | '\r'))
        {
            self.warn_help(
                t.span.clone(),
                format!(
                    "path `{}' contains {:?}, which conntrackd keeps as part of the path",
                    t.text.escape_debug(),
                    c
                ),
                "a path ends only at a space, a newline or `\"'; insert a space before it",
            );
        }
        Ok(t.text.to_owned())
    }

    /// Interface name: a STRING of at most [`MAX_INTERFACE_NAME_LEN`] characters.
    pub(crate) fn interface(&mut self, key: &Token<'a>) -> PResult<String> {
        let t = self.string(key, "an interface name")?;
        if t.text.len() > MAX_INTERFACE_NAME_LEN {
            return Err(self.error(
                t.span,
                format!(
                    "interface name `{}' is longer than {MAX_INTERFACE_NAME_LEN} characters",
                    t.text
                ),
            ));
        }
        if self.options.check_interfaces
            && !std::path::Path::new("/sys/class/net").join(t.text).exists()
        {
            self.warn_help(
                t.span.clone(),
                format!("{} is an invalid interface", t.text),
                "no such interface on this host; the channel cannot be opened until it exists",
            );
        }
        Ok(t.text.to_owned())
    }

    /// Consumes an optional boolean argument (legacy no-op keywords).
    pub(crate) fn optional_bool(&mut self) {
        if matches!(self.peek_kind(), Some(TokenKind::Bool(_))) {
            self.bump();
        }
    }

    /// Legacy keywords that are ignored wherever they appear; returns
    /// `Ok(true)` if `token` was one of them.
    pub(crate) fn legacy_ignored(&mut self, token: &Token<'a>) -> PResult<bool> {
        if !reference::REMOVED.iter().any(|r| r.name == token.text) {
            return Ok(false);
        }
        match token.text {
            "StripNAT" | "RelaxTransitions" | "DelayDestroyMessages" => {
                self.optional_bool();
            }
            "DestroyTimeout" | "LogFileBufferSize" => {
                self.number(token)?;
            }
            "Family" => {
                // `IPv4` / `IPv6` lex as strings.
                if self.peek_kind() == Some(TokenKind::Str) {
                    self.bump();
                }
                self.warn_help(
                    token.span.clone(),
                    format!("`{}' was removed in conntrackd 1.4.5 (1.4.7 rejects it); ignoring", token.text),
                    "the address family is implied by the IPv4_/IPv6_ address keywords; delete this line",
                );
                return Ok(true);
            }
            _ => return Ok(false),
        }
        self.warn_help(
            token.span.clone(),
            format!(
                "`{}' was removed in conntrackd 1.4.5 (1.4.7 rejects it); ignoring",
                token.text
            ),
            "delete this line",
        );
        Ok(true)
    }

    /// Warning for a legacy spelling mapped to a modern one.
    pub(crate) fn legacy_mapped(&mut self, token: &Token<'a>, modern: &str) {
        self.warn_help(
            token.span.clone(),
            format!(
                "`{}' is a legacy option rejected by conntrackd 1.4.7; using {modern}",
                token.text
            ),
            format!("replace it with {modern}"),
        );
    }

    // ---- top level -----------------------------------------------------

    pub(crate) fn parse_file(&mut self) {
        const TOP: KeyBlock = TOP_SECTIONS;
        while let Some(token) = self.bump() {
            let result = match (token.kind, token.text) {
                _ if !TOP.accepts(token.text) => Err(self.unknown_item(&token, TOP)),
                (TokenKind::Keyword, "General") => self.general(&token),
                (TokenKind::Keyword, "Sync") => self.sync_section(&token),
                (TokenKind::Keyword, "Stats") => self.stats_section(&token),
                (TokenKind::Keyword, "Helper") => self.helper_section(&token),
                (TokenKind::Str, "IgnoreTrafficFor") => self.legacy_ignore_traffic(&token),
                (TokenKind::Str, "IgnoreProtocol") => self.legacy_ignore_protocol(&token),
                _ => Err(self.unknown_item(&token, TOP)),
            };
            if result.is_err() {
                // At top level a stray `}` must be consumed to make progress.
                self.recover(TOP.keys);
                if self.peek_kind() == Some(TokenKind::CloseBrace) {
                    self.bump();
                }
            }
        }
    }

    fn stats_section(&mut self, token: &Token<'a>) -> PResult<()> {
        const VALID: KeyBlock = STATS;
        if self.stats_span.is_none() {
            self.stats_span = Some((token.span.clone(), token.line));
        }
        let mut stats = self.config.stats.take().unwrap_or_default();
        let result = self.block(token, VALID, |p, t| match t.text {
            "LogFile" if t.kind == TokenKind::Keyword => {
                let too_long =
                    format!("stats LogFile path is longer than {MAX_FILE_PATH_LEN} characters");
                if let Some(target) = p.log_target(&t, &too_long)? {
                    stats.log_file = target;
                }
                Ok(())
            }
            "Syslog" if t.kind == TokenKind::Keyword => {
                if let Some(f) = p.syslog(&t, true)? {
                    stats.syslog = f;
                    p.stats_syslog_span = Some(t.span.clone());
                }
                Ok(())
            }
            _ if p.legacy_ignored(&t)? => Ok(()),
            _ => Err(p.unknown_item(&t, VALID)),
        });
        self.config.stats = Some(stats);
        result
    }

    /// `LogFile on|off|PATH`; `None` means no effect (`off`).
    pub(crate) fn log_target(
        &mut self,
        key: &Token<'a>,
        too_long: &str,
    ) -> PResult<Option<crate::model::LogTarget>> {
        let t = self.value(key, "`on', `off' or an absolute path", |k| {
            matches!(k, TokenKind::Bool(_) | TokenKind::Path)
        })?;
        Ok(match t.kind {
            TokenKind::Bool(true) => Some(crate::model::LogTarget::Default),
            TokenKind::Bool(_) => None,
            _ => Some(crate::model::LogTarget::Path(
                self.path_checks(&t, MAX_FILE_PATH_LEN, too_long)?.into(),
            )),
        })
    }

    /// `Syslog on|off|NAME`; outer `None` = clause ignored.
    pub(crate) fn syslog(
        &mut self,
        key: &Token<'a>,
        stats: bool,
    ) -> PResult<Option<Option<crate::model::Facility>>> {
        use crate::model::Facility;
        let t = self.value(key, "`on', `off' or a syslog facility", |k| {
            matches!(k, TokenKind::Bool(_) | TokenKind::Str)
        })?;
        Ok(match t.kind {
            TokenKind::Bool(true) => Some(Some(Facility::Daemon)),
            TokenKind::Bool(false) => Some(None),
            _ => match Facility::from_name(t.text) {
                Some(f) => Some(Some(f)),
                None => {
                    let dot = if stats { "." } else { "" };
                    self.ignored_help(
                        t.span.clone(),
                        format!("'{}' is not a known syslog facility, ignoring{dot}", t.text),
                        "known facilities: daemon, local0 … local7",
                    );
                    None
                }
            },
        })
    }

    /// Finishes parsing: defaults, consistency checks, typed result.
    pub(crate) fn finish(mut self) -> (Option<Config>, Vec<Diagnostic>) {
        crate::finish::apply(&mut self);
        let failed = self.diagnostics.iter().any(Diagnostic::is_error);
        let config = if failed { None } else { Some(self.config) };
        (config, self.diagnostics)
    }
}

/// Extra hint for a value of the wrong token class.
fn value_hint(t: &Token<'_>, what: &str) -> Option<String> {
    match t.kind {
        TokenKind::Other if t.text == "\"" => Some("values are never quoted".to_owned()),
        TokenKind::Str if what.contains("path") => {
            Some("paths must be absolute (start with `/')".to_owned())
        }
        TokenKind::Ipv6
        | TokenKind::Keyword
        | TokenKind::Bool(_)
        | TokenKind::Mode(_)
        | TokenKind::Number
            if what.contains("name") =>
        {
            Some(format!(
                "`{}' is lexed as a keyword, boolean, number or hex address and cannot be used as a name",
                t.text
            ))
        }
        TokenKind::SignedNumber => Some("negative numbers are only accepted by `Nice'".to_owned()),
        TokenKind::Bool(_) if what == "a number" => {
            Some("booleans are not numbers here".to_owned())
        }
        _ => None,
    }
}

/// Parses `A` or `A/P` into an [`IpNet`] for the filter (docs/config.md §4.6).
pub(crate) fn parse_net(text: &str, v6: bool) -> Result<IpNet, String> {
    let (addr_text, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let max: u8 = if v6 { 128 } else { 32 };
    let addr: IpAddr = if v6 {
        addr_text
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("{addr_text} is not a valid IPv6, ignoring"))?
    } else {
        addr_text
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| format!("{addr_text} is not a valid IPv4, ignoring"))?
    };
    let prefix_len = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("{text} is not a valid network, ignoring")),
        },
    };
    Ok(IpNet { addr, prefix_len })
}

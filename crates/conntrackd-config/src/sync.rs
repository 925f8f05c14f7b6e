//! `Sync { … }`: modes, timers, channels, options and legacy Sync keys.

use std::net::IpAddr;

use crate::lexer::{ModeName, Token, TokenKind};
use crate::limits::{MAX_CHANNELS, MAX_KEY_FILE_PATH_LEN};
use crate::model::{Channel, ChannelKind, ExpectSync, Family};
use crate::model::{
    DEFAULT_ACK_WINDOW_SIZE, DEFAULT_CACHE_TIMEOUT, DEFAULT_ERROR_QUEUE_LENGTH,
    DEFAULT_PURGE_TIMEOUT, DEFAULT_REFRESH_TIME, DEFAULT_RESEND_QUEUE_SIZE,
};
use crate::parser::{ChannelBuilder, KeyBlock, PResult, Parser, SyncBuilder, key_block};

/// `Sync { … }`.
pub(crate) const SYNC: KeyBlock = key_block!("Sync");
/// `Mode FTFW { … }`.
pub(crate) const FTFW: KeyBlock = key_block!("Sync.Mode FTFW");
/// `Mode ALARM { … }`.
pub(crate) const ALARM: KeyBlock = key_block!("Sync.Mode ALARM");
/// `Mode NOTRACK { … }`.
pub(crate) const NOTRACK: KeyBlock = key_block!("Sync.Mode NOTRACK");
/// `Multicast { … }`.
pub(crate) const MCAST: KeyBlock = key_block!("Sync.Multicast");
/// `UDP { … }`.
pub(crate) const UDP: KeyBlock = key_block!("Sync.UDP");
/// `TCP { … }`.
pub(crate) const TCP: KeyBlock = key_block!("Sync.TCP");
/// `Options { … }`.
pub(crate) const OPTIONS: KeyBlock = key_block!("Sync.Options");
/// `Authentication { … }` (our extension).
pub(crate) const AUTHENTICATION: KeyBlock = key_block!("Sync.Authentication");

#[derive(Clone, Copy, PartialEq, Eq)]
enum ModeKind {
    Ftfw,
    Alarm,
    Notrack,
}

impl<'a> Parser<'a> {
    fn sync_mut(&mut self) -> &mut SyncBuilder {
        self.sync.get_or_insert_with(SyncBuilder::default)
    }

    pub(crate) fn sync_section(&mut self, opener: &Token<'a>) -> PResult<()> {
        if self.sync.is_none() {
            self.sync = Some(SyncBuilder {
                span: opener.span.clone(),

                ..SyncBuilder::default()
            });
        }
        self.block(opener, SYNC, |p, t| p.sync_item(t))
    }

    /// Timer keys shared by Sync and the Mode blocks; `Ok(false)` if `t` is not one.
    fn timer_item(&mut self, t: &Token<'a>) -> PResult<bool> {
        if t.kind != TokenKind::Keyword {
            return Ok(false);
        }
        match t.text {
            "RefreshTime" => {
                let seconds = self.number_or_default(t, DEFAULT_REFRESH_TIME)?;
                self.sync_mut().settings.refresh_time = seconds;
            }
            "CacheTimeout" => {
                let seconds = self.number_or_default(t, DEFAULT_CACHE_TIMEOUT)?;
                self.sync_mut().settings.cache_timeout = seconds;
            }
            "CommitTimeout" => {
                let n = self.number(t)?.0;
                let s = self.sync_mut();
                s.settings.commit_timeout = n;
                s.commit_timeout_span = Some(t.span.clone());
            }
            "PurgeTimeout" => {
                let seconds = self.number_or_default(t, DEFAULT_PURGE_TIMEOUT)?;
                self.sync_mut().settings.purge_timeout = seconds;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn sync_item(&mut self, t: Token<'a>) -> PResult<()> {
        if self.timer_item(&t)? {
            return Ok(());
        }
        match (t.kind, t.text) {
            (TokenKind::Keyword, "Mode") => self.mode(&t),
            (TokenKind::Keyword, "Multicast") => self.channel(&t, ChannelKind::Multicast),
            (TokenKind::Keyword, "UDP") => self.channel(&t, ChannelKind::Udp),
            (TokenKind::Keyword, "TCP") => self.channel(&t, ChannelKind::Tcp),
            (TokenKind::Keyword, "Options") => self.options(&t),
            (TokenKind::Keyword, "Checksum") => {
                let on = self.boolean(&t)?;
                self.warn_help(
                    t.span.clone(),
                    "`Checksum' directly in `Sync' is a legacy option rejected by conntrackd 1.4.7; applied to every channel block that does not set its own",
                    "write `Checksum' inside each channel block instead",
                );
                self.sync_mut().legacy_checksum = Some(on);
                Ok(())
            }
            (TokenKind::Str, "Replicate") => self.legacy_replicate(&t),
            (TokenKind::Str, "CacheWriteThrough") => self.cache_write_through(&t),
            (TokenKind::Str, "ResendBufferSize") => self.resend_buffer_size(&t),
            (TokenKind::Str, "Authentication") => self.authentication(&t),
            _ if self.legacy_ignored(&t)? => Ok(()),
            _ => Err(self.unknown_item(&t, SYNC)),
        }
    }

    fn cache_write_through(&mut self, t: &Token<'a>) -> PResult<()> {
        let on = self.boolean(t)?;
        self.legacy_mapped(t, "`DisableExternalCache'");
        self.sync_mut().disable_external_cache = on;
        Ok(())
    }

    /// Up to 0.9.9 it sized a resend buffer in bytes; from 0.9.10 to
    /// 1.4.4 it was ignored as deprecated, then removed. Its number is no
    /// count of queued objects, so it is not carried over.
    fn resend_buffer_size(&mut self, t: &Token<'a>) -> PResult<()> {
        self.number(t)?;
        self.warn_help(
            t.span.clone(),
            "`ResendBufferSize' is a legacy option rejected by conntrackd 1.4.7: it counted bytes (conntrackd 0.9.x) and has been ignored since 0.9.10; ignoring it",
            format!("delete it; `ResendQueueSize' in `Mode FTFW' sizes the resend queue, in objects (default {DEFAULT_RESEND_QUEUE_SIZE})"),
        );
        Ok(())
    }

    fn mode(&mut self, key: &Token<'a>) -> PResult<()> {
        let name = match self.peek().cloned() {
            Some(t) => match t.kind {
                TokenKind::Mode(m) => {
                    self.bump();
                    (m, t)
                }
                _ => {
                    let help = (t.text.eq_ignore_ascii_case("persistent")).then(|| {
                        "write `ALARM' (the legacy name is only accepted as `PERSISTENT')"
                            .to_owned()
                    });
                    return Err(self.syntax(
                        Some(&t),
                        "`FTFW', `ALARM' or `NOTRACK' after `Mode'",
                        help,
                    ));
                }
            },
            None => return Err(self.syntax(None, "a mode name after `Mode'", None)),
        };
        let kind = match name.0 {
            ModeName::Ftfw => ModeKind::Ftfw,
            ModeName::Alarm => ModeKind::Alarm,
            ModeName::Notrack => ModeKind::Notrack,
            ModeName::Nack => {
                self.warn_help(
                    name.1.span.clone(),
                    "Now `nack' mode is called `ftfw'. Please, update your conntrackd.conf file.",
                    "write `Mode FTFW'",
                );
                ModeKind::Ftfw
            }
            ModeName::Persistent => {
                self.warn_help(
                    name.1.span.clone(),
                    "Now `persistent' mode is called `alarm'. Please, update your conntrackd.conf file.",
                    "write `Mode ALARM'",
                );
                ModeKind::Alarm
            }
        };
        let s = self.sync_mut();
        match kind {
            ModeKind::Ftfw => s.ftfw = true,
            ModeKind::Alarm => s.alarm = true,
            ModeKind::Notrack => s.notrack = true,
        }
        let valid = match kind {
            ModeKind::Ftfw => FTFW,
            ModeKind::Alarm => ALARM,
            ModeKind::Notrack => NOTRACK,
        };
        let _ = key;
        self.block(&name.1, valid, |p, t| {
            if t.kind == TokenKind::Keyword && valid.keys.contains(&t.text) {
                if p.timer_item(&t)? {
                    return Ok(());
                }
                match t.text {
                    "ResendQueueSize" => {
                        let size = p.number_or_default(&t, DEFAULT_RESEND_QUEUE_SIZE)?;
                        p.sync_mut().resend_queue_size = size;
                    }
                    "ACKWindowSize" => {
                        let size = p.number_or_default(&t, DEFAULT_ACK_WINDOW_SIZE)?;
                        p.sync_mut().ack_window_size = size;
                    }
                    "DisableExternalCache" => {
                        p.sync_mut().disable_external_cache = p.boolean(&t)?
                    }
                    "DisableInternalCache" => {
                        p.sync_mut().disable_internal_cache = p.boolean(&t)?
                    }
                    "StartupResync" => p.sync_mut().startup_resync = Some(p.boolean(&t)?),
                    _ => return Err(p.unknown_item(&t, valid)),
                }
                return Ok(());
            }
            match t.text {
                "ResendBufferSize" if kind == ModeKind::Ftfw => p.resend_buffer_size(&t),
                "CacheWriteThrough" if kind != ModeKind::Alarm => p.cache_write_through(&t),
                _ if t.kind == TokenKind::Str && p.legacy_ignored(&t)? => Ok(()),
                _ => Err(p.unknown_item(&t, valid)),
            }
        })
    }

    fn channel(&mut self, key: &Token<'a>, kind: ChannelKind) -> PResult<()> {
        let mut marked_default = false;
        if self.peek().is_some_and(|t| t.is_kw("Default")) {
            self.bump();
            marked_default = true;
        }
        let mut accepted = true;
        let existing: Vec<ChannelKind> = self
            .sync_mut()
            .channels
            .iter()
            .map(|c| c.channel.kind)
            .collect();
        if existing.iter().any(|k| *k != kind) {
            self.error_help(
                key.span.clone(),
                format!(
                    "cannot use `{}' with other dedicated link protocols!",
                    kind.keyword()
                ),
                format!(
                    "all channels must be of the same kind (the first one is `{}')",
                    existing[0].keyword()
                ),
            );
            accepted = false;
        } else if existing.len() >= MAX_CHANNELS {
            self.error(
                key.span.clone(),
                format!(
                    "too many dedicated links in the configuration file (Maximum: {MAX_CHANNELS})"
                ),
            );
            accepted = false;
        }
        let mut builder = ChannelBuilder {
            channel: Channel::new(kind, key.span.clone(), key.line),
            checksum_set: false,
            marked_default,
        };
        let valid = match kind {
            ChannelKind::Multicast => MCAST,
            ChannelKind::Udp => UDP,
            ChannelKind::Tcp => TCP,
        };
        let result = self.block(key, valid, |p, t| p.channel_item(&mut builder, t, valid));
        if accepted {
            self.sync_mut().channels.push(builder);
        }
        result
    }

    fn channel_item(
        &mut self,
        b: &mut ChannelBuilder,
        t: Token<'a>,
        valid: KeyBlock,
    ) -> PResult<()> {
        let kind = b.channel.kind;
        let mcast = kind == ChannelKind::Multicast;
        let ch = &mut b.channel;
        match (t.kind, t.text) {
            (TokenKind::Keyword, "IPv4_address") => {
                if let Some(a) = self.ipv4(&t)? {
                    if mcast && ch.family == Some(Family::Ipv6) {
                        self.ignored(t.span.clone(), "your multicast address is IPv4 but is binded to an IPv6 interface? Surely, this is not what you want");
                    } else {
                        ch.family = Some(Family::Ipv4);
                        ch.address = Some(IpAddr::V4(a));
                    }
                }
            }
            (TokenKind::Keyword, "IPv6_address") => {
                let interface_before = mcast && ch.interface.is_some();
                if let Some(a) = self.ipv6(&t)? {
                    if mcast && ch.family == Some(Family::Ipv4) {
                        self.ignored(t.span.clone(), "your multicast address is IPv6 but is binded to an IPv4 interface? Surely this is not what you want");
                    } else {
                        ch.family = Some(Family::Ipv6);
                        ch.address = Some(IpAddr::V6(a));
                    }
                    if interface_before {
                        self.warn_help(
                            t.span.clone(),
                            "`IPv6_address' after `Interface': conntrackd 1.4.7 then looks up an interface named after the address and joins on interface index 0",
                            "put `IPv6_address' before `Interface' in this block",
                        );
                    }
                }
            }
            (TokenKind::Keyword, "IPv4_interface") if mcast => {
                if let Some(a) = self.ipv4(&t)? {
                    if ch.family == Some(Family::Ipv6) {
                        self.ignored(t.span.clone(), "your multicast interface is IPv4 but is binded to an IPv6 interface? Surely, this is not what you want");
                    } else {
                        ch.ipv4_interface = Some(a);
                    }
                }
            }
            (TokenKind::Keyword, "IPv6_interface") if mcast => {
                self.ip_token(&t)?;
                self.warn(t.span.clone(), "`IPv6_interface' not required, ignoring");
            }
            (TokenKind::Keyword, "IPv4_Destination_Address") if !mcast => {
                if let Some(a) = self.ipv4(&t)? {
                    ch.destination = Some(IpAddr::V4(a));
                }
            }
            (TokenKind::Keyword, "IPv6_Destination_Address") if !mcast => {
                if let Some(a) = self.ipv6(&t)? {
                    ch.destination = Some(IpAddr::V6(a));
                }
            }
            (TokenKind::Keyword, "Interface") => ch.interface = Some(self.interface(&t)?),
            (TokenKind::Keyword, "Group") if mcast => ch.port = self.port(&t)?,
            (TokenKind::Keyword, "Port") if !mcast => ch.port = self.port(&t)?,
            (TokenKind::Keyword, "SndSocketBuffer") => ch.snd_buf = Some(self.number(&t)?.0),
            (TokenKind::Keyword, "RcvSocketBuffer") => ch.rcv_buf = Some(self.number(&t)?.0),
            (TokenKind::Keyword, "Checksum") => {
                ch.checksum = self.boolean(&t)?;
                b.checksum_set = true;
            }
            (TokenKind::Keyword, "ErrorQueueLength") if kind == ChannelKind::Tcp => {
                let length = self.number_or_default(&t, DEFAULT_ERROR_QUEUE_LENGTH)?;
                self.sync_mut().settings.error_queue_length = length;
            }
            (TokenKind::Str, "McastSndSocketBuffer") => {
                ch.snd_buf = Some(self.number(&t)?.0);
                self.legacy_mapped(&t, "`SndSocketBuffer'");
            }
            (TokenKind::Str, "McastRcvSocketBuffer") => {
                ch.rcv_buf = Some(self.number(&t)?.0);
                self.legacy_mapped(&t, "`RcvSocketBuffer'");
            }
            (TokenKind::Str, "ListenTo") if mcast => {
                if let Some(a) = self.ipv4(&t)? {
                    ch.ipv4_interface = Some(a);
                }
                self.legacy_mapped(&t, "`IPv4_interface'");
            }
            _ if t.kind == TokenKind::Str && self.legacy_ignored(&t)? => {}
            _ => return Err(self.unknown_item(&t, valid)),
        }
        Ok(())
    }

    /// `Authentication { KeyFile PATH … }`.
    fn authentication(&mut self, opener: &Token<'a>) -> PResult<()> {
        self.block(opener, AUTHENTICATION, |p, t| match (t.kind, t.text) {
            (TokenKind::Str, "KeyFile") => {
                let path = p.path(&t, MAX_KEY_FILE_PATH_LEN, "KeyFile path is too long")?;
                p.sync_mut().key_file = Some((path, t.span.clone()));
                Ok(())
            }
            (TokenKind::Str, "AcceptKeyFile") => {
                let path = p.path(&t, MAX_KEY_FILE_PATH_LEN, "AcceptKeyFile path is too long")?;
                p.sync_mut().accept_key_file = Some((path, t.span.clone()));
                Ok(())
            }
            (TokenKind::Str, "Encrypt") => {
                p.sync_mut().settings.encrypt = p.boolean(&t)?;
                Ok(())
            }
            (TokenKind::Str, "RequireEncryption") => {
                p.sync_mut().require_encryption = Some(p.boolean(&t)?);
                Ok(())
            }
            _ => Err(p.unknown_item(&t, AUTHENTICATION)),
        })
    }

    fn options(&mut self, opener: &Token<'a>) -> PResult<()> {
        self.block(opener, OPTIONS, |p, t| match (t.kind, t.text) {
            (TokenKind::Keyword, "TCPWindowTracking") => {
                p.sync_mut().settings.tcp_window_tracking = p.boolean(&t)?;
                Ok(())
            }
            (TokenKind::Keyword, "ExpectationSync") => p.expectation_sync(&t),
            (TokenKind::Str, "ReplicateLabels") => {
                p.sync_mut().settings.replicate_labels = p.boolean(&t)?;
                Ok(())
            }
            _ => Err(p.unknown_item(&t, OPTIONS)),
        })
    }

    fn expectation_sync(&mut self, key: &Token<'a>) -> PResult<()> {
        match self.peek_kind() {
            Some(TokenKind::Bool(on)) => {
                self.bump();
                let current = &mut self.sync_mut().settings.expectation_sync;
                if on {
                    *current = ExpectSync::All;
                } else if *current != ExpectSync::Off {
                    self.ignored(
                        key.span.clone(),
                        "`ExpectationSync off' does not undo an earlier `ExpectationSync'; keeping it",
                    );
                }
                Ok(())
            }
            Some(TokenKind::OpenBrace) => {
                let mut names = match std::mem::take(&mut self.sync_mut().settings.expectation_sync)
                {
                    ExpectSync::Helpers(v) => v,
                    _ => Vec::new(),
                };
                let result = self.list(key, |p, t| {
                    if t.kind == TokenKind::Str {
                        names.push(t.text.to_owned());
                        Ok(())
                    } else {
                        let help = Some("helper names that look like keywords, numbers or hex words cannot be used".to_owned());
                        Err(p.syntax(Some(&t), "a helper name or `}'", help))
                    }
                });
                self.sync_mut().settings.expectation_sync = ExpectSync::Helpers(names);
                result
            }
            _ => {
                let t = self.peek().cloned();
                Err(self.syntax(
                    t.as_ref(),
                    "`on', `off' or `{' after `ExpectationSync'",
                    None,
                ))
            }
        }
    }
}

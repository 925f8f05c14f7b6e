//! Post-parse checks (docs/config.md §5) and the `Sync` settings that depend on
//! one another (the mode, the channels, the keys). Defaults are not applied
//! here: a key left out keeps the model's default, and a 0 that stands for
//! the default is read as such where the key is parsed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::diag::Severity;
use crate::limits::MIN_KEY_FILE_LEN;
use crate::model::{Channel, ChannelKind, Family, SyncMode, SyncSection};
use crate::parser::Parser;

/// Completes the configuration and runs every whole-file check.
pub(crate) fn apply(p: &mut Parser<'_>) {
    let g = &mut p.config.general;
    let filter = std::mem::take(&mut p.filter);
    g.filter.protocol = filter.protocol;
    g.filter.address = filter.address;
    g.filter.state = filter.state;

    if let (Some(sync), Some((stats_span, _))) = (&p.sync, &p.stats_span) {
        let span = if sync.span.start > stats_span.start {
            sync.span.clone()
        } else {
            stats_span.clone()
        };
        p.push(
            Severity::Error,
            span,
            "cannot use both `Stats' and `Sync' clauses in conntrackd.conf".to_owned(),
            Some("a daemon runs either in sync mode or in stats mode".to_owned()),
        );
    }
    syslog_conflict(p);
    if let Some(builder) = p.sync.take() {
        let sync = build_sync(p, builder);
        p.config.sync = Some(sync);
    }
    netlink_buffer_size_unused(p);
    // About the whole file, and only about one that is otherwise usable.
    let rejected = p.diagnostics.iter().any(crate::diag::Diagnostic::is_error);
    if !rejected && p.config.sync.is_none() && p.config.stats.is_none() && p.config.helper.is_none()
    {
        p.diagnostics.push(crate::diag::Diagnostic {
            severity: Severity::Notice,
            span: 0..0,
            line: 0,
            column: 0,
            message: "neither `Sync' nor `Stats' is configured: the daemon will start idle"
                .to_owned(),
            help: None,
            symbol: None,
        });
    }
}

/// 1.4.7 uses `NetlinkBufferSize` only up to `NetlinkBufferSizeMaxGrowth`
/// and otherwise keeps the system's size (with a notice at start-up that
/// scripts grep for, which the daemon still logs).
fn netlink_buffer_size_unused(p: &mut Parser<'_>) {
    let g = &p.config.general;
    let (size, max) = (g.netlink_buffer_size, g.netlink_buffer_size_max_growth);
    if let Some(span) = p.netlink_buffer_size_span.clone()
        && size > max
    {
        p.push(
            Severity::Ignored,
            span,
            format!("`NetlinkBufferSize' {size} is greater than `NetlinkBufferSizeMaxGrowth' ({max}): it is not used, the system's buffer size is kept"),
            Some(format!("set `NetlinkBufferSizeMaxGrowth' to {size} or more")),
        );
    }
}

fn syslog_conflict(p: &mut Parser<'_>) {
    let general = p.config.general.syslog;
    let stats = p.config.stats.as_ref().and_then(|s| s.syslog);
    if let (Some(g), Some(s), Some(span)) = (general, stats, p.stats_syslog_span.clone())
        && g != s
    {
        p.push(
            Severity::Ignored,
            span,
            "conflicting Syslog facility values, defaulting to General".to_owned(),
            Some(format!("General uses `{}'", g.name())),
        );
    }
}

fn build_sync(p: &mut Parser<'_>, mut b: crate::parser::SyncBuilder) -> SyncSection {
    let mode_specified = b.ftfw || b.alarm || b.notrack;
    if !mode_specified {
        p.push(
            Severity::Warning,
            b.span.clone(),
            "No synchronization mode specified. Defaulting to FT-FW mode.".to_owned(),
            Some("add `Mode FTFW { }', `Mode ALARM { }' or `Mode NOTRACK { }'".to_owned()),
        );
    }
    // ALARM (when selected) always uses the external cache.
    let selected_uses_flag = b.ftfw || !b.alarm;
    if selected_uses_flag && b.disable_external_cache && b.settings.commit_timeout != 0 {
        let span = b
            .commit_timeout_span
            .clone()
            .unwrap_or_else(|| b.span.clone());
        p.push(
            Severity::Ignored,
            span,
            "`CommitTimeout' can't be combined with `DisableExternalCache', ignoring this option. Fix your configuration file.".to_owned(),
            None,
        );
        b.settings.commit_timeout = 0;
    }
    let mode = if b.ftfw || !mode_specified {
        SyncMode::Ftfw {
            resend_queue_size: b.resend_queue_size,
            ack_window_size: b.ack_window_size,
            disable_external_cache: b.disable_external_cache,
            startup_resync: b.startup_resync,
        }
    } else if b.alarm {
        SyncMode::Alarm
    } else {
        SyncMode::Notrack {
            disable_internal_cache: b.disable_internal_cache,
            disable_external_cache: b.disable_external_cache,
            startup_resync: b.startup_resync,
        }
    };
    if b.channels.is_empty() {
        p.push(
            Severity::Error,
            b.span.clone(),
            "`Sync' has no dedicated link (Multicast, UDP or TCP block)".to_owned(),
            Some("the sync daemon cannot start without a channel".to_owned()),
        );
    }
    let marked: Vec<usize> = b
        .channels
        .iter()
        .enumerate()
        .filter(|(_, c)| c.marked_default)
        .map(|(i, _)| i)
        .collect();
    if marked.len() > 1 {
        let last = marked[marked.len() - 1];
        let span = b.channels[last].channel.span.clone();
        p.push(
            Severity::Ignored,
            span,
            "several channels are marked `Default'; the last one is used".to_owned(),
            None,
        );
    }
    let default_index = marked.last().copied().unwrap_or(0);
    let mut channels = Vec::with_capacity(b.channels.len());
    for (i, cb) in b.channels.into_iter().enumerate() {
        let mut ch = cb.channel;
        ch.default = i == default_index;
        if !cb.checksum_set
            && let Some(on) = b.legacy_checksum
        {
            ch.checksum = on;
        }
        check_channel(p, &mut ch);
        channels.push(ch);
    }
    let encrypt = b.settings.encrypt;
    SyncSection {
        mode,
        mode_specified,
        channels,
        require_encryption: b.require_encryption.unwrap_or(encrypt),
        key_file: b.key_file.take().map(|(path, span)| {
            check_key_file(p, &path, span);
            std::path::PathBuf::from(path)
        }),
        accept_key_file: b.accept_key_file.take().map(|(path, span)| {
            check_key_file(p, &path, span);
            std::path::PathBuf::from(path)
        }),
        ..b.settings
    }
}

/// The authentication key must exist, be long enough and be readable by
/// its owner only.
fn check_key_file(p: &mut Parser<'_>, path: &str, span: crate::diag::Span) {
    use std::os::unix::fs::PermissionsExt;
    let problem = match std::fs::metadata(path) {
        Err(e) => Some((format!("can't read KeyFile `{path}': {e}"), None)),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Some((
            format!(
                "KeyFile `{path}' is accessible to others (mode {:o})",
                m.permissions().mode() & 0o777
            ),
            Some(format!("chmod 600 {path}")),
        )),
        Ok(m) if m.len() < MIN_KEY_FILE_LEN => Some((
            format!(
                "KeyFile `{path}' holds {} bytes; at least {MIN_KEY_FILE_LEN} are needed",
                m.len()
            ),
            Some("head -c 32 /dev/urandom > KEYFILE".to_owned()),
        )),
        Ok(_) => None,
    };
    if let Some((message, help)) = problem {
        p.push(Severity::Error, span, message, help);
    }
}

fn check_channel(p: &mut Parser<'_>, ch: &mut Channel) {
    let kw = ch.kind.keyword();
    if ch.kind == ChannelKind::Multicast {
        if ch.address.is_none() {
            p.push(
                Severity::Error,
                ch.span.clone(),
                format!("`{kw}' channel has no group address"),
                Some(
                    "add `IPv4_address' with the group (e.g. 225.0.0.50) or `IPv6_address'"
                        .to_owned(),
                ),
            );
        }
    } else {
        resolve_unicast_addresses(p, ch);
    }
    if ch.interface.is_none() {
        let severity = if ch.kind == ChannelKind::Multicast {
            Severity::Error
        } else {
            Severity::Warning
        };
        p.push(
            severity,
            ch.span.clone(),
            format!("`{kw}' channel has no `Interface'"),
            Some("add `Interface NAME' (the link's interface)".to_owned()),
        );
    }
    if ch.port == 0 {
        let key = if ch.kind == ChannelKind::Multicast {
            "Group"
        } else {
            "Port"
        };
        p.push(
            Severity::Warning,
            ch.span.clone(),
            format!("`{kw}' channel has no `{key}' (port 0)"),
            None,
        );
    }
}

/// UDP and TCP channels (docs/migration.md, "Channel addresses"): the
/// peer's address is required; the local one is optional, as in 1.4.7,
/// which then binds the wildcard address of the peer's family (VyOS writes
/// such blocks whenever its `listen-address` is not set).
fn resolve_unicast_addresses(p: &mut Parser<'_>, ch: &mut Channel) {
    let kw = ch.kind.keyword();
    let Some(peer) = ch.destination else {
        p.push(
            Severity::Error,
            ch.span.clone(),
            format!("`{kw}' channel has no destination address"),
            Some("add `IPv4_Destination_Address' or `IPv6_Destination_Address' with the peer's address (1.4.7 would send to 0.0.0.0, this host)".to_owned()),
        );
        return;
    };
    let peer_family = if peer.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    };
    match ch.address {
        None => {
            ch.address = Some(match peer_family {
                Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            });
            ch.family = Some(peer_family);
        }
        Some(local) if local.is_ipv4() != peer.is_ipv4() => {
            p.push(
                Severity::Error,
                ch.span.clone(),
                format!("`{kw}' channel mixes IPv4 and IPv6: local address {local}, destination {peer}"),
                Some("give both addresses in one family, or leave the local address out to bind any address".to_owned()),
            );
        }
        Some(_) => ch.family = Some(peer_family),
    }
}

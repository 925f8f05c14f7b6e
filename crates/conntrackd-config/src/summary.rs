//! Human summary for `--check`.

use std::fmt::Write as _;

use crate::model::{Config, ExpectSync, LogTarget, Policy, SyncMode};
use crate::model::{
    DEFAULT_EVENT_ITERATION_LIMIT, DEFAULT_KERNEL_EVENTS_PER_WAKEUP, DEFAULT_LOG_FILE,
    DEFAULT_STATS_LOG_FILE,
};
use crate::tcp_states::state_name;

fn log_target(t: &LogTarget, default: &str) -> String {
    match t {
        LogTarget::Off => "off".to_owned(),
        LogTarget::Default => default.to_owned(),
        LogTarget::Path(p) => p.display().to_string(),
    }
}

fn policy(p: Policy) -> &'static str {
    match p {
        Policy::Accept => "accept",
        Policy::Ignore => "ignore",
    }
}

/// A short multi-line summary: mode, channels, filters, paths.
pub fn check_summary(config: &Config) -> String {
    let mut s = String::new();
    let g = &config.general;
    match (&config.sync, &config.stats) {
        (Some(sync), _) => {
            let _ = writeln!(
                s,
                "mode: sync {}{}",
                sync.mode.name(),
                if sync.mode_specified {
                    ""
                } else {
                    " (default)"
                }
            );
            for ch in &sync.channels {
                let addr = ch.address.map_or_else(|| "-".to_owned(), |a| a.to_string());
                let dest = ch
                    .destination
                    .map_or_else(String::new, |a| format!(" -> {a}"));
                let _ = writeln!(
                    s,
                    "channel: {} {}{} port {} interface {}{}{}",
                    ch.kind.keyword(),
                    addr,
                    dest,
                    ch.port,
                    ch.interface.as_deref().unwrap_or("-"),
                    if ch.default { " (default)" } else { "" },
                    if ch.checksum { "" } else { " checksum off" },
                );
            }
            if let SyncMode::Ftfw { startup_resync, .. }
            | SyncMode::Notrack { startup_resync, .. } = sync.mode
            {
                let _ = writeln!(
                    s,
                    "startup resync: {}",
                    match startup_resync {
                        None => "on (StartupResync not written: on here, off in 1.4.7)",
                        Some(true) => "on",
                        Some(false) => "off",
                    }
                );
            }
            if !sync.replicate_labels {
                s.push_str("connlabels: not replicated (ReplicateLabels off)\n");
            }
            if sync.expectation_sync != ExpectSync::Off {
                let _ = writeln!(s, "expectation sync: {:?}", sync.expectation_sync);
            }
        }
        (None, Some(stats)) => {
            let _ = writeln!(
                s,
                "mode: stats, log {}",
                log_target(&stats.log_file, DEFAULT_STATS_LOG_FILE)
            );
        }
        (None, None) if config.helper.is_some() => {
            s.push_str("mode: user-space helpers only (no Sync or Stats section)\n");
        }
        (None, None) => s.push_str("mode: idle (no Sync or Stats section)\n"),
    }
    let f = &g.filter;
    if f.is_empty() {
        s.push_str("filter: none\n");
    } else {
        let _ = writeln!(
            s,
            "filter: from {}",
            if f.from_kernelspace {
                "kernelspace"
            } else {
                "userspace"
            }
        );
        if let Some((p, v)) = &f.protocol {
            let _ = writeln!(s, "  protocol {}: {:?}", policy(*p), v);
        }
        if let Some((p, v)) = &f.address {
            let nets: Vec<String> = v.iter().map(ToString::to_string).collect();
            let _ = writeln!(s, "  address {}: {}", policy(*p), nets.join(" "));
        }
        if let Some((p, v)) = &f.state {
            let names: Vec<&str> = v.iter().map(|n| state_name(*n)).collect();
            let _ = writeln!(s, "  state {} for TCP: {}", policy(*p), names.join(" "));
        }
    }
    let _ = writeln!(s, "lock file: {}", g.lock_file.display());
    let _ = writeln!(
        s,
        "control socket: {}",
        g.unix_path.as_ref().map_or_else(
            || "none (clients cannot connect)".to_owned(),
            |p| format!(
                "{} (at most {} clients; a reply not read for {} s is abandoned)",
                p.display(),
                g.max_clients,
                g.reply_timeout
            )
        )
    );
    let _ = writeln!(s, "log file: {}", log_target(&g.log_file, DEFAULT_LOG_FILE));
    let _ = writeln!(s, "hash size {}, hash limit {}", g.hash_size, g.hash_limit);
    let _ = match g.event_iteration_limit {
        Some(n) => writeln!(
            s,
            "per wake-up: {n} kernel events, {n} datagrams per Multicast or UDP channel"
        ),
        None => writeln!(
            s,
            "per wake-up: {DEFAULT_KERNEL_EVENTS_PER_WAKEUP} kernel events, {DEFAULT_EVENT_ITERATION_LIMIT} datagrams per channel (EventIterationLimit not written)"
        ),
    };
    let _ = match g.event_batch_delay {
        0 => writeln!(s, "kernel events: read as they come (EventBatchDelay 0)"),
        ms => writeln!(
            s,
            "kernel events: read again {ms} ms after a read that found some (EventBatchDelay; with an event buffer of at least {ms} MiB)"
        ),
    };
    if let Some(m) = &g.metrics {
        let listen: Vec<String> = m
            .listen()
            .iter()
            .map(|a| format!("http://{a}/metrics"))
            .collect();
        let _ = writeln!(s, "metrics: {}", listen.join(" "));
    }
    if let Some(helper) = &config.helper {
        helper_summary(&mut s, helper);
    }
    s
}

/// The `Helper` section: what is registered and bound at start-up.
fn helper_summary(s: &mut String, helper: &crate::model::HelperSection) {
    let _ = writeln!(
        s,
        "helpers: Setup {} (kernel stubs {})",
        if helper.setup { "on" } else { "off" },
        if helper.setup {
            "created at start-up and removed at exit"
        } else {
            "expected to exist already, e.g. `nfct add helper NAME inet tcp'; updated at start-up"
        }
    );
    for t in &helper.types {
        let policy = t.policies.last();
        let _ = writeln!(
            s,
            "helper: {} {} {} queue {} queue length {}{}{}",
            t.name,
            match t.l3 {
                crate::model::HelperL3::Inet => "inet",
                crate::model::HelperL3::Inet6 => "inet6",
            },
            match t.l4 {
                crate::model::HelperL4::Tcp => "tcp",
                crate::model::HelperL4::Udp => "udp",
            },
            t.queue_num.unwrap_or(0),
            t.queue_len
                .map_or_else(|| "kernel default".to_owned(), |n| n.to_string()),
            policy
                .and_then(|p| p.expect_max)
                .map_or_else(String::new, |n| format!(" ExpectMax {n}")),
            policy
                .and_then(|p| p.expect_timeout)
                .map_or_else(String::new, |n| format!(" ExpectTimeout {n}")),
        );
    }
}

//! One reading of every counter the daemon keeps: the source of `--json`
//! and of the Prometheus metrics. It reads the same fields the `-s` text
//! reports read, so the three always agree (tests/metrics.rs checks it).

use conntrackd_core::sync::auth::Refusal;
use std::time::Instant;

use conntrackd_core::cache::CacheCounters;
use conntrackd_core::sync::Protocol;
use serde::Serialize;
use synclink::{LinkState, Transport};

use super::{Mode, Node};
use crate::runtime_stats::RuntimeStats;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// `sync`, `stats` or `idle`.
    pub mode: &'static str,
    pub version: &'static str,
    pub uptime_seconds: u64,
    pub caches: Vec<CacheStats>,
    pub traffic: Traffic,
    pub netlink: Netlink,
    pub control: Control,
    /// Present in Sync mode.
    pub sync: Option<SyncStats>,
    /// The user-space helpers (empty without a Helper section).
    pub helpers: Vec<crate::helpers::HelperStats>,
}

/// One cache (`-s` `cache NAME:` block).
#[derive(Debug, Clone, Serialize)]
pub struct CacheStats {
    /// `internal`, `external` or `stats`.
    pub name: &'static str,
    /// `conntrack` or `expect`.
    pub kind: &'static str,
    pub active: u64,
    pub created: u64,
    pub create_failed: u64,
    pub updated: u64,
    pub update_failed: u64,
    pub destroyed: u64,
    pub destroy_failed: u64,
    /// Refused because `HashLimit` was reached.
    pub no_space: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Traffic {
    pub bytes: u64,
    pub packets: u64,
}

/// `-s runtime` `netlink stats:`.
#[derive(Debug, Clone, Serialize)]
pub struct Netlink {
    pub events_received: u64,
    pub events_filtered: u64,
    pub events_unknown_type: u64,
    pub catch_event_failed: u64,
    pub dump_unknown_type: u64,
    pub overruns: u64,
    pub kernel_flushes: u64,
    pub kernel_resyncs: u64,
    pub buffer_bytes: u64,
}

/// `-s runtime` counters of the control socket.
#[derive(Debug, Clone, Serialize)]
pub struct Control {
    pub read_failed: u64,
    pub unknown_requests: u64,
    /// Not read for `ReplyTimeout` seconds.
    pub replies_abandoned: u64,
    /// Closed at once: every `MaxClients` slot was busy with a reply.
    pub clients_refused: u64,
    /// Closed before sending a request, to make room for a newcomer.
    pub silent_clients_dropped: u64,
    pub accept_errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncStats {
    /// `ftfw`, `alarm` or `notrack`.
    pub protocol: &'static str,
    pub authentication: bool,
    pub received: Received,
    /// `Authentication` on: what it refused and what its handshakes did.
    pub auth: Option<AuthStats>,
    pub queues: Queues,
    pub channels: Vec<Channel>,
    /// NOTRACK with `DisableInternalCache`.
    pub bypass: Option<Bypass>,
    /// `DisableExternalCache`.
    pub inject: Option<crate::replication::InjectCounters>,
    /// The last `-c`, if one ran.
    pub last_commit: Option<crate::replication::CommitReport>,
    /// Since the last well-formed message from a peer; None before the first.
    pub seconds_since_last_message: Option<f64>,
}

/// `-s network`: what arrived on the sync link.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// `Malformed messages` (all reasons below together).
    pub malformed: u64,
    pub wrong_version: u64,
    pub malformed_header: u64,
    pub malformed_payload: u64,
    pub bad_type: u64,
    pub truncated: u64,
    pub bad_size: u64,
    /// `Packets lost` (sequence gaps).
    pub lost: u64,
    /// `Packets before` (sequence numbers already seen).
    pub before: u64,
    pub applied: u64,
    /// Refused by `Authentication`, every reason (`Auth failures`).
    pub auth_failures: u64,
    /// Peers forgotten to make room for a new sender (64 tracked).
    pub peers_evicted: u64,
}

/// The `authentication:` block of `-s network`.
#[derive(Debug, Clone, Serialize)]
pub struct AuthStats {
    /// Refusals by reason (`not_envelope`, `bad_tag`, `replayed`, ...).
    pub refused: std::collections::BTreeMap<&'static str, u64>,
    /// Envelopes held for a handshake, in all and now.
    pub held: u64,
    pub held_now: u64,
    /// Sessions verified by a handshake, in all and now.
    pub verified: u64,
    pub verified_now: u64,
    pub handshakes_sent: u64,
}

/// `-s queue`.
#[derive(Debug, Clone, Serialize)]
pub struct Queues {
    pub transmit: u64,
    pub resend: u64,
    pub resend_max: Option<u64>,
    pub resend_dropped: u64,
    pub control_nodes: u64,
    pub error_queue: u64,
    pub error_queue_max: u64,
    pub error_queue_dropped: u64,
}

/// One `Multicast`/`UDP`/`TCP` channel (`-s link`).
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    pub index: usize,
    /// `multicast`, `udp` or `tcp`.
    pub transport: &'static str,
    pub device: String,
    /// `RUNNING`, `NO-CARRIER` or `DOWN`.
    pub status: &'static str,
    /// The channel that sends (`ACTIVE`); the others are `BACKUP`.
    pub active: bool,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub send_errors: u64,
    pub receive_errors: u64,
    /// TCP: connections refused because they did not come from the peer.
    pub foreign_connections: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bypass {
    pub new: u64,
    pub updated: u64,
    pub destroyed: u64,
}

fn cache(name: &'static str, kind: &'static str, active: usize, c: &CacheCounters) -> CacheStats {
    CacheStats {
        name,
        kind,
        active: active as u64,
        created: c.created,
        create_failed: c.create_failed,
        updated: c.updated,
        update_failed: c.update_failed,
        destroyed: c.destroyed,
        destroy_failed: c.destroy_failed,
        no_space: c.no_space,
    }
}

impl Node {
    /// Reads every counter now.
    pub fn snapshot(&self, stats: &RuntimeStats, now: Instant) -> Snapshot {
        let local = self.local();
        let n = &local.netlink;
        let mut caches = Vec::new();
        let internal_disabled = self.internal_disabled();
        if self.mode != Mode::Idle && !internal_disabled {
            caches.push(cache(
                local.cache.name(),
                "conntrack",
                local.cache.active(),
                &local.cache.counters,
            ));
        }
        let sync = self.sync.as_ref().map(|r| {
            let core = &r.core;
            let settings = core.settings();
            if !settings.disable_external_cache {
                caches.push(cache(
                    "external",
                    "conntrack",
                    core.external.active(),
                    &core.external.counters,
                ));
            }
            if let Some(e) = &core.expect {
                caches.push(cache(
                    "internal",
                    "expect",
                    e.internal.len(),
                    &e.internal.counters,
                ));
                caches.push(cache(
                    "external",
                    "expect",
                    e.external.len(),
                    &e.external.counters,
                ));
            }
            let c = &core.counters;
            let q = core.queue_stats();
            let errorq = r.error_queue();
            let channels = r
                .links
                .iter()
                .enumerate()
                .map(|(index, link)| {
                    let l = link.counters();
                    Channel {
                        index,
                        transport: match link.spec().transport {
                            Transport::Multicast => "multicast",
                            Transport::Udp => "udp",
                            Transport::Tcp => "tcp",
                        },
                        device: link.spec().interface.clone().unwrap_or_default(),
                        status: match link.link_state() {
                            LinkState::Down => "DOWN",
                            LinkState::NoCarrier => "NO-CARRIER",
                            LinkState::Running => "RUNNING",
                        },
                        active: index == core.active_channel(),
                        bytes_sent: l.bytes_sent,
                        bytes_received: l.bytes_recv,
                        packets_sent: l.pkts_sent,
                        packets_received: l.pkts_recv,
                        send_errors: l.send_errors,
                        receive_errors: l.recv_errors,
                        foreign_connections: l.foreign_connections,
                    }
                })
                .collect();
            SyncStats {
                protocol: match settings.protocol {
                    Protocol::Ftfw { .. } => "ftfw",
                    Protocol::Alarm { .. } => "alarm",
                    Protocol::Notrack => "notrack",
                },
                authentication: core.authenticated(),
                received: Received {
                    malformed: c.malformed,
                    wrong_version: c.bad_version,
                    malformed_header: c.bad_header,
                    malformed_payload: c.bad_payload,
                    bad_type: c.bad_type,
                    truncated: c.truncated,
                    bad_size: c.bad_size,
                    lost: c.lost,
                    before: c.before,
                    applied: c.applied,
                    auth_failures: core.auth_counters().map_or(0, |a| a.refused_total()),
                    peers_evicted: c.peers_evicted,
                },
                auth: core.auth().map(|auth| {
                    let a = auth.counters();
                    AuthStats {
                        refused: Refusal::ALL
                            .into_iter()
                            .map(|why| (why.name(), a.refused(why)))
                            .collect(),
                        held: a.held,
                        held_now: auth.held_now() as u64,
                        verified: a.verified,
                        verified_now: auth.verified_sessions() as u64,
                        handshakes_sent: a.handshakes_sent,
                    }
                }),
                queues: Queues {
                    transmit: q.transmit as u64,
                    resend: q.resend as u64,
                    resend_max: q.resend_max,
                    resend_dropped: q.resend_dropped,
                    control_nodes: q.control_nodes as u64,
                    error_queue: errorq.0 as u64,
                    error_queue_max: errorq.1 as u64,
                    error_queue_dropped: errorq.2,
                },
                channels,
                bypass: settings.disable_internal_cache.then_some(Bypass {
                    new: core.bypass.new,
                    updated: core.bypass.updated,
                    destroyed: core.bypass.destroyed,
                }),
                inject: settings.disable_external_cache.then_some(r.inject),
                last_commit: r.last_commit,
                seconds_since_last_message: core.since_last_received(now).map(|d| d.as_secs_f64()),
            }
        });
        Snapshot {
            mode: match self.mode {
                Mode::Idle => "idle",
                Mode::Stats => "stats",
                Mode::Sync => "sync",
            },
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: now.saturating_duration_since(stats.started).as_secs(),
            caches,
            traffic: Traffic {
                bytes: local.traffic_bytes,
                packets: local.traffic_packets,
            },
            netlink: Netlink {
                events_received: n.events_received,
                events_filtered: n.events_filtered,
                events_unknown_type: n.unknown_type,
                catch_event_failed: n.catch_failed,
                dump_unknown_type: n.dump_unknown,
                overruns: n.overrun,
                kernel_flushes: n.flush_kernel,
                kernel_resyncs: n.resync_kernel,
                buffer_bytes: n.buffer_size,
            },
            control: Control {
                read_failed: stats.control.read_failed.get(),
                unknown_requests: stats.control.unknown_request.get(),
                replies_abandoned: stats.control.replies_abandoned.get(),
                clients_refused: stats.control.refused_busy.get(),
                silent_clients_dropped: stats.control.silent_dropped.get(),
                accept_errors: stats.control.accept_errors.get(),
            },
            sync,
            helpers: crate::helpers::stats(&stats.helpers.borrow()),
        }
    }
}

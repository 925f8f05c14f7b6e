//! One reading of every counter the daemon keeps (declared and described
//! in `crate::counters::model`): the source of `--json` and of the
//! Prometheus metrics. It reads the same fields the `-s` text reports
//! read, so they always agree (tests/metrics.rs checks it).

use std::time::Instant;

use conntrackd_core::cache::CacheCounters;
use conntrackd_core::local::LocalCache;
use conntrackd_core::sync::Protocol;
use conntrackd_core::sync::auth::Refusal;
use synclink::LinkState;

use super::{Engine, Node};
use crate::counters::model::{
    AuthStats, Bypass, CacheStats, Channel, Netlink, Queues, Received, Snapshot, SyncStats, Traffic,
};
use crate::runtime_stats::RuntimeStats;

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
        let n = local.map(|l| *l.netlink()).unwrap_or_default();
        let (bytes, packets) = local.map_or((0, 0), LocalCache::traffic);
        let mut caches = Vec::new();
        if let Some(local) = local
            && !self.internal_disabled()
        {
            let c = local.cache();
            caches.push(cache(c.name(), "conntrack", c.active(), &c.counters));
        }
        let sync = self.replication().map(|r| {
            let core = r.core();
            let settings = core.settings();
            if !settings.disable_external_cache {
                caches.push(cache(
                    "external",
                    "conntrack",
                    core.external().active(),
                    &core.external().counters,
                ));
            }
            if let Some(e) = core.expectations() {
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
            let c = core.counters();
            let readiness = core.readiness(now);
            let q = core.queue_stats();
            let errorq = r.error_queue();
            let channels = r
                .links()
                .iter()
                .enumerate()
                .map(|(index, link)| {
                    let l = link.counters();
                    Channel {
                        index,
                        transport: link.channel().kind.name(),
                        device: link.channel().interface.clone().unwrap_or_default(),
                        status: match link.link_state() {
                            LinkState::Down => "DOWN",
                            LinkState::NoCarrier => "NO-CARRIER",
                            LinkState::Running => "RUNNING",
                        },
                        up: link.link_state() == LinkState::Running,
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
                    resend: q.resend_max.map(|_| q.resend as u64),
                    resend_max: q.resend_max,
                    resend_dropped: q.resend_max.map(|_| q.resend_dropped),
                    control_nodes: q.control_nodes as u64,
                    error_queue: errorq.0 as u64,
                    error_queue_max: errorq.1 as u64,
                    error_queue_dropped: errorq.2,
                },
                channels,
                bypass: settings.disable_internal_cache.then_some(Bypass {
                    new: core.bypass_counters().new,
                    updated: core.bypass_counters().updated,
                    destroyed: core.bypass_counters().destroyed,
                }),
                inject: settings
                    .disable_external_cache
                    .then_some(r.inject_counters()),
                last_commit: r.last_commit(),
                seconds_since_last_message: core.since_last_received(now).map(|d| d.as_secs_f64()),
                synced: readiness.synced,
                live_peers: readiness.live_peers as u64,
                peers_waiting: readiness.waiting as u64,
            }
        });
        Snapshot {
            mode: match self.engine {
                Engine::Idle => "idle",
                Engine::Stats(_) => "stats",
                Engine::Sync(_) => "sync",
            },
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: now.saturating_duration_since(stats.started).as_secs(),
            caches,
            traffic: (!matches!(self.engine, Engine::Idle)).then_some(Traffic { bytes, packets }),
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
            metrics_endpoint: stats.metrics.as_ref().map(|m| m.reading()),
            control: stats.control.reading(),
            sync,
            helpers: crate::helpers::stats(&stats.helpers.borrow()),
        }
    }
}

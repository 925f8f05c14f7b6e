//! Control requests (docs/control-and-cli.md §2, §4): one exhaustive
//! `match` on [`Request`], so a new request does not compile until it is
//! handled here. What a request does depends on the mode: a request the
//! mode does not handle is answered with nothing, as by 1.4.7.

use std::time::Instant;

use conntrackd_core::report;
use conntrackd_core::request::{Asked, Request};
use conntrackd_core::sync::Readiness;
use conntrackd_core::sync::report as sync_report;

use super::{Engine, Node, Reply};
use crate::kernel_dump::KernelDump;
use crate::logger;
use crate::replication::Replication;
use crate::runtime_stats::RuntimeStats;

/// Which flows or expectations a kernel-side request concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Flows,
    Expectations,
    Both,
}

impl Scope {
    fn flows(self) -> bool {
        self != Scope::Expectations
    }

    fn expectations(self) -> bool {
        self != Scope::Flows
    }
}

impl Node {
    /// Serves one control request. Cache dumps come back as a cursor, to
    /// be rendered as the client reads them.
    pub fn handle_request(&mut self, asked: Asked, now: Instant, stats: &RuntimeStats) -> Reply {
        let Asked { request, json } = asked;
        if let Some(cursor) = self.dump_request(request, json) {
            return Reply::Dump(cursor);
        }
        let mut out = String::new();
        match request {
            // The main loop stops before it gets here.
            Request::Kill | Request::DebugInfo | Request::StatsProcess if !json => {}
            Request::Synced => out = self.synced_reply(now, json),
            Request::Stats
            | Request::StatsNetwork
            | Request::StatsCache
            | Request::StatsRuntime
            | Request::StatsLink
            | Request::StatsRsqueue
            | Request::StatsProcess
            | Request::StatsQueue
            | Request::ExpStats
                if json =>
            {
                out = crate::json::render(&self.snapshot(stats, now));
            }
            // A dump with no cache to list (cache dumps are Reply::Dump).
            Request::CtDumpInternal
            | Request::CtDumpIntXml
            | Request::CtDumpExternal
            | Request::CtDumpExtXml
            | Request::ExpDumpInternal
            | Request::ExpDumpIntXml
            | Request::ExpDumpExternal
            | Request::ExpDumpExtXml
                if json =>
            {
                out = crate::json::render(&Vec::<serde_json::Value>::new());
            }
            Request::StatsRuntime => self.runtime_report(&mut out, now, stats),
            Request::Stats => {
                self.general_report(&mut out);
                let helpers = crate::helpers::stats(&stats.helpers.borrow());
                out.push_str(&crate::helpers::render_block(&helpers));
            }
            Request::StatsCache => self.cache_report(&mut out),
            Request::StatsNetwork => self.with_sync(|r| {
                sync_report::network_block(&mut out, r.core());
                r.active_channel_block(&mut out);
                r.foreign_connections_block(&mut out);
            }),
            Request::StatsLink => self.with_sync(|r| r.link_blocks(&mut out)),
            Request::StatsRsqueue => {
                self.with_sync(|r| sync_report::resend_queue(&mut out, r.core()))
            }
            Request::StatsQueue => {
                self.with_sync(|r| sync_report::queues(&mut out, r.core(), r.error_queue()))
            }
            Request::ExpStats => self.expectation_report(&mut out),
            Request::CtDumpInternal | Request::CtDumpIntXml => {
                // Not a cache dump, so there is no internal cache: the
                // kernel table, as `conntrack -L` shows it.
                if matches!(self.engine, Engine::Sync(_)) && self.kernel.is_some() {
                    return Reply::KernelDump(KernelDump {
                        filter: self.local().and_then(|l| l.dump_filter()).cloned(),
                    });
                }
            }
            Request::CtDumpExternal
            | Request::CtDumpExtXml
            | Request::ExpDumpInternal
            | Request::ExpDumpIntXml
            | Request::ExpDumpExternal
            | Request::ExpDumpExtXml
            | Request::Kill
            | Request::DebugInfo
            | Request::StatsProcess => {}
            Request::CtResyncMaster => self.resync_request(now, Scope::Flows),
            Request::ExpResyncMaster => self.resync_request(now, Scope::Expectations),
            Request::AllResyncMaster => self.resync_request(now, Scope::Both),
            Request::CtFlushMaster => self.kernel_flush_request(Scope::Flows),
            Request::ExpFlushMaster => self.kernel_flush_request(Scope::Expectations),
            Request::AllFlushMaster => self.kernel_flush_request(Scope::Both),
            Request::CtFlushIntCache => self.flush_internal_request(),
            Request::CtFlushExtCache => self.with_sync_mut(|r| {
                logger::notice("flushing external cache");
                r.core_mut().flush_external();
            }),
            Request::CtFlushCache => self.flush_caches_request(false),
            Request::AllFlushCache => self.flush_caches_request(true),
            Request::CtCommit => self.commit_request(now, Scope::Flows),
            Request::ExpCommit => self.commit_request(now, Scope::Expectations),
            Request::AllCommit => self.commit_request(now, Scope::Both),
            Request::SendBulk => self.with_sync_mut(|r| r.core_mut().bulk_send()),
            Request::RequestDump => self.with_sync_mut(|r| r.core_mut().request_resync()),
            Request::ResetTimers => self.with_sync_mut(|r| r.core_mut().schedule_purge(now)),
        }
        Reply::Text(out)
    }

    fn with_sync(&self, f: impl FnOnce(&Replication)) {
        if let Engine::Sync(r) = &self.engine {
            f(r);
        }
    }

    fn with_sync_mut(&mut self, f: impl FnOnce(&mut Replication)) {
        if let Engine::Sync(r) = &mut self.engine {
            f(r);
        }
    }

    /// `--synced` (docs/readiness.md): `synced`, or what it waits for.
    fn synced_reply(&self, now: Instant, json: bool) -> String {
        let readiness = match self.core() {
            Some(core) => core.readiness(now),
            // Nothing to wait for outside Sync mode.
            None => Readiness {
                synced: true,
                ..Default::default()
            },
        };
        if json {
            return crate::json::render(&serde_json::json!({
                "synced": readiness.synced,
                "live_peers": readiness.live_peers,
                "waiting": readiness.waiting,
            }));
        }
        if readiness.synced {
            format!("synced ({} live peers)\n", readiness.live_peers)
        } else if readiness.waiting == 0 {
            "not synced: waiting for peers to be heard\n".to_string()
        } else {
            format!(
                "not synced: waiting for the state of {} of {} live peers\n",
                readiness.waiting, readiness.live_peers
            )
        }
    }

    /// `-s runtime`, in every mode.
    fn runtime_report(&self, out: &mut String, now: Instant, stats: &RuntimeStats) {
        out.push_str(&stats.uptime_line(now));
        if let Some(local) = self.local() {
            report::netlink_block(out, local.netlink());
        }
        out.push_str(&stats.render_runtime_block());
    }

    /// `-s`.
    fn general_report(&self, out: &mut String) {
        match &self.engine {
            Engine::Idle => {}
            Engine::Stats(s) => {
                report::cache_block(out, s.local().cache());
                let (bytes, packets) = s.local().traffic();
                report::traffic_block(out, bytes, packets);
            }
            Engine::Sync(r) => {
                let core = r.core();
                sync_cache_blocks(out, r, report::cache_block);
                let (bytes, packets) = core.local().traffic();
                report::traffic_block(out, bytes, packets);
                r.active_channel_block(out);
                sync_report::message_tracking_block(out, core);
            }
        }
    }

    /// `-s cache`.
    fn cache_report(&self, out: &mut String) {
        match &self.engine {
            Engine::Idle => {}
            Engine::Stats(s) => report::cache_detail_block(out, s.local().cache()),
            Engine::Sync(r) => sync_cache_blocks(out, r, report::cache_detail_block),
        }
    }

    /// `-s expect`.
    fn expectation_report(&self, out: &mut String) {
        if let Some(state) = self.expect() {
            report::counters_block(
                out,
                "internal",
                state.internal.len(),
                &state.internal.counters,
            );
            report::counters_block(
                out,
                "external",
                state.external.len(),
                &state.external.counters,
            );
        }
    }

    /// `-R`, `-R ct`, `-R expect`.
    fn resync_request(&mut self, now: Instant, scope: Scope) {
        if matches!(self.engine, Engine::Idle) {
            return;
        }
        if scope.flows() {
            if self.internal_disabled() {
                logger::notice("resync is unsupported in this mode");
                return;
            }
            logger::notice("resync with master conntrack table");
            if let Err(e) = self.resync_with_kernel(now, false) {
                logger::error(&e.to_string());
            }
        }
        if scope.expectations() && self.expect().is_some() {
            logger::notice("resync with master expect table");
            self.resync_expectations(now);
        }
    }

    /// `-F`, `-F ct`, `-F expect`.
    fn kernel_flush_request(&mut self, scope: Scope) {
        if matches!(self.engine, Engine::Idle) {
            return;
        }
        if scope.flows() {
            logger::notice("flushing kernel conntrack table");
            self.flush_kernel();
        }
        if scope.expectations() && self.expect().is_some() {
            logger::notice("flushing kernel expect table");
            self.flush_kernel_expectations();
        }
    }

    /// `-f internal`.
    fn flush_internal_request(&mut self) {
        match &mut self.engine {
            Engine::Idle => {}
            Engine::Stats(s) => {
                logger::notice("flushing internal cache");
                s.local_mut().flush();
            }
            Engine::Sync(r) => {
                logger::notice("flushing internal cache");
                r.core_mut().cancel_purge();
                r.core_mut().flush_internal();
            }
        }
    }

    /// `-f` (with expectations) and code 19 (flows only; no flag sends it).
    fn flush_caches_request(&mut self, expectations: bool) {
        match &mut self.engine {
            Engine::Idle => {}
            // 1.4.7's Stats mode knows code 19 only.
            Engine::Stats(s) if !expectations => {
                logger::notice("flushing internal cache");
                s.local_mut().flush();
            }
            Engine::Stats(_) => {}
            Engine::Sync(r) => {
                logger::notice("flushing caches");
                r.core_mut().cancel_purge();
                let core = r.core_mut();
                core.flush_internal();
                core.flush_external();
                if expectations {
                    core.flush_internal_expect();
                    core.flush_external_expect();
                }
            }
        }
    }

    /// `-c`, `-c ct`, `-c expect`.
    fn commit_request(&mut self, now: Instant, scope: Scope) {
        let expectations = self.expect().is_some();
        let Engine::Sync(r) = &mut self.engine else {
            return;
        };
        match scope {
            Scope::Expectations if !expectations => {}
            Scope::Expectations => {
                logger::notice("committing expectation cache");
                r.commit(now, false, true, None);
            }
            Scope::Flows | Scope::Both => {
                logger::notice(if scope == Scope::Both {
                    "committing all external caches"
                } else {
                    "committing conntrack cache"
                });
                // Quiet (see Replication::commit) when an internal cache
                // wants the flows and events are what fills it.
                let events = self
                    .kernel
                    .as_ref()
                    .and_then(|k| k.events())
                    .filter(|_| !r.core().settings().disable_internal_cache);
                r.commit(now, true, scope == Scope::Both && expectations, events);
            }
        }
    }
}

/// The two caches of sync mode in `-s` or `-s cache` (`block`), or what
/// stands for them without an internal cache (`internal bypass:`) or an
/// external one (`external inject:`).
fn sync_cache_blocks(
    out: &mut String,
    r: &Replication,
    block: fn(&mut String, &conntrackd_core::cache::Cache),
) {
    let core = r.core();
    let settings = core.settings();
    if settings.disable_internal_cache {
        sync_report::bypass_block(out, core.bypass_counters());
    } else {
        block(out, core.local().cache());
    }
    if settings.disable_external_cache {
        r.inject_block(out);
    } else {
        block(out, core.external());
    }
}

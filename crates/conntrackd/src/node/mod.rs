//! The running daemon: its engine (idle, Stats or Sync mode,
//! docs/sync-modes.md §1.3) and its kernel side. The main loop
//! (`crate::daemon`) calls one `handle_*` function per input, then
//! [`Node::flush_sync`]; control requests are in [`requests`], cache dumps
//! in [`dump`], the counters in [`snapshot`].

mod dump;
mod kernel;
mod requests;
pub mod snapshot;
mod stats_mode;

use std::path::PathBuf;
use std::time::Instant;

use conntrack_model::{Conntrack, FlowKey};
use conntrackd_config::Config;
use conntrackd_core::expect_cache::ExpectFilter;
use conntrackd_core::filter::{AddressSet, Filter, Policy};
use conntrackd_core::local::LocalCache;
use conntrackd_core::sync::{Expectations, SyncCore};

use crate::logger;
use crate::replication::Replication;
pub use dump::DumpCursor;
pub use kernel::KernelReady;
use kernel::{AfterRead, Kernel, KernelInput, OwnPorts};
use stats_mode::StatsMode;

/// What the main loop sends back for a request.
#[derive(Debug)]
pub enum Reply {
    Text(String),
    /// A cache dump, rendered chunk by chunk with [`Node::dump_chunk`].
    Dump(DumpCursor),
    /// The kernel's table, dumped off the main loop (`-i` without an
    /// internal cache).
    KernelDump(crate::kernel_dump::KernelDump),
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The reason is in the log already (1.4.7's wording).
    #[error("initialization failed")]
    Init,
    #[error("can't open stats log `{}': {source}", path.display())]
    StatsLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("can't dump the kernel conntrack table: {0}")]
    Dump(std::io::Error),
    /// Replication could not be set up (channels, keys, sockets).
    #[error(transparent)]
    Sync(#[from] crate::replication::SyncStartError),
}

/// What runs, by mode. In Sync mode the replication engine holds the
/// internal cache; in Stats mode, the Stats engine.
#[derive(Debug)]
enum Engine {
    /// Neither `Sync` nor `Stats`: only `-k`, `-s runtime`, `-s process`.
    Idle,
    Stats(Box<StatsMode>),
    Sync(Box<Replication>),
}

impl Engine {
    fn local(&self) -> Option<&LocalCache> {
        match self {
            Engine::Idle => None,
            Engine::Stats(s) => Some(s.local()),
            Engine::Sync(r) => Some(r.core().local()),
        }
    }

    fn local_mut(&mut self) -> Option<&mut LocalCache> {
        match self {
            Engine::Idle => None,
            Engine::Stats(s) => Some(s.local_mut()),
            Engine::Sync(r) => Some(r.core_mut().local_mut()),
        }
    }

    /// One event from the kernel.
    fn handle(&mut self, now: Instant, input: KernelInput) {
        match (self, input) {
            (Engine::Idle, _) => {}
            (Engine::Sync(r), KernelInput::Conntrack(kind, ct, origin)) => {
                r.core_mut().handle_kernel_event(now, kind, *ct, origin)
            }
            (Engine::Stats(s), KernelInput::Conntrack(kind, ct, origin)) => {
                s.handle_kernel_event(now, kind, *ct, origin)
            }
            (Engine::Sync(r), KernelInput::Expect(kind, exp, origin)) => {
                r.core_mut().handle_kernel_expect(now, kind, *exp, origin)
            }
            (Engine::Stats(s), KernelInput::Expect(..)) => {
                s.local_mut().netlink_mut().events_received += 1
            }
            (engine, KernelInput::Unreadable) => {
                if let Some(local) = engine.local_mut() {
                    local.netlink_mut().catch_failed += 1;
                }
            }
            (engine, KernelInput::OtherType) => {
                if let Some(local) = engine.local_mut() {
                    local.netlink_mut().unknown_type += 1;
                }
            }
        }
    }

    /// One flow of a dump of the kernel table; `purge` for the overrun and
    /// polling resyncs, which also announce what they find.
    fn handle_dump_entry(&mut self, now: Instant, ct: Conntrack, purge: bool) {
        match self {
            Engine::Idle => {}
            Engine::Stats(s) => s.handle_dump_entry(now, ct, purge),
            Engine::Sync(r) => r.core_mut().handle_dump_entry(now, ct, purge),
        }
    }

    /// A flow such a resync no longer found in the kernel.
    fn handle_vanished(&mut self, now: Instant, key: &FlowKey) {
        match self {
            Engine::Idle => {}
            Engine::Stats(s) => s.handle_vanished(key),
            Engine::Sync(r) => r.core_mut().handle_vanished(now, key),
        }
    }

    fn drain_outputs(&mut self) {
        if let Engine::Stats(s) = self {
            s.drain_outputs();
        }
    }
}

#[derive(Debug)]
pub struct Node {
    engine: Engine,
    /// None for an idle daemon.
    kernel: Option<Kernel>,
}

impl Node {
    pub fn new(config: &Config, now: Instant) -> Result<Node, StartError> {
        let general = &config.general;
        let filter = core_filter(&general.filter);
        let kernel_filtering = general.filter.from_kernelspace && filter.is_some();
        let limit = general.hash_limit as usize;
        let expect_filter = config
            .sync
            .as_ref()
            .and_then(|sync| match &sync.expectation_sync {
                conntrackd_config::ExpectSync::Off => None,
                conntrackd_config::ExpectSync::All => Some(ExpectFilter::All),
                conntrackd_config::ExpectSync::Helpers(names) => {
                    Some(ExpectFilter::Helpers(names.clone()))
                }
            });
        if config.stats.is_none() && config.sync.is_none() {
            return Ok(Node {
                engine: Engine::Idle,
                kernel: None,
            });
        }
        let stats = match &config.stats {
            Some(section) => {
                let local = LocalCache::new(true, limit, filter.clone(), false)
                    .presized(general.hash_size as usize);
                Some(StatsMode::new(section, local)?)
            }
            None => None,
        };
        // 1.4.7 names the filtering only when there is a filter, before the
        // netlink socket lines.
        if kernel_filtering {
            logger::notice("using kernel-space event filtering");
        } else if filter.is_some() {
            logger::notice("using user-space event filtering");
        }
        let mut kernel = Kernel::open(config, expect_filter.is_some())?;
        let in_kernel = match (&filter, kernel_filtering) {
            (Some(filter), true) => kernel.filter_in_kernel(filter),
            _ => false,
        };
        if kernel_filtering && !in_kernel {
            logger::notice("falling back to user-space event filtering");
        }
        let mut engine = match stats {
            Some(stats) => Engine::Stats(Box::new(stats)),
            None => Engine::Sync(Box::new(Replication::new(
                config,
                now,
                filter,
                in_kernel,
                expect_filter,
            )?)),
        };
        if let Some(local) = engine.local_mut() {
            if in_kernel {
                // Dumps, resyncs and flushes still go through the user-space
                // filter.
                local.filter_events_in_kernel();
            }
            local.netlink_mut().buffer_size = kernel.buffer_size();
        }
        kernel.start_polling(now);
        let mut node = Node {
            engine,
            kernel: Some(kernel),
        };
        if !node.internal_disabled() {
            node.resync_with_kernel(now, false)?;
            node.resync_expectations(now);
        }
        Ok(node)
    }

    fn replication(&self) -> Option<&Replication> {
        match &self.engine {
            Engine::Sync(r) => Some(r),
            _ => None,
        }
    }

    fn replication_mut(&mut self) -> Option<&mut Replication> {
        match &mut self.engine {
            Engine::Sync(r) => Some(r),
            _ => None,
        }
    }

    fn core(&self) -> Option<&SyncCore> {
        self.replication().map(Replication::core)
    }

    /// The internal (or Stats) cache.
    fn local(&self) -> Option<&LocalCache> {
        self.engine.local()
    }

    fn expect(&self) -> Option<&Expectations> {
        self.core().and_then(SyncCore::expectations)
    }

    /// NOTRACK `DisableInternalCache on`.
    fn internal_disabled(&self) -> bool {
        self.core()
            .is_some_and(|c| c.settings().disable_internal_cache)
    }

    /// Resolves when a sync channel has something to read.
    pub async fn sync_ready(&self) -> usize {
        match self.replication() {
            Some(r) => r.ready().await,
            None => std::future::pending().await,
        }
    }

    pub fn handle_sync_ready(&mut self, now: Instant, channel: usize) {
        if let Some(r) = self.replication_mut() {
            r.handle_ready(now, channel);
        }
    }

    /// Sends what replication produced; call after every input.
    pub fn flush_sync(&mut self, now: Instant) {
        if let (Engine::Sync(r), Some(kernel)) = (&mut self.engine, self.kernel.as_mut()) {
            r.flush(now, kernel.requests());
        }
    }

    /// When [`Node::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.kernel.as_ref().and_then(Kernel::poll_timeout),
            self.replication().and_then(Replication::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Resolves when the kernel event socket has data.
    pub async fn kernel_readable(&self) -> KernelReady {
        match &self.kernel {
            Some(kernel) => kernel.readable().await,
            None => std::future::pending().await,
        }
    }

    /// Reads the kernel's events into the engine.
    pub fn handle_kernel_readable(&mut self, _ready: KernelReady, now: Instant) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let (commit, inject) = match &self.engine {
            Engine::Sync(r) => r.own_ports(),
            _ => (0, 0),
        };
        let ports = OwnPorts {
            flush: kernel.request_port(),
            commit,
            inject,
        };
        let buffer = self.engine.local().map_or(0, |l| l.netlink().buffer_size);
        let engine = &mut self.engine;
        let drained = kernel.drain(ports, buffer, |input| engine.handle(now, input));
        if drained.overrun
            && let Some(local) = self.engine.local_mut()
        {
            kernel.handle_overrun(now, local.netlink_mut());
        }
        self.engine.drain_outputs();
    }

    /// After a read of kernel events, what it produced goes out at once
    /// (the pause that follows already gathered the events a datagram's
    /// delay waits for), then the loop pauses (`EventBatchDelay`, see
    /// `Kernel`). Call once the read's output has been handed to the
    /// links.
    pub fn after_kernel_read(&mut self) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let next = kernel.take_after_read();
        if next == AfterRead::Nothing {
            return;
        }
        if let Engine::Sync(r) = &mut self.engine {
            let now = Instant::now();
            r.core_mut().flush_pending(now);
            r.flush(now, kernel.requests());
        }
        if next == AfterRead::FlushAndWait {
            kernel.pause();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .replication_mut()
            .is_some_and(|r| r.handle_timeout(now))
        {
            logger::notice("flushing kernel conntrack table (scheduled)");
            self.flush_kernel();
            if let Some(r) = self.replication_mut() {
                r.core_mut().flush_internal();
            }
        }
        if self.kernel.as_mut().is_some_and(|k| k.resync_due(now))
            && let Err(e) = self.resync_with_kernel(now, true)
        {
            logger::error(&e.to_string());
        }
    }

    /// Work a request leaves for after its reply has been sent.
    pub fn after_reply(&mut self, now: Instant) {
        if let Some(r) = self.replication_mut() {
            r.finish_commit(now);
        }
    }

    /// `Authentication` is on (its keys are reloaded on SIGHUP).
    pub fn uses_sync_keys(&self) -> bool {
        self.core().is_some_and(SyncCore::authenticated)
    }

    /// New sync keys from a re-read configuration.
    pub fn reload_keys(&mut self, config: &Config) {
        if let (Some(r), Some(sync)) = (self.replication_mut(), config.sync.as_ref()) {
            r.reload_keys(sync);
        }
    }

    /// SIGHUP.
    pub fn reopen_logs(&mut self) {
        if let Engine::Stats(s) = &mut self.engine {
            s.reopen_logs();
        }
    }

    /// Dumps the kernel table into the local cache. With `purge`, objects
    /// no longer in the kernel are removed (overrun and polling resyncs).
    fn resync_with_kernel(&mut self, now: Instant, purge: bool) -> Result<(), StartError> {
        let Some(kernel) = self.kernel.as_mut() else {
            return Ok(());
        };
        // Streamed: a large table is never held decoded in memory at once.
        let mut seen = std::collections::HashSet::new();
        let engine = &mut self.engine;
        kernel
            .dump_each(|ct| {
                if purge && let Some(key) = ct.key() {
                    seen.insert(key);
                }
                engine.handle_dump_entry(now, ct, purge);
            })
            .map_err(StartError::Dump)?;
        if let Some(local) = self.engine.local_mut() {
            local.netlink_mut().resync_kernel += u64::from(purge);
        }
        if purge {
            let gone: Vec<FlowKey> = self
                .local()
                .map(|local| {
                    local
                        .cache()
                        .iter_live()
                        .filter_map(|e| e.key())
                        .filter(|k| !seen.contains(k))
                        .collect()
                })
                .unwrap_or_default();
            for key in gone {
                self.engine.handle_vanished(now, &key);
            }
        }
        self.engine.drain_outputs();
        Ok(())
    }

    /// Dumps the kernel's expectation table into the internal expectation
    /// cache.
    fn resync_expectations(&mut self, now: Instant) {
        let (Engine::Sync(r), Some(kernel)) = (&mut self.engine, self.kernel.as_mut()) else {
            return;
        };
        if r.core().expectations().is_none() {
            return;
        }
        match kernel.dump_expectations() {
            Ok(list) => {
                for exp in list {
                    r.core_mut().handle_expect_dump_entry(now, exp);
                }
            }
            Err(e) => logger::error(&format!("can't dump the kernel expectation table: {e}")),
        }
    }

    /// `-F`: deletes every kernel entry the filter would accept.
    fn flush_kernel(&mut self) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let Some(local) = self.engine.local_mut() else {
            return;
        };
        local.netlink_mut().flush_kernel += 1;
        let filter = local.dump_filter().cloned();
        kernel.flush(filter.as_ref());
    }

    fn flush_kernel_expectations(&mut self) {
        if let Some(kernel) = self.kernel.as_mut() {
            kernel.flush_expectations();
        }
    }
}

/// The configuration's filter in the core's terms; None when empty.
fn core_filter(f: &conntrackd_config::Filter) -> Option<Filter> {
    if f.is_empty() {
        return None;
    }
    let policy = |p: &conntrackd_config::Policy| match p {
        conntrackd_config::Policy::Accept => Policy::Accept,
        conntrackd_config::Policy::Ignore => Policy::Ignore,
    };
    Some(Filter {
        protocol: f
            .protocol
            .as_ref()
            .map(|(p, list)| (policy(p), list.iter().copied().collect())),
        address: f.address.as_ref().map(|(p, list)| {
            let mut set = AddressSet::default();
            for net in list {
                set.add(net.addr, net.prefix_len);
            }
            (policy(p), set)
        }),
        state: f
            .state
            .as_ref()
            .map(|(p, list)| (policy(p), list.iter().copied().collect())),
    })
}

//! The running daemon's state: which mode it is in (idle, stats, sync),
//! the kernel sockets, and the sans-IO core they feed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use conntrack_model::Conntrack;
use conntrack_text::PlainOptions;
use conntrackd_config::{Config, LogTarget};
use conntrackd_core::expect_cache::ExpectFilter;
use conntrackd_core::filter::{AddressSet, Filter, Policy};
use conntrackd_core::local::{EventKind, LocalCache, LocalOutput, Origin};
use conntrackd_core::report;
use conntrackd_core::sync::Expectations;
use conntrackd_core::sync::report as sync_report;
use ctnl::{CtEvent, CtSocket, Message, RecvBatch, RecvError, groups, messages, request};
use std::os::fd::AsFd;

use tokio::io::unix::AsyncFd;

use crate::cli::code;
use crate::logger;
use crate::replication::Replication;
use crate::runtime_stats::RuntimeStats;

pub mod dump;
pub mod snapshot;

pub use dump::DumpCursor;

/// What the main loop sends back for a request.
#[derive(Debug)]
pub enum Reply {
    Text(String),
    /// A cache dump, rendered chunk by chunk with [`Node::dump_chunk`].
    Dump(DumpCursor),
}

/// Which of the three daemon modes runs (sync-modes.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Neither `Sync` nor `Stats`: only `-k`, `-s runtime`, `-s process`.
    Idle,
    Stats,
    Sync,
}

/// The kernel side: the event socket and a blocking socket for dumps,
/// flushes and other requests.
#[derive(Debug)]
struct Kernel {
    /// None in polling mode.
    events: Option<AsyncFd<CtSocket>>,
    requests: CtSocket,
    rx: RecvBatch,
}

/// Events per read that count as a burst, and the pause after one. 4 ms
/// gathers a few hundred events per wake-up at full kernel speed (1 ms
/// gave about 4 times the wake-ups, and more CPU) and stays far below
/// the lag that matters at failover.
const BURST: usize = 8;
const BURST_PAUSE: Duration = Duration::from_millis(4);
/// The pause needs room: 4 MiB holds 4 ms of events at over ten times the
/// rate the kernel creates flows here.
const BURST_MIN_BUFFER: u64 = 4 << 20;

/// Datagrams (one event each) read per wake-up at most, unless
/// `EventIterationLimit` says otherwise: a flood of events then leaves
/// turns to the control socket (a `-c` at failover), the sync link and
/// timers, and what is left is read on the next turn of the loop.
const DRAIN_CAP: usize = 2048;

/// Readiness of the kernel event socket.
#[derive(Debug)]
pub struct KernelReady;

#[derive(Debug)]
pub struct Node {
    mode: Mode,
    local: LocalCache,
    kernel: Option<Kernel>,
    flow_log: Option<FlowLog>,
    /// Stats `Syslog`: destroyed flows also go to syslog at INFO.
    flow_syslog: bool,
    /// When the overrun or polling resync is due.
    resync_at: Option<Instant>,
    /// The last read was a burst: pause before reading again, so the
    /// events gather in the socket buffer and are handled many per wake-up.
    burst: bool,
    /// Datagrams read per wake-up: `EventIterationLimit`, or [`DRAIN_CAP`].
    drain_cap: usize,
    /// The last read stopped at `drain_cap`: events are waiting, though
    /// the socket's readiness was consumed.
    kernel_backlog: bool,
    overrun_resync: Option<Duration>,
    poll_every: Option<Duration>,
    max_buffer: usize,
    /// Sync mode: the replication engine and its channels. Its core holds
    /// the internal cache and the expectation caches then.
    sync: Option<Box<Replication>>,
}

impl Node {
    pub fn new(config: &Config, now: Instant) -> Result<Node, String> {
        let mode = if config.stats.is_some() {
            Mode::Stats
        } else if config.sync.is_some() {
            Mode::Sync
        } else {
            Mode::Idle
        };
        let general = &config.general;
        let filter = core_filter(&general.filter);
        let kernel_filtering = general.filter.from_kernelspace && filter.is_some();
        let limit = general.hash_limit as usize;
        let mut node = Node {
            mode,
            local: LocalCache::new(mode == Mode::Stats, limit, filter.clone(), false)
                .presized(general.hash_size as usize),
            kernel: None,
            flow_log: None,
            flow_syslog: config.stats.as_ref().is_some_and(|s| s.syslog.is_some()),
            resync_at: None,
            burst: false,
            drain_cap: general
                .event_iteration_limit
                .map_or(DRAIN_CAP, |n| n as usize),
            kernel_backlog: false,
            overrun_resync: general
                .netlink_overrun_resync
                .map(|s| Duration::from_secs(u64::from(s))),
            poll_every: general.poll_secs.map(|s| Duration::from_secs(u64::from(s))),
            max_buffer: general.netlink_buffer_size_max_growth as usize,
            sync: None,
        };
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
        if mode == Mode::Idle {
            return Ok(node);
        }
        if let Some(stats) = &config.stats {
            let path = match &stats.log_file {
                LogTarget::Off => None,
                LogTarget::Default => {
                    Some(PathBuf::from(conntrackd_config::DEFAULT_STATS_LOG_FILE))
                }
                LogTarget::Path(p) => Some(p.clone()),
            };
            if let Some(path) = path {
                node.flow_log = Some(
                    FlowLog::open(path.clone())
                        .map_err(|e| format!("can't open stats log `{}': {e}", path.display()))?,
                );
            }
        }
        // 1.4.7 names the filtering only when there is a filter, before the
        // netlink socket lines.
        if kernel_filtering {
            logger::notice("using kernel-space event filtering");
        } else if filter.is_some() {
            logger::notice("using user-space event filtering");
        }
        let kernel = open_kernel(config, expect_filter.is_some())?;
        let mut in_kernel = false;
        if let (true, Some(filter), Some(events)) = (kernel_filtering, &filter, &kernel.events) {
            let attached = conntrackd_core::bpf::compile(filter)
                .map_err(|e| e.to_string())
                .and_then(|prog| {
                    let prog: Vec<oscalls::SockFilter> = prog
                        .iter()
                        .map(|i| oscalls::SockFilter {
                            code: i.code,
                            jt: i.jt,
                            jf: i.jf,
                            k: i.k,
                        })
                        .collect();
                    oscalls::attach_filter(events.get_ref().as_fd(), &prog)
                        .map_err(|e| e.to_string())
                });
            match attached {
                Ok(()) => in_kernel = true,
                Err(e) => logger::error(&format!("cannot set event filtering: {e}")),
            }
        }
        if in_kernel {
            // Dumps, resyncs and flushes still go through the user-space filter.
            node.local.event_filter = None;
        } else if kernel_filtering {
            logger::notice("falling back to user-space event filtering");
        }
        if mode == Mode::Sync {
            node.sync = Some(Box::new(Replication::new(
                config,
                now,
                filter.clone(),
                in_kernel,
                expect_filter,
            )?));
        }
        if let Some(events) = &kernel.events {
            node.local_mut().netlink.buffer_size =
                events.get_ref().recv_buffer().unwrap_or(0) as u64;
        }
        node.kernel = Some(kernel);
        if let Some(every) = node.poll_every {
            logger::notice("running in polling mode");
            node.resync_at = Some(now + every);
        }
        if !node.internal_disabled() {
            node.resync_with_kernel(now, false)?;
            node.resync_expectations(now);
        }
        Ok(node)
    }

    /// The internal cache: the sync core's in sync mode.
    fn local(&self) -> &LocalCache {
        match &self.sync {
            Some(r) => &r.core.local,
            None => &self.local,
        }
    }

    fn local_mut(&mut self) -> &mut LocalCache {
        match &mut self.sync {
            Some(r) => &mut r.core.local,
            None => &mut self.local,
        }
    }

    fn expect(&self) -> Option<&Expectations> {
        self.sync.as_ref().and_then(|r| r.core.expect.as_ref())
    }

    /// NOTRACK `DisableInternalCache on`.
    fn internal_disabled(&self) -> bool {
        self.sync
            .as_ref()
            .is_some_and(|r| r.core.settings().disable_internal_cache)
    }

    /// Resolves when a sync channel has something to read.
    pub async fn sync_ready(&self) -> usize {
        match &self.sync {
            Some(r) => r.ready().await,
            None => std::future::pending().await,
        }
    }

    pub fn handle_sync_ready(&mut self, now: Instant, channel: usize) {
        if let Some(r) = self.sync.as_mut() {
            r.handle_ready(now, channel);
        }
    }

    /// Sends what replication produced; call after every input.
    pub fn flush_sync(&mut self, now: Instant) {
        if let (Some(r), Some(kernel)) = (self.sync.as_mut(), self.kernel.as_mut()) {
            r.flush(now, &mut kernel.requests);
        }
    }

    /// When the core next needs `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.resync_at,
            self.sync.as_ref().and_then(|r| r.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Resolves when the kernel event socket has data.
    pub async fn kernel_readable(&self) -> KernelReady {
        match self.kernel.as_ref().and_then(|k| k.events.as_ref()) {
            Some(_) if self.kernel_backlog => KernelReady,
            Some(fd) => {
                if let Ok(mut guard) = fd.readable().await {
                    // We drain until WouldBlock (or note a backlog), so
                    // readiness can be reset now.
                    guard.clear_ready();
                }
                KernelReady
            }
            None => std::future::pending().await,
        }
    }

    /// Drains the event socket, handling each datagram's events before
    /// reading the next: a backlog of thousands of events is never held
    /// decoded in memory at once.
    pub fn handle_kernel_readable(&mut self, _ready: KernelReady, now: Instant) {
        let Some(kernel) = self.kernel.as_ref() else {
            return;
        };
        if kernel.events.is_none() {
            return;
        }
        self.kernel_backlog = false;
        let flush_port = kernel.requests.port_id();
        let (commit_port, inject_port) = self.sync.as_ref().map_or((0, 0), |r| {
            (r.commit_socket.port_id(), r.inject_socket.port_id())
        });
        let mut overrun = false;
        let mut ct_events = Vec::new();
        let mut received = 0usize;
        let mut unknown = 0;
        // Handled after the drain: they look at the conntrack cache.
        let mut expect_events = Vec::new();
        while let Some(kernel) = self.kernel.as_mut() {
            if received >= self.drain_cap {
                self.kernel_backlog = true;
                break;
            }
            let Some(events) = kernel.events.as_ref() else {
                break;
            };
            let mut last = false;
            match events.get_ref().recv_batch(&mut kernel.rx) {
                Ok(n) => received += n,
                Err(RecvError::WouldBlock) => break,
                Err(RecvError::Overrun) => {
                    overrun = true;
                    continue;
                }
                Err(RecvError::Io(e)) => {
                    ct_events.push(None);
                    logger::error(&format!("netlink event socket: {e}"));
                    last = true;
                }
            }
            let datagrams = if last {
                None
            } else {
                Some(kernel.rx.datagrams())
            };
            for datagram in datagrams.into_iter().flatten() {
                // A truncated event cannot be decoded: counted like a bad one.
                let Some(datagram) = datagram else {
                    ct_events.push(None);
                    continue;
                };
                for message in messages(datagram) {
                    match message {
                        Ok(Message::Conntrack {
                            header, event, ct, ..
                        }) => {
                            let kind = match event {
                                CtEvent::New => EventKind::New,
                                CtEvent::Update | CtEvent::Entry => EventKind::Update,
                                CtEvent::Destroy => EventKind::Destroy,
                            };
                            let origin = match header.pid {
                                0 => Origin::NotMe,
                                p if p == flush_port => Origin::Flush,
                                p if p == commit_port => Origin::Commit,
                                p if p == inject_port => Origin::Inject,
                                _ => Origin::NotMe,
                            };
                            ct_events.push(Some((kind, *ct, origin)));
                        }
                        Ok(Message::Expect {
                            header, event, exp, ..
                        }) => {
                            let origin = match header.pid {
                                0 => Origin::NotMe,
                                p if p == commit_port => Origin::Commit,
                                p if p == inject_port => Origin::Inject,
                                _ => Origin::NotMe,
                            };
                            expect_events.push((event, *exp, origin))
                        }
                        Ok(_) => unknown += 1,
                        Err(_) => ct_events.push(None),
                    }
                }
            }
            for event in ct_events.drain(..) {
                match (event, self.sync.as_mut()) {
                    (Some((kind, ct, origin)), Some(r)) => {
                        r.core.handle_kernel_event(now, kind, ct, origin)
                    }
                    (Some((kind, ct, origin)), None) => {
                        self.local.handle_kernel_event(now, kind, ct, origin)
                    }
                    (None, _) => self.local_mut().netlink.catch_failed += 1,
                }
            }
            if last {
                break;
            }
        }
        self.local_mut().netlink.unknown_type += unknown;
        for (event, exp, origin) in expect_events {
            let kind = match event {
                CtEvent::New => EventKind::New,
                CtEvent::Update | CtEvent::Entry => EventKind::Update,
                CtEvent::Destroy => EventKind::Destroy,
            };
            match self.sync.as_mut() {
                Some(r) => r.core.handle_kernel_expect(now, kind, exp, origin),
                None => self.local.netlink.events_received += 1,
            }
        }
        // A busy socket is left alone for a moment, so the next wake-up
        // finds many events instead of one (fewer wake-ups and syscalls).
        // Only with room to spare in the socket buffer, or the pause itself
        // would cause an overrun.
        let roomy = self.local().netlink.buffer_size >= BURST_MIN_BUFFER;
        // Not after a capped read: events are waiting already.
        self.burst = roomy && received >= BURST && !self.kernel_backlog;
        if overrun {
            self.handle_overrun(now);
        }
        self.drain_outputs();
    }

    /// After a burst of kernel events, sleeps briefly before the next read.
    /// The sleep blocks the (single-threaded) loop on purpose: a task
    /// parked in epoll instead would be woken by every event that arrives
    /// meanwhile, and those wake-ups are the cost the pause is there to
    /// save. Call once the output of the burst has been sent.
    pub fn pause_after_burst(&mut self) {
        if std::mem::take(&mut self.burst) {
            std::thread::sleep(BURST_PAUSE);
        }
    }

    /// Dumps the kernel's expectation table into the internal expectation cache.
    fn resync_expectations(&mut self, now: Instant) {
        let (Some(kernel), Some(r)) = (self.kernel.as_mut(), self.sync.as_mut()) else {
            return;
        };
        if r.core.expect.is_none() {
            return;
        }
        match kernel.requests.dump_expect() {
            Ok(list) => {
                for exp in list {
                    r.core.handle_expect_dump_entry(now, exp);
                }
            }
            Err(e) => logger::error(&format!("can't dump the kernel expectation table: {e}")),
        }
    }

    fn handle_overrun(&mut self, now: Instant) {
        self.local_mut().netlink.overrun += 1;
        self.local_mut().netlink.catch_failed += 1;
        if let Some(events) = self.kernel.as_ref().and_then(|k| k.events.as_ref()) {
            let current = events.get_ref().recv_buffer().unwrap_or(0);
            let doubled = current.saturating_mul(2);
            if self.max_buffer > 0 && doubled <= self.max_buffer {
                if let Ok(size) = events.get_ref().set_recv_buffer_force(doubled) {
                    self.local_mut().netlink.buffer_size = size as u64;
                    logger::notice(&format!(
                        "netlink event socket buffer size has been doubled to {size} bytes"
                    ));
                }
            } else {
                logger::warning(
                    "netlink event socket buffer size cannot be doubled further since it will exceed NetlinkBufferSizeMaxGrowth. We are likely to be losing events, this may lead to unsynchronized replicas. Please, consider increasing netlink socket buffer size via NetlinkBufferSize and NetlinkBufferSizeMaxGrowth clauses in conntrackd.conf",
                );
            }
        }
        if let Some(delay) = self.overrun_resync
            && self.resync_at.is_none()
        {
            self.resync_at = Some(now + delay);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.sync.as_mut().is_some_and(|r| r.handle_timeout(now)) {
            logger::notice("flushing kernel conntrack table (scheduled)");
            self.flush_kernel();
            if let Some(r) = self.sync.as_mut() {
                r.core.flush_internal();
            }
        }
        if self.resync_at.is_some_and(|at| at <= now) {
            self.resync_at = self.poll_every.map(|every| now + every);
            if let Err(e) = self.resync_with_kernel(now, true) {
                logger::error(&e);
            }
        }
    }

    /// Work a request leaves for after its reply has been sent.
    pub fn after_reply(&mut self, now: Instant) {
        if let Some(r) = self.sync.as_mut() {
            r.finish_commit(now);
        }
    }

    /// `Authentication` is on (its keys are reloaded on SIGHUP).
    pub fn uses_sync_keys(&self) -> bool {
        self.sync.as_ref().is_some_and(|r| r.core.authenticated())
    }

    /// New sync keys from a re-read configuration.
    pub fn reload_keys(&mut self, config: &Config) {
        if let (Some(r), Some(sync)) = (self.sync.as_mut(), config.sync.as_ref()) {
            r.reload_keys(sync);
        }
    }

    pub fn reopen_logs(&mut self) {
        if let Some(log) = self.flow_log.as_mut() {
            let _ = log.reopen();
        }
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.local_mut().poll_output() {
            match output {
                LocalOutput::FlowDestroyed(ct) => self.record_destroyed(&ct),
                LocalOutput::Malformed => {
                    logger::error("missing IPv4 address. You forgot to load nf_conntrack_ipv4?");
                }
            }
        }
    }

    /// Stats mode: a destroyed flow goes to the flow log and/or syslog.
    fn record_destroyed(&mut self, ct: &Conntrack) {
        let text = conntrack_text::plain(ct, PlainOptions::default());
        if let Some(log) = self.flow_log.as_mut() {
            log.write(&text);
        }
        if self.flow_syslog {
            // 1.4.7 sends the record with its newline.
            logger::syslog_record(logger::Level::Info, &format!("{text}\n"));
        }
    }

    /// Dumps the kernel table into the local cache. With `purge`, objects
    /// no longer in the kernel are removed (overrun and polling resyncs).
    fn resync_with_kernel(&mut self, now: Instant, purge: bool) -> Result<(), String> {
        let Some(kernel) = self.kernel.as_mut() else {
            return Ok(());
        };
        // Streamed: a large table is never held decoded in memory at once.
        let mut seen = std::collections::HashSet::new();
        let (sync, local) = (&mut self.sync, &mut self.local);
        let dumped = kernel.requests.dump_conntrack_each(|ct| {
            if purge && let Some(key) = ct.key() {
                seen.insert(key);
            }
            match sync.as_mut() {
                // An overrun or polling resync announces what it finds.
                Some(r) => r.core.handle_dump_entry(now, ct, purge),
                None => local.handle_dump_entry(now, ct, purge),
            }
        });
        dumped.map_err(|e| format!("can't dump the kernel conntrack table: {e}"))?;
        self.local_mut().netlink.resync_kernel += u64::from(purge);
        if purge {
            let gone: Vec<_> = self
                .local()
                .cache
                .iter_live()
                .filter_map(|e| e.key())
                .filter(|k| !seen.contains(k))
                .collect();
            for key in gone {
                match self.sync.as_mut() {
                    Some(r) => r.core.handle_vanished(now, &key),
                    None => {
                        if let Some(entry) = self.local.cache.remove(&key)
                            && self.mode == Mode::Stats
                        {
                            self.record_destroyed(&entry.ct());
                        }
                    }
                }
            }
        }
        self.drain_outputs();
        Ok(())
    }

    /// `-F`: deletes every kernel entry the filter would accept (ignored
    /// flows, such as the firewall's own, survive).
    fn flush_kernel(&mut self) {
        if self.kernel.is_none() {
            return;
        }
        self.local_mut().netlink.flush_kernel += 1;
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let flows = match kernel.requests.dump_conntrack() {
            Ok(flows) => flows,
            Err(e) => {
                logger::error(&format!("can't dump the kernel conntrack table: {e}"));
                return;
            }
        };
        let dump_filter = self.local().dump_filter.clone();
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let doomed: Vec<Conntrack> = flows
            .into_iter()
            .filter(|ct| {
                dump_filter
                    .as_ref()
                    .is_none_or(|f| f.verdict(ct) == conntrackd_core::filter::Verdict::Accept)
            })
            .collect();
        if let Err(e) = kernel.requests.apply_batch(&doomed, request::delete) {
            logger::error(&format!("flushing kernel conntrack table failed: {e}"));
        }
    }

    fn flush_kernel_expectations(&mut self) {
        if let Some(kernel) = self.kernel.as_mut() {
            match kernel.requests.request_ack(request::flush_expect) {
                Ok(Ok(())) => {}
                Ok(Err(errno)) => logger::error(&format!(
                    "flushing kernel expect table failed: {}",
                    std::io::Error::from_raw_os_error(errno)
                )),
                Err(e) => logger::error(&format!("flushing kernel expect table failed: {e}")),
            }
        }
    }

    /// Serves one control request. Cache dumps come back as a cursor, to
    /// be rendered as the client reads them.
    pub fn handle_request(&mut self, request: i32, now: Instant, stats: &RuntimeStats) -> Reply {
        let json = request & crate::json::JSON_FLAG != 0;
        let request = request & !crate::json::JSON_FLAG;
        if let Some(cursor) = self.dump_request(request, json) {
            return Reply::Dump(cursor);
        }
        if json && let Some(document) = self.json_request(request, now, stats) {
            return Reply::Text(document);
        }
        let mut out = String::new();
        match (self.mode, request) {
            (_, code::STATS_RUNTIME) => {
                out.push_str(&stats.uptime_line(now));
                if self.mode != Mode::Idle {
                    report::netlink_block(&mut out, &self.local().netlink);
                }
                out.push_str(&stats.render_runtime_block());
            }
            (_, code::STATS_PROCESS) | (Mode::Idle, _) => {}
            (Mode::Stats, _) => self.stats_request(request, now, &mut out),
            (Mode::Sync, _) => self.sync_request(request, now, &mut out),
        }
        if request == code::STATS {
            out.push_str(&crate::helpers::render_block(&stats.helpers.borrow()));
        }
        Reply::Text(out)
    }

    /// Requests shared by Stats and Sync mode.
    fn common_request(&mut self, request: i32, now: Instant) -> bool {
        match request {
            code::CT_RESYNC_MASTER | code::ALL_RESYNC_MASTER => {
                if self.internal_disabled() {
                    logger::notice("resync is unsupported in this mode");
                    return true;
                }
                logger::notice("resync with master conntrack table");
                if let Err(e) = self.resync_with_kernel(now, false) {
                    logger::error(&e);
                }
                if request == code::ALL_RESYNC_MASTER && self.expect().is_some() {
                    logger::notice("resync with master expect table");
                    self.resync_expectations(now);
                }
            }
            code::CT_FLUSH_MASTER | code::ALL_FLUSH_MASTER => {
                logger::notice("flushing kernel conntrack table");
                self.flush_kernel();
                if request == code::ALL_FLUSH_MASTER && self.expect().is_some() {
                    logger::notice("flushing kernel expect table");
                    self.flush_kernel_expectations();
                }
            }
            _ => return false,
        }
        true
    }

    fn stats_request(&mut self, request: i32, now: Instant, out: &mut String) {
        if self.common_request(request, now) {
            return;
        }
        match request {
            code::STATS => {
                report::cache_block(out, &self.local.cache);
                report::traffic_block(out, self.local.traffic_bytes, self.local.traffic_packets);
            }
            code::STATS_CACHE => report::cache_detail_block(out, &self.local.cache),
            code::CT_FLUSH_INT_CACHE | code::CT_FLUSH_CACHE => {
                logger::notice("flushing internal cache");
                self.local.cache.flush();
            }
            _ => {}
        }
    }

    fn sync_request(&mut self, request: i32, now: Instant, out: &mut String) {
        if request == code::CT_DUMP_INTERNAL || request == code::CT_DUMP_INT_XML {
            // Not a cache dump (dump.rs), so there is no internal cache:
            // the kernel table, as `conntrack -L` shows it.
            *out = self.dump_kernel_plain();
            return;
        }
        if self.common_request(request, now) {
            return;
        }
        let Some(r) = self.sync.as_mut() else {
            return;
        };
        let bypass = r.core.settings().disable_internal_cache;
        let inject = r.core.settings().disable_external_cache;
        match request {
            code::STATS => {
                if bypass {
                    sync_report::bypass_block(out, &r.core.bypass);
                } else {
                    report::cache_block(out, &r.core.local.cache);
                }
                if inject {
                    r.inject_block(out);
                } else {
                    report::cache_block(out, &r.core.external);
                }
                report::traffic_block(
                    out,
                    r.core.local.traffic_bytes,
                    r.core.local.traffic_packets,
                );
                r.active_channel_block(out);
                sync_report::message_tracking_block(out, &r.core);
            }
            code::STATS_CACHE => {
                if bypass {
                    sync_report::bypass_block(out, &r.core.bypass);
                } else {
                    report::cache_detail_block(out, &r.core.local.cache);
                }
                if inject {
                    r.inject_block(out);
                } else {
                    report::cache_detail_block(out, &r.core.external);
                }
            }
            code::STATS_NETWORK => {
                sync_report::network_block(out, &r.core);
                r.active_channel_block(out);
                r.foreign_connections_block(out);
            }
            code::STATS_LINK => r.link_blocks(out),
            code::STATS_RSQUEUE => sync_report::resend_queue(out, &r.core),
            code::STATS_QUEUE => sync_report::queues(out, &r.core, r.error_queue()),
            code::CT_FLUSH_INT_CACHE => {
                logger::notice("flushing internal cache");
                r.purge_at = None;
                r.core.flush_internal();
            }
            code::CT_FLUSH_EXT_CACHE => {
                logger::notice("flushing external cache");
                r.core.flush_external();
            }
            code::ALL_FLUSH_CACHE | code::CT_FLUSH_CACHE => {
                logger::notice("flushing caches");
                r.purge_at = None;
                r.core.flush_internal();
                r.core.flush_external();
                if request == code::ALL_FLUSH_CACHE {
                    r.core.flush_internal_expect();
                    r.core.flush_external_expect();
                }
            }
            code::ALL_COMMIT | code::CT_COMMIT => {
                logger::notice(if request == code::ALL_COMMIT {
                    "committing all external caches"
                } else {
                    "committing conntrack cache"
                });
                let expects = request == code::ALL_COMMIT && r.core.expect.is_some();
                // Quiet (see Replication::commit) when an internal cache
                // wants the flows and events are what fills it.
                let events = self
                    .kernel
                    .as_ref()
                    .and_then(|k| k.events.as_ref())
                    .map(AsyncFd::get_ref)
                    .filter(|_| !r.core.settings().disable_internal_cache);
                r.commit(now, true, expects, events);
            }
            code::EXP_COMMIT if r.core.expect.is_some() => {
                logger::notice("committing expectation cache");
                r.commit(now, false, true, None);
            }
            code::SEND_BULK => r.core.bulk_send(),
            code::REQUEST_DUMP => r.core.request_resync(),
            code::RESET_TIMERS => r.schedule_purge(now),
            code::EXP_STATS => {
                if let Some(state) = &r.core.expect {
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
            code::EXP_RESYNC_MASTER if r.core.expect.is_some() => {
                logger::notice("resync with master expect table");
                self.resync_expectations(now);
            }
            code::EXP_FLUSH_MASTER if r.core.expect.is_some() => {
                logger::notice("flushing kernel expect table");
                self.flush_kernel_expectations();
            }
            _ => {}
        }
    }

    /// `--json`: the counters for any `-s`, and an empty array for a dump
    /// that has no cache to list (cache dumps are [`Reply::Dump`]s); None
    /// for other requests, which run as usual.
    fn json_request(&self, request: i32, now: Instant, stats: &RuntimeStats) -> Option<String> {
        let document = match request {
            code::STATS
            | code::STATS_NETWORK
            | code::STATS_CACHE
            | code::STATS_RUNTIME
            | code::STATS_LINK
            | code::STATS_RSQUEUE
            | code::STATS_PROCESS
            | code::STATS_QUEUE
            | code::EXP_STATS => crate::json::render(&self.snapshot(stats, now)),
            code::CT_DUMP_INTERNAL
            | code::CT_DUMP_INT_XML
            | code::CT_DUMP_EXTERNAL
            | code::CT_DUMP_EXT_XML
            | code::EXP_DUMP_INTERNAL
            | code::EXP_DUMP_INT_XML
            | code::EXP_DUMP_EXTERNAL
            | code::EXP_DUMP_EXT_XML => crate::json::render(&Vec::<serde_json::Value>::new()),
            _ => return None,
        };
        Some(document)
    }

    /// `-i` with the internal cache disabled: the kernel's table.
    fn dump_kernel_plain(&mut self) -> String {
        let Some(kernel) = self.kernel.as_mut() else {
            return String::new();
        };
        let flows = kernel.requests.dump_conntrack().unwrap_or_default();
        let filter = self.local().dump_filter.clone();
        let mut out = String::new();
        for ct in flows.iter().filter(|ct| {
            filter
                .as_ref()
                .is_none_or(|f| f.verdict(ct) == conntrackd_core::filter::Verdict::Accept)
        }) {
            conntrack_text::write_plain(
                &mut out,
                ct,
                PlainOptions {
                    show_timeout: true,
                    show_use: true,
                },
            );
            out.push('\n');
        }
        out
    }
}

/// Opens the event socket (unless polling) and the request socket, with the
/// buffer rules of sync-modes.md §9.
fn open_kernel(config: &Config, expectations: bool) -> Result<Kernel, String> {
    let general = &config.general;
    let fail = |e: std::io::Error| {
        logger::error(&format!("can't open netlink handler: {e}"));
        logger::error("no ctnetlink kernel support?");
        "initialization failed".to_string()
    };
    let requests = CtSocket::open(0, false).map_err(fail)?;
    let events = if general.poll_secs.is_some() {
        None
    } else {
        let mut event_groups = groups::CT_ALL;
        if expectations {
            event_groups |= groups::EXP_NEW | groups::EXP_UPDATE | groups::EXP_DESTROY;
        }
        let socket = CtSocket::open(event_groups, true).map_err(fail)?;
        if general.netlink_events_reliable {
            socket.set_reliable().map_err(fail)?;
            logger::notice("reliable ctnetlink event delivery is ENABLED.");
        }
        let wanted = general.netlink_buffer_size as usize;
        let max = general.netlink_buffer_size_max_growth as usize;
        let size = if wanted > 0 && wanted <= max {
            socket.set_recv_buffer_force(wanted).map_err(fail)?
        } else {
            logger::notice(
                "NetlinkBufferSize is either not set or is greater than NetlinkBufferSizeMaxGrowth. Using current system buffer size",
            );
            socket.recv_buffer().map_err(fail)?
        };
        logger::notice(&format!(
            "netlink event socket buffer size has been set to {size} bytes"
        ));
        // CtSocket owns its descriptor, so the I/O-safety concern behind
        // the deprecation (a borrowed fd closed under tokio) cannot arise.
        #[allow(deprecated)]
        let fd = AsyncFd::new(socket).map_err(fail)?;
        Some(fd)
    };
    Ok(Kernel {
        events,
        requests,
        rx: RecvBatch::default(),
    })
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

/// The Stats-mode flow log: `<ctime>\t<flow>` per destroyed flow.
#[derive(Debug)]
struct FlowLog {
    path: PathBuf,
    file: std::fs::File,
}

impl FlowLog {
    fn open(path: PathBuf) -> std::io::Result<FlowLog> {
        let file = logger::open_log_file(&path)?;
        Ok(FlowLog { path, file })
    }

    fn write(&mut self, text: &str) {
        use std::io::Write as _;
        let _ = writeln!(self.file, "{}\t{}", logger::ctime_now(), text);
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        self.file = logger::open_log_file(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_iteration_limit_caps_the_events_read_per_wake_up() {
        let now = Instant::now();
        let mut config = Config::default();
        let node = Node::new(&config, now).expect("idle node");
        assert_eq!(node.drain_cap, DRAIN_CAP);
        config.general.event_iteration_limit = Some(100);
        let node = Node::new(&config, now).expect("idle node");
        assert_eq!(node.drain_cap, 100);
    }
}

//! Replication (docs/sync-modes.md §2–§8, docs/wire-protocol.md §7–§8): the internal
//! and external caches, the transmit and resend queues, and the FTFW, ALARM
//! and NOTRACK state machines. Sans-IO like the rest of the core: datagrams
//! come in through [`SyncCore::handle_datagram`], go out through
//! [`SyncCore::poll_transmit`], and time is always passed in.
//!
//! What every mode shares lives here and in `internal` (kernel events),
//! `receive`, `transmit` and `commands`; each mode's own state and
//! behaviour in `ftfw`, `alarm` and `notrack` ([`Mode`]); every deadline
//! in one [`timer::TimerTable`].

mod alarm;
pub mod auth;
mod commands;
mod commit;
mod ftfw;
mod internal;
pub mod kernel_write;
mod notrack;
mod object_timers;
mod peers;
mod queue;
mod readiness;
mod receive;
pub mod report;
mod timer;
mod transmit;

use std::collections::VecDeque;

use crate::FastMap;
use std::time::{Duration, Instant};

use conntrack_model::{Conntrack, Expect, ExpectKey, FlowKey};
use syncproto::{Control, MsgType};

use crate::cache::Cache;
use crate::compact::Key;
use crate::expect_cache::{ExpectCache, ExpectFilter};
use crate::filter::Filter;
use crate::local::LocalCache;

pub use commit::{inject_requests, prepare_create, prepare_update};
pub use peers::MAX_PEERS;
pub use readiness::Readiness;

use alarm::Alarm;
use ftfw::Ftfw;
use peers::{Peer, PeerId, PeerTable};
use queue::{Fifo, Item};
use timer::{Timer, TimerTable};

/// The identity of a replicated object. Flows by their compact key, and
/// the rarer expectations boxed: queues, timers and pending deletes store
/// and hash one per event, so it is kept small (24 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ObjKey {
    Flow(Key),
    Expect(Box<ExpectKey>),
}

/// Which protocol runs on the dedicated link, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Ftfw {
        ack_window: u32,
        resend_queue_size: usize,
    },
    Alarm {
        refresh: Duration,
        cache_timeout: Duration,
    },
    Notrack,
}

/// Everything the core needs to know from the configuration.
#[derive(Debug)]
pub struct SyncSettings {
    pub protocol: Protocol,
    pub disable_internal_cache: bool,
    pub disable_external_cache: bool,
    /// `CommitTimeout` in seconds (0 = not set: NTA_TIMEOUT is sent).
    pub commit_timeout: u32,
    pub tcp_window_tracking: bool,
    /// `ExpectationSync`, if enabled.
    pub expectations: Option<ExpectFilter>,
    pub hash_limit: usize,
    /// `HashSize`: flows each cache holds before its table first grows.
    pub hash_size: usize,
    pub filter: Option<Filter>,
    /// The filter runs in the kernel (BPF); events arrive pre-filtered.
    pub kernel_filtering: bool,
    /// Batch size (MTU minus headers) of each channel, in configuration order.
    pub batch_sizes: Vec<usize>,
    pub default_channel: usize,
    /// First sequence number. The C daemon uses the Unix time; a random
    /// value keeps ACK/NACK ranges meant for another peer of a multicast
    /// group from ever matching our resend queue.
    pub initial_seq: u32,
    /// Seed of the ALARM refresh jitter.
    pub seed: u64,
    /// Ask the peers for their state at start-up (FTFW, NOTRACK). 1.4.7
    /// only does it with `StartupResync on`; a restarted backup needs it.
    pub startup_resync: bool,
    /// How long a partly filled batch may wait for more messages. 1.4.7
    /// sends it at the end of every main-loop iteration (zero); a couple of
    /// milliseconds fill datagrams far better under load.
    pub flush_delay: Duration,
    /// `Authentication`: seals and checks every datagram. Taken by the
    /// core when it starts (a session is sealed by one core only).
    pub auth: Option<auth::AuthConfig>,
    /// `ReplicateLabels off`: connlabels are left out of what is sent and
    /// dropped from what is received (so never committed or injected).
    pub replicate_labels: bool,
    /// `PurgeTimeout`: how long after `-t` the kernel table is flushed.
    pub purge_timeout: Duration,
}

impl SyncSettings {
    /// Small settings for `protocol` with nothing optional turned on (one
    /// 1472-byte channel, no filter, no authentication, batches sent at
    /// once): for tests, fuzzing and benchmarks, which change what they
    /// need.
    pub fn basic(protocol: Protocol) -> SyncSettings {
        SyncSettings {
            protocol,
            disable_internal_cache: false,
            disable_external_cache: false,
            commit_timeout: 0,
            tcp_window_tracking: false,
            expectations: None,
            hash_limit: 1 << 20,
            hash_size: 64,
            filter: None,
            kernel_filtering: false,
            batch_sizes: vec![1472],
            default_channel: 0,
            initial_seq: 1,
            seed: 1,
            startup_resync: false,
            flush_delay: Duration::ZERO,
            auth: None,
            replicate_labels: true,
            purge_timeout: Duration::from_secs(60),
        }
    }
}

/// A datagram to send on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub channel: usize,
    pub bytes: Vec<u8>,
}

/// Something the shell must do or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    Notice(String),
    /// DisableExternalCache: apply a received message to the kernel.
    Inject(Inject),
    /// Bulk send with the internal cache disabled: dump the kernel table
    /// and pass each flow to [`SyncCore::send_direct`].
    DumpKernelForBulk,
    /// The active channel changed.
    ChannelChanged {
        from: usize,
        to: usize,
    },
}

/// A received message to apply to the kernel directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inject {
    CtNew(Box<Conntrack>),
    CtUpdate(Box<Conntrack>),
    CtDelete(Box<Conntrack>),
    ExpNew(Box<Expect>),
    ExpDelete(Box<Expect>),
}

/// Receiver counters of `-s network` (docs/wire-protocol.md §7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkCounters {
    pub malformed: u64,
    pub bad_version: u64,
    pub bad_header: u64,
    pub bad_payload: u64,
    pub bad_type: u64,
    pub truncated: u64,
    pub bad_size: u64,
    pub lost: u64,
    pub before: u64,
    /// Messages applied to the caches or the kernel.
    pub applied: u64,
    /// Peers forgotten to make room for a new sender while [`MAX_PEERS`]
    /// were tracked.
    pub peers_evicted: u64,
}

/// Queue lengths, for `-s queue`, JSON and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub transmit: usize,
    pub resend: usize,
    /// `ResendQueueSize` (FTFW only).
    pub resend_max: Option<u64>,
    /// Resend-queue entries dropped because it was full.
    pub resend_dropped: u64,
    /// Control messages queued (`allocated queue nodes`).
    pub control_nodes: usize,
}

/// `internal bypass:` counters (NOTRACK with DisableInternalCache).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BypassCounters {
    pub new: u64,
    pub updated: u64,
    pub destroyed: u64,
}

/// Expectation caches of both sides.
#[derive(Debug)]
pub struct Expectations {
    pub filter: ExpectFilter,
    pub internal: ExpectCache,
    pub external: ExpectCache,
}

/// What the mode decided about a received message (docs/wire-protocol.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Data,
    Ctl,
    Bad,
    Drop,
}

/// How long a restarted peer has to re-announce its flows before the
/// ones it did not are dropped.
const SWEEP_DELAY: Duration = Duration::from_secs(10);

/// A pending drop of a restarted peer's stale external flows.
#[derive(Debug, Clone, Copy)]
struct Sweep {
    /// When it runs.
    at: Instant,
    /// When the peer restarted: what it announced since is not stale.
    since: Instant,
    /// The peer's index (see [`Peer::index`]).
    origin: u8,
}

/// The running mode's own state and behaviour.
#[derive(Debug)]
pub(crate) enum Mode {
    Ftfw(Ftfw),
    Alarm(Alarm),
    Notrack,
}

impl Mode {
    fn new(protocol: Protocol, seed: u64) -> Mode {
        match protocol {
            Protocol::Ftfw {
                ack_window,
                resend_queue_size,
            } => Mode::Ftfw(Ftfw::new(ack_window, resend_queue_size)),
            Protocol::Alarm {
                refresh,
                cache_timeout,
            } => Mode::Alarm(Alarm::new(refresh, cache_timeout, seed)),
            Protocol::Notrack => Mode::Notrack,
        }
    }
}

const ALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// The replication engine of one node.
#[derive(Debug)]
pub struct SyncCore {
    pub(crate) local: LocalCache,
    pub(crate) external: Cache,
    pub(crate) expect: Option<Expectations>,
    pub(crate) counters: NetworkCounters,
    pub(crate) bypass: BypassCounters,
    settings: SyncSettings,
    mode: Mode,
    next_seq: u32,
    txq: Fifo<()>,
    /// When the last well-formed message arrived from a peer.
    last_received: Option<Instant>,
    /// Deleted objects whose DEL is still queued or unacknowledged.
    dead: FastMap<ObjKey, Dead>,
    /// Messages built straight from kernel events (internal cache disabled).
    direct: VecDeque<Direct>,
    peers: PeerTable,
    timers: TimerTable,
    /// Restarted peers whose stale external entries are to be dropped
    /// (the earliest is [`Timer::Sweep`]).
    sweeps: Vec<Sweep>,
    active: usize,
    batch: Vec<u8>,
    scratch: Vec<u8>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SyncEvent>,
    /// When this core started (readiness grace).
    started: Instant,
    /// The sequence number of the last RESYNC or NACK we sent, and when:
    /// a peer that acknowledged it has sent us everything it queued in
    /// answer (its transmit queue is FIFO).
    repair: Option<(u32, Instant)>,
    /// The start-up resync completed once: synced from then on.
    synced_once: bool,
    /// [`Timer::Purge`] passed: the shell flushes the kernel table.
    purge_due: bool,
    auth: Option<auth::Auth>,
    /// What the last datagram's envelopes delivered (kept for its buffer).
    opened: Vec<auth::Delivery>,
}

/// A message built straight from a kernel event (internal cache disabled).
#[derive(Debug, Clone)]
enum Direct {
    Flow(MsgType, Box<Conntrack>),
    Expect(MsgType, Box<Expect>),
}

#[derive(Debug, Clone)]
enum Dead {
    /// Compact: a delete wave parks every flow here until its DEL is acked.
    Flow(crate::compact::Stored),
    Expect(Box<Expect>),
}

impl SyncCore {
    pub fn new(now: Instant, mut settings: SyncSettings) -> SyncCore {
        let limit = settings.hash_limit;
        let expect = settings.expectations.clone().map(|filter| Expectations {
            filter,
            internal: ExpectCache::new(limit),
            external: ExpectCache::new(limit),
        });
        let local = LocalCache::new(
            false,
            limit,
            settings.filter.clone(),
            settings.kernel_filtering,
        )
        .presized(settings.hash_size)
        .track_changes();
        let mut core = SyncCore {
            local,
            external: Cache::new("external", limit).presized(settings.hash_size),
            expect,
            counters: NetworkCounters::default(),
            bypass: BypassCounters::default(),
            mode: Mode::new(settings.protocol, settings.seed),
            next_seq: settings.initial_seq,
            active: settings
                .default_channel
                .min(settings.batch_sizes.len().saturating_sub(1)),
            txq: Fifo::default(),
            last_received: None,
            dead: FastMap::default(),
            direct: VecDeque::new(),
            peers: PeerTable::default(),
            timers: TimerTable::default(),
            sweeps: Vec::new(),
            batch: Vec::new(),
            scratch: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            started: now,
            repair: None,
            synced_once: false,
            purge_due: false,
            auth: settings
                .auth
                .take()
                .map(|config| auth::Auth::new(now, config)),
            opened: Vec::new(),
            settings,
        };
        core.send_handshakes();
        if !core.is_alarm() {
            core.timers.set(Timer::Alive, now + ALIVE_INTERVAL);
            if core.settings.startup_resync {
                core.txq.push_back(Item::Control(Control::Resync), ());
            }
        }
        core
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// The internal cache.
    pub fn local(&self) -> &LocalCache {
        &self.local
    }

    /// The internal cache, for the kernel side's counters and filter.
    pub fn local_mut(&mut self) -> &mut LocalCache {
        &mut self.local
    }

    /// The external cache.
    pub fn external(&self) -> &Cache {
        &self.external
    }

    /// The expectation caches (`ExpectationSync`).
    pub fn expectations(&self) -> Option<&Expectations> {
        self.expect.as_ref()
    }

    /// `-s network`'s receive counters.
    pub fn counters(&self) -> &NetworkCounters {
        &self.counters
    }

    /// `internal bypass:` (NOTRACK without an internal cache).
    pub fn bypass_counters(&self) -> &BypassCounters {
        &self.bypass
    }

    pub fn is_ftfw(&self) -> bool {
        matches!(self.mode, Mode::Ftfw(_))
    }

    fn is_alarm(&self) -> bool {
        matches!(self.mode, Mode::Alarm(_))
    }

    /// `Authentication` is on.
    pub fn authenticated(&self) -> bool {
        self.auth.is_some()
    }

    /// The authentication layer's counters, if it is on.
    pub fn auth_counters(&self) -> Option<&auth::AuthCounters> {
        self.auth.as_ref().map(auth::Auth::counters)
    }

    /// The authentication layer, if it is on (for reports).
    pub fn auth(&self) -> Option<&auth::Auth> {
        self.auth.as_ref()
    }

    /// New keys after SIGHUP; our session and its counter go on.
    pub fn set_auth_keys(&mut self, keys: auth::KeyRing, encrypt: bool, require_encryption: bool) {
        if let Some(auth) = self.auth.as_mut() {
            auth.set_keys(keys, encrypt, require_encryption);
        }
    }

    /// The channel that sends.
    pub fn active_channel(&self) -> usize {
        self.active
    }

    /// Lengths of the transmit and resend queues (what `-s queue` shows).
    pub fn queue_stats(&self) -> QueueStats {
        let ftfw = self.ftfw();
        QueueStats {
            transmit: self.txq.len(),
            resend: ftfw.map_or(0, |f| f.rsq.len()),
            resend_max: ftfw.map(|f| f.resend_queue_size() as u64),
            resend_dropped: ftfw.map_or(0, |f| f.rsq_dropped),
            control_nodes: self.txq.controls() + ftfw.map_or(0, |f| f.rsq.controls()),
        }
    }

    /// Time since the last well-formed message from a peer, if any came.
    pub fn since_last_received(&self, now: Instant) -> Option<Duration> {
        self.last_received
            .map(|at| now.saturating_duration_since(at))
    }

    // ---- queues ------------------------------------------------------

    /// Whether the resend queue (FTFW) holds the object.
    fn resend_holds(&self, key: &ObjKey) -> bool {
        self.ftfw().is_some_and(|ftfw| ftfw.rsq.contains(key))
    }

    /// Whether a queue holds the object (its message is still to be sent,
    /// or to be acknowledged).
    fn queued(&self, key: &ObjKey) -> bool {
        self.txq.contains(key) || self.resend_holds(key)
    }

    /// §5.4: an object in the resend queue moves to the transmit queue; an
    /// object already waiting to be sent stays where it is.
    ///
    /// An object is in one queue at most: it enters the transmit queue
    /// only through here or straight from the resend queue, and the resend
    /// queue only when it leaves the transmit queue.
    fn queue_object(&mut self, key: ObjKey) {
        if self.txq.contains(&key) {
            return;
        }
        if let Mode::Ftfw(ftfw) = &mut self.mode {
            ftfw.rsq.remove_object(&key);
        }
        self.txq.push_absent(Item::Object(key), ());
    }

    /// An object just taken out of its queue: no queue holds it now (see
    /// [`SyncCore::queue_object`]), so a dead one is freed.
    fn release(&mut self, key: &ObjKey) {
        debug_assert!(!self.queued(key), "an object was in two queues");
        // Most of the time nothing is dead: no lookups then.
        if !self.dead.is_empty() {
            self.dead.remove(key);
        }
    }

    // ---- channels --------------------------------------------------------

    /// The link watcher's view of a channel (docs/sync-modes.md §13): if the
    /// active one is unusable, the first usable other one takes over.
    pub fn handle_link_state(&mut self, now: Instant, usable: &[bool]) {
        if usable.get(self.active).copied().unwrap_or(false) {
            return;
        }
        if let Some(next) = (0..self.settings.batch_sizes.len())
            .find(|&c| c != self.active && usable.get(c).copied().unwrap_or(false))
        {
            self.switch_channel(now, next);
        } else if self.settings.batch_sizes.len() > 1 {
            self.events
                .push_back(SyncEvent::Notice("no dedicated links available!".into()));
        }
    }

    fn switch_channel(&mut self, now: Instant, to: usize) {
        if to != self.active && to < self.settings.batch_sizes.len() {
            self.flush_batch(now);
            let from = self.active;
            self.active = to;
            self.events
                .push_back(SyncEvent::ChannelChanged { from, to });
        }
    }

    // ---- timers ------------------------------------------------------------

    /// When [`SyncCore::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.note_readiness(now);
        for timer in Timer::ORDER {
            if self.timers.expire(timer, now) {
                self.on_timer(now, timer);
            }
        }
        self.on_object_timers(now);
    }

    /// One function per timer.
    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Flush => self.flush_batch(now),
            Timer::Sweep => self.on_sweep_timer(now),
            Timer::Ack => self.on_ack_timer(),
            Timer::Probe => self.on_probe_timer(now),
            Timer::Alive => self.on_alive_timer(now),
            Timer::Purge => self.purge_due = true,
        }
    }

    /// [`Timer::Alive`]: FTFW acknowledges what it received since its last
    /// ACK; without anything to acknowledge (and in NOTRACK) an ALIVE goes.
    fn on_alive_timer(&mut self, now: Instant) {
        self.timers.set(Timer::Alive, now + ALIVE_INTERVAL);
        if !self.ftfw_periodic_acks() {
            self.txq.push_back(Item::Control(Control::Alive), ());
        }
    }

    /// [`Timer::Sweep`] follows the earliest pending sweep.
    fn arm_sweep_timer(&mut self) {
        match self.sweeps.iter().map(|sweep| sweep.at).min() {
            Some(at) => self.timers.set(Timer::Sweep, at),
            None => self.timers.stop(Timer::Sweep),
        }
    }

    fn on_sweep_timer(&mut self, now: Instant) {
        let (due, later) = std::mem::take(&mut self.sweeps)
            .into_iter()
            .partition(|sweep| sweep.at <= now);
        self.sweeps = later;
        for sweep in due {
            self.sweep_stale(now, sweep);
        }
        self.arm_sweep_timer();
    }

    /// Drops the external flows a restarted peer announced before and not
    /// since (it deleted them while it could not tell us). Flows of other
    /// peers stay, however long ago they were announced.
    fn sweep_stale(&mut self, now: Instant, sweep: Sweep) {
        let older_than = now.saturating_duration_since(sweep.since);
        let stale: Vec<FlowKey> = self
            .external
            .iter_live()
            .filter(|e| e.origin() == sweep.origin)
            // Update times are kept in whole seconds: one second of slack.
            .filter(|e| self.external.idle(e, now) > older_than + Duration::from_secs(1))
            .filter_map(|e| e.key())
            .collect();
        for key in stale {
            self.external.remove(&key);
            self.timers.expiry.cancel(&ObjKey::Flow(Key::new(&key)));
        }
    }

    fn is_live(&self, key: &ObjKey) -> bool {
        match key {
            ObjKey::Flow(k) => self.local.cache.get_key(k).is_some(),
            ObjKey::Expect(k) => self
                .expect
                .as_ref()
                .is_some_and(|s| s.internal.get(k).is_some()),
        }
    }

    // ---- introspection for reports ------------------------------------------

    pub fn txq_len(&self) -> usize {
        self.txq.len()
    }

    pub fn rsq_len(&self) -> usize {
        self.ftfw().map_or(0, |ftfw| ftfw.rsq.len())
    }

    /// Objects that have been deleted but whose DEL is not yet acknowledged.
    pub fn dead_len(&self) -> usize {
        self.dead.len()
    }
}

/// True if the expectation's master flow is in the internal cache.
pub fn master_cached(cache: &Cache, exp: &Expect) -> bool {
    let Some(master) = exp.master.clone() else {
        return false;
    };
    let key = FlowKey {
        orig: master,
        zone: exp.zone.unwrap_or(0),
    };
    cache.get(&key).is_some()
}

#[cfg(test)]
mod tests;

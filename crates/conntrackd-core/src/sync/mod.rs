//! Replication (sync-modes.md §2–§8, wire-protocol.md §7–§8): the internal
//! and external caches, the transmit and resend queues, and the FTFW, ALARM
//! and NOTRACK state machines. Sans-IO like the rest of the core: datagrams
//! come in through [`SyncCore::handle_datagram`], go out through
//! [`SyncCore::poll_transmit`], and time is always passed in.

pub mod auth;
mod commit;
mod queue;
mod receive;
pub mod report;
mod timers;
mod transmit;

use std::collections::VecDeque;

use crate::FastMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use conntrack_model::{Conntrack, Expect, ExpectKey, FlowKey};
use syncproto::{Control, MsgType};

use crate::cache::Cache;
use crate::compact::Key;
use crate::expect_cache::{ExpectCache, ExpectFilter};
use crate::filter::Filter;
use crate::local::{EventKind, LocalCache, Origin};

pub use commit::{prepare_create, prepare_update};
use queue::{Fifo, Item};
use timers::Timers;

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

/// Receiver counters of `-s network` (wire-protocol.md §7).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hello {
    Init,
    Say,
    Done,
}

/// What the mode decided about a received message (wire-protocol.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Data,
    Ctl,
    Bad,
    Drop,
}

/// Who a peer is. Without authentication, the address its datagrams come
/// from; with it, its session, which the envelope authenticates (an
/// address can be spoofed, and envelopes reflected from another one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PeerId {
    Address(IpAddr),
    Session(u64),
}

/// Sequence tracking of one peer. 1.4.7 keeps a single one for all peers,
/// which breaks with three nodes; we keep one per [`PeerId`].
#[derive(Debug, Clone)]
struct Peer {
    last: Option<u32>,
    window: u32,
    ack_from: Option<u32>,
    /// Bit of this peer in the resend queue's acknowledgement masks.
    bit: u64,
    heard: Instant,
    /// Where it was heard from last.
    addr: IpAddr,
    /// The peer's messages carry HELLO (it has not heard our HELLO_BACK).
    in_hello: bool,
    /// A far jump ahead not yet believed: its last number and how many
    /// consecutive messages followed it.
    suspect: Option<(u32, u8)>,
    /// Likewise for messages behind the mark, with when the run began.
    behind: Option<(u32, u8, Instant)>,
    /// Data (or a gap) arrived since our last ACK to it: one is due
    /// [`ACK_DELAY`] later, not at the next ALIVE tick.
    ack_due: bool,
}

impl Peer {
    /// The peer's index, 0 to 63: its bit's position. External entries
    /// record it as their origin.
    fn index(&self) -> u8 {
        self.bit.trailing_zeros() as u8
    }
}

/// A jump ahead larger than this is not believed at once: it takes
/// consecutive messages continuing it (so one forged or garbled number
/// cannot make every later message look old).
pub(crate) const MAX_GAP: u32 = 1 << 16;
/// Messages in a row that make a far jump believed.
pub(crate) const JUMP_RUN: u8 = 3;
/// How long messages behind the mark must keep coming, in sequence, before
/// they are taken for the peer's real numbers. Datagrams that are only
/// late (reordered, duplicated) are over within milliseconds, and each
/// holds a run of consecutive numbers: adopting such a run applied old
/// states over newer ones (a flow's UPDATE after its DEL brought it back).
pub(crate) const BEHIND_TIME: Duration = Duration::from_millis(200);

/// A resend-queue entry: its sequence number and which peers acked it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u32,
    acked: u64,
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

/// A peer silent this long no longer holds back the resend queue.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// Senders tracked at once (one bit each in the resend queue's ack masks).
/// A new sender beyond them takes the place of the one heard longest ago:
/// forged source addresses can neither grow the table nor lock a peer out.
pub const MAX_PEERS: usize = 64;

const ALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// FTFW loss recovery. 1.4.7 learns of a loss only from the next message
/// after it and ACKs once a second when idle, so a lost tail of a burst,
/// a lost NACK or a lost resend each cost a second, and at 30 % loss a
/// burst took up to 10 s to complete (a second per round, half of the
/// rounds failing). Here a receiver ACKs what data it got [`ACK_DELAY`]
/// after it arrived (an ACK also tells the sender what was skipped, see
/// `ftfw_digest`), and a sender holding unacknowledged objects sends an
/// ALIVE [`PROBE_MIN`] after it fell silent (its number reveals a lost
/// tail), backing off to once a second while no ACK comes back.
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(20);
pub(crate) const PROBE_MIN: Duration = Duration::from_millis(50);

/// The replication engine of one node.
#[derive(Debug)]
pub struct SyncCore {
    pub local: LocalCache,
    pub external: Cache,
    pub expect: Option<Expectations>,
    pub counters: NetworkCounters,
    pub bypass: BypassCounters,
    settings: SyncSettings,
    next_seq: u32,
    txq: Fifo<()>,
    /// FTFW: sent objects and ACK/NACK/RESYNC with their sequence numbers.
    /// On a multicast group with several peers an entry stays until every
    /// live peer acknowledged it (1.4.7 drops it at the first ACK).
    rsq: Fifo<Sent>,
    rsq_dropped: u64,
    /// When the last well-formed message arrived from a peer.
    last_received: Option<Instant>,
    /// Deleted objects whose DEL is still queued or unacknowledged.
    dead: FastMap<ObjKey, Dead>,
    /// Messages built straight from kernel events (internal cache disabled).
    direct: VecDeque<Direct>,
    hello: Hello,
    say_hello_back: bool,
    peers: FastMap<PeerId, Peer>,
    /// The bits of `peers`.
    peer_bits: u64,
    alive_at: Option<Instant>,
    /// When the ACKs due to peers that sent data go out (FTFW).
    ack_at: Option<Instant>,
    /// When to probe for a lost tail (FTFW, while objects are unacked),
    /// and the pause before the next probe.
    probe_at: Option<Instant>,
    probe_every: Duration,
    /// When the partly filled batch goes out.
    flush_at: Option<Instant>,
    /// Restarted peers whose stale external entries are to be dropped.
    sweeps: Vec<Sweep>,
    refresh: Timers<ObjKey>,
    expiry: Timers<ObjKey>,
    active: usize,
    batch: Vec<u8>,
    scratch: Vec<u8>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SyncEvent>,
    rng: u64,
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
            next_seq: settings.initial_seq,
            active: settings
                .default_channel
                .min(settings.batch_sizes.len().saturating_sub(1)),
            txq: Fifo::default(),
            rsq: Fifo::default(),
            rsq_dropped: 0,
            last_received: None,
            dead: FastMap::default(),
            direct: VecDeque::new(),
            hello: Hello::Init,
            say_hello_back: false,
            peers: FastMap::default(),
            peer_bits: 0,
            alive_at: None,
            ack_at: None,
            probe_at: None,
            probe_every: PROBE_MIN,
            flush_at: None,
            sweeps: Vec::new(),
            refresh: Timers::default(),
            expiry: Timers::default(),
            batch: Vec::new(),
            scratch: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            rng: settings.seed | 1,
            auth: settings
                .auth
                .take()
                .map(|config| auth::Auth::new(now, config)),
            opened: Vec::new(),
            settings,
        };
        core.send_handshakes();
        if !matches!(core.settings.protocol, Protocol::Alarm { .. }) {
            core.alive_at = Some(now + ALIVE_INTERVAL);
            if core.settings.startup_resync {
                core.txq.push_back(Item::Control(Control::Resync), ());
            }
        }
        core
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    pub fn is_ftfw(&self) -> bool {
        matches!(self.settings.protocol, Protocol::Ftfw { .. })
    }

    fn is_alarm(&self) -> bool {
        matches!(self.settings.protocol, Protocol::Alarm { .. })
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
        let resend_queue_max = match self.settings.protocol {
            Protocol::Ftfw {
                resend_queue_size, ..
            } => Some(resend_queue_size as u64),
            _ => None,
        };
        QueueStats {
            transmit: self.txq.len(),
            resend: self.rsq.len(),
            resend_max: resend_queue_max,
            resend_dropped: self.rsq_dropped,
            control_nodes: self.txq.controls() + self.rsq.controls(),
        }
    }

    /// Time since the last well-formed message from a peer, if any came.
    pub fn since_last_received(&self, now: Instant) -> Option<Duration> {
        self.last_received
            .map(|at| now.saturating_duration_since(at))
    }

    // ---- local side -------------------------------------------------

    /// A ctnetlink conntrack event.
    pub fn handle_kernel_event(
        &mut self,
        now: Instant,
        kind: EventKind,
        ct: Conntrack,
        origin: Origin,
    ) {
        if self.settings.disable_internal_cache {
            self.bypass_event(kind, ct, origin);
            return;
        }
        self.local.handle_kernel_event(now, kind, ct, origin);
        self.apply_changes(now);
    }

    /// NOTRACK `DisableInternalCache`: one message per event, no cache.
    fn bypass_event(&mut self, kind: EventKind, ct: Conntrack, origin: Origin) {
        self.local.netlink.events_received += 1;
        if origin != Origin::NotMe {
            return;
        }
        if let Some(filter) = &self.local.event_filter
            && filter.verdict(&ct) != crate::filter::Verdict::Accept
        {
            self.local.netlink.events_filtered += 1;
            return;
        }
        let kind = match kind {
            EventKind::New => {
                self.bypass.new += 1;
                MsgType::CtNew
            }
            EventKind::Update => {
                self.bypass.updated += 1;
                MsgType::CtUpdate
            }
            EventKind::Destroy => {
                self.bypass.destroyed += 1;
                MsgType::CtDelete
            }
        };
        self.direct.push_back(Direct::Flow(kind, Box::new(ct)));
    }

    /// A flow of a kernel dump made for a bulk send with the internal cache
    /// disabled: sent as CT_NEW.
    pub fn send_direct(&mut self, ct: Conntrack) {
        if self
            .local
            .dump_filter
            .as_ref()
            .is_none_or(|f| f.verdict(&ct) == crate::filter::Verdict::Accept)
        {
            self.direct
                .push_back(Direct::Flow(MsgType::CtNew, Box::new(ct)));
        }
    }

    /// One entry of a kernel dump; `announce` for overrun/polling resyncs.
    pub fn handle_dump_entry(&mut self, now: Instant, ct: Conntrack, announce: bool) {
        self.local.handle_dump_entry(now, ct, announce);
        self.apply_changes(now);
    }

    /// A resync found this flow gone from the kernel.
    pub fn handle_vanished(&mut self, now: Instant, key: &FlowKey) {
        self.local.handle_vanished(key);
        self.apply_changes(now);
    }

    fn apply_changes(&mut self, now: Instant) {
        for change in self.local.take_changes() {
            let key = ObjKey::Flow(Key::new(&change.key));
            match change.gone {
                None => {
                    // A fresh object replaces a dead one awaiting its DEL.
                    if !self.dead.is_empty() {
                        self.dead.remove(&key);
                    }
                    self.arm_refresh(now, &key);
                    if change.announce {
                        self.queue_object(key);
                    }
                }
                Some(last) => {
                    self.refresh.cancel(&key);
                    let queued = self.txq.contains(&key) || self.rsq.contains(&key);
                    if change.announce || queued {
                        self.dead
                            .insert(key.clone(), Dead::Flow(crate::compact::Stored::new(*last)));
                    }
                    if change.announce {
                        self.queue_object(key);
                    }
                }
            }
        }
    }

    /// An expectation event (sync-modes.md §11): synced only if its helper
    /// is selected and its master flow is in the internal cache.
    pub fn handle_kernel_expect(
        &mut self,
        now: Instant,
        kind: EventKind,
        exp: Expect,
        origin: Origin,
    ) {
        self.local.netlink.events_received += 1;
        let Some(state) = self.expect.as_mut() else {
            return;
        };
        if origin == Origin::Inject {
            return;
        }
        if self.settings.disable_internal_cache {
            // No cache to check the master against; it exists in the
            // kernel as long as the expectation does (1.4.7 inverts this
            // check in bypass mode and drops them).
            if origin == Origin::NotMe && state.filter.accepts(&exp) {
                let kind = match kind {
                    EventKind::New => MsgType::ExpNew,
                    EventKind::Update => MsgType::ExpUpdate,
                    EventKind::Destroy => MsgType::ExpDelete,
                };
                self.direct.push_back(Direct::Expect(kind, Box::new(exp)));
            }
            return;
        }
        let announce = origin == Origin::NotMe;
        let Some(key) = exp.key() else { return };
        let key = ObjKey::Expect(Box::new(key));
        if kind == EventKind::Destroy {
            if let Some(entry) = state.internal.remove(&exp) {
                self.refresh.cancel(&key);
                let queued = self.txq.contains(&key) || self.rsq.contains(&key);
                if announce || queued {
                    let mut last = entry.exp;
                    last.merge(&exp);
                    self.dead.insert(key.clone(), Dead::Expect(Box::new(last)));
                }
                if announce {
                    self.queue_object(key);
                }
            }
            return;
        }
        if !state.filter.accepts(&exp) || !master_cached(&self.local.cache, &exp) {
            self.local.netlink.events_filtered += 1;
            return;
        }
        let inserted = if kind == EventKind::New {
            state.internal.insert_new(now, exp)
        } else {
            state.internal.upsert(now, exp)
        };
        if inserted.is_ok() {
            self.dead.remove(&key);
            self.arm_refresh(now, &key);
            if announce {
                self.queue_object(key);
            }
        }
    }

    /// One entry of an expectation dump (start-up, `-R expect`).
    pub fn handle_expect_dump_entry(&mut self, now: Instant, exp: Expect) {
        let Some(state) = self.expect.as_mut() else {
            return;
        };
        if state.filter.accepts(&exp)
            && master_cached(&self.local.cache, &exp)
            && let Some(key) = exp.key()
            && state.internal.upsert(now, exp).is_ok()
        {
            self.arm_refresh(now, &ObjKey::Expect(Box::new(key)));
        }
    }

    // ---- queues ------------------------------------------------------

    /// §5.4: an object in the resend queue moves to the transmit queue; an
    /// object already waiting to be sent stays where it is.
    fn queue_object(&mut self, key: ObjKey) {
        self.rsq.remove_object(&key);
        // A no-op for an object already in the transmit queue.
        self.txq.push_back(Item::Object(key), ());
    }

    /// The object is no longer referenced by a queue: a dead one is freed.
    fn release(&mut self, key: &ObjKey) {
        // Most of the time nothing is dead: no lookups then.
        if !self.dead.is_empty() && !self.txq.contains(key) && !self.rsq.contains(key) {
            self.dead.remove(key);
        }
    }

    fn push_resend(&mut self, item: Item, seq: u32) {
        let seq = Sent { seq, acked: 0 };
        let Protocol::Ftfw {
            resend_queue_size, ..
        } = self.settings.protocol
        else {
            return;
        };
        while self.rsq.len() >= resend_queue_size.max(1) {
            if let Some((Item::Object(key), _)) = self.rsq.pop_front() {
                self.release(&key);
            }
            self.rsq_dropped += 1;
        }
        self.rsq.push_back(item, seq);
    }

    // ---- commands ------------------------------------------------------

    /// `-B` or a peer's RESYNC: queue every internal object (§5.8).
    pub fn bulk_send(&mut self) {
        if self.is_alarm() {
            return;
        }
        if self.settings.disable_internal_cache {
            self.events.push_back(SyncEvent::DumpKernelForBulk);
            return;
        }
        self.events
            .push_back(SyncEvent::Notice("sending bulk update".into()));
        let mut keys = self.internal_keys();
        // DEAD objects still awaiting acknowledgement go out again as DEL.
        keys.extend(self.dead.keys().cloned());
        for key in keys {
            self.queue_object(key);
        }
    }

    /// `-n`: ask the peers for a bulk send.
    pub fn request_resync(&mut self) {
        if self.is_alarm() {
            return;
        }
        self.events
            .push_back(SyncEvent::Notice("resync requested".into()));
        self.txq.push_back(Item::Control(Control::Resync), ());
    }

    /// `-f internal`: objects go at once, queued ones included (no DEL).
    pub fn flush_internal(&mut self) {
        self.local.cache.flush();
        self.forget_queued(|k| matches!(k, ObjKey::Flow(_)));
    }

    pub fn flush_internal_expect(&mut self) {
        if let Some(state) = self.expect.as_mut() {
            state.internal.flush();
        }
        self.forget_queued(|k| matches!(k, ObjKey::Expect(_)));
    }

    fn forget_queued(&mut self, which: impl Fn(&ObjKey) -> bool) {
        for key in self.refresh_keys(&which) {
            self.refresh.cancel(&key);
        }
        let keys: Vec<ObjKey> = self
            .txq
            .iter()
            .map(|(item, _)| item)
            .chain(self.rsq.iter().map(|(item, _)| item))
            .filter_map(|item| match item {
                Item::Object(k) if which(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        for key in keys {
            self.txq.remove_object(&key);
            self.rsq.remove_object(&key);
            self.dead.remove(&key);
        }
        self.dead.retain(|k, _| !which(k));
    }

    /// Every live internal object, flows first.
    fn internal_keys(&self) -> Vec<ObjKey> {
        let mut keys: Vec<ObjKey> = self
            .local
            .cache
            .iter_live()
            .filter_map(|e| e.key())
            .map(|k| ObjKey::Flow(Key::new(&k)))
            .collect();
        if let Some(state) = &self.expect {
            keys.extend(
                state
                    .internal
                    .iter()
                    .filter_map(|e| e.exp.key())
                    .map(|k| ObjKey::Expect(Box::new(k))),
            );
        }
        keys
    }

    fn refresh_keys(&self, which: &impl Fn(&ObjKey) -> bool) -> Vec<ObjKey> {
        let mut keys = self.internal_keys();
        keys.retain(|k| which(k));
        keys
    }

    pub fn flush_external(&mut self) {
        self.external.flush();
        self.expiry.clear();
    }

    pub fn flush_external_expect(&mut self) {
        if let Some(state) = self.expect.as_mut() {
            state.external.flush();
        }
    }

    /// The kernel create requests of a commit (`-c`), in commit order.
    pub fn commit_flows(&self, now: Instant) -> impl Iterator<Item = Conntrack> + '_ {
        commit::flows(self, now)
    }

    /// Positions of the external cache a commit walks, twice: plain flows
    /// (`related` false), then flows with a master.
    pub fn commit_positions(&self) -> usize {
        self.external.positions()
    }

    /// The create request for the external flow at `at` in the given pass.
    pub fn commit_request_at(&self, at: usize, related: bool, now: Instant) -> Option<Conntrack> {
        commit::request_at(self, at, related, now)
    }

    /// Makes room in the internal cache for a quiet commit's flows.
    pub fn prepare_adoption(&mut self) {
        if !self.settings.disable_internal_cache {
            let incoming = self.external.len();
            self.local.cache.reserve(incoming);
        }
    }

    /// The external flow at `at` was committed while NEW events were not
    /// listened to: it enters the internal cache as its event would have
    /// made it (unannounced: commits are not echoed to peers).
    pub fn adopt_committed_at(&mut self, at: usize, now: Instant) {
        if self.settings.disable_internal_cache {
            return;
        }
        let Some(mut ct) = self.external.entry_at(at).map(|e| e.ct().into_owned()) else {
            return;
        };
        if ct.reply.is_none() {
            ct.reply = commit::reply_after_nat(&ct);
        }
        self.local.adopt(now, ct);
        self.apply_changes(now);
    }

    /// The external expectations a commit creates.
    pub fn commit_expects(&self) -> Vec<Expect> {
        match &self.expect {
            Some(state) if !self.settings.disable_external_cache => {
                state.external.iter().map(|e| e.exp.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Remaining ALARM lifetime of an external flow (`-e` shows it).
    pub fn expires_in(&self, key: &FlowKey, now: Instant) -> Option<Duration> {
        self.expiry
            .deadline(&ObjKey::Flow(Key::new(key)))
            .map(|at| at.saturating_duration_since(now))
    }

    // ---- channels --------------------------------------------------------

    /// The link watcher's view of a channel (sync-modes.md §13): if the
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

    /// ALARM: `1 + random() % R` seconds plus 0.2–1.0 s (§6).
    fn arm_refresh(&mut self, now: Instant, key: &ObjKey) {
        let Protocol::Alarm { refresh, .. } = self.settings.protocol else {
            return;
        };
        let r = refresh.as_secs().max(1);
        let secs = 1 + self.random() % r;
        let micros = (1 + self.random() % 5) * 200_000 - 1;
        let at = now + Duration::from_secs(secs) + Duration::from_micros(micros);
        self.refresh.arm(key.clone(), at);
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: jitter only, not security.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11
    }

    /// When [`SyncCore::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.alive_at,
            self.ack_at,
            self.probe_at,
            self.flush_at,
            self.sweeps.iter().map(|sweep| sweep.at).min(),
            self.refresh.next(),
            self.expiry.next(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.flush_at.is_some_and(|at| at <= now) {
            self.flush_batch(now);
        }
        if self.sweeps.iter().any(|sweep| sweep.at <= now) {
            let (due, later) = std::mem::take(&mut self.sweeps)
                .into_iter()
                .partition(|sweep| sweep.at <= now);
            self.sweeps = later;
            for sweep in due {
                self.sweep_stale(now, sweep);
            }
        }
        if self.ack_at.is_some_and(|at| at <= now) {
            self.ack_at = None;
            for peer in self.peers.values_mut().filter(|p| p.ack_due) {
                peer.ack_due = false;
                if let (Some(from), Some(to)) = (peer.ack_from.take(), peer.last) {
                    self.txq
                        .push_back(Item::Control(Control::Ack { from, to }), ());
                }
            }
        }
        if self.probe_at.is_some_and(|at| at <= now) {
            self.probe_at = None;
            // Without a live peer nobody would answer: the ALIVE tick is
            // enough to be found.
            if self.rsq.objects() > 0 && self.live_peers(now) != 0 {
                self.txq.push_back(Item::Control(Control::Alive), ());
                self.probe_every = (self.probe_every * 2).min(ALIVE_INTERVAL);
            }
        }
        if self.alive_at.is_some_and(|at| at <= now) {
            self.alive_at = Some(now + ALIVE_INTERVAL);
            let mut acked = false;
            if self.is_ftfw() {
                for peer in self.peers.values_mut() {
                    peer.ack_due = false;
                    if let (Some(from), Some(to)) = (peer.ack_from.take(), peer.last) {
                        self.txq
                            .push_back(Item::Control(Control::Ack { from, to }), ());
                        acked = true;
                    }
                }
            }
            if !acked {
                self.txq.push_back(Item::Control(Control::Alive), ());
            }
        }
        while let Some(key) = self.refresh.pop_expired(now) {
            if self.is_live(&key) {
                self.arm_refresh(now, &key);
                self.queue_object(key);
            }
        }
        while let Some(key) = self.expiry.pop_expired(now) {
            match key {
                ObjKey::Flow(k) => {
                    self.external.remove_key(&k);
                }
                ObjKey::Expect(k) => {
                    if let Some(state) = self.expect.as_mut() {
                        state.external.remove_key(&k);
                    }
                }
            }
        }
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
            self.expiry.cancel(&ObjKey::Flow(Key::new(&key)));
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
        self.rsq.len()
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

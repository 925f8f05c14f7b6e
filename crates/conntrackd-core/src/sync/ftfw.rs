//! FTFW, the reliable mode (docs/sync-modes.md §5): sequence numbers,
//! ACK/NACK, the resend queue, the HELLO handshake of a restart, and our
//! faster loss recovery (prompt ACKs, probes for a lost tail).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use syncproto::{Control, Header, seq};

use super::queue::{Fifo, Item};
use super::timer::Timer;
use super::{ALIVE_INTERVAL, Mode, PeerId, SWEEP_DELAY, Sweep, SyncCore, Verdict};

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

/// Our side of the HELLO handshake (docs/sync-modes.md §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hello {
    Init,
    Say,
    Done,
}

/// Where our first ACK to a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstAck {
    NotYet,
    /// Queued as the n-th ACK (counting from the core's start).
    Queued(u64),
    /// Sent with this sequence number.
    Sent(u32),
}

/// Counts ACKs through the transmit queue (a FIFO), so that the ACK
/// built n-th is the one queued n-th.
#[derive(Debug, Clone, Copy, Default)]
struct AckLedger {
    queued: u64,
    built: u64,
}

impl AckLedger {
    /// Queues an ACK of `peer`'s messages `from..=to`.
    fn queue(&mut self, txq: &mut Fifo<()>, peer: &mut FtfwPeer, from: u32, to: u32) {
        if peer.first_ack == FirstAck::NotYet {
            peer.first_ack = FirstAck::Queued(self.queued);
        }
        self.queued += 1;
        txq.push_back(Item::Control(Control::Ack { from, to }), ());
    }
}

/// A resend-queue entry: its sequence number and which peers acked it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    pub(crate) seq: u32,
    pub(crate) acked: u64,
}

/// What FTFW knows of a peer's messages.
#[derive(Debug, Clone)]
pub(crate) struct FtfwPeer {
    /// Messages left before the next ACK is due.
    window: u32,
    /// The first message of the range the next ACK covers.
    ack_from: Option<u32>,
    /// The end of the last ACK range of ours it sent.
    pub(crate) acked_to: Option<u32>,
    /// Our first ACK of its messages. It makes the peer resend what it
    /// sent before we first heard it, ahead of any later ACK of its.
    pub(crate) first_ack: FirstAck,
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

impl FtfwPeer {
    pub(crate) fn new(window: u32) -> FtfwPeer {
        FtfwPeer {
            window,
            ack_from: None,
            acked_to: None,
            first_ack: FirstAck::NotYet,
            in_hello: false,
            suspect: None,
            behind: None,
            ack_due: false,
        }
    }

    /// The ACK this peer's messages are owed, if any.
    fn take_ack(&mut self, last: Option<u32>) -> Option<(u32, u32)> {
        Some((self.ack_from.take()?, last?))
    }

    /// It acknowledged our messages up to `mark` (readiness).
    pub(crate) fn acked(&self, mark: u32) -> bool {
        self.acked_to.is_some_and(|to| !seq::before(to, mark))
    }
}

/// FTFW's state in a core.
#[derive(Debug)]
pub(crate) struct Ftfw {
    ack_window: u32,
    resend_queue_size: usize,
    /// Sent objects and ACK/NACK/RESYNC with their sequence numbers. On a
    /// multicast group with several peers an entry stays until every live
    /// peer acknowledged it (1.4.7 drops it at the first ACK).
    pub(crate) rsq: Fifo<Sent>,
    /// Resend-queue entries dropped because it was full.
    pub(crate) rsq_dropped: u64,
    /// The pause before the next probe for a lost tail.
    probe_every: Duration,
    acks: AckLedger,
    hello: Hello,
    say_hello_back: bool,
}

impl Ftfw {
    pub(crate) fn new(ack_window: u32, resend_queue_size: usize) -> Ftfw {
        Ftfw {
            ack_window,
            resend_queue_size,
            rsq: Fifo::default(),
            rsq_dropped: 0,
            probe_every: PROBE_MIN,
            acks: AckLedger::default(),
            hello: Hello::Init,
            say_hello_back: false,
        }
    }

    /// `ResendQueueSize`.
    pub(crate) fn resend_queue_size(&self) -> usize {
        self.resend_queue_size
    }

    /// Flags of the next message: HELLO until the peer answered,
    /// HELLO_BACK once after a HELLO.
    pub(crate) fn hello_flags(&mut self) -> u8 {
        let mut flags = 0;
        if self.hello != Hello::Done {
            self.hello = Hello::Say;
            flags |= syncproto::flags::HELLO;
        }
        if self.say_hello_back {
            self.say_hello_back = false;
            flags |= syncproto::flags::HELLO_BACK;
        }
        flags
    }

    /// Removes the resend-queue entries numbered `from..=to` (the queue is
    /// in sequence order).
    fn rsq_range(&mut self, from: u32, to: u32) -> Vec<(Item, Sent)> {
        self.rsq.drain_walk(|_, sent| {
            if seq::before(sent.seq, from) {
                Some(false)
            } else if seq::after(sent.seq, to) {
                None
            } else {
                Some(true)
            }
        })
    }
}

impl SyncCore {
    /// The FTFW state; None in the other modes.
    pub(super) fn ftfw(&self) -> Option<&Ftfw> {
        match &self.mode {
            Mode::Ftfw(ftfw) => Some(ftfw),
            _ => None,
        }
    }

    /// A sent message enters the resend queue; the oldest entries make
    /// room if it is full.
    pub(super) fn push_resend(&mut self, item: Item, seq: u32) {
        loop {
            let Mode::Ftfw(ftfw) = &mut self.mode else {
                return;
            };
            if ftfw.rsq.len() < ftfw.resend_queue_size.max(1) {
                ftfw.rsq.push_back(item, Sent { seq, acked: 0 });
                return;
            }
            ftfw.rsq_dropped += 1;
            if let Some((Item::Object(key), _)) = ftfw.rsq.pop_front() {
                self.release(&key);
            }
        }
    }

    /// An ACK went out as `seq`: the peer whose first ACK it is learns it.
    pub(super) fn ack_built(&mut self, seq: u32) {
        let Mode::Ftfw(ftfw) = &mut self.mode else {
            return;
        };
        let index = ftfw.acks.built;
        ftfw.acks.built += 1;
        for peer in self.peers.values_mut() {
            if let FirstAck::Queued(n) = peer.ftfw.first_ack
                && n <= index
            {
                peer.ftfw.first_ack = FirstAck::Sent(seq);
            }
        }
    }

    /// After a transmit round: the probe follows the last datagram (a
    /// stream needs none), if anyone was ever heard to answer it.
    pub(super) fn ftfw_sent(&mut self, now: Instant) {
        if let Mode::Ftfw(ftfw) = &self.mode
            && ftfw.rsq.objects() > 0
            && !self.peers.is_empty()
        {
            self.timers.set(Timer::Probe, now + ftfw.probe_every);
        }
    }

    /// [`Timer::Ack`]: the ACKs due to peers that sent data.
    pub(super) fn on_ack_timer(&mut self) {
        for peer in self.peers.values_mut().filter(|p| p.ftfw.ack_due) {
            peer.ftfw.ack_due = false;
            if let Some((from, to)) = peer.ftfw.take_ack(peer.last) {
                self.txq
                    .push_back(Item::Control(Control::Ack { from, to }), ());
            }
        }
    }

    /// [`Timer::Probe`]: an ALIVE whose number reveals a lost tail.
    /// Without a live peer nobody would answer: the ALIVE tick is enough
    /// to be found.
    pub(super) fn on_probe_timer(&mut self, now: Instant) {
        let live = self.peers.live_mask(now) != 0;
        let Mode::Ftfw(ftfw) = &mut self.mode else {
            return;
        };
        if ftfw.rsq.objects() > 0 && live {
            self.txq.push_back(Item::Control(Control::Alive), ());
            ftfw.probe_every = (ftfw.probe_every * 2).min(ALIVE_INTERVAL);
        }
    }

    /// The periodic ACKs of every peer owed one; false if none was.
    pub(super) fn ftfw_periodic_acks(&mut self) -> bool {
        let Mode::Ftfw(ftfw) = &mut self.mode else {
            return false;
        };
        let mut acked = false;
        for peer in self.peers.values_mut() {
            peer.ftfw.ack_due = false;
            if let Some((from, to)) = peer.ftfw.take_ack(peer.last) {
                ftfw.acks.queue(&mut self.txq, &mut peer.ftfw, from, to);
                acked = true;
            }
        }
        acked
    }

    pub(super) fn ftfw_receive(
        &mut self,
        now: Instant,
        id: PeerId,
        from: IpAddr,
        h: &Header,
        msg: &[u8],
    ) -> Verdict {
        let Mode::Ftfw(ftfw) = &mut self.mode else {
            return Verdict::Drop;
        };
        let w = ftfw.ack_window.max(1);
        if h.is_hello_back() && ftfw.hello == Hello::Say {
            ftfw.hello = Hello::Done;
        }
        let peer = self.peers.heard(now, id, from, w);
        let mut gap = None;
        // Only the first HELLO of a peer is its restart. It repeats HELLO
        // until our HELLO_BACK gets through; 1.4.7 treats every repeat as a
        // restart, wiping its resend queue and skipping gap detection, so
        // a lost HELLO_BACK under loss loses data for good.
        // A HELLO that goes backwards is a restart too (the peer's new,
        // random sequence numbers may start below the old ones).
        let backwards = peer.last.is_some_and(|last| !seq::after(h.seq, last));
        let restarted = h.is_hello() && (!peer.ftfw.in_hello || backwards);
        peer.ftfw.in_hello = h.is_hello();
        if h.is_hello() {
            ftfw.say_hello_back = true;
        }
        if restarted {
            if let Some(from_seq) = peer.ftfw.ack_from
                && seq::before(h.seq, from_seq)
            {
                peer.ftfw.window = w - 1;
                peer.ftfw.ack_from = Some(h.seq);
            }
            // A peer we knew came back: what it tracked while we did not
            // hear it (flows made while it was down, re-read from its
            // kernel) only reaches us if we ask for it.
            if peer.last.is_some() {
                self.txq.push_back(Item::Control(Control::Resync), ());
                // What it announced before and does not re-announce was
                // deleted while it was down.
                let origin = peer.index();
                self.sweeps.retain(|sweep| sweep.origin != origin);
                self.sweeps.push(Sweep {
                    at: now + SWEEP_DELAY,
                    since: now,
                    origin,
                });
                self.arm_sweep_timer();
            }
            // 1.4.7 empties its resend queue here (the restarted peer
            // cannot NACK old numbers). We keep it: a HELLO can also be the
            // first message of a peer that was up all along but whose
            // earlier messages were lost, and then those entries are what
            // it misses; the peer's next ACK resends them (see ACK below).
        } else if let Some(last) = peer.last {
            let p = &mut peer.ftfw;
            let expected = last.wrapping_add(1);
            if seq::after(h.seq, expected) && h.seq.wrapping_sub(expected) > MAX_GAP {
                let run = match p.suspect {
                    Some((prev, run)) if prev.wrapping_add(1) == h.seq => run + 1,
                    _ => 1,
                };
                if run < JUMP_RUN {
                    p.suspect = Some((h.seq, run));
                    return Verdict::Bad;
                }
                // The peer really is that far ahead (a long outage):
                // follow it, without NACKing what no queue still holds.
                p.suspect = None;
                p.ack_from = None;
            } else if seq::after(h.seq, expected) {
                p.suspect = None;
                gap = Some(expected);
            } else if seq::before(h.seq, expected) {
                // Consecutive messages behind our mark for a while: a lying
                // number moved the mark ahead, and this is the peer's real
                // sequence.
                let (run, since) = match p.behind {
                    Some((prev, run, since)) if prev.wrapping_add(1) == h.seq => {
                        (run.saturating_add(1), since)
                    }
                    _ => (1, now),
                };
                if run < JUMP_RUN || now.saturating_duration_since(since) < BEHIND_TIME {
                    p.behind = Some((h.seq, run, since));
                    self.counters.before += 1;
                    return Verdict::Drop;
                }
                p.behind = None;
                p.ack_from = None;
            }
        }
        let verdict = self.ftfw_digest(now, id, h, msg);
        if verdict == Verdict::Bad {
            return verdict;
        }
        let (Mode::Ftfw(ftfw), Some(peer)) = (&mut self.mode, self.peers.get_mut(&id)) else {
            return verdict;
        };
        let p = &mut peer.ftfw;
        match gap {
            Some(expected) => {
                self.counters.lost += u64::from(h.seq.wrapping_sub(expected));
                if let Some(from_seq) = p.ack_from.take() {
                    ftfw.acks
                        .queue(&mut self.txq, p, from_seq, expected.wrapping_sub(1));
                }
                self.txq.push_back(
                    Item::Control(Control::Nack {
                        from: expected,
                        to: h.seq.wrapping_sub(1),
                    }),
                    (),
                );
                p.window = w - 1;
                p.ack_from = Some(h.seq);
                // Again soon, in case this one is lost.
                p.ack_due = true;
            }
            None => {
                let from_seq = *p.ack_from.get_or_insert(h.seq);
                p.window = p.window.saturating_sub(1);
                if p.window == 0 {
                    ftfw.acks.queue(&mut self.txq, p, from_seq, h.seq);
                    p.window = w;
                    p.ack_from = None;
                    p.ack_due = false;
                } else if h.is_alive() {
                    // Maybe a sender's probe for a lost tail: what it holds
                    // unacknowledged is what we skipped. (Data alone waits
                    // for the window: a stream needs no more ACKs.)
                    p.ack_due = true;
                }
            }
        }
        peer.last = Some(h.seq);
        if peer.ftfw.ack_due {
            self.timers.set_if_stopped(Timer::Ack, now + ACK_DELAY);
        }
        verdict
    }

    fn ftfw_digest(&mut self, now: Instant, sender: PeerId, h: &Header, msg: &[u8]) -> Verdict {
        if h.is_data() {
            return Verdict::Data;
        }
        match Control::decode(h, msg) {
            Some(Control::Ack { from, to }) => self.ftfw_ack(now, sender, from, to),
            Some(Control::Nack { from, to }) => self.ftfw_nack(from, to),
            Some(Control::Resync) => {
                self.resync_requested();
                Verdict::Ctl
            }
            Some(Control::Alive) => Verdict::Ctl,
            None => Verdict::Bad,
        }
    }

    fn ftfw_ack(&mut self, now: Instant, sender: PeerId, from: u32, to: u32) -> Verdict {
        if seq::before(to, from) {
            return Verdict::Bad;
        }
        let next_seq = self.next_seq;
        let required = self.peers.live_mask(now);
        let Mode::Ftfw(ftfw) = &mut self.mode else {
            return Verdict::Ctl;
        };
        // ACKs name no addressee: with more than one peer on the group,
        // those meant for another node's numbers reach us too. Ours end
        // inside what we have sent and still hold; taking another's as
        // ours marked random entries as skipped, resending them (RESYNC
        // requests among them, so every node bulk-sent every second).
        let ours = seq::before(to, next_seq)
            && ftfw
                .rsq
                .iter()
                .next()
                .is_some_and(|(_, oldest)| !seq::before(to, oldest.seq));
        if !ours {
            return Verdict::Ctl;
        }
        let bit = match self.peers.get_mut(&sender) {
            Some(peer) => {
                if peer.ftfw.acked_to.is_none_or(|last| seq::after(to, last)) {
                    peer.ftfw.acked_to = Some(to);
                }
                peer.bit
            }
            None => 0,
        };
        let required = required | bit;
        // Entries before the acknowledged range that this peer never
        // acknowledged were skipped by it: its NACK, or our answer, was
        // lost, and 1.4.7 would never send them again. Take them too, and
        // resend them.
        let taken = ftfw.rsq.drain_walk_mut(|_, sent| {
            if seq::before(sent.seq, from) {
                Some(bit != 0 && sent.acked & bit == 0)
            } else if seq::after(sent.seq, to) {
                None
            } else {
                sent.acked |= bit;
                Some(sent.acked & required == required)
            }
        });
        if !taken.is_empty() {
            ftfw.probe_every = PROBE_MIN;
        }
        for (item, sent) in taken {
            let skipped = seq::before(sent.seq, from);
            match item {
                Item::Object(key) if skipped => self.txq.push_back(Item::Object(key), ()),
                Item::Object(key) => self.release(&key),
                Item::Control(Control::Resync) if skipped => {
                    self.txq.push_back(Item::Control(Control::Resync), ());
                }
                Item::Control(_) => {}
            }
        }
        Verdict::Ctl
    }

    fn ftfw_nack(&mut self, from: u32, to: u32) -> Verdict {
        if seq::before(to, from) {
            return Verdict::Bad;
        }
        let Mode::Ftfw(ftfw) = &mut self.mode else {
            return Verdict::Ctl;
        };
        let range = ftfw.rsq_range(from, to);
        if !range.is_empty() {
            ftfw.probe_every = PROBE_MIN;
        }
        for (item, _) in range {
            match item {
                Item::Object(key) => self.txq.push_back(Item::Object(key), ()),
                control => {
                    if matches!(control, Item::Control(Control::Ack { .. })) {
                        ftfw.acks.queued += 1;
                    }
                    self.txq.push_back(control, ());
                }
            }
        }
        Verdict::Ctl
    }
}

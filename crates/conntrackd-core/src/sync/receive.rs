//! The receive path (wire-protocol.md §7; sync-modes.md §5.7, §6, §7, §8.1).

use crate::FastMap;
use std::net::IpAddr;
use std::time::Instant;

use conntrack_model::{Conntrack, Expect};
use syncproto::{Control, FrameError, Header, MsgType, frames, seq};

use super::auth::Delivery;
use super::queue::Item;
use super::{
    Hello, Inject, JUMP_RUN, MAX_GAP, MAX_PEERS, ObjKey, PEER_TIMEOUT, Peer, PeerId, Protocol,
    SWEEP_DELAY, Sent, Sweep, SyncCore, SyncEvent, Transmit, Verdict,
};
use crate::cache::NO_ORIGIN;

impl SyncCore {
    // ---- receive ---------------------------------------------------------

    /// One datagram (or a run of whole messages from a TCP stream) received
    /// on `channel` from `from`. Returns true if it held something
    /// authentic: with `Authentication`, an envelope accepted from a
    /// verified session (or a handshake that verified one); without, one
    /// well-formed message. A TCP channel lets a new connection replace a
    /// working one only then.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        channel: usize,
        from: IpAddr,
        datagram: &[u8],
    ) -> bool {
        let Some(auth) = self.auth.as_mut() else {
            return self.handle_payload(now, channel, PeerId::Address(from), from, datagram);
        };
        let mut opened = std::mem::take(&mut self.opened);
        let authentic = auth.open(now, channel, from, datagram, &mut opened);
        self.send_handshakes();
        for delivery in opened.drain(..) {
            match delivery {
                Delivery::Verified { session, from } => self.session_verified(session, from),
                Delivery::Payload {
                    session,
                    from,
                    bytes,
                } => {
                    self.handle_payload(now, channel, PeerId::Session(session), from, &bytes);
                }
            }
        }
        self.opened = opened;
        authentic
    }

    /// Handshakes the authentication layer wants sent.
    pub(super) fn send_handshakes(&mut self) {
        let Some(auth) = self.auth.as_mut() else {
            return;
        };
        while let Some(hs) = auth.poll_outgoing() {
            self.transmits.push_back(Transmit {
                channel: hs.channel.unwrap_or(self.active),
                bytes: hs.bytes,
            });
        }
    }

    /// A handshake verified a new session. If a session we know was heard
    /// from the same address, the node behind it restarted: its peer state
    /// moves to the new session, so that the restart is recognised as one
    /// (a resync is asked for, and its stale flows are swept).
    fn session_verified(&mut self, session: u64, from: IpAddr) {
        let new = PeerId::Session(session);
        if self.peers.contains_key(&new) {
            return;
        }
        let previous = self
            .peers
            .iter()
            .filter(|(id, p)| matches!(id, PeerId::Session(_)) && p.addr == from)
            .max_by_key(|(_, p)| p.heard)
            .map(|(id, _)| *id);
        if let Some(old) = previous
            && let Some(peer) = self.peers.remove(&old)
        {
            self.peers.insert(new, peer);
        }
    }

    /// The sync messages of one datagram, or of one accepted envelope.
    fn handle_payload(
        &mut self,
        now: Instant,
        channel: usize,
        peer: PeerId,
        from: IpAddr,
        datagram: &[u8],
    ) -> bool {
        let mut well_formed = false;
        for framed in frames(datagram) {
            match framed {
                Ok(m) => {
                    well_formed = true;
                    self.last_received = Some(now);
                    self.handle_message(now, channel, peer, from, &m.header, m.bytes)
                }
                Err(e) => {
                    self.counters.malformed += 1;
                    match e {
                        FrameError::Truncated => self.counters.truncated += 1,
                        FrameError::BadSize => self.counters.bad_size += 1,
                        FrameError::BadVersion => self.counters.bad_version += 1,
                    }
                }
            }
        }
        well_formed
    }

    fn handle_message(
        &mut self,
        now: Instant,
        channel: usize,
        peer: PeerId,
        from: IpAddr,
        h: &Header,
        msg: &[u8],
    ) {
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&peer) {
            self.forget_the_quietest_peer();
        }
        let verdict = match self.settings.protocol {
            Protocol::Ftfw { ack_window, .. } => {
                self.ftfw_receive(now, peer, from, h, msg, ack_window)
            }
            Protocol::Alarm { .. } => {
                self.track_sequence(now, peer, from, h.seq);
                if h.flags != 0 {
                    Verdict::Ctl
                } else {
                    Verdict::Data
                }
            }
            Protocol::Notrack => self.notrack_receive(now, peer, from, h),
        };
        match verdict {
            Verdict::Bad => {
                self.counters.malformed += 1;
                self.counters.bad_header += 1;
            }
            Verdict::Drop => {}
            Verdict::Ctl => self.switch_channel(now, channel),
            Verdict::Data => {
                self.switch_channel(now, channel);
                let origin = self.peers.get(&peer).map_or(NO_ORIGIN, Peer::index);
                self.apply_data(now, h, msg, origin);
            }
        }
    }

    /// Statistics-only sequence tracking (ALARM, NOTRACK): the correct
    /// count `seq - last - 1`, where 1.4.7 adds two.
    fn track_sequence(&mut self, now: Instant, id: PeerId, from: IpAddr, seq_no: u32) {
        let peer = Self::peer(&mut self.peers, &mut self.peer_bits, now, id, from, 0);
        if let Some(last) = peer.last {
            let expected = last.wrapping_add(1);
            if seq::after(seq_no, expected) {
                self.counters.lost += u64::from(seq_no.wrapping_sub(expected));
            } else if seq::before(seq_no, expected) {
                self.counters.before += 1;
            }
        }
        peer.last = Some(seq_no);
    }

    fn notrack_receive(&mut self, now: Instant, id: PeerId, from: IpAddr, h: &Header) -> Verdict {
        let verdict = if h.is_data() {
            Verdict::Data
        } else if h.is_resync() {
            self.resync_requested();
            Verdict::Ctl
        } else if h.is_alive() {
            Verdict::Ctl
        } else {
            Verdict::Bad
        };
        if verdict != Verdict::Bad {
            self.track_sequence(now, id, from, h.seq);
        }
        verdict
    }

    fn resync_requested(&mut self) {
        self.events
            .push_back(SyncEvent::Notice("resync requested by other node".into()));
        self.bulk_send();
    }

    /// The state of peer `id`, created on first contact; `from` is where
    /// it was heard now.
    fn peer<'a>(
        peers: &'a mut FastMap<PeerId, Peer>,
        bits: &mut u64,
        now: Instant,
        id: PeerId,
        from: IpAddr,
        window: u32,
    ) -> &'a mut Peer {
        // The lowest free bit (there is one: at most MAX_PEERS peers).
        let free = 1u64 << (!*bits).trailing_zeros().min(63);
        let peer = peers.entry(id).or_insert_with(|| Peer {
            last: None,
            window,
            ack_from: None,
            bit: free,
            heard: now,
            addr: from,
            in_hello: false,
            suspect: None,
            behind: None,
            ack_due: false,
        });
        *bits |= peer.bit;
        peer.heard = now;
        peer.addr = from;
        peer
    }

    /// Makes room for a new peer by forgetting the one heard longest ago.
    /// A newcomer is always taken: spoofed senders that keep the table
    /// full cannot lock a real peer out (without authentication they can
    /// only make peers be forgotten and met again; with it, only verified
    /// sessions get here). The forgotten peer's bit is cleared from the
    /// resend queue, so that its acknowledgements do not count for the
    /// peer that gets the bit next.
    fn forget_the_quietest_peer(&mut self) {
        let Some((&id, peer)) = self.peers.iter().min_by_key(|(_, p)| p.heard) else {
            return;
        };
        let bit = peer.bit;
        self.peers.remove(&id);
        self.peer_bits &= !bit;
        self.rsq.for_each_value(|sent| sent.acked &= !bit);
        self.counters.peers_evicted += 1;
    }

    /// Peers whose acknowledgement the resend queue waits for.
    pub(super) fn live_peers(&self, now: Instant) -> u64 {
        self.peers
            .values()
            .filter(|p| now.saturating_duration_since(p.heard) < PEER_TIMEOUT)
            .fold(0, |mask, p| mask | p.bit)
    }

    fn ftfw_receive(
        &mut self,
        now: Instant,
        id: PeerId,
        from: IpAddr,
        h: &Header,
        msg: &[u8],
        w: u32,
    ) -> Verdict {
        let w = w.max(1);
        if h.is_hello_back() && self.hello == Hello::Say {
            self.hello = Hello::Done;
        }
        let peer = Self::peer(&mut self.peers, &mut self.peer_bits, now, id, from, w);
        let mut gap = None;
        // Only the first HELLO of a peer is its restart. It repeats HELLO
        // until our HELLO_BACK gets through; 1.4.7 treats every repeat as a
        // restart, wiping its resend queue and skipping gap detection, so
        // a lost HELLO_BACK under loss loses data for good.
        // A HELLO that goes backwards is a restart too (the peer's new,
        // random sequence numbers may start below the old ones).
        let backwards = peer.last.is_some_and(|last| !seq::after(h.seq, last));
        let restarted = h.is_hello() && (!peer.in_hello || backwards);
        peer.in_hello = h.is_hello();
        if h.is_hello() {
            self.say_hello_back = true;
        }
        if restarted {
            if let Some(from_seq) = peer.ack_from
                && seq::before(h.seq, from_seq)
            {
                peer.window = w - 1;
                peer.ack_from = Some(h.seq);
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
            }
            // 1.4.7 empties its resend queue here (the restarted peer
            // cannot NACK old numbers). We keep it: a HELLO can also be the
            // first message of a peer that was up all along but whose
            // earlier messages were lost, and then those entries are what
            // it misses; the peer's next ACK resends them (see ACK below).
        } else if let Some(last) = peer.last {
            let expected = last.wrapping_add(1);
            if seq::after(h.seq, expected) && h.seq.wrapping_sub(expected) > MAX_GAP {
                let run = match peer.suspect {
                    Some((prev, run)) if prev.wrapping_add(1) == h.seq => run + 1,
                    _ => 1,
                };
                if run < JUMP_RUN {
                    peer.suspect = Some((h.seq, run));
                    return Verdict::Bad;
                }
                // The peer really is that far ahead (a long outage):
                // follow it, without NACKing what no queue still holds.
                peer.suspect = None;
                peer.ack_from = None;
            } else if seq::after(h.seq, expected) {
                peer.suspect = None;
                gap = Some(expected);
            } else if seq::before(h.seq, expected) {
                // Consecutive messages behind our mark for a while: a lying
                // number moved the mark ahead, and this is the peer's real
                // sequence.
                let (run, since) = match peer.behind {
                    Some((prev, run, since)) if prev.wrapping_add(1) == h.seq => {
                        (run.saturating_add(1), since)
                    }
                    _ => (1, now),
                };
                if run < JUMP_RUN || now.saturating_duration_since(since) < super::BEHIND_TIME {
                    peer.behind = Some((h.seq, run, since));
                    self.counters.before += 1;
                    return Verdict::Drop;
                }
                peer.behind = None;
                peer.ack_from = None;
            }
        }
        let verdict = self.ftfw_digest(now, id, h, msg);
        if verdict == Verdict::Bad {
            return verdict;
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return verdict;
        };
        match gap {
            Some(expected) => {
                self.counters.lost += u64::from(h.seq.wrapping_sub(expected));
                if let Some(from_seq) = peer.ack_from.take() {
                    self.txq.push_back(
                        Item::Control(Control::Ack {
                            from: from_seq,
                            to: expected.wrapping_sub(1),
                        }),
                        (),
                    );
                }
                self.txq.push_back(
                    Item::Control(Control::Nack {
                        from: expected,
                        to: h.seq.wrapping_sub(1),
                    }),
                    (),
                );
                peer.window = w - 1;
                peer.ack_from = Some(h.seq);
                // Again soon, in case this one is lost.
                peer.ack_due = true;
            }
            None => {
                let from_seq = *peer.ack_from.get_or_insert(h.seq);
                peer.window = peer.window.saturating_sub(1);
                if peer.window == 0 {
                    self.txq.push_back(
                        Item::Control(Control::Ack {
                            from: from_seq,
                            to: h.seq,
                        }),
                        (),
                    );
                    peer.window = w;
                    peer.ack_from = None;
                    peer.ack_due = false;
                } else if h.is_alive() {
                    // Maybe a sender's probe for a lost tail: what it holds
                    // unacknowledged is what we skipped. (Data alone waits
                    // for the window: a stream needs no more ACKs.)
                    peer.ack_due = true;
                }
            }
        }
        peer.last = Some(h.seq);
        if peer.ack_due && self.ack_at.is_none() {
            self.ack_at = Some(now + super::ACK_DELAY);
        }
        verdict
    }

    fn ftfw_digest(&mut self, now: Instant, sender: PeerId, h: &Header, msg: &[u8]) -> Verdict {
        if h.is_data() {
            return Verdict::Data;
        }
        match Control::decode(h, msg) {
            Some(Control::Ack { from, to }) => {
                if seq::before(to, from) {
                    return Verdict::Bad;
                }
                // ACKs name no addressee: with more than one peer on the
                // group, those meant for another node's numbers reach us
                // too. Ours end inside what we have sent and still hold;
                // taking another's as ours marked random entries as
                // skipped, resending them (RESYNC requests among them, so
                // every node bulk-sent every second).
                let ours = seq::before(to, self.next_seq)
                    && self
                        .rsq
                        .iter()
                        .next()
                        .is_some_and(|(_, oldest)| !seq::before(to, oldest.seq));
                if !ours {
                    return Verdict::Ctl;
                }
                let bit = self.peers.get(&sender).map_or(0, |p| p.bit);
                let required = self.live_peers(now) | bit;
                // Entries before the acknowledged range that this peer never
                // acknowledged were skipped by it: its NACK, or our answer,
                // was lost, and 1.4.7 would never send them again. Take
                // them too, and resend them.
                let taken = self.rsq.drain_walk_mut(|_, sent| {
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
                    self.probe_every = super::PROBE_MIN;
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
            Some(Control::Nack { from, to }) => {
                if seq::before(to, from) {
                    return Verdict::Bad;
                }
                let range = self.rsq_range(from, to);
                if !range.is_empty() {
                    self.probe_every = super::PROBE_MIN;
                }
                for (item, _) in range {
                    match item {
                        Item::Object(key) => self.txq.push_back(Item::Object(key), ()),
                        control => self.txq.push_back(control, ()),
                    }
                }
                Verdict::Ctl
            }
            Some(Control::Resync) => {
                self.resync_requested();
                Verdict::Ctl
            }
            Some(Control::Alive) => Verdict::Ctl,
            None => Verdict::Bad,
        }
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

    /// `origin`: the sending peer's index (see [`Peer::index`]).
    fn apply_data(&mut self, now: Instant, h: &Header, msg: &[u8], origin: u8) {
        let kind = h.kind;
        let result = match kind {
            MsgType::CtNew | MsgType::CtUpdate | MsgType::CtDelete => {
                syncproto::ct::decode_state(msg).map(|ct| self.apply_flow(now, kind, ct, origin))
            }
            MsgType::ExpNew | MsgType::ExpUpdate | MsgType::ExpDelete => {
                syncproto::exp::decode_expect(msg).map(|exp| self.apply_expect(now, kind, exp))
            }
            _ => {
                self.counters.malformed += 1;
                self.counters.bad_type += 1;
                return;
            }
        };
        match result {
            Ok(()) => self.counters.applied += 1,
            Err(_) => {
                self.counters.malformed += 1;
                self.counters.bad_payload += 1;
            }
        }
    }

    /// sync-modes.md §8.1.
    fn apply_flow(&mut self, now: Instant, kind: MsgType, mut ct: Conntrack, origin: u8) {
        if !self.settings.replicate_labels {
            ct.labels = None;
            ct.labels_mask = None;
        }
        if self.settings.disable_external_cache {
            let op = match kind {
                MsgType::CtNew => Inject::CtNew(Box::new(ct)),
                MsgType::CtUpdate => Inject::CtUpdate(Box::new(ct)),
                _ => Inject::CtDelete(Box::new(ct)),
            };
            self.events.push_back(SyncEvent::Inject(op));
            return;
        }
        let Some(key) = ct.key() else { return };
        let obj = ObjKey::Flow(crate::compact::Key::new(&key));
        let stored = match kind {
            MsgType::CtNew => self.external.insert_new_from(now, ct, origin).is_ok(),
            MsgType::CtUpdate => self.external.update_or_create_from(now, ct, origin).is_ok(),
            _ => {
                self.external.remove(&key);
                self.expiry.cancel(&obj);
                false
            }
        };
        if stored && let Protocol::Alarm { cache_timeout, .. } = self.settings.protocol {
            self.expiry.arm(obj, now + cache_timeout);
        }
    }

    fn apply_expect(&mut self, now: Instant, kind: MsgType, exp: Expect) {
        if self.settings.disable_external_cache {
            if self.expect.is_some() {
                let op = match kind {
                    MsgType::ExpDelete => Inject::ExpDelete(Box::new(exp)),
                    _ => Inject::ExpNew(Box::new(exp)),
                };
                self.events.push_back(SyncEvent::Inject(op));
            }
            return;
        }
        let Some(state) = self.expect.as_mut() else {
            return;
        };
        let Some(key) = exp.key() else { return };
        let obj = ObjKey::Expect(Box::new(key.clone()));
        let stored = match kind {
            MsgType::ExpNew => state.external.insert_new(now, exp).is_ok(),
            MsgType::ExpUpdate => state.external.upsert(now, exp).is_ok(),
            _ => {
                state.external.remove_key(&key);
                self.expiry.cancel(&obj);
                false
            }
        };
        if stored && let Protocol::Alarm { cache_timeout, .. } = self.settings.protocol {
            self.expiry.arm(obj, now + cache_timeout);
        }
    }
}

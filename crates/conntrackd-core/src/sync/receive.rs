//! The receive path (docs/wire-protocol.md §7; docs/sync-modes.md §5.7, §6, §7, §8.1).

use std::net::IpAddr;
use std::time::Instant;

use conntrack_model::{Conntrack, Expect};
use syncproto::{FrameError, Header, MsgType, frames};

use super::auth::Delivery;
use super::{Inject, Mode, ObjKey, Peer, PeerId, SyncCore, SyncEvent, Transmit, Verdict};
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
        self.peers.relink_session(session, from);
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
        if let Some(bit) = self.peers.make_room_for(&peer) {
            self.forgot_peer(bit);
        }
        let verdict = match self.mode {
            Mode::Ftfw(_) => self.ftfw_receive(now, peer, from, h, msg),
            Mode::Alarm(_) => self.alarm_receive(now, peer, from, h),
            Mode::Notrack => self.notrack_receive(now, peer, from, h),
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

    pub(super) fn resync_requested(&mut self) {
        self.events
            .push_back(SyncEvent::Notice("resync requested by other node".into()));
        self.bulk_send();
    }

    /// A peer was forgotten to make room: its bit is cleared from the
    /// resend queue, so that its acknowledgements do not count for the
    /// peer that gets the bit next.
    fn forgot_peer(&mut self, bit: u64) {
        if let Mode::Ftfw(ftfw) = &mut self.mode {
            ftfw.rsq.for_each_value(|sent| sent.acked &= !bit);
        }
        self.counters.peers_evicted += 1;
    }

    /// `origin`: the sending peer's index (see [`Peer::index`]).
    fn apply_data(&mut self, now: Instant, h: &Header, msg: &[u8], origin: u8) {
        let kind = h.kind;
        let result = match kind {
            MsgType::CtNew | MsgType::CtUpdate | MsgType::CtDelete => {
                syncproto::ct::decode_state(msg)
                    .map(|mut ct| self.apply_flow(now, kind, &mut ct, origin))
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

    /// docs/sync-modes.md §8.1.
    fn apply_flow(&mut self, now: Instant, kind: MsgType, ct: &mut Conntrack, origin: u8) {
        if !self.settings.replicate_labels {
            ct.labels = None;
            ct.labels_mask = None;
        }
        if self.settings.disable_external_cache {
            let ct = Box::new(std::mem::take(ct));
            let op = match kind {
                MsgType::CtNew => Inject::CtNew(ct),
                MsgType::CtUpdate => Inject::CtUpdate(ct),
                _ => Inject::CtDelete(ct),
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
                self.timers.expiry.cancel(&obj);
                false
            }
        };
        if stored {
            self.arm_expiry(now, obj);
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
                self.timers.expiry.cancel(&obj);
                false
            }
        };
        if stored {
            self.arm_expiry(now, obj);
        }
    }
}

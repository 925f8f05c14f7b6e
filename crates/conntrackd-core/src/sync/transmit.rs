//! The transmit path (sync-modes.md §5.3; wire-protocol.md §8).

use std::time::Instant;

use syncproto::ct::EncodeOptions;
use syncproto::{Control, MsgType};

use super::queue::Item;
use super::{ALIVE_INTERVAL, Dead, Direct, Hello, ObjKey, SyncCore, SyncEvent, Transmit, auth};
use crate::cache::ObjectState;

impl SyncCore {
    // ---- transmit ------------------------------------------------------------

    /// Next datagram to send. Runs a transmit round (§5.3) when something
    /// is queued. Batches are built one at a time, as they are asked for:
    /// a channel that cannot take more (a TCP peer that reads slowly) is
    /// simply not asked, and what waits stays in the transmit queue, one
    /// entry per object, instead of piling up as batches that would have to
    /// be dropped.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.transmits.is_empty() && (!self.txq.is_empty() || !self.direct.is_empty()) {
            self.transmit_round(now);
        }
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SyncEvent> {
        self.events.pop_front()
    }

    fn next_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// FTFW: HELLO until the peer answered, HELLO_BACK once after a HELLO.
    fn hello_flags(&mut self) -> u8 {
        if !self.is_ftfw() {
            return 0;
        }
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

    fn encode_options(&self) -> EncodeOptions {
        EncodeOptions {
            tcp_window_tracking: self.settings.tcp_window_tracking,
            omit_timeout: self.settings.commit_timeout > 0,
            omit_labels: !self.settings.replicate_labels,
        }
    }

    /// Builds messages until a batch is complete (or nothing is queued).
    fn transmit_round(&mut self, now: Instant) {
        let opts = self.encode_options();
        while self.transmits.is_empty()
            && let Some(direct) = self.direct.pop_front()
        {
            let mut msg = std::mem::take(&mut self.scratch);
            msg.clear();
            let seq = self.next_seq();
            let built = match &direct {
                Direct::Flow(kind, ct) => {
                    syncproto::ct::encode_state(*kind, 0, seq, ct, opts, &mut msg)
                }
                Direct::Expect(kind, exp) => {
                    syncproto::exp::encode_expect(*kind, 0, seq, exp, opts, &mut msg)
                }
            };
            if built {
                self.emit(now, &msg);
            }
            self.scratch = msg;
        }
        while self.transmits.is_empty()
            && let Some((item, ())) = self.txq.pop_front()
        {
            let mut msg = std::mem::take(&mut self.scratch);
            msg.clear();
            match item {
                Item::Control(control) => {
                    let flags = self.hello_flags();
                    let seq = self.next_seq();
                    control.encode(seq, flags, &mut msg);
                    self.emit(now, &msg);
                    if self.is_ftfw() && !matches!(control, Control::Alive) {
                        self.push_resend(Item::Control(control), seq);
                    }
                }
                Item::Object(key) => {
                    let built = self.build_object(&key, opts, &mut msg);
                    if let Some(seq) = built {
                        self.emit(now, &msg);
                        if self.is_ftfw() {
                            self.push_resend(Item::Object(key), seq);
                        } else {
                            self.release(&key);
                        }
                    } else {
                        self.release(&key);
                    }
                }
            }
            self.scratch = msg;
        }
        let drained = self.txq.is_empty() && self.direct.is_empty();
        if drained && self.settings.flush_delay.is_zero() {
            self.flush_batch(now);
        } else if drained && !self.batch.is_empty() && self.flush_at.is_none() {
            self.flush_at = Some(now + self.settings.flush_delay);
        }
        if !self.is_alarm() {
            self.alive_at = Some(now + ALIVE_INTERVAL);
        }
        // The probe follows the last datagram: a stream needs none.
        if self.is_ftfw() && self.rsq.objects() > 0 && !self.peers.is_empty() {
            self.probe_at = Some(now + self.probe_every);
        }
    }

    /// The pending DEL of an object (no lookup while nothing is dead).
    fn dead_of(&self, key: &ObjKey) -> Option<&Dead> {
        if self.dead.is_empty() {
            None
        } else {
            self.dead.get(key)
        }
    }

    /// The message type an object would be sent as now; None if it is
    /// gone without a pending DEL.
    fn object_kind(&self, key: &ObjKey) -> Option<MsgType> {
        match key {
            ObjKey::Flow(k) => match (self.local.cache.get_key(k), self.dead_of(key)) {
                (Some(e), _) if e.state == ObjectState::New => Some(MsgType::CtNew),
                (Some(e), _) if e.state == ObjectState::Alive => Some(MsgType::CtUpdate),
                (_, Some(Dead::Flow(_))) => Some(MsgType::CtDelete),
                _ => None,
            },
            ObjKey::Expect(k) => {
                let live = self.expect.as_ref().and_then(|s| s.internal.get(k));
                match (live, self.dead_of(key)) {
                    (Some(e), _) if e.alive => Some(MsgType::ExpUpdate),
                    (Some(_), _) => Some(MsgType::ExpNew),
                    (None, Some(Dead::Expect(_))) => Some(MsgType::ExpDelete),
                    _ => None,
                }
            }
        }
    }

    /// Builds the message of an object from its current state (§2.3) and
    /// returns its sequence number.
    fn build_object(
        &mut self,
        key: &ObjKey,
        opts: EncodeOptions,
        out: &mut Vec<u8>,
    ) -> Option<u32> {
        let kind = self.object_kind(key)?;
        let flags = self.hello_flags();
        let seq = self.next_seq();
        let ok = match key {
            ObjKey::Flow(k) => {
                let ct = match (kind, self.local.cache.get_key(k), self.dead_of(key)) {
                    (MsgType::CtDelete, _, Some(Dead::Flow(ct))) => ct.get(),
                    (_, Some(e), _) => e.ct(),
                    _ => return None,
                };
                syncproto::ct::encode_state(kind, flags, seq, &ct, opts, out)
            }
            ObjKey::Expect(k) => {
                let live = self.expect.as_ref().and_then(|s| s.internal.get(k));
                let exp = match (kind, live, self.dead_of(key)) {
                    (MsgType::ExpDelete, _, Some(Dead::Expect(exp))) => &**exp,
                    (_, Some(e), _) => &e.exp,
                    _ => return None,
                };
                syncproto::exp::encode_expect(kind, flags, seq, exp, opts, out)
            }
        };
        ok.then_some(seq)
    }

    /// Adds a message to the active channel's batch (wire-protocol.md §8).
    fn emit(&mut self, now: Instant, msg: &[u8]) {
        let size = self
            .settings
            .batch_sizes
            .get(self.active)
            .copied()
            .unwrap_or(1472)
            .saturating_sub(if self.auth.is_some() {
                auth::OVERHEAD
            } else {
                0
            });
        if !self.batch.is_empty() && self.batch.len() + msg.len() >= size {
            self.flush_batch(now);
        }
        self.batch.extend_from_slice(msg);
    }

    /// Sends the partly filled batch now instead of at its deadline (the
    /// shell is about to pause).
    pub fn flush_pending(&mut self, now: Instant) {
        if self.flush_at.is_some() {
            self.flush_batch(now);
        }
    }

    pub(super) fn flush_batch(&mut self, now: Instant) {
        self.flush_at = None;
        if !self.batch.is_empty() {
            let mut bytes = std::mem::take(&mut self.batch);
            if let Some(auth) = self.auth.as_mut() {
                bytes = auth.seal_data(now, &bytes);
            }
            self.transmits.push_back(Transmit {
                channel: self.active,
                bytes,
            });
        }
    }
}

//! The peers a core hears from (docs/sync-modes.md §5.7): who they are,
//! their sequence numbers, and the bit each holds in the resend queue's
//! acknowledgement masks.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use syncproto::seq;

use super::NetworkCounters;
use super::ftfw::FtfwPeer;
use crate::FastMap;

/// Senders tracked at once (one bit each in the resend queue's ack masks).
/// A new sender beyond them takes the place of the one heard longest ago:
/// forged source addresses can neither grow the table nor lock a peer out.
pub const MAX_PEERS: usize = 64;

/// A peer silent this long no longer holds back the resend queue, and is
/// not waited for to call this node synced.
pub(crate) const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// Who a peer is. Without authentication, the address its datagrams come
/// from; with it, its session, which the envelope authenticates (an
/// address can be spoofed, and envelopes reflected from another one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PeerId {
    Address(IpAddr),
    Session(u64),
}

/// What is known of one peer. 1.4.7 keeps a single sequence tracker for
/// all peers, which breaks with three nodes; we keep one per [`PeerId`].
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The last sequence number it sent.
    pub(crate) last: Option<u32>,
    /// Bit of this peer in the resend queue's acknowledgement masks.
    pub(crate) bit: u64,
    pub(crate) heard: Instant,
    /// Where it was heard from last.
    pub(crate) addr: IpAddr,
    /// When it was first heard (ALARM readiness: one refresh period later
    /// it has announced everything).
    pub(crate) first_heard: Instant,
    /// NOTRACK: when its last ALIVE came (it is idle after a bulk send).
    pub(crate) alive_at: Option<Instant>,
    /// FTFW's acknowledgement state of its messages.
    pub(crate) ftfw: FtfwPeer,
}

impl Peer {
    /// The peer's index, 0 to 63: its bit's position. External entries
    /// record it as their origin.
    pub(crate) fn index(&self) -> u8 {
        self.bit.trailing_zeros() as u8
    }

    pub(crate) fn is_live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.heard) < PEER_TIMEOUT
    }
}

/// The peers, at most [`MAX_PEERS`], each with a bit of its own.
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    peers: FastMap<PeerId, Peer>,
    /// The bits in use.
    bits: u64,
}

impl PeerTable {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn contains_key(&self, id: &PeerId) -> bool {
        self.peers.contains_key(id)
    }

    pub(crate) fn get(&self, id: &PeerId) -> Option<&Peer> {
        self.peers.get(id)
    }

    pub(crate) fn get_mut(&mut self, id: &PeerId) -> Option<&mut Peer> {
        self.peers.get_mut(id)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.peers.values_mut()
    }

    /// The state of peer `id`, created on first contact; `from` is where
    /// it was heard now. `window` is the FTFW acknowledgement window a new
    /// peer starts with.
    pub(crate) fn heard(
        &mut self,
        now: Instant,
        id: PeerId,
        from: IpAddr,
        window: u32,
    ) -> &mut Peer {
        // The lowest free bit (there is one: at most MAX_PEERS peers).
        let free = 1u64 << (!self.bits).trailing_zeros().min(63);
        let peer = self.peers.entry(id).or_insert_with(|| Peer {
            last: None,
            bit: free,
            heard: now,
            addr: from,
            first_heard: now,
            alive_at: None,
            ftfw: FtfwPeer::new(window),
        });
        self.bits |= peer.bit;
        peer.heard = now;
        peer.addr = from;
        peer
    }

    /// A verified session from an address a known session was heard from:
    /// the node behind it restarted, and its state moves to the new
    /// session (so that the restart is recognised as one).
    pub(crate) fn relink_session(&mut self, session: u64, from: IpAddr) {
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

    /// Makes room for `id` if the table is full and does not hold it, by
    /// forgetting the peer heard longest ago. A newcomer is always taken:
    /// spoofed senders that keep the table full cannot lock a real peer
    /// out (without authentication they can only make peers be forgotten
    /// and met again; with it, only verified sessions get here). Returns
    /// the forgotten peer's bit, which must be cleared wherever it is
    /// recorded, so that its acknowledgements do not count for the peer
    /// that gets the bit next.
    pub(crate) fn make_room_for(&mut self, id: &PeerId) -> Option<u64> {
        if self.peers.len() < MAX_PEERS || self.peers.contains_key(id) {
            return None;
        }
        let (&quietest, peer) = self.peers.iter().min_by_key(|(_, p)| p.heard)?;
        let bit = peer.bit;
        self.peers.remove(&quietest);
        self.bits &= !bit;
        Some(bit)
    }

    /// The bits in use.
    #[cfg(test)]
    pub(crate) fn bits(&self) -> u64 {
        self.bits
    }

    /// The bits of the peers heard within [`PEER_TIMEOUT`].
    pub(crate) fn live_mask(&self, now: Instant) -> u64 {
        self.peers
            .values()
            .filter(|p| p.is_live(now))
            .fold(0, |mask, p| mask | p.bit)
    }

    /// Statistics-only sequence tracking (ALARM, NOTRACK): the correct
    /// count `seq - last - 1`, where 1.4.7 adds two.
    pub(crate) fn track_sequence(
        &mut self,
        now: Instant,
        id: PeerId,
        from: IpAddr,
        seq_no: u32,
        counters: &mut NetworkCounters,
    ) {
        let peer = self.heard(now, id, from, 0);
        if let Some(last) = peer.last {
            let expected = last.wrapping_add(1);
            if seq::after(seq_no, expected) {
                counters.lost += u64::from(seq_no.wrapping_sub(expected));
            } else if seq::before(seq_no, expected) {
                counters.before += 1;
            }
        }
        peer.last = Some(seq_no);
    }
}

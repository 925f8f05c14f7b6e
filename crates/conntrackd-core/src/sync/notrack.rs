//! NOTRACK (docs/sync-modes.md §7): messages sent once, no
//! acknowledgements; a peer may ask for a bulk send (RESYNC) and says it
//! is idle with ALIVE. It has no state of its own beyond the peers'.

use std::net::IpAddr;
use std::time::Instant;

use super::{PeerId, SyncCore, Verdict};
use syncproto::Header;

impl SyncCore {
    pub(super) fn notrack_receive(
        &mut self,
        now: Instant,
        id: PeerId,
        from: IpAddr,
        h: &Header,
    ) -> Verdict {
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
            self.peers
                .track_sequence(now, id, from, h.seq, &mut self.counters);
            if h.is_alive()
                && let Some(peer) = self.peers.get_mut(&id)
            {
                peer.alive_at = Some(now);
            }
        }
        verdict
    }
}

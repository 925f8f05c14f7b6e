//! Whether a node holds its peers' state (docs/readiness.md): what
//! `conntrackd --synced` answers and the `sync_synced` metric shows.

use std::time::{Duration, Instant};

use syncproto::Control;

use super::queue::Item;
use super::{ALIVE_INTERVAL, Mode, Peer, SyncCore};

/// Readiness waits this long after start for peers to be heard (FTFW and
/// NOTRACK peers send at least every second).
const SYNC_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    pub synced: bool,
    /// Peers heard within the last 5 s.
    pub live_peers: usize,
    /// Live peers whose state has not all arrived yet.
    pub waiting: usize,
}

impl SyncCore {
    /// Does this node hold its live peers' state? Once it did (checked on
    /// every timer), it stays synced: a peer that restarts later must not
    /// make the node that holds the addresses look unready.
    pub fn readiness(&self, now: Instant) -> Readiness {
        let mut r = self.readiness_now(now);
        r.synced |= self.synced_once;
        r
    }

    /// Latches [`SyncCore::readiness`] once it is reached.
    pub(super) fn note_readiness(&mut self, now: Instant) {
        if !self.synced_once && self.readiness_now(now).synced {
            self.synced_once = true;
        }
    }

    /// Readiness as things stand now. Before the grace period, no; after
    /// it, with no live peer, yes; otherwise when every live peer is
    /// settled ([`SyncCore::settled`]) and no repair is queued unsent.
    fn readiness_now(&self, now: Instant) -> Readiness {
        let live: Vec<&Peer> = self.peers.values().filter(|p| p.is_live(now)).collect();
        let repair_queued = || {
            self.txq.iter().any(|(item, ())| {
                matches!(item, Item::Control(Control::Resync | Control::Nack { .. }))
            })
        };
        let alarm = matches!(self.mode, Mode::Alarm(_));
        let resyncs = !alarm && self.settings.startup_resync;
        let waiting = if resyncs && repair_queued() {
            live.len().max(1)
        } else if alarm || resyncs {
            live.iter().filter(|p| !self.settled(now, p)).count()
        } else {
            0
        };
        Readiness {
            synced: now >= self.started + SYNC_GRACE && waiting == 0,
            live_peers: live.len(),
            waiting,
        }
    }

    /// Has everything `peer` holds arrived? FTFW: it acknowledged our last
    /// RESYNC (or NACK), so whatever it queued in answer came before that
    /// ACK, and our first ACK of its messages (after which it resends what
    /// we never heard). NOTRACK (best effort: a lost RESYNC is not seen):
    /// it was idle (an ALIVE) a second after our RESYNC went. ALARM: it
    /// was heard for a whole refresh period.
    fn settled(&self, now: Instant, peer: &Peer) -> bool {
        match &self.mode {
            Mode::Ftfw(_) => {
                self.repair.is_some_and(|(mark, _)| peer.ftfw.acked(mark))
                    && matches!(peer.ftfw.first_ack,
                        super::ftfw::FirstAck::Sent(mark) if peer.ftfw.acked(mark))
            }
            Mode::Notrack => self.repair.is_some_and(|(_, sent)| {
                peer.alive_at.is_some_and(|at| at >= sent + ALIVE_INTERVAL)
            }),
            Mode::Alarm(alarm) => now >= peer.first_heard + alarm.refresh + Duration::from_secs(1),
        }
    }
}

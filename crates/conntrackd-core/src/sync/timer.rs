//! Every deadline of a [`super::SyncCore`], in one table: the core's own
//! timers by name ([`Timer`]) and the per-object ALARM timers. The shell
//! asks [`TimerTable::next`] (through `SyncCore::poll_timeout`) and calls
//! back when it passes; nothing else in the core keeps a deadline.

use std::time::Instant;

use super::ObjKey;
use super::object_timers::ObjectTimers;

/// The core's named timers. When several are due at once they run in the
/// order of [`Timer::ORDER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The partly filled batch goes out (`flush_delay` after its first
    /// message).
    Flush,
    /// Stale flows of a restarted peer are dropped (FTFW).
    Sweep,
    /// ACKs due to peers that sent data go out (FTFW, 20 ms later).
    Ack,
    /// A sender holding unacknowledged objects probes for a lost tail
    /// (FTFW).
    Probe,
    /// The once-a-second ALIVE, or FTFW's periodic ACKs (FTFW, NOTRACK).
    Alive,
    /// `PurgeTimeout` after `-t`: the kernel table is flushed.
    Purge,
}

impl Timer {
    /// The order in which timers due together run: a batch goes out
    /// before anything else is queued, due ACKs before the periodic ones.
    pub(crate) const ORDER: [Timer; 6] = [
        Timer::Flush,
        Timer::Sweep,
        Timer::Ack,
        Timer::Probe,
        Timer::Alive,
        Timer::Purge,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
pub(crate) struct TimerTable {
    named: [Option<Instant>; Timer::ORDER.len()],
    /// ALARM: when each internal object is announced again.
    pub(crate) refresh: ObjectTimers<ObjKey>,
    /// ALARM: when each external object expires.
    pub(crate) expiry: ObjectTimers<ObjKey>,
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.named[timer.slot()] = Some(at);
    }

    /// Sets `timer` unless it is already set.
    pub(crate) fn set_if_stopped(&mut self, timer: Timer, at: Instant) {
        self.named[timer.slot()].get_or_insert(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.named[timer.slot()] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.named[timer.slot()]
    }

    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// True (and stopped) if `timer` is due at `now`.
    pub(crate) fn expire(&mut self, timer: Timer, now: Instant) -> bool {
        let slot = &mut self.named[timer.slot()];
        if slot.is_some_and(|at| at <= now) {
            *slot = None;
            return true;
        }
        false
    }

    /// The earliest deadline of the whole table.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.named
            .iter()
            .flatten()
            .copied()
            .chain(self.refresh.next())
            .chain(self.expiry.next())
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::{FlowKey, Tuple};
    use std::time::Duration;

    fn key() -> ObjKey {
        let ip = |s: &str| s.parse().expect("ip");
        ObjKey::Flow(crate::compact::Key::new(&FlowKey {
            orig: Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), 17).with_ports(1, 53),
            zone: 0,
        }))
    }

    #[test]
    fn a_timer_expires_once_and_the_table_knows_the_earliest() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.set(Timer::Alive, t0 + Duration::from_secs(1));
        table.set_if_stopped(Timer::Ack, t0 + Duration::from_millis(20));
        table.set_if_stopped(Timer::Ack, t0 + Duration::from_millis(900));
        assert_eq!(table.get(Timer::Ack), Some(t0 + Duration::from_millis(20)));
        table.expiry.arm(key(), t0 + Duration::from_millis(5));
        assert_eq!(table.next(), Some(t0 + Duration::from_millis(5)));
        assert!(!table.expire(Timer::Ack, t0));
        assert!(table.expire(Timer::Ack, t0 + Duration::from_millis(20)));
        assert!(!table.expire(Timer::Ack, t0 + Duration::from_millis(20)));
        assert!(!table.is_set(Timer::Ack));
        table.stop(Timer::Alive);
        assert_eq!(table.next(), Some(t0 + Duration::from_millis(5)));
    }
}

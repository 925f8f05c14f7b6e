//! ALARM (docs/sync-modes.md §6): every object is announced again at a
//! random moment within each refresh period, and a received one expires
//! `CacheTimeout` after it was last heard. No acknowledgements, no
//! resync; sequence numbers only feed the statistics.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use syncproto::Header;

use super::{Mode, ObjKey, PeerId, SyncCore, Verdict};

/// ALARM's state in a core (its timers are in the core's table).
#[derive(Debug)]
pub(crate) struct Alarm {
    /// `RefreshTime`.
    pub(crate) refresh: Duration,
    /// `CacheTimeout`.
    cache_timeout: Duration,
    /// Seed of the refresh jitter.
    rng: u64,
}

impl Alarm {
    pub(crate) fn new(refresh: Duration, cache_timeout: Duration, seed: u64) -> Alarm {
        Alarm {
            refresh,
            cache_timeout,
            rng: seed | 1,
        }
    }

    /// When an object announced at `now` is next announced:
    /// `1 + random() % R` seconds plus 0.2–1.0 s (§6).
    fn next_refresh(&mut self, now: Instant) -> Instant {
        let r = self.refresh.as_secs().max(1);
        let secs = 1 + self.random() % r;
        let micros = (1 + self.random() % 5) * 200_000 - 1;
        now + Duration::from_secs(secs) + Duration::from_micros(micros)
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
}

impl SyncCore {
    /// Arms the refresh of an internal object (ALARM only).
    pub(super) fn arm_refresh(&mut self, now: Instant, key: &ObjKey) {
        if let Mode::Alarm(alarm) = &mut self.mode {
            let at = alarm.next_refresh(now);
            self.timers.refresh.arm(key.clone(), at);
        }
    }

    /// A received object was stored: it expires unless heard again (ALARM
    /// only).
    pub(super) fn arm_expiry(&mut self, now: Instant, key: ObjKey) {
        if let Mode::Alarm(alarm) = &self.mode {
            self.timers.expiry.arm(key, now + alarm.cache_timeout);
        }
    }

    pub(super) fn alarm_receive(
        &mut self,
        now: Instant,
        id: PeerId,
        from: IpAddr,
        h: &Header,
    ) -> Verdict {
        self.peers
            .track_sequence(now, id, from, h.seq, &mut self.counters);
        if h.flags != 0 {
            Verdict::Ctl
        } else {
            Verdict::Data
        }
    }

    /// The object timers that passed: live internal objects are announced
    /// again, external ones that were not refreshed expire.
    pub(super) fn on_object_timers(&mut self, now: Instant) {
        while let Some(key) = self.timers.refresh.pop_expired(now) {
            if self.is_live(&key) {
                self.arm_refresh(now, &key);
                self.queue_object(key);
            }
        }
        while let Some(key) = self.timers.expiry.pop_expired(now) {
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
}

//! The replay window of one verified session (docs/authentication.md,
//! "Replays"), as in IPsec ESP and WireGuard: the highest counter seen and
//! a bitmap of the 64 below it.

const WINDOW: u64 = 64;

/// Which counters of a session were accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Window {
    highest: u64,
    /// Bit i set: counter `highest - i` was seen.
    seen: u64,
}

impl Window {
    /// A window that has seen `counter` and everything below it: for a
    /// session verified at `counter`, whose earlier envelopes we cannot
    /// tell from old captures.
    pub(super) fn closed_below(counter: u64) -> Window {
        Window {
            highest: counter,
            seen: u64::MAX,
        }
    }

    /// Accepts `counter` once; reordering within 64 envelopes is tolerated,
    /// anything older is refused.
    pub(super) fn accept(&mut self, counter: u64) -> bool {
        if counter > self.highest {
            let shift = counter - self.highest;
            self.seen = if shift >= WINDOW {
                1
            } else {
                (self.seen << shift) | 1
            };
            self.highest = counter;
            return true;
        }
        let age = self.highest - counter;
        if age >= WINDOW || self.seen & (1 << age) != 0 {
            return false;
        }
        self.seen |= 1 << age;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_once_and_nothing_too_old() {
        let mut w = Window::default();
        assert!(w.accept(100));
        assert!(w.accept(200));
        assert!(!w.accept(100), "more than 64 behind");
        assert!(w.accept(150));
        assert!(!w.accept(150));
        assert!(w.accept(201));
        assert!(!w.accept(201));
        assert!(!w.accept(0));
    }

    #[test]
    fn a_closed_window_takes_only_what_comes_after() {
        let mut w = Window::closed_below(1000);
        assert!(!w.accept(1000));
        assert!(!w.accept(999));
        assert!(!w.accept(940));
        assert!(w.accept(1002));
        assert!(w.accept(1001));
        assert!(!w.accept(1001));
    }

    proptest::proptest! {
        /// Against a model: a counter is accepted iff it was not accepted
        /// before and is within 64 of the highest accepted so far.
        #[test]
        fn matches_the_model(counters in proptest::collection::vec(1u64..300, 0..400)) {
            let mut w = Window::default();
            let mut accepted = std::collections::BTreeSet::new();
            for c in counters {
                let highest = accepted.iter().next_back().copied().unwrap_or(0);
                let want = !accepted.contains(&c) && c + WINDOW > highest;
                proptest::prop_assert_eq!(w.accept(c), want, "counter {}", c);
                if want {
                    accepted.insert(c);
                }
            }
        }
    }
}

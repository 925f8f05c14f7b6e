//! Whose turn it is among the sync channels: each wait for input asks the
//! channels in turn, starting after the last one that was ready, so that a
//! channel kept busy (by traffic, or by a flood on one link) cannot starve
//! the others.

use std::cell::Cell;

#[derive(Debug, Default)]
pub(super) struct Turns {
    /// The channel asked first next time.
    next: Cell<usize>,
}

impl Turns {
    /// The first of `count` channels, in turn, for which `ready` is true;
    /// the next pick starts after it.
    pub(super) fn pick(&self, count: usize, mut ready: impl FnMut(usize) -> bool) -> Option<usize> {
        if count == 0 {
            return None;
        }
        let first = self.next.get() % count;
        let chosen = (0..count)
            .map(|k| (first + k) % count)
            .find(|&i| ready(i))?;
        self.next.set((chosen + 1) % count);
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_channel_does_not_starve_the_others() {
        let turns = Turns::default();
        // Channels 0 and 2 always have input; 1 never does.
        let picks: Vec<_> = (0..6).filter_map(|_| turns.pick(3, |i| i != 1)).collect();
        assert_eq!(picks, [0, 2, 0, 2, 0, 2]);
        // Every channel ready: each in turn.
        let picks: Vec<_> = (0..4).filter_map(|_| turns.pick(3, |_| true)).collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        // None ready, or no channel: nothing, and the turn stays.
        assert_eq!(turns.pick(3, |_| false), None);
        assert_eq!(turns.pick(0, |_| true), None);
        assert_eq!(turns.pick(3, |_| true), Some(1));
    }
}

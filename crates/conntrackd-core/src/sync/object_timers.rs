//! Per-object deadlines (ALARM refresh and external expiry timers), kept
//! in the core's [`super::timer::TimerTable`].

use std::collections::BTreeSet;

use crate::FastMap;
use std::hash::Hash;
use std::time::Instant;

/// A set of deadlines, at most one per key.
#[derive(Debug)]
pub(crate) struct ObjectTimers<K> {
    next_ticket: u64,
    due: BTreeSet<(Instant, u64)>,
    keys: FastMap<u64, K>,
    armed: FastMap<K, (Instant, u64)>,
}

impl<K> Default for ObjectTimers<K> {
    fn default() -> Self {
        ObjectTimers {
            next_ticket: 0,
            due: BTreeSet::new(),
            keys: FastMap::default(),
            armed: FastMap::default(),
        }
    }
}

impl<K: Clone + Eq + Hash> ObjectTimers<K> {
    /// Arms (or re-arms) the timer of `key`.
    pub(crate) fn arm(&mut self, key: K, at: Instant) {
        self.cancel(&key);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.due.insert((at, ticket));
        self.keys.insert(ticket, key.clone());
        self.armed.insert(key, (at, ticket));
    }

    pub(crate) fn cancel(&mut self, key: &K) {
        // FTFW and NOTRACK arm none: no hashing then.
        if self.armed.is_empty() {
            return;
        }
        if let Some((at, ticket)) = self.armed.remove(key) {
            self.due.remove(&(at, ticket));
            self.keys.remove(&ticket);
        }
    }

    pub(crate) fn deadline(&self, key: &K) -> Option<Instant> {
        self.armed.get(key).map(|(at, _)| *at)
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Removes and returns one expired key.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<K> {
        let &(at, ticket) = self.due.first()?;
        if at > now {
            return None;
        }
        self.due.remove(&(at, ticket));
        let key = self.keys.remove(&ticket)?;
        self.armed.remove(&key);
        Some(key)
    }

    pub(crate) fn clear(&mut self) {
        self.due.clear();
        self.keys.clear();
        self.armed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rearming_replaces_the_deadline() {
        let t0 = Instant::now();
        let mut t = ObjectTimers::default();
        t.arm("a", t0 + Duration::from_secs(5));
        t.arm("b", t0 + Duration::from_secs(2));
        t.arm("a", t0 + Duration::from_secs(1));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(3)), Some("a"));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(3)), Some("b"));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(9)), None);
    }
}

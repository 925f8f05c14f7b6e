//! The hash index of a flow table: open addressing with linear probing over
//! 8-byte buckets, each holding an entry's position and 32 bits of its key's
//! hash. A lookup reads neighbouring buckets (mostly one cache line) and
//! then the entry it points at; a SwissTable reads its control bytes first,
//! one more cache miss per lookup on a table too large for the cache.
//!
//! An all-zero bucket is empty, so a new index is zeroed memory that the
//! kernel maps lazily: room reserved up front costs nothing until used.
//! Growing reads only the buckets (the stored hash places them), never the
//! entries.

/// Buckets are at most three quarters full: probe sequences stay within a
/// cache line or two (eight buckets each), and the index takes at most
/// 8 / 0.75 ≈ 11 bytes per entry.
const MAX_LOAD: (usize, usize) = (3, 4);
const MIN_BUCKETS: usize = 16;

#[derive(Debug, Default)]
pub(crate) struct Index {
    /// `hash << 32 | (position + 1)`; 0 is empty. Length 0 or a power of two.
    buckets: Vec<u64>,
    len: usize,
}

fn pack(hash: u32, at: u32) -> u64 {
    u64::from(hash) << 32 | (u64::from(at) + 1)
}

fn hash_of(bucket: u64) -> u32 {
    (bucket >> 32) as u32
}

fn position_of(bucket: u64) -> u32 {
    (bucket as u32).wrapping_sub(1)
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the index takes before it grows.
    pub(crate) fn capacity(&self) -> usize {
        self.buckets.len() / MAX_LOAD.1 * MAX_LOAD.0
    }

    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Where a hash's probe sequence starts: the top bits of a
    /// multiplicative hash, so every bit of `hash` counts.
    fn home(&self, hash: u32) -> usize {
        let spread = u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bits = self.buckets.len().trailing_zeros();
        if bits == 0 {
            0
        } else {
            (spread >> (64 - bits)) as usize
        }
    }

    /// The bucket of the entry with this hash that `is_it` accepts (given
    /// the entry's position).
    pub(crate) fn find(&self, hash: u32, mut is_it: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut at = self.home(hash);
        loop {
            let bucket = self.buckets[at];
            if bucket == 0 {
                return None;
            }
            if hash_of(bucket) == hash && is_it(position_of(bucket)) {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// The entry position a bucket found by [`Index::find`] holds.
    pub(crate) fn position(&self, bucket: usize) -> u32 {
        self.buckets
            .get(bucket)
            .map_or(u32::MAX, |&b| position_of(b))
    }

    /// Adds an entry; the caller knows its key is not in the index yet.
    /// `position` must be below `u32::MAX`.
    pub(crate) fn insert(&mut self, hash: u32, position: u32) {
        self.reserve(1);
        self.place(pack(hash, position));
        self.len += 1;
    }

    /// Puts a bucket in the first free place of its probe sequence.
    fn place(&mut self, bucket: u64) {
        let mask = self.mask();
        let mut at = self.home(hash_of(bucket));
        while self.buckets[at] != 0 {
            at = (at + 1) & mask;
        }
        self.buckets[at] = bucket;
    }

    /// Removes the entry of a bucket found by [`Index::find`]. Later
    /// buckets of the same run move back (no tombstones), so lookups never
    /// slow down as entries come and go.
    pub(crate) fn remove(&mut self, bucket: usize) {
        if self.buckets.get(bucket).is_none_or(|&b| b == 0) {
            return;
        }
        let mask = self.mask();
        let mut hole = bucket;
        let mut at = (bucket + 1) & mask;
        loop {
            let next = self.buckets[at];
            if next == 0 {
                break;
            }
            // It may fill the hole if its probe sequence starts at or
            // before the hole (cyclically): it was pushed past it.
            let home = self.home(hash_of(next));
            if (at.wrapping_sub(home) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.buckets[hole] = next;
                hole = at;
            }
            at = (at + 1) & mask;
        }
        self.buckets[hole] = 0;
        self.len -= 1;
    }

    /// Makes room for `additional` more entries without growing again.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let entries = self.len.saturating_add(additional);
        if entries <= self.capacity() && !self.buckets.is_empty() {
            return;
        }
        let needed = entries.saturating_mul(MAX_LOAD.1).div_ceil(MAX_LOAD.0);
        let size = needed.max(MIN_BUCKETS).next_power_of_two();
        // Zeroed: a large index is mapped lazily, page by page.
        let old = std::mem::replace(&mut self.buckets, vec![0; size]);
        for bucket in old.into_iter().filter(|&b| b != 0) {
            self.place(bucket);
        }
    }

    /// Forgets every entry, keeping the buckets.
    pub(crate) fn clear(&mut self) {
        self.buckets.fill(0);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Against a map from position to hash: every entry stays findable
        /// through inserts and removals (with colliding hashes, wrapping
        /// runs and growth), and nothing else is found.
        #[test]
        fn finds_exactly_what_it_holds(
            ops in proptest::collection::vec((any::<bool>(), 0u32..200, 0u32..6), 0..600),
        ) {
            let mut index = Index::default();
            // position -> hash; few distinct hashes, so runs collide.
            let mut model: HashMap<u32, u32> = HashMap::new();
            for (insert, position, hash) in ops {
                let found = index.find(hash, |p| p == position);
                prop_assert_eq!(found.is_some(), model.get(&position) == Some(&hash));
                if insert {
                    if let std::collections::hash_map::Entry::Vacant(place) = model.entry(position) {
                        index.insert(hash, position);
                        place.insert(hash);
                    }
                } else if let Some(bucket) = found {
                    prop_assert_eq!(index.position(bucket), position);
                    index.remove(bucket);
                    model.remove(&position);
                }
                prop_assert_eq!(index.len(), model.len());
                prop_assert!(index.len() <= index.capacity());
            }
            for (&position, &hash) in &model {
                prop_assert!(index.find(hash, |p| p == position).is_some());
            }
            index.clear();
            prop_assert!(index.is_empty());
            for (&position, &hash) in &model {
                prop_assert!(index.find(hash, |p| p == position).is_none());
            }
        }
    }

    #[test]
    fn reserve_holds_without_growing() {
        let mut index = Index::default();
        index.reserve(1000);
        let buckets = index.buckets.len();
        for p in 0u32..1000 {
            index.insert(p.wrapping_mul(2_654_435_761), p);
        }
        assert_eq!(index.buckets.len(), buckets);
        assert!(index.capacity() >= 1000);
    }
}

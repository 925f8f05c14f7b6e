//! The flow table behind a cache: entries stored densely in a `Vec`, found
//! through a hash index of 8-byte buckets (position and hash; see
//! [`crate::index`]). An entry is its own key (a stored flow knows its
//! original tuple), so keys are not stored twice.
//!
//! A hash map with the entries inline keeps them in its slots, which are
//! 12–56 % empty and all touched once the flows are spread over them; when
//! it grows, old and new tables coexist, so a 250k-flow cache briefly needs
//! three times its size. Here only the small index is sparse, the entry
//! vector grows in place (large reallocations are remapped, not copied) and
//! its spare capacity is never touched, so reserving room for `HashSize`
//! flows costs address space, not memory.
//!
//! A removed entry leaves a hole that the next insert fills, so removal
//! touches no other entry (each touch of a cold entry is a cache miss, and
//! those misses were most of a backup's CPU time).

use std::hash::BuildHasher;

use crate::compact::Key;
use crate::index::Index;

/// What a table holds: values that carry their own key.
pub(crate) trait Keyed {
    fn has_key(&self, key: &Key) -> bool;
}

/// A map from [`Key`] to `V` with dense storage.
#[derive(Debug)]
pub(crate) struct FlowTable<V> {
    index: Index,
    slots: Vec<Option<V>>,
    /// Holes in `slots`, filled first.
    holes: Vec<u32>,
    hasher: foldhash::fast::RandomState,
}

impl<V: Keyed> Default for FlowTable<V> {
    fn default() -> Self {
        FlowTable {
            index: Index::default(),
            slots: Vec::new(),
            holes: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// Where a key is, or where it would go.
pub(crate) enum Slot<'a, V> {
    Occupied(&'a mut V),
    Vacant(Vacant<'a, V>),
}

/// A free place for a key that is not in the table.
pub(crate) struct Vacant<'a, V> {
    table: &'a mut FlowTable<V>,
    hash: u32,
}

impl<V: Keyed> Vacant<'_, V> {
    /// `value` must have the key this place was found for.
    pub(crate) fn insert(self, value: V) {
        let table = self.table;
        let at = match table.holes.pop() {
            Some(at) => {
                if let Some(hole) = table.slots.get_mut(at as usize) {
                    *hole = Some(value);
                }
                at
            }
            None => {
                // Positions stay below u32::MAX: the table never holds that
                // many flows (HashLimit is a u32, and memory runs out first).
                let at = u32::try_from(table.slots.len()).unwrap_or(u32::MAX - 1);
                table.slots.push(Some(value));
                at
            }
        };
        table.index.insert(self.hash, at);
    }
}

impl<V: Keyed> FlowTable<V> {
    fn hash(&self, key: &Key) -> u32 {
        // The low half: foldhash mixes all of its output bits.
        self.hasher.hash_one(key) as u32
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Flows the table holds before its index or storage grows (holes lie
    /// inside the vector's length, so its capacity counts them).
    pub(crate) fn capacity(&self) -> usize {
        self.index.capacity().min(self.slots.capacity())
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.index.reserve(additional);
        self.slots
            .reserve(additional.saturating_sub(self.holes.len()));
    }

    /// The index bucket of a key.
    fn find(&self, hash: u32, key: &Key) -> Option<usize> {
        let slots = &self.slots;
        self.index.find(hash, |at| {
            slots
                .get(at as usize)
                .and_then(Option::as_ref)
                .is_some_and(|v| v.has_key(key))
        })
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&V> {
        let bucket = self.find(self.hash(key), key)?;
        self.slots
            .get(self.index.position(bucket) as usize)?
            .as_ref()
    }

    /// One probe of the index, whether the key is there or not.
    pub(crate) fn slot(&mut self, key: Key) -> Slot<'_, V> {
        let hash = self.hash(&key);
        match self.find(hash, &key) {
            Some(bucket) => {
                let at = self.index.position(bucket) as usize;
                match self.slots.get_mut(at) {
                    Some(Some(value)) => Slot::Occupied(value),
                    // The index only points at filled slots.
                    _ => unreachable!("index points at a hole"),
                }
            }
            None => Slot::Vacant(Vacant { table: self, hash }),
        }
    }

    /// Removes the key, leaving a hole where it was.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<V> {
        let bucket = self.find(self.hash(key), key)?;
        let at = self.index.position(bucket);
        self.index.remove(bucket);
        let value = self.slots.get_mut(at as usize)?.take();
        if self.index.is_empty() {
            // All gone: start dense again.
            self.slots.clear();
            self.holes.clear();
        } else {
            self.holes.push(at);
        }
        value
    }

    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.holes.clear();
    }

    /// Positions run from 0 to this (holes included).
    pub(crate) fn positions(&self) -> usize {
        self.slots.len()
    }

    /// The entry at a position (0..positions), None for a hole. An entry
    /// keeps its position until it is removed.
    pub(crate) fn value_at(&self, at: usize) -> Option<&V> {
        self.slots.get(at)?.as_ref()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::{FlowKey, Tuple};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(n: u16) -> Key {
        let orig = Tuple::new(
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            6,
        )
        .with_ports(n, 80);
        Key::new(&FlowKey { orig, zone: 0 })
    }

    /// A value that is its own key, as a cached flow is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Item {
        port: u16,
        value: u32,
    }

    impl Keyed for Item {
        fn has_key(&self, k: &Key) -> bool {
            key(self.port) == *k
        }
    }

    fn put(t: &mut FlowTable<Item>, port: u16, value: u32) -> bool {
        let item = Item { port, value };
        match t.slot(key(port)) {
            Slot::Occupied(old) => {
                *old = item;
                false
            }
            Slot::Vacant(place) => {
                place.insert(item);
                true
            }
        }
    }

    proptest! {
        /// Any sequence of inserts, overwrites and removals leaves the table
        /// agreeing with a std HashMap, entry for entry.
        #[test]
        fn behaves_like_a_hash_map(ops in proptest::collection::vec((0u8..3, 0u16..64, any::<u32>()), 0..400)) {
            let mut table = FlowTable::default();
            let mut model: HashMap<u16, u32> = HashMap::new();
            for (op, n, v) in ops {
                match op {
                    0 => prop_assert_eq!(put(&mut table, n, v), model.insert(n, v).is_none()),
                    1 => prop_assert_eq!(table.remove(&key(n)).map(|i| i.value), model.remove(&n)),
                    _ => prop_assert_eq!(table.get(&key(n)).map(|i| i.value), model.get(&n).copied()),
                }
                prop_assert_eq!(table.len(), model.len());
            }
            for n in 0..64 {
                prop_assert_eq!(table.get(&key(n)).map(|i| i.value), model.get(&n).copied());
            }
            let by_position: Vec<u32> = (0..table.positions())
                .filter_map(|at| table.value_at(at).map(|i| i.value))
                .collect();
            prop_assert_eq!(by_position.len(), model.len());
            let mut values: Vec<u32> = table.values().map(|i| i.value).collect();
            let mut expected: Vec<u32> = model.values().copied().collect();
            values.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(values, expected);
        }
    }

    #[test]
    fn removal_leaves_a_hole_that_the_next_insert_fills() {
        let mut table: FlowTable<Item> = FlowTable::default();
        for n in 0..3 {
            put(&mut table, n, u32::from(n));
        }
        assert_eq!(table.remove(&key(1)).map(|i| i.value), Some(1));
        assert_eq!(table.positions(), 3);
        assert_eq!(table.value_at(1), None);
        // The others did not move.
        assert_eq!(table.value_at(2).map(|i| i.value), Some(2));
        put(&mut table, 9, 9);
        assert_eq!(table.value_at(1).map(|i| i.value), Some(9));
        assert_eq!(table.positions(), 3);
        for n in [0, 2, 9] {
            assert!(table.remove(&key(n)).is_some());
        }
        assert_eq!(table.positions(), 0);
        assert!(table.is_empty());
    }

    #[test]
    fn reserve_holds_without_growing() {
        let mut table: FlowTable<Item> = FlowTable::default();
        table.reserve(1000);
        let capacity = table.capacity();
        assert!(capacity >= 1000);
        for n in 0..1000 {
            put(&mut table, n, u32::from(n));
        }
        assert_eq!(table.capacity(), capacity);
        table.clear();
        assert!(table.is_empty());
        assert_eq!(table.get(&key(1)), None::<&Item>);
    }
}

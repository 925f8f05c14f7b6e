//! The flow table behind a cache: entries stored densely in a `Vec`, found
//! through a hash index of 4-byte positions. An entry is its own key (a
//! stored flow knows its original tuple), so keys are not stored twice.
//!
//! A hash map with the entries inline keeps them in its slots, which are
//! 12–56 % empty and all touched once the flows are spread over them; when
//! it grows, old and new tables coexist, so a 250k-flow cache briefly needs
//! three times its size. Here only the small index is sparse, the entry
//! vector grows in place (large reallocations are remapped, not copied) and
//! its spare capacity is never touched, so reserving room for `HashSize`
//! flows costs address space, not memory.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as IndexEntry;

use crate::compact::Key;

/// What a table holds: values that carry their own key.
pub(crate) trait Keyed {
    /// Hashes the value's key exactly as `Key`'s `Hash` does.
    fn hash_key<H: Hasher>(&self, state: &mut H);
    fn has_key(&self, key: &Key) -> bool;
}

/// A map from [`Key`] to `V` with dense storage.
#[derive(Debug)]
pub(crate) struct FlowTable<V> {
    index: HashTable<u32>,
    slots: Vec<V>,
    hasher: foldhash::fast::RandomState,
}

impl<V: Keyed> Default for FlowTable<V> {
    fn default() -> Self {
        FlowTable {
            index: HashTable::new(),
            slots: Vec::new(),
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
    entry: hashbrown::hash_table::VacantEntry<'a, u32>,
    slots: &'a mut Vec<V>,
}

impl<V: Keyed> Vacant<'_, V> {
    /// `value` must have the key this place was found for.
    pub(crate) fn insert(self, value: V) {
        // The table never holds more than u32::MAX flows (HashLimit is u32).
        let position = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.entry.insert(position);
        self.slots.push(value);
    }
}

fn hash_of<V: Keyed>(hasher: &foldhash::fast::RandomState, value: &V) -> u64 {
    let mut state = hasher.build_hasher();
    value.hash_key(&mut state);
    state.finish()
}

impl<V: Keyed> FlowTable<V> {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Flows the table holds before its index or storage grows.
    pub(crate) fn capacity(&self) -> usize {
        self.index.capacity().min(self.slots.capacity())
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .reserve(additional, |&at| hash_of(hasher, &slots[at as usize]));
        self.slots.reserve(additional);
    }

    fn position(&self, key: &Key) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        self.index
            .find(hash, |&at| slots[at as usize].has_key(key))
            .map(|&at| at as usize)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&V> {
        self.position(key).map(|at| &self.slots[at])
    }

    /// One probe of the index, whether the key is there or not.
    pub(crate) fn slot(&mut self, key: Key) -> Slot<'_, V> {
        let hash = self.hasher.hash_one(&key);
        let (slots, hasher) = (&mut self.slots, &self.hasher);
        let entry = {
            let view: &Vec<V> = slots;
            self.index.entry(
                hash,
                |&at| view[at as usize].has_key(&key),
                |&at| hash_of(hasher, &view[at as usize]),
            )
        };
        match entry {
            IndexEntry::Occupied(found) => Slot::Occupied(&mut slots[*found.get() as usize]),
            IndexEntry::Vacant(entry) => Slot::Vacant(Vacant { entry, slots }),
        }
    }

    /// Removes the key; the last entry moves into its place.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        let found = self
            .index
            .find_entry(hash, |&at| slots[at as usize].has_key(key))
            .ok()?;
        let (at, _) = found.remove();
        let at = at as usize;
        let last = self.slots.len() - 1;
        if at != last {
            let moved_hash = hash_of(&self.hasher, &self.slots[last]);
            if let Some(pointer) = self.index.find_mut(moved_hash, |&p| p as usize == last) {
                *pointer = at as u32;
            }
        }
        Some(self.slots.swap_remove(at))
    }

    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
    }

    /// The entry at a position (0..len); positions change only when an
    /// entry is removed.
    pub(crate) fn value_at(&self, at: usize) -> Option<&V> {
        self.slots.get(at)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter()
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
        fn hash_key<H: Hasher>(&self, state: &mut H) {
            std::hash::Hash::hash(&key(self.port), state);
        }
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
            let mut values: Vec<u32> = table.values().map(|i| i.value).collect();
            let mut expected: Vec<u32> = model.values().copied().collect();
            values.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(values, expected);
        }
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

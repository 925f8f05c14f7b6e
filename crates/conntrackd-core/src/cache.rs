//! A cache of flows keyed by their original tuple, with the counters that
//! `-s` prints (docs/control-and-cli.md §4.1, §4.3).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use conntrack_model::{Conntrack, FlowKey};

use crate::compact::{Key, Stored};
use crate::table::{FlowTable, Keyed, Slot};

/// Life-cycle state of a cached object (docs/sync-modes.md §2.2). Deleted
/// objects leave the cache at once; the sync layer keeps what a pending
/// DEL needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    New,
    Alive,
}

/// One cached flow, stored compactly (see `compact`).
#[derive(Debug, Clone)]
pub struct Entry {
    flow: Stored,
    pub state: ObjectState,
    /// Seconds since the cache's epoch.
    created: u32,
    updated: u32,
    /// The peer (its index among the sync core's peers) that announced
    /// it last, in an external cache; [`NO_ORIGIN`] otherwise. It fits in
    /// the entry's padding.
    origin: u8,
}

/// The origin of a flow no peer announced.
pub const NO_ORIGIN: u8 = u8::MAX;

impl Entry {
    /// The flow's attributes.
    pub fn ct(&self) -> Cow<'_, Conntrack> {
        self.flow.get()
    }

    /// Its cache key.
    pub fn key(&self) -> Option<FlowKey> {
        self.flow.key()
    }

    /// The peer that announced it last, in an external cache
    /// ([`NO_ORIGIN`] otherwise).
    pub fn origin(&self) -> u8 {
        self.origin
    }
}

impl Keyed for Entry {
    fn has_key(&self, key: &Key) -> bool {
        self.flow.has_key(key)
    }
}

/// Counters of one cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub created: u64,
    pub create_failed: u64,
    pub no_memory: u64,
    pub no_space: u64,
    pub updated: u64,
    pub update_failed: u64,
    pub destroyed: u64,
    pub destroy_failed: u64,
}

/// Why an insertion was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("no space left in cache (HashLimit reached)")]
    Full,
    #[error("flow has no original tuple")]
    NoKey,
}

/// A flow cache bounded by `HashLimit`.
#[derive(Debug)]
pub struct Cache {
    name: &'static str,
    limit: usize,
    entries: FlowTable<Entry>,
    epoch: Option<Instant>,
    pub counters: CacheCounters,
}

impl Cache {
    pub fn new(name: &'static str, limit: usize) -> Cache {
        Cache {
            name,
            limit,
            entries: FlowTable::default(),
            epoch: None,
            counters: CacheCounters::default(),
        }
    }

    /// Room for `hash_size` flows up front (`HashSize`), never more than the
    /// limit, so a burst does not pay for rehashing. Only the table's
    /// control bytes are touched; untouched slots cost address space, not
    /// resident memory.
    pub fn presized(mut self, hash_size: usize) -> Cache {
        self.entries.reserve(hash_size.min(self.limit));
        self
    }

    /// Room for `additional` more flows (never beyond the limit), so a
    /// known burst does not rehash the table as it grows.
    pub fn reserve(&mut self, additional: usize) {
        let room = self.limit.saturating_sub(self.entries.len());
        self.entries.reserve(additional.min(room));
    }

    /// Slots the table holds without growing.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// `now` in whole seconds since the first use of the cache.
    fn secs(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        u32::try_from(now.saturating_duration_since(epoch).as_secs()).unwrap_or(u32::MAX)
    }

    fn since(&self, then: u32, now: Instant) -> Duration {
        let Some(epoch) = self.epoch else {
            return Duration::ZERO;
        };
        (now.saturating_duration_since(epoch)).saturating_sub(Duration::from_secs(u64::from(then)))
    }

    /// Time since the entry was created (`[active since Ns]`).
    pub fn age(&self, entry: &Entry, now: Instant) -> Duration {
        self.since(entry.created, now)
    }

    /// Time since the entry was last updated.
    pub fn idle(&self, entry: &Entry, now: Instant) -> Duration {
        self.since(entry.updated, now)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Objects in the table, including dead ones awaiting removal.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Objects counted as active.
    pub fn active(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, key: &FlowKey) -> Option<&Entry> {
        self.get_key(&Key::new(key))
    }

    /// [`Cache::get`] by the compact key.
    pub(crate) fn get_key(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Replaces any object with the same key by a fresh NEW object.
    pub fn insert_new(&mut self, now: Instant, ct: Conntrack) -> Result<(), CacheError> {
        self.insert_new_from(now, &ct, NO_ORIGIN)
    }

    /// [`Cache::insert_new`] of a flow a peer announced (borrowed: a
    /// received flow is stored compact, and only copied in full when it
    /// must be).
    pub fn insert_new_from(
        &mut self,
        now: Instant,
        ct: &Conntrack,
        origin: u8,
    ) -> Result<(), CacheError> {
        let key = Key::new(&ct.key().ok_or(CacheError::NoKey)?);
        let secs = self.secs(now);
        let fresh = Entry {
            flow: Stored::of(ct),
            state: ObjectState::New,
            created: secs,
            updated: secs,
            origin,
        };
        // One probe of the table, whether the key is there or not.
        let full = self.entries.len() >= self.limit;
        match self.entries.slot(key) {
            Slot::Occupied(slot) => {
                *slot = fresh;
                self.counters.destroyed += 1;
            }
            Slot::Vacant(_) if full => {
                self.counters.create_failed += 1;
                self.counters.no_space += 1;
                return Err(CacheError::Full);
            }
            Slot::Vacant(slot) => {
                slot.insert(fresh);
            }
        }
        self.counters.created += 1;
        Ok(())
    }

    /// Merges into a live object, or creates it.
    pub fn update_or_create(&mut self, now: Instant, ct: Conntrack) -> Result<(), CacheError> {
        self.update_or_create_from(now, &ct, NO_ORIGIN)
    }

    /// [`Cache::update_or_create`] of a flow a peer announced (borrowed, as
    /// [`Cache::insert_new_from`]).
    pub fn update_or_create_from(
        &mut self,
        now: Instant,
        ct: &Conntrack,
        origin: u8,
    ) -> Result<(), CacheError> {
        let key = Key::new(&ct.key().ok_or(CacheError::NoKey)?);
        let secs = self.secs(now);
        let full = self.entries.len() >= self.limit;
        match self.entries.slot(key) {
            Slot::Occupied(entry) => {
                if !entry.flow.merge_compact(ct) {
                    let mut merged = entry.flow.get().into_owned();
                    merged.merge(ct);
                    entry.flow.set(merged);
                }
                entry.state = ObjectState::Alive;
                entry.updated = secs;
                entry.origin = origin;
                self.counters.updated += 1;
            }
            Slot::Vacant(_) if full => {
                self.counters.create_failed += 1;
                self.counters.no_space += 1;
                return Err(CacheError::Full);
            }
            Slot::Vacant(slot) => {
                slot.insert(Entry {
                    flow: Stored::of(ct),
                    state: ObjectState::New,
                    created: secs,
                    updated: secs,
                    origin,
                });
                self.counters.created += 1;
            }
        }
        Ok(())
    }

    /// Removes the object; returns it if it was there.
    pub fn remove(&mut self, key: &FlowKey) -> Option<Entry> {
        self.remove_key(&Key::new(key))
    }

    /// [`Cache::remove`] by the compact key.
    pub(crate) fn remove_key(&mut self, key: &Key) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.counters.destroyed += 1;
        Some(entry)
    }

    /// Drops every object.
    pub fn flush(&mut self) {
        self.counters.destroyed += self.entries.len() as u64;
        self.entries.clear();
    }

    /// The object at a position (0..[`Cache::positions`]), None for a
    /// free one. An object keeps its position until it is removed.
    pub fn entry_at(&self, at: usize) -> Option<&Entry> {
        self.entries.value_at(at)
    }

    /// The end of the positions [`Cache::entry_at`] takes.
    pub fn positions(&self) -> usize {
        self.entries.positions()
    }

    /// Live objects, in no particular order.
    pub fn iter_live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::Tuple;

    #[test]
    fn the_origin_of_an_entry_fits_in_its_padding() {
        assert!(size_of::<Entry>() <= 88, "{}", size_of::<Entry>());
    }

    fn flow(port: u16) -> Conntrack {
        Conntrack {
            orig: Some(
                Tuple::new(
                    "10.0.0.1".parse().expect("ip"),
                    "10.0.0.2".parse().expect("ip"),
                    6,
                )
                .with_ports(port, 80),
            ),
            mark: Some(1),
            ..Conntrack::default()
        }
    }

    #[test]
    fn hash_size_presizes_up_to_the_limit() {
        let now = Instant::now();
        let mut c = Cache::new("internal", 5000).presized(1000);
        let room = c.capacity();
        assert!(room >= 1000, "{room}");
        for port in 0..1000 {
            c.insert_new(now, flow(port)).expect("room");
        }
        assert_eq!(c.capacity(), room, "grew although HashSize had room");
        // Never beyond HashLimit, whatever HashSize says.
        assert!(Cache::new("internal", 10).presized(1 << 20).capacity() < 1000);
    }

    #[test]
    fn hash_limit_is_a_counted_refusal() {
        let now = Instant::now();
        let mut c = Cache::new("internal", 2);
        c.insert_new(now, flow(1)).expect("1");
        c.insert_new(now, flow(2)).expect("2");
        assert_eq!(c.insert_new(now, flow(3)), Err(CacheError::Full));
        assert_eq!(c.counters.no_space, 1);
        assert_eq!(c.counters.create_failed, 1);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn update_merges_and_new_replaces() {
        let now = Instant::now();
        let mut c = Cache::new("internal", 10);
        c.insert_new(now, flow(1)).expect("insert");
        let mut upd = flow(1);
        upd.mark = Some(9);
        c.update_or_create(now, upd).expect("update");
        let key = flow(1).key().expect("key");
        assert_eq!(
            c.get(&key).map(|e| (e.state, e.ct().mark)),
            Some((ObjectState::Alive, Some(9)))
        );
        c.insert_new(now, flow(1)).expect("replace");
        assert_eq!(c.get(&key).map(|e| e.state), Some(ObjectState::New));
        assert_eq!(
            (c.counters.created, c.counters.destroyed, c.counters.updated),
            (2, 1, 1)
        );
    }
}

//! The transmit and resend queues: FIFOs in which an object appears at
//! most once and can be unlinked from the middle (docs/sync-modes.md §5.2–§5.4).

use std::collections::VecDeque;
use std::hash::BuildHasher;

use crate::index::Index;

use syncproto::Control;

use super::ObjKey;

/// What a queue node refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// A cached object; the message is built from its state when sent.
    Object(ObjKey),
    Control(Control),
}

/// A FIFO keyed by insertion order; `V` is per-node data (the sequence
/// number it was sent with, for the resend queue).
///
/// Nodes live in a ring indexed by ticket (ticket − `front_ticket`); a node
/// unlinked from the middle leaves a hole that is skipped, so every
/// operation is O(1) without the pointer chasing of a tree. Queued objects
/// are found through an [`Index`] of their tickets whose keys are compared
/// in the ring itself: 8 bytes per object instead of a map entry holding
/// a copy of the key, and one cache miss less per lookup.
#[derive(Debug)]
pub(crate) struct Fifo<V> {
    /// Ticket of `ring[0]`.
    front_ticket: u32,
    ring: VecDeque<Option<(Item, V)>>,
    /// Nodes that are not holes.
    live: usize,
    /// The ticket of every queued object, and no other.
    objects: Index,
    hasher: foldhash::fast::RandomState,
    /// Tickets stay below this (see [`TICKET_LIMIT`]).
    ticket_limit: u32,
}

impl<V> Default for Fifo<V> {
    fn default() -> Self {
        Fifo {
            front_ticket: 0,
            ring: VecDeque::new(),
            live: 0,
            objects: Index::default(),
            hasher: foldhash::fast::RandomState::default(),
            ticket_limit: TICKET_LIMIT,
        }
    }
}

/// Holes beyond this many (and beyond the live nodes) are squeezed out;
/// small under test so that the squeeze is exercised.
const HOLES_SLACK: usize = if cfg!(test) { 4 } else { 1024 };

/// Tickets stay below this: the index holds them in 32 bits. Reaching it
/// renumbers the ring from 0.
const TICKET_LIMIT: u32 = u32::MAX / 2;

impl<V> Fifo<V> {
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn hash(&self, key: &ObjKey) -> u32 {
        // The low half: foldhash mixes all of its output bits.
        self.hasher.hash_one(key) as u32
    }

    fn ticket_at(&self, at: usize) -> u32 {
        self.front_ticket.wrapping_add(at as u32)
    }

    /// The index bucket of a queued object (its node must still be in the
    /// ring: keys are compared there).
    fn find(&self, key: &ObjKey) -> Option<usize> {
        let (front, ring) = (self.front_ticket, &self.ring);
        self.objects.find(self.hash(key), |ticket| {
            ticket
                .checked_sub(front)
                .and_then(|at| ring.get(at as usize))
                .and_then(Option::as_ref)
                .is_some_and(|(item, _)| matches!(item, Item::Object(k) if k == key))
        })
    }

    pub(crate) fn contains(&self, key: &ObjKey) -> bool {
        self.find(key).is_some()
    }

    /// Appends; an object already queued is left where it is.
    pub(crate) fn push_back(&mut self, item: Item, value: V) {
        if let Item::Object(key) = &item
            && self.find(key).is_some()
        {
            return;
        }
        self.push_absent(item, value);
    }

    /// Appends an item the caller knows is not queued (no lookup).
    pub(crate) fn push_absent(&mut self, item: Item, value: V) {
        if self.ticket_at(self.ring.len()) >= self.ticket_limit {
            self.renumber();
        }
        if let Item::Object(key) = &item {
            let ticket = self.ticket_at(self.ring.len());
            self.objects.insert(self.hash(key), ticket);
        }
        self.ring.push_back(Some((item, value)));
        self.live += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<(Item, V)> {
        while let Some(node) = self.ring.front() {
            if let Some((Item::Object(key), _)) = node
                && let Some(bucket) = self.find(key)
            {
                self.objects.remove(bucket);
            }
            let node = self.ring.pop_front().flatten();
            self.front_ticket = self.front_ticket.wrapping_add(1);
            if node.is_some() {
                self.live -= 1;
                return node;
            }
        }
        None
    }

    /// Takes the node at ring position `at` out, leaving a hole.
    fn unlink(&mut self, at: usize) -> Option<(Item, V)> {
        if let Some(Some((Item::Object(key), _))) = self.ring.get(at)
            && let Some(bucket) = self.find(key)
        {
            self.objects.remove(bucket);
        }
        self.take_at(at)
    }

    /// Takes the node at ring position `at` out, leaving a hole; the
    /// caller has taken its object out of the index.
    fn take_at(&mut self, at: usize) -> Option<(Item, V)> {
        let node = self.ring.get_mut(at)?.take()?;
        self.live -= 1;
        Some(node)
    }

    /// Drops holes at both ends, and squeezes the ring when holes pile up
    /// in the middle.
    fn tidy(&mut self) {
        while matches!(self.ring.front(), Some(None)) {
            self.ring.pop_front();
            self.front_ticket = self.front_ticket.wrapping_add(1);
        }
        while matches!(self.ring.back(), Some(None)) {
            self.ring.pop_back();
        }
        if self.ring.len() > 2 * self.live + HOLES_SLACK {
            self.renumber();
        }
    }

    /// Squeezes the holes out and numbers the nodes from ticket 0 again.
    fn renumber(&mut self) {
        self.ring.retain(Option::is_some);
        self.front_ticket = 0;
        self.objects.clear();
        for at in 0..self.ring.len() {
            if let Some(Some((Item::Object(key), _))) = self.ring.get(at) {
                let hash = self.hash(key);
                self.objects.insert(hash, self.ticket_at(at));
            }
        }
    }

    /// Unlinks an object wherever it is.
    pub(crate) fn remove_object(&mut self, key: &ObjKey) -> Option<V> {
        let bucket = self.find(key)?;
        let at = self
            .objects
            .position(bucket)
            .checked_sub(self.front_ticket)?;
        // Found once: out of the index here, out of the ring below.
        self.objects.remove(bucket);
        let node = self.take_at(at as usize);
        self.tidy();
        node.map(|(_, v)| v)
    }

    /// Like [`Fifo::drain_walk`], with mutable access to the values.
    pub(crate) fn drain_walk_mut(
        &mut self,
        mut pick: impl FnMut(&Item, &mut V) -> Option<bool>,
    ) -> Vec<(Item, V)> {
        let mut chosen = Vec::new();
        for (at, node) in self.ring.iter_mut().enumerate() {
            let Some((item, value)) = node else { continue };
            match pick(item, value) {
                None => break,
                Some(true) => chosen.push(at),
                Some(false) => {}
            }
        }
        let taken = chosen
            .into_iter()
            .filter_map(|at| self.unlink(at))
            .collect();
        self.tidy();
        taken
    }

    /// Removes the nodes `pick` selects, walking oldest first; `pick`
    /// returns None to stop the walk.
    pub(crate) fn drain_walk(
        &mut self,
        mut pick: impl FnMut(&Item, &V) -> Option<bool>,
    ) -> Vec<(Item, V)> {
        self.drain_walk_mut(|item, value| pick(item, value))
    }

    /// A queue that renumbers often, so that tests exercise it.
    #[cfg(test)]
    fn with_ticket_limit(ticket_limit: u32) -> Self {
        Fifo {
            ticket_limit,
            ..Fifo::default()
        }
    }

    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        self.ring.clear();
        self.live = 0;
        self.objects.clear();
    }

    /// Changes every node's value in place.
    pub(crate) fn for_each_value(&mut self, mut change: impl FnMut(&mut V)) {
        for (_, value) in self.ring.iter_mut().flatten() {
            change(value);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Item, V)> {
        self.ring.iter().flatten()
    }

    /// Control messages currently queued.
    pub(crate) fn controls(&self) -> usize {
        self.live - self.objects.len()
    }

    /// Objects currently queued.
    pub(crate) fn objects(&self) -> usize {
        self.objects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::{FlowKey, Tuple};

    fn key(port: u16) -> ObjKey {
        ObjKey::Flow(crate::compact::Key::new(&FlowKey {
            orig: Tuple::new(
                "10.0.0.1".parse().expect("ip"),
                "10.0.0.2".parse().expect("ip"),
                6,
            )
            .with_ports(port, 80),
            zone: 0,
        }))
    }

    #[test]
    fn queue_nodes_stay_small() {
        // Every in-flight object costs a node, a map entry and, once
        // deleted, a pending-delete entry: keep the key small.
        assert!(size_of::<ObjKey>() <= 24);
    }

    #[test]
    fn an_object_is_queued_once_and_can_be_unlinked() {
        let mut q: Fifo<u32> = Fifo::default();
        q.push_back(Item::Object(key(1)), 1);
        q.push_back(Item::Control(Control::Alive), 2);
        q.push_back(Item::Object(key(1)), 3);
        q.push_back(Item::Object(key(2)), 4);
        assert_eq!(q.len(), 3);
        assert_eq!(q.controls(), 1);
        assert_eq!(q.remove_object(&key(1)), Some(1));
        assert!(!q.contains(&key(1)));
        let walked = q.drain_walk(|_, v| (*v < 4).then_some(true));
        assert_eq!(walked.len(), 1);
        assert_eq!(q.pop_front().map(|(_, v)| v), Some(4));
        assert!(q.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushObject(u16, u32),
        PushControl(u32),
        Pop,
        Remove(u16),
        /// Takes values divisible by the first number, stops at the first
        /// value above the second.
        Walk(u32, u32),
    }

    fn ops() -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
        use proptest::prelude::*;
        let op = prop_oneof![
            4 => (0u16..40, 0u32..100).prop_map(|(k, v)| Op::PushObject(k, v)),
            1 => (0u32..100).prop_map(Op::PushControl),
            2 => Just(Op::Pop),
            3 => (0u16..40).prop_map(Op::Remove),
            1 => (1u32..4, 0u32..100).prop_map(|(d, stop)| Op::Walk(d, stop)),
        ];
        proptest::collection::vec(op, 0..400)
    }

    proptest::proptest! {
        /// The ring behaves like a plain list of (item, value).
        #[test]
        fn fifo_matches_a_list_model(ops in ops()) {
            let mut q: Fifo<u32> = Fifo::with_ticket_limit(64);
            let mut model: Vec<(Item, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::PushObject(k, v) => {
                        let item = Item::Object(key(k));
                        if !model.iter().any(|(i, _)| *i == item) {
                            model.push((item.clone(), v));
                        }
                        q.push_back(item, v);
                    }
                    Op::PushControl(v) => {
                        model.push((Item::Control(Control::Alive), v));
                        q.push_back(Item::Control(Control::Alive), v);
                    }
                    Op::Pop => {
                        let want = (!model.is_empty()).then(|| model.remove(0));
                        proptest::prop_assert_eq!(q.pop_front(), want);
                    }
                    Op::Remove(k) => {
                        let item = Item::Object(key(k));
                        let want = model
                            .iter()
                            .position(|(i, _)| *i == item)
                            .map(|at| model.remove(at).1);
                        proptest::prop_assert_eq!(q.remove_object(&key(k)), want);
                    }
                    Op::Walk(d, stop) => {
                        let mut want = Vec::new();
                        let mut kept = Vec::new();
                        let mut stopped = false;
                        for (item, v) in model.drain(..) {
                            if !stopped && v > stop {
                                stopped = true;
                            }
                            if !stopped && v % d == 0 {
                                want.push((item, v));
                            } else {
                                kept.push((item, v));
                            }
                        }
                        model = kept;
                        let got = q.drain_walk(|_, v| (*v <= stop).then_some(*v % d == 0));
                        proptest::prop_assert_eq!(got, want);
                    }
                }
                proptest::prop_assert_eq!(q.len(), model.len());
                let listed: Vec<(Item, u32)> = q.iter().cloned().collect();
                proptest::prop_assert_eq!(&listed, &model);
                for k in 0..40 {
                    let queued = model.iter().any(|(i, _)| *i == Item::Object(key(k)));
                    proptest::prop_assert_eq!(q.contains(&key(k)), queued);
                }
                let controls = model.iter().filter(|(i, _)| matches!(i, Item::Control(_))).count();
                proptest::prop_assert_eq!(q.controls(), controls);
            }
        }
    }
}

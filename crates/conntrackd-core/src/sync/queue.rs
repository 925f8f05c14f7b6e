//! The transmit and resend queues: FIFOs in which an object appears at
//! most once and can be unlinked from the middle (sync-modes.md §5.2–§5.4).

use std::collections::BTreeMap;

use crate::FastMap;

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
#[derive(Debug)]
pub(crate) struct Fifo<V> {
    next_ticket: u64,
    order: BTreeMap<u64, (Item, V)>,
    objects: FastMap<ObjKey, u64>,
}

impl<V> Default for Fifo<V> {
    fn default() -> Self {
        Fifo {
            next_ticket: 0,
            order: BTreeMap::new(),
            objects: FastMap::default(),
        }
    }
}

impl<V> Fifo<V> {
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub(crate) fn contains(&self, key: &ObjKey) -> bool {
        self.objects.contains_key(key)
    }

    /// Appends; an object already queued is left where it is.
    pub(crate) fn push_back(&mut self, item: Item, value: V) {
        if let Item::Object(key) = &item {
            if self.objects.contains_key(key) {
                return;
            }
            self.objects.insert(key.clone(), self.next_ticket);
        }
        self.order.insert(self.next_ticket, (item, value));
        self.next_ticket += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<(Item, V)> {
        let (_, (item, value)) = self.order.pop_first()?;
        if let Item::Object(key) = &item {
            self.objects.remove(key);
        }
        Some((item, value))
    }

    /// Unlinks an object wherever it is.
    pub(crate) fn remove_object(&mut self, key: &ObjKey) -> Option<V> {
        let ticket = self.objects.remove(key)?;
        self.order.remove(&ticket).map(|(_, v)| v)
    }

    /// Like [`Fifo::drain_walk`], with mutable access to the values.
    pub(crate) fn drain_walk_mut(
        &mut self,
        mut pick: impl FnMut(&Item, &mut V) -> Option<bool>,
    ) -> Vec<(Item, V)> {
        let mut chosen = Vec::new();
        for (ticket, (item, value)) in self.order.iter_mut() {
            match pick(item, value) {
                None => break,
                Some(true) => chosen.push(*ticket),
                Some(false) => {}
            }
        }
        chosen
            .into_iter()
            .filter_map(|t| self.order.remove(&t))
            .inspect(|(item, _)| {
                if let Item::Object(key) = item {
                    self.objects.remove(key);
                }
            })
            .collect()
    }

    /// Removes the nodes `pick` selects, walking oldest first; `pick`
    /// returns None to stop the walk.
    pub(crate) fn drain_walk(
        &mut self,
        mut pick: impl FnMut(&Item, &V) -> Option<bool>,
    ) -> Vec<(Item, V)> {
        self.drain_walk_mut(|item, value| pick(item, value))
    }

    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        self.order.clear();
        self.objects.clear();
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &(Item, V)> {
        self.order.values()
    }

    /// Control messages currently queued.
    pub(crate) fn controls(&self) -> usize {
        self.order.len() - self.objects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::{FlowKey, Tuple};

    fn key(port: u16) -> ObjKey {
        ObjKey::Flow(FlowKey {
            orig: Tuple::new(
                "10.0.0.1".parse().expect("ip"),
                "10.0.0.2".parse().expect("ip"),
                6,
            )
            .with_ports(port, 80),
            zone: 0,
        })
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
}

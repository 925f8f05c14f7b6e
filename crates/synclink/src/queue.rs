//! The TCP channel's error queue (`ErrorQueueLength`, docs/wire-protocol.md §8,
//! docs/sync-modes.md §14): batches that could not be written yet, sent in order
//! before any new data; when full, the oldest batch is discarded.

use std::collections::VecDeque;

/// Bounded FIFO of unsent batches.
#[derive(Debug, Clone)]
pub struct ErrorQueue {
    items: VecDeque<Vec<u8>>,
    max: usize,
    dropped: u64,
}

impl ErrorQueue {
    /// An empty queue holding at most `max` batches (0: nothing is kept).
    pub fn new(max: usize) -> ErrorQueue {
        ErrorQueue {
            items: VecDeque::new(),
            max,
            dropped: 0,
        }
    }

    /// Appends a batch, discarding the oldest ones if the queue is full.
    pub fn push_back(&mut self, batch: Vec<u8>) {
        if self.max == 0 {
            self.dropped += 1;
            return;
        }
        while self.items.len() >= self.max {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(batch);
    }

    /// Puts a batch back at the head (it was being sent when the connection
    /// broke).  If that overfills the queue, the oldest batch — this one — is
    /// discarded.
    pub fn push_front(&mut self, batch: Vec<u8>) {
        self.items.push_front(batch);
        while self.items.len() > self.max {
            self.items.pop_front();
            self.dropped += 1;
        }
    }

    /// Takes the oldest batch.
    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        self.items.pop_front()
    }

    /// Batches queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Batches discarded because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut ErrorQueue) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| q.pop_front()).collect()
    }

    #[test]
    fn bounded_drops_oldest() {
        let mut q = ErrorQueue::new(3);
        for i in 0..5u8 {
            q.push_back(vec![i]);
            assert!(q.len() <= 3);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 2);
        assert_eq!(drain(&mut q), vec![vec![2], vec![3], vec![4]]);
        assert!(q.is_empty());
    }

    #[test]
    fn default_bound_of_128() {
        let mut q = ErrorQueue::new(128);
        for i in 0..200u32 {
            q.push_back(i.to_be_bytes().to_vec());
        }
        assert_eq!(q.len(), 128);
        assert_eq!(q.max(), 128);
        assert_eq!(q.dropped(), 72);
        assert_eq!(q.pop_front(), Some(72u32.to_be_bytes().to_vec()));
    }

    #[test]
    fn push_front_keeps_order_and_bound() {
        let mut q = ErrorQueue::new(2);
        q.push_back(vec![1]);
        q.push_front(vec![0]);
        assert_eq!(q.dropped(), 0);
        // Full: the re-queued head is the oldest and goes.
        q.push_front(vec![9]);
        assert_eq!(q.dropped(), 1);
        assert_eq!(drain(&mut q), vec![vec![0], vec![1]]);
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut q = ErrorQueue::new(0);
        q.push_back(vec![1]);
        q.push_front(vec![2]);
        assert!(q.is_empty());
        assert_eq!(q.dropped(), 2);
    }
}

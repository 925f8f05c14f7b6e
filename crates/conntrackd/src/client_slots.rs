//! A bounded number of clients served at once, shared by the tasks of one
//! listener (the control socket, the metrics endpoint).
//!
//! A connection is *unheard* until its request has arrived, then *heard*
//! until its reply is written. When every slot is taken, a newcomer takes
//! the slot of the oldest unheard connection, which is closed: a crowd of
//! clients that connect and say nothing cannot lock out an operator.
//! Only when every slot is heard (replies being written) is the newcomer
//! refused. Everything runs on the daemon's one thread, hence `Rc`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use tokio::task::AbortHandle;

#[derive(Debug)]
struct Slots {
    max: usize,
    next_id: u64,
    /// Unheard connections, oldest first, with the task that waits for
    /// their request (aborting it closes the connection).
    unheard: VecDeque<(u64, Option<AbortHandle>)>,
    heard: usize,
}

/// The slots of one listener.
#[derive(Debug, Clone)]
pub struct ClientSlots {
    slots: Rc<RefCell<Slots>>,
}

/// A newcomer was let in.
#[derive(Debug)]
pub struct Admitted {
    pub slot: Slot,
    /// The oldest unheard connection was closed to make room.
    pub evicted_silent: bool,
}

/// Every slot is busy with a reply: the newcomer must be turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllBusy;

impl ClientSlots {
    /// At most `max` clients at once (at least one).
    pub fn new(max: usize) -> ClientSlots {
        ClientSlots {
            slots: Rc::new(RefCell::new(Slots {
                max: max.max(1),
                next_id: 0,
                unheard: VecDeque::new(),
                heard: 0,
            })),
        }
    }

    /// Takes a slot for a new connection, unheard until [`Slot::heard`].
    pub fn admit(&self) -> Result<Admitted, AllBusy> {
        let mut slots = self.slots.borrow_mut();
        let mut evicted_silent = false;
        if slots.unheard.len() + slots.heard >= slots.max {
            let Some((_, waiting)) = slots.unheard.pop_front() else {
                return Err(AllBusy);
            };
            if let Some(task) = waiting {
                task.abort();
            }
            evicted_silent = true;
        }
        let id = slots.next_id;
        slots.next_id += 1;
        slots.unheard.push_back((id, None));
        Ok(Admitted {
            slot: Slot {
                id,
                heard: false,
                slots: Rc::clone(&self.slots),
            },
            evicted_silent,
        })
    }

    /// [`ClientSlots::admit`], counting a newcomer that took a silent
    /// client's slot in `evicted` and one turned away in `refused`.
    pub fn admit_counted(&self, evicted: &Cell<u64>, refused: &Cell<u64>) -> Option<Slot> {
        match self.admit() {
            Ok(Admitted {
                slot,
                evicted_silent,
            }) => {
                if evicted_silent {
                    evicted.set(evicted.get() + 1);
                }
                Some(slot)
            }
            Err(AllBusy) => {
                refused.set(refused.get() + 1);
                None
            }
        }
    }

    /// The task waiting for an unheard client's request: aborted (which
    /// closes the connection) if the slot is taken for a newcomer.
    pub fn waited_on_by(&self, slot: SlotId, task: AbortHandle) {
        let mut slots = self.slots.borrow_mut();
        if let Some(entry) = slots.unheard.iter_mut().find(|(id, _)| *id == slot.0) {
            entry.1 = Some(task);
        }
    }

    /// Connections holding a slot now.
    #[cfg(test)]
    fn open(&self) -> usize {
        let slots = self.slots.borrow();
        slots.unheard.len() + slots.heard
    }
}

/// Names a slot that has moved into the task serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(u64);

/// One client's place; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    heard: bool,
    slots: Rc<RefCell<Slots>>,
}

impl Slot {
    pub fn id(&self) -> SlotId {
        SlotId(self.id)
    }

    /// The client's request has arrived: from now on the slot is not
    /// taken away. False if it was taken already (the client was evicted).
    pub fn heard(&mut self) -> bool {
        if self.heard {
            return true;
        }
        let mut slots = self.slots.borrow_mut();
        let Some(at) = slots.unheard.iter().position(|(id, _)| *id == self.id) else {
            return false;
        };
        slots.unheard.remove(at);
        slots.heard += 1;
        self.heard = true;
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut slots = self.slots.borrow_mut();
        if self.heard {
            slots.heard = slots.heard.saturating_sub(1);
        } else if let Some(at) = slots.unheard.iter().position(|(id, _)| *id == self.id) {
            slots.unheard.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(slots: &ClientSlots) -> Admitted {
        slots.admit().expect("a slot")
    }

    #[test]
    fn a_newcomer_closes_the_oldest_silent_client_when_full() {
        let slots = ClientSlots::new(3);
        let mut first = admitted(&slots).slot;
        let second = admitted(&slots).slot;
        let third = admitted(&slots).slot;
        assert!(first.heard());
        let fourth = admitted(&slots);
        assert!(fourth.evicted_silent);
        assert_eq!(slots.open(), 3);
        // The second was the oldest silent one; the third is next.
        let mut second = second;
        assert!(!second.heard(), "the evicted slot is gone");
        let fifth = admitted(&slots);
        assert!(fifth.evicted_silent);
        let mut third = third;
        assert!(!third.heard());
        drop((first, second, third, fourth, fifth));
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn newcomers_are_refused_only_when_every_slot_is_heard() {
        let slots = ClientSlots::new(2);
        let mut a = admitted(&slots).slot;
        let mut b = admitted(&slots).slot;
        assert!(a.heard() && b.heard());
        assert_eq!(slots.admit().map(|_| ()), Err(AllBusy));
        drop(a);
        let c = admitted(&slots);
        assert!(!c.evicted_silent);
        assert_eq!(slots.open(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn evicting_aborts_the_task_waiting_for_the_request() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let slots = ClientSlots::new(1);
                let silent = admitted(&slots).slot;
                let id = silent.id();
                let task = tokio::task::spawn_local(async move {
                    let _slot = silent;
                    std::future::pending::<()>().await;
                });
                slots.waited_on_by(id, task.abort_handle());
                let newcomer = admitted(&slots);
                assert!(newcomer.evicted_silent);
                assert!(task.await.is_err_and(|e| e.is_cancelled()));
                assert_eq!(slots.open(), 1);
            })
            .await;
    }
}

//! The internal side of a core: kernel events and dumps enter the
//! internal cache (or, without one, become messages at once), and what
//! changed is queued for the peers (docs/sync-modes.md §2, §11).

use std::time::Instant;

use conntrack_model::{Conntrack, Expect, FlowKey};
use syncproto::MsgType;

use super::{Dead, Direct, ObjKey, SyncCore, master_cached};
use crate::compact::Key;
use crate::local::{EventKind, Origin};

impl SyncCore {
    /// A ctnetlink conntrack event.
    pub fn handle_kernel_event(
        &mut self,
        now: Instant,
        kind: EventKind,
        ct: Conntrack,
        origin: Origin,
    ) {
        if self.settings.disable_internal_cache {
            self.bypass_event(kind, ct, origin);
            return;
        }
        self.local.handle_kernel_event(now, kind, ct, origin);
        self.apply_changes(now);
    }

    /// NOTRACK `DisableInternalCache`: one message per event, no cache.
    fn bypass_event(&mut self, kind: EventKind, ct: Conntrack, origin: Origin) {
        self.local.netlink.events_received += 1;
        if origin != Origin::NotMe {
            return;
        }
        if let Some(filter) = &self.local.event_filter
            && filter.verdict(&ct) != crate::filter::Verdict::Accept
        {
            self.local.netlink.events_filtered += 1;
            return;
        }
        let kind = match kind {
            EventKind::New => {
                self.bypass.new += 1;
                MsgType::CtNew
            }
            EventKind::Update => {
                self.bypass.updated += 1;
                MsgType::CtUpdate
            }
            EventKind::Destroy => {
                self.bypass.destroyed += 1;
                MsgType::CtDelete
            }
        };
        self.direct.push_back(Direct::Flow(kind, Box::new(ct)));
    }

    /// A flow of a kernel dump made for a bulk send with the internal cache
    /// disabled: sent as CT_NEW.
    pub fn send_direct(&mut self, ct: Conntrack) {
        if self
            .local
            .dump_filter
            .as_ref()
            .is_none_or(|f| f.verdict(&ct) == crate::filter::Verdict::Accept)
        {
            self.direct
                .push_back(Direct::Flow(MsgType::CtNew, Box::new(ct)));
        }
    }

    /// One entry of a kernel dump; `announce` for overrun/polling resyncs.
    pub fn handle_dump_entry(&mut self, now: Instant, ct: Conntrack, announce: bool) {
        self.local.handle_dump_entry(now, ct, announce);
        self.apply_changes(now);
    }

    /// A resync found this flow gone from the kernel.
    pub fn handle_vanished(&mut self, now: Instant, key: &FlowKey) {
        self.local.handle_vanished(key);
        self.apply_changes(now);
    }

    pub(super) fn apply_changes(&mut self, now: Instant) {
        for change in self.local.take_changes() {
            let key = ObjKey::Flow(Key::new(&change.key));
            match change.gone {
                None => {
                    // A fresh object replaces a dead one awaiting its DEL.
                    if !self.dead.is_empty() {
                        self.dead.remove(&key);
                    }
                    self.arm_refresh(now, &key);
                    if change.announce {
                        self.queue_object(key);
                    }
                }
                Some(last) => {
                    self.timers.refresh.cancel(&key);
                    // Its DEL is to be sent, or a queued message of it is
                    // still to be built from its last state.
                    if change.announce || self.queued(&key) {
                        self.dead
                            .insert(key.clone(), Dead::Flow(crate::compact::Stored::new(*last)));
                    }
                    if change.announce {
                        self.queue_object(key);
                    }
                }
            }
        }
    }

    /// An expectation event (docs/sync-modes.md §11): synced only if its helper
    /// is selected and its master flow is in the internal cache.
    pub fn handle_kernel_expect(
        &mut self,
        now: Instant,
        kind: EventKind,
        exp: Expect,
        origin: Origin,
    ) {
        self.local.netlink.events_received += 1;
        let Some(state) = self.expect.as_mut() else {
            return;
        };
        if origin == Origin::Inject {
            return;
        }
        if self.settings.disable_internal_cache {
            // No cache to check the master against; it exists in the
            // kernel as long as the expectation does (1.4.7 inverts this
            // check in bypass mode and drops them).
            if origin == Origin::NotMe && state.filter.accepts(&exp) {
                let kind = match kind {
                    EventKind::New => MsgType::ExpNew,
                    EventKind::Update => MsgType::ExpUpdate,
                    EventKind::Destroy => MsgType::ExpDelete,
                };
                self.direct.push_back(Direct::Expect(kind, Box::new(exp)));
            }
            return;
        }
        let announce = origin == Origin::NotMe;
        let Some(key) = exp.key() else { return };
        let key = ObjKey::Expect(Box::new(key));
        if kind == EventKind::Destroy {
            if let Some(entry) = state.internal.remove(&exp) {
                self.timers.refresh.cancel(&key);
                if announce || self.queued(&key) {
                    let mut last = entry.exp;
                    last.merge(&exp);
                    self.dead.insert(key.clone(), Dead::Expect(Box::new(last)));
                }
                if announce {
                    self.queue_object(key);
                }
            }
            return;
        }
        if !state.filter.accepts(&exp) || !master_cached(&self.local.cache, &exp) {
            self.local.netlink.events_filtered += 1;
            return;
        }
        let inserted = if kind == EventKind::New {
            state.internal.insert_new(now, exp)
        } else {
            state.internal.upsert(now, exp)
        };
        if inserted.is_ok() {
            self.dead.remove(&key);
            self.arm_refresh(now, &key);
            if announce {
                self.queue_object(key);
            }
        }
    }

    /// One entry of an expectation dump (start-up, `-R expect`).
    pub fn handle_expect_dump_entry(&mut self, now: Instant, exp: Expect) {
        let Some(state) = self.expect.as_mut() else {
            return;
        };
        if state.filter.accepts(&exp)
            && master_cached(&self.local.cache, &exp)
            && let Some(key) = exp.key()
            && state.internal.upsert(now, exp).is_ok()
        {
            self.arm_refresh(now, &ObjKey::Expect(Box::new(key)));
        }
    }
}

//! What the control socket asks of a core (docs/control-and-cli.md): bulk
//! send and resync, flushes, and the commit of the external cache.

use std::time::{Duration, Instant};

use conntrack_model::{Conntrack, Expect, FlowKey};
use syncproto::Control;

use super::queue::Item;
use super::timer::Timer;
use super::{Mode, ObjKey, SyncCore, SyncEvent, commit};
use crate::compact::Key;

impl SyncCore {
    /// `-B` or a peer's RESYNC: queue every internal object (§5.8).
    pub fn bulk_send(&mut self) {
        if self.is_alarm() {
            return;
        }
        if self.settings.disable_internal_cache {
            self.events.push_back(SyncEvent::DumpKernelForBulk);
            return;
        }
        self.events
            .push_back(SyncEvent::Notice("sending bulk update".into()));
        let mut keys = self.internal_keys();
        // DEAD objects still awaiting acknowledgement go out again as DEL.
        keys.extend(self.dead.keys().cloned());
        for key in keys {
            self.queue_object(key);
        }
    }

    /// `-n`: ask the peers for a bulk send.
    pub fn request_resync(&mut self) {
        if self.is_alarm() {
            return;
        }
        self.events
            .push_back(SyncEvent::Notice("resync requested".into()));
        self.txq.push_back(Item::Control(Control::Resync), ());
    }

    /// `-t`: the kernel table is flushed `PurgeTimeout` from now (once;
    /// asking again while one is scheduled changes nothing).
    pub fn schedule_purge(&mut self, now: Instant) {
        if !self.timers.is_set(Timer::Purge) {
            self.events.push_back(SyncEvent::Notice(format!(
                "flushing conntrack table in {} secs",
                self.settings.purge_timeout.as_secs()
            )));
            self.timers
                .set(Timer::Purge, now + self.settings.purge_timeout);
        }
    }

    /// A flush of the internal cache or a commit cancels a scheduled purge.
    pub fn cancel_purge(&mut self) {
        self.timers.stop(Timer::Purge);
    }

    /// The scheduled purge is due: true once, then the shell flushes the
    /// kernel table and the internal cache.
    pub fn poll_purge(&mut self) -> bool {
        std::mem::take(&mut self.purge_due)
    }

    /// `-f internal`: objects go at once, queued ones included (no DEL).
    pub fn flush_internal(&mut self) {
        self.local.cache.flush();
        self.forget_queued(|k| matches!(k, ObjKey::Flow(_)));
    }

    pub fn flush_internal_expect(&mut self) {
        if let Some(state) = self.expect.as_mut() {
            state.internal.flush();
        }
        self.forget_queued(|k| matches!(k, ObjKey::Expect(_)));
    }

    fn forget_queued(&mut self, which: impl Fn(&ObjKey) -> bool) {
        for key in self.refresh_keys(&which) {
            self.timers.refresh.cancel(&key);
        }
        let resend = self.ftfw().into_iter().flat_map(|ftfw| ftfw.rsq.iter());
        let keys: Vec<ObjKey> = self
            .txq
            .iter()
            .map(|(item, _)| item)
            .chain(resend.map(|(item, _)| item))
            .filter_map(|item| match item {
                Item::Object(k) if which(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        for key in keys {
            self.txq.remove_object(&key);
            if let Mode::Ftfw(ftfw) = &mut self.mode {
                ftfw.rsq.remove_object(&key);
            }
            self.dead.remove(&key);
        }
        self.dead.retain(|k, _| !which(k));
    }

    /// Every live internal object, flows first.
    fn internal_keys(&self) -> Vec<ObjKey> {
        let mut keys: Vec<ObjKey> = self
            .local
            .cache
            .iter_live()
            .filter_map(|e| e.key())
            .map(|k| ObjKey::Flow(Key::new(&k)))
            .collect();
        if let Some(state) = &self.expect {
            keys.extend(
                state
                    .internal
                    .iter()
                    .filter_map(|e| e.exp.key())
                    .map(|k| ObjKey::Expect(Box::new(k))),
            );
        }
        keys
    }

    fn refresh_keys(&self, which: &impl Fn(&ObjKey) -> bool) -> Vec<ObjKey> {
        let mut keys = self.internal_keys();
        keys.retain(|k| which(k));
        keys
    }

    pub fn flush_external(&mut self) {
        self.external.flush();
        self.timers.expiry.clear();
    }

    pub fn flush_external_expect(&mut self) {
        if let Some(state) = self.expect.as_mut() {
            state.external.flush();
        }
    }

    /// The kernel create requests of a commit (`-c`), in commit order.
    pub fn commit_flows(&self, now: Instant) -> impl Iterator<Item = Conntrack> + '_ {
        commit::flows(self, now)
    }

    /// Positions of the external cache a commit walks, twice: plain flows
    /// (`related` false), then flows with a master.
    pub fn commit_positions(&self) -> usize {
        self.external.positions()
    }

    /// The create request for the external flow at `at` in the given pass.
    pub fn commit_request_at(&self, at: usize, related: bool, now: Instant) -> Option<Conntrack> {
        commit::request_at(self, at, related, now)
    }

    /// Makes room in the internal cache for a quiet commit's flows.
    pub fn prepare_adoption(&mut self) {
        if !self.settings.disable_internal_cache {
            let incoming = self.external.len();
            self.local.cache.reserve(incoming);
        }
    }

    /// The external flow at `at` was committed while NEW events were not
    /// listened to: it enters the internal cache as its event would have
    /// made it (unannounced: commits are not echoed to peers).
    pub fn adopt_committed_at(&mut self, at: usize, now: Instant) {
        if self.settings.disable_internal_cache {
            return;
        }
        let Some(mut ct) = self.external.entry_at(at).map(|e| e.ct().into_owned()) else {
            return;
        };
        if ct.reply.is_none() {
            ct.reply = commit::reply_after_nat(&ct);
        }
        self.local.adopt(now, ct);
        self.apply_changes(now);
    }

    /// The external expectations a commit creates.
    pub fn commit_expects(&self) -> Vec<Expect> {
        match &self.expect {
            Some(state) if !self.settings.disable_external_cache => {
                state.external.iter().map(|e| e.exp.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Remaining ALARM lifetime of an external flow (`-e` shows it).
    pub fn expires_in(&self, key: &FlowKey, now: Instant) -> Option<Duration> {
        self.timers
            .expiry
            .deadline(&ObjKey::Flow(Key::new(key)))
            .map(|at| at.saturating_duration_since(now))
    }
}

//! Local (kernel) events into the internal cache (docs/sync-modes.md §3, §4),
//! and the Stats-mode flow log (§12). Sans-IO: the caller passes time and
//! drains outputs.

use std::collections::VecDeque;
use std::time::Instant;

use conntrack_model::{Conntrack, FlowKey};

use crate::cache::Cache;
use crate::filter::{Filter, Verdict};

/// What a kernel event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    New,
    Update,
    Destroy,
}

/// Which socket caused a kernel event (docs/sync-modes.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    NotMe,
    Commit,
    Flush,
    Inject,
}

/// Counters of the `netlink stats:` block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetlinkCounters {
    pub events_received: u64,
    pub events_filtered: u64,
    pub unknown_type: u64,
    pub catch_failed: u64,
    pub dump_unknown: u64,
    pub overrun: u64,
    pub flush_kernel: u64,
    pub resync_kernel: u64,
    pub buffer_size: u64,
}

/// Something the caller should log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalOutput {
    /// Stats mode: a flow was destroyed; write it to the flow log.
    FlowDestroyed(Box<Conntrack>),
    /// An event was skipped because it lacks addresses.
    Malformed,
}

/// A change of the internal cache the sync layer must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: FlowKey,
    /// Sent to peers (the event did not come from our own commit or flush).
    pub announce: bool,
    /// The flow was destroyed; its last known attributes (for the DEL).
    pub gone: Option<Box<Conntrack>>,
}

/// The local side of the daemon: internal cache (or Stats-mode cache).
#[derive(Debug)]
pub struct LocalCache {
    pub(crate) cache: Cache,
    /// Applied to events when filtering is done in user space.
    pub(crate) event_filter: Option<Filter>,
    /// Always applied to dumps.
    pub(crate) dump_filter: Option<Filter>,
    pub(crate) netlink: NetlinkCounters,
    pub(crate) traffic_bytes: u64,
    pub(crate) traffic_packets: u64,
    stats_mode: bool,
    outputs: VecDeque<LocalOutput>,
    /// Sync mode only: changes for the replication layer.
    track_changes: bool,
    changes: Vec<Change>,
}

impl LocalCache {
    /// `name` is `internal` in sync mode, `stats` in stats mode.
    pub fn new(
        stats_mode: bool,
        limit: usize,
        filter: Option<Filter>,
        kernel_filtering: bool,
    ) -> Self {
        LocalCache {
            cache: Cache::new(if stats_mode { "stats" } else { "internal" }, limit),
            event_filter: if kernel_filtering {
                None
            } else {
                filter.clone()
            },
            dump_filter: filter,
            netlink: NetlinkCounters::default(),
            traffic_bytes: 0,
            traffic_packets: 0,
            stats_mode,
            outputs: VecDeque::new(),
            track_changes: false,
            changes: Vec::new(),
        }
    }

    /// The cache itself.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Empties the cache (`-f`).
    pub fn flush(&mut self) {
        self.cache.flush();
    }

    /// Removes a flow (a resync no longer found it in the kernel).
    pub fn remove(&mut self, key: &FlowKey) -> Option<crate::cache::Entry> {
        self.cache.remove(key)
    }

    /// The filter dumps, resyncs and flushes go through.
    pub fn dump_filter(&self) -> Option<&Filter> {
        self.dump_filter.as_ref()
    }

    /// Events arrive filtered by the kernel (BPF): no user-space filter
    /// for them (dumps keep theirs).
    pub fn filter_events_in_kernel(&mut self) {
        self.event_filter = None;
    }

    /// The `netlink stats:` counters.
    pub fn netlink(&self) -> &NetlinkCounters {
        &self.netlink
    }

    /// The same, for the kernel side, which counts what it sees (overruns,
    /// unreadable events, the buffer size).
    pub fn netlink_mut(&mut self) -> &mut NetlinkCounters {
        &mut self.netlink
    }

    /// Bytes and packets of the destroyed flows seen (`traffic processed`).
    pub fn traffic(&self) -> (u64, u64) {
        (self.traffic_bytes, self.traffic_packets)
    }

    /// Pre-sizes the cache for `HashSize` flows.
    pub fn presized(mut self, hash_size: usize) -> Self {
        self.cache = self.cache.presized(hash_size);
        self
    }

    /// Records changes for [`LocalCache::take_changes`] (sync mode).
    pub fn track_changes(mut self) -> Self {
        self.track_changes = true;
        self
    }

    /// Changes since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    fn changed(&mut self, key: Option<FlowKey>, announce: bool, gone: Option<Box<Conntrack>>) {
        if let (true, Some(key)) = (self.track_changes, key) {
            self.changes.push(Change {
                key,
                announce,
                gone,
            });
        }
    }

    /// A flow that a resync found missing from the kernel: removed, and
    /// announced as deleted.
    pub fn handle_vanished(&mut self, key: &FlowKey) -> Option<Conntrack> {
        let ct = self.cache.remove(key)?.ct().into_owned();
        self.changed(Some(key.clone()), true, Some(Box::new(ct.clone())));
        Some(ct)
    }

    fn passes(&mut self, filter_is_events: bool, ct: &Conntrack) -> bool {
        let filter = if filter_is_events {
            &self.event_filter
        } else {
            &self.dump_filter
        };
        let verdict = match filter {
            Some(f) => f.verdict(ct),
            None if ct.orig.is_none() || ct.reply.is_none() => Verdict::Malformed,
            None => Verdict::Accept,
        };
        match verdict {
            Verdict::Accept => true,
            Verdict::Filtered => {
                self.netlink.events_filtered += u64::from(filter_is_events);
                false
            }
            Verdict::Malformed => {
                self.outputs.push_back(LocalOutput::Malformed);
                false
            }
        }
    }

    /// One ctnetlink event.
    pub fn handle_kernel_event(
        &mut self,
        now: Instant,
        kind: EventKind,
        mut ct: Conntrack,
        origin: Origin,
    ) {
        self.netlink.events_received += 1;
        if origin == Origin::Inject || !self.passes(true, &ct) {
            return;
        }
        let announce = origin == Origin::NotMe;
        match kind {
            EventKind::New => {
                ct.strip_counters();
                let key = ct.key();
                if self.cache.insert_new(now, ct).is_ok() {
                    self.changed(key, announce, None);
                }
            }
            EventKind::Update => {
                let key = ct.key();
                if self.cache.update_or_create(now, ct).is_ok() {
                    self.changed(key, announce, None);
                }
            }
            EventKind::Destroy => {
                let Some(key) = ct.key() else { return };
                let Some(entry) = self.cache.remove(&key) else {
                    return;
                };
                for c in [ct.counters_orig, ct.counters_reply].into_iter().flatten() {
                    self.traffic_bytes += c.bytes;
                    self.traffic_packets += c.packets;
                }
                if self.track_changes {
                    let mut last = entry.ct().into_owned();
                    last.merge(&ct);
                    self.changed(Some(key), announce, Some(Box::new(last)));
                }
                if self.stats_mode {
                    // The destroy event as the kernel reported it, as 1.4.7
                    // logs it (not merged with the cached copy).
                    ct.timeout = None;
                    self.outputs
                        .push_back(LocalOutput::FlowDestroyed(Box::new(ct)));
                }
            }
        }
    }

    /// One entry of a dump: merged; announced only by an overrun or
    /// polling resync (start-up and `-R` dumps announce nothing).
    pub fn handle_dump_entry(&mut self, now: Instant, mut ct: Conntrack, announce: bool) {
        if !self.passes(false, &ct) {
            return;
        }
        ct.strip_counters();
        let key = ct.key();
        if self.cache.update_or_create(now, ct).is_ok() {
            self.changed(key, announce, None);
        }
    }

    /// A flow this node wrote into the kernel itself while not listening
    /// to NEW events (a quiet commit): cached as its NEW event would have
    /// been, unannounced, without counting an event.
    pub fn adopt(&mut self, now: Instant, mut ct: Conntrack) {
        if !self.passes(false, &ct) {
            return;
        }
        ct.strip_counters();
        let key = ct.key();
        if self.cache.insert_new(now, ct).is_ok() {
            self.changed(key, false, None);
        }
    }

    /// Next output for the caller.
    pub fn poll_output(&mut self) -> Option<LocalOutput> {
        self.outputs.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::{Counters, Tuple};

    fn flow(port: u16) -> Conntrack {
        let orig = Tuple::new(
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            6,
        )
        .with_ports(port, 80);
        Conntrack {
            reply: Some(orig.inverted()),
            orig: Some(orig),
            timeout: Some(30),
            ..Conntrack::default()
        }
    }

    #[test]
    fn new_update_destroy_cycle() {
        let now = Instant::now();
        let mut local = LocalCache::new(false, 100, None, false);
        local.handle_kernel_event(now, EventKind::New, flow(1), Origin::NotMe);
        local.handle_kernel_event(now, EventKind::Update, flow(1), Origin::NotMe);
        assert_eq!(local.cache.active(), 1);
        let mut gone = flow(1);
        gone.counters_orig = Some(Counters {
            packets: 3,
            bytes: 180,
        });
        local.handle_kernel_event(now, EventKind::Destroy, gone, Origin::NotMe);
        assert_eq!(local.cache.active(), 0);
        assert_eq!((local.traffic_packets, local.traffic_bytes), (3, 180));
        assert_eq!(local.netlink.events_received, 3);
        // Inject-origin events are ignored entirely.
        local.handle_kernel_event(now, EventKind::New, flow(2), Origin::Inject);
        assert_eq!(local.cache.active(), 0);
    }

    #[test]
    fn stats_mode_logs_destroyed_flows_without_timeout() {
        let now = Instant::now();
        let mut local = LocalCache::new(true, 100, None, false);
        let mut created = flow(1);
        created.mark = Some(0);
        local.handle_kernel_event(now, EventKind::New, created, Origin::NotMe);
        // The kernel leaves a zero mark out of destroy events; 1.4.7 logs
        // the event as it came, so no `mark=0` either.
        let mut destroyed = flow(1);
        destroyed.mark = None;
        local.handle_kernel_event(now, EventKind::Destroy, destroyed, Origin::NotMe);
        match local.poll_output() {
            Some(LocalOutput::FlowDestroyed(ct)) => {
                assert_eq!(ct.timeout, None);
                assert_eq!(ct.mark, None);
            }
            other => panic!("{other:?}"),
        }
        // Unknown flows are never reported.
        local.handle_kernel_event(now, EventKind::Destroy, flow(9), Origin::NotMe);
        assert_eq!(local.poll_output(), None);
    }

    #[test]
    fn malformed_events_are_reported_not_cached() {
        let now = Instant::now();
        let mut local = LocalCache::new(false, 100, None, false);
        let mut ct = flow(1);
        ct.reply = None;
        local.handle_kernel_event(now, EventKind::New, ct, Origin::NotMe);
        assert_eq!(local.poll_output(), Some(LocalOutput::Malformed));
        assert!(local.cache.is_empty());
    }
}

//! The helpers of a daemon: which helper serves which queue, the flows
//! they follow, their policies and counters. Sans IO: a queued packet
//! comes in with [`Engine::handle_packet`] and gets its verdict at once;
//! the expectations to create or delete are drained with
//! [`Engine::poll_output`], and what the kernel answered comes back
//! with [`Engine::handle_expect_result`].
//!
//! The verdict is always ACCEPT: a helper only ever adds expectations,
//! and a payload it cannot read (a parse error) is let through and
//! counted, never dropped, so that a hostile or broken peer can neither
//! crash the daemon nor stall the queue.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use conntrack_model::Expect;

use crate::flow::{CtContext, Endpoints, FlowTable, LiveExpectation};
use crate::helpers::{self, HelperState};
use crate::kind::{HelperKind, Policy};
use crate::packet;

/// `AF_INET` and `AF_INET6`.
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

/// One `Type NAME L3 L4 { … }` of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperSetup {
    pub kind: HelperKind,
    /// `AF_INET` or `AF_INET6` (`inet` or `inet6`).
    pub family: u8,
    pub l4proto: u8,
    pub queue_num: u16,
    pub policy: Policy,
}

/// What one helper did. Every counter only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelperCounters {
    /// Packets given to it.
    pub packets: u64,
    /// Expectations it asked the kernel for.
    pub expectations: u64,
    /// Of those, the kernel created.
    pub expectations_created: u64,
    /// Of those, the kernel refused (no helper on the master, policy,
    /// table full, …).
    pub expectations_refused: u64,
    /// Expectations announced that the helper's policy does not allow
    /// (an FTP PORT naming another host, an SSDP callback to another).
    pub refused_by_policy: u64,
    /// Older expectations removed to stay within `ExpectMax`.
    pub evicted_by_policy: u64,
    /// Payloads it could not read (accepted without expectation).
    pub parse_errors: u64,
    /// Packets of its queue the kernel could not queue or deliver.
    pub queue_drops: u64,
}

/// Something for the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Create this expectation (ctnetlink IPCTNL_MSG_EXP_NEW).
    Create { helper: usize, expect: Expect },
    /// Delete this one (ExpectMax reached).
    Delete { helper: usize, expect: Expect },
}

/// The verdict on one queued packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub queue_num: u16,
    pub packet_id: u32,
    /// Always true (see the module documentation).
    pub accept: bool,
    /// The helper that read it, if one serves the queue.
    pub helper: Option<usize>,
}

/// How often idle flows are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The helpers of one daemon.
#[derive(Debug)]
pub struct Engine {
    setups: Vec<HelperSetup>,
    counters: Vec<HelperCounters>,
    flows: FlowTable,
    outputs: VecDeque<Output>,
    next_sweep: Option<Instant>,
    /// Packets on a queue no helper serves (accepted).
    pub unserved_packets: u64,
}

impl Engine {
    pub fn new(setups: Vec<HelperSetup>) -> Engine {
        Engine::with_flow_table(setups, FlowTable::default())
    }

    pub fn with_flow_table(setups: Vec<HelperSetup>, flows: FlowTable) -> Engine {
        Engine {
            counters: vec![HelperCounters::default(); setups.len()],
            setups,
            flows,
            outputs: VecDeque::new(),
            next_sweep: None,
            unserved_packets: 0,
        }
    }

    pub fn setups(&self) -> &[HelperSetup] {
        &self.setups
    }

    /// Each helper with its counters.
    pub fn counters(&self) -> impl Iterator<Item = (&HelperSetup, &HelperCounters)> {
        self.setups.iter().zip(&self.counters)
    }

    /// Flows followed now.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// A packet from queue `queue_num`, from its IP header on, with the
    /// conntrack the kernel attached if it did. Returns its verdict.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        queue_num: u16,
        packet_id: u32,
        bytes: &[u8],
        ct: Option<&CtContext>,
    ) -> Verdict {
        self.next_sweep.get_or_insert(now + SWEEP_EVERY);
        let mut verdict = Verdict {
            queue_num,
            packet_id,
            accept: true,
            helper: None,
        };
        // As 1.4.7: the first helper configured on that queue.
        let Some(index) = self.setups.iter().position(|s| s.queue_num == queue_num) else {
            self.unserved_packets += 1;
            return verdict;
        };
        verdict.helper = Some(index);
        let setup = self.setups[index].clone();
        self.counters[index].packets += 1;
        let packet = match packet::parse(bytes) {
            Ok(p) if p.l4proto == setup.l4proto => p,
            Ok(_) | Err(_) => {
                self.counters[index].parse_errors += 1;
                return verdict;
            }
        };
        let (view, entry) = self.flows.track(now, &packet, setup.kind.server_port(), ct);
        let mut scratch = HelperState::default();
        let (state, live) = match entry {
            Some(entry) => (&mut entry.state, Some(&mut entry.live)),
            None => (&mut scratch, None),
        };
        let findings = match helpers::inspect(setup.kind, &view, &packet, state) {
            Ok(findings) => findings,
            Err(_) => {
                self.counters[index].parse_errors += 1;
                return verdict;
            }
        };
        let counters = &mut self.counters[index];
        counters.refused_by_policy += u64::from(findings.refused);
        let mut live = live;
        for request in findings.expectations {
            let timeout = request.timeout.unwrap_or(setup.policy.expect_timeout);
            let expect = request.to_expect(&view.orig, setup.kind.name(), timeout);
            if let Some(live) = live.as_deref_mut() {
                live.retain(|l| l.expires > now);
                if live.iter().any(|l| l.expect.tuple == expect.tuple) {
                    continue;
                }
                let max = usize::try_from(setup.policy.expect_max).unwrap_or(usize::MAX);
                if max > 0 && live.len() >= max {
                    let oldest = live.remove(0);
                    counters.evicted_by_policy += 1;
                    self.outputs.push_back(Output::Delete {
                        helper: index,
                        expect: oldest.expect,
                    });
                }
                live.push(LiveExpectation {
                    expires: now + Duration::from_secs(u64::from(timeout)),
                    expect: expect.clone(),
                });
            }
            counters.expectations += 1;
            self.outputs.push_back(Output::Create {
                helper: index,
                expect,
            });
        }
        verdict
    }

    /// Drains what the shell must do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The kernel's answer to an [`Output::Create`].
    pub fn handle_expect_result(&mut self, helper: usize, result: Result<(), i32>) {
        if let Some(c) = self.counters.get_mut(helper) {
            match result {
                Ok(()) => c.expectations_created += 1,
                Err(_) => c.expectations_refused += 1,
            }
        }
    }

    /// The kernel's drop counters of a queue (absolute).
    pub fn handle_queue_drops(&mut self, queue_num: u16, drops: u64) {
        if let Some(index) = self.setups.iter().position(|s| s.queue_num == queue_num) {
            let c = &mut self.counters[index];
            c.queue_drops = c.queue_drops.max(drops);
        }
    }

    /// When [`Engine::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_sweep
    }

    /// Forgets idle flows.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|at| at <= now) {
            self.flows.expire(now);
            self.next_sweep = (!self.flows.is_empty()).then_some(now + SWEEP_EVERY);
        }
    }
}

/// The master tuple an expectation names, as endpoints.
pub fn master_of(expect: &Expect) -> Option<Endpoints> {
    Endpoints::from_tuple(expect.master.as_ref()?)
}

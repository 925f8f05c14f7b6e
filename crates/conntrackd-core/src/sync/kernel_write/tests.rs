//! The write policy against a fake kernel, in virtual time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use conntrack_model::consts::{IPPROTO_TCP, status};
use conntrack_model::{Conntrack, FlowKey, Tuple};

use super::*;
use crate::sync::{Protocol, SyncCore, SyncSettings};

#[test]
fn every_intent_follows_the_policy() {
    let finish = |w: Write, results: &[Result<(), i32>]| -> (Vec<Op>, Outcome) {
        let mut w = w;
        let mut ops = Vec::new();
        for r in results {
            ops.push(w.op());
            match w.after(*r) {
                Next::Send(next) => w = next,
                Next::Finished(outcome) => return (ops, outcome),
            }
        }
        panic!("unfinished after {ops:?}");
    };
    let create = Write::new(Intent::Create);
    assert_eq!(finish(create, &[Ok(())]), (vec![Op::Create], Outcome::Done));
    assert_eq!(
        finish(create, &[Err(EEXIST), Err(ENOENT), Ok(())]),
        (vec![Op::Create, Op::Delete, Op::Create], Outcome::Done),
        "an existing entry is deleted and created again, whatever the delete said"
    );
    assert_eq!(
        finish(create, &[Err(EEXIST), Ok(()), Err(22)]),
        (
            vec![Op::Create, Op::Delete, Op::Create],
            Outcome::Failed(Stage::Recreating, 22)
        )
    );
    assert_eq!(
        finish(create, &[Err(22)]),
        (vec![Op::Create], Outcome::Failed(Stage::First, 22))
    );
    let update = Write::new(Intent::Update);
    assert_eq!(
        finish(update, &[Err(ENOENT), Ok(())]),
        (vec![Op::Update, Op::Create], Outcome::Done)
    );
    assert_eq!(
        finish(update, &[Err(ENOENT), Err(12)]),
        (
            vec![Op::Update, Op::Create],
            Outcome::Failed(Stage::CreatingInstead, 12)
        )
    );
    assert_eq!(
        finish(update, &[Err(22), Ok(()), Ok(())]),
        (vec![Op::Update, Op::Delete, Op::Create], Outcome::Done)
    );
    let delete = Write::new(Intent::Delete);
    assert_eq!(
        finish(delete, &[Err(ENOENT)]),
        (vec![Op::Delete], Outcome::Done)
    );
    assert_eq!(
        finish(delete, &[Err(1)]),
        (vec![Op::Delete], Outcome::Failed(Stage::First, 1))
    );
}

fn settings() -> SyncSettings {
    SyncSettings::basic(Protocol::Notrack)
}

fn flow(i: u32, master: bool) -> Conntrack {
    let orig = Tuple::new(
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        "192.168.1.1".parse().expect("ip"),
        IPPROTO_TCP,
    )
    .with_ports(1024 + (i % 50_000) as u16, 80);
    Conntrack {
        reply: Some(orig.inverted()),
        master: master.then(|| orig.clone()),
        orig: Some(orig),
        status: Some(status::ASSURED | status::SEEN_REPLY),
        timeout: Some(300),
        ..Conntrack::default()
    }
}

/// A kernel table that answers like ctnetlink.
#[derive(Default)]
struct FakeKernel {
    table: HashMap<FlowKey, Conntrack>,
    requests: Vec<Op>,
}

impl FakeKernel {
    fn apply(&mut self, op: Op, ct: &Conntrack) -> Result<(), i32> {
        self.requests.push(op);
        let key = ct.key().expect("key");
        match op {
            Op::Create if self.table.contains_key(&key) => Err(EEXIST),
            Op::Create => {
                self.table.insert(key, ct.clone());
                Ok(())
            }
            Op::Update if !self.table.contains_key(&key) => Err(ENOENT),
            Op::Update => Ok(()),
            Op::Delete => self.table.remove(&key).map(|_| ()).ok_or(ENOENT),
        }
    }

    /// What the shell does with a chunk: the first requests, then each
    /// write on to its end.
    fn commit_chunk(&mut self, commit: &mut FlowCommit, chunk: &Chunk) -> bool {
        let first: Vec<Result<(), i32>> = chunk
            .flows
            .iter()
            .map(|ct| self.apply(Op::Create, ct))
            .collect();
        let rejoin = commit.first_pass_done(chunk, &first);
        let outcomes: Vec<Outcome> = chunk
            .flows
            .iter()
            .zip(&first)
            .map(|(ct, result)| {
                let mut next = Write::new(Intent::Create).after(*result);
                loop {
                    match next {
                        Next::Finished(outcome) => return outcome,
                        Next::Send(w) => next = w.after(self.apply(w.op(), ct)),
                    }
                }
            })
            .collect();
        commit.chunk_done(&outcomes);
        rejoin
    }
}

fn core_with(flows: impl IntoIterator<Item = Conntrack>, now: Instant) -> SyncCore {
    let mut core = SyncCore::new(now, settings());
    for ct in flows {
        core.external.insert_new(now, ct).expect("room");
    }
    core
}

#[test]
fn a_commit_sends_plain_flows_then_related_ones_in_bounded_chunks() {
    let now = Instant::now();
    let n = COMMIT_CHUNK as u32 * 2 + 100;
    let mut core = core_with((0..n).map(|i| flow(i, i % 10 == 0)), now);
    let mut commit = FlowCommit::start(&mut core, false);
    let mut kernel = FakeKernel::default();
    let mut sizes = Vec::new();
    let mut related_seen = false;
    while let Some(chunk) = commit.next_chunk(&core, now) {
        assert!(chunk.flows.len() <= COMMIT_CHUNK);
        let related = chunk.flows.iter().filter(|c| c.master.is_some()).count();
        assert!(related == 0 || related == chunk.flows.len(), "passes mixed");
        if related > 0 {
            related_seen = true;
        } else {
            assert!(!related_seen, "a plain flow after related ones");
        }
        sizes.push(chunk.flows.len());
        kernel.commit_chunk(&mut commit, &chunk);
    }
    assert_eq!(sizes.iter().sum::<usize>(), n as usize);
    assert_eq!(commit.totals(), (u64::from(n), 0));
    assert_eq!(kernel.table.len(), n as usize);
}

#[test]
fn existing_flows_are_replaced_and_end_the_quiet_part() {
    let now = Instant::now();
    let n = COMMIT_CHUNK as u32 * 3;
    let mut core = core_with((0..n).map(|i| flow(i, false)), now);
    let mut kernel = FakeKernel::default();
    // One flow of the second chunk exists in the kernel already, with
    // other attributes (picked up mid-stream).
    let existing = COMMIT_CHUNK as u32 + 7;
    let mut stale = flow(existing, false);
    stale.mark = Some(99);
    kernel.apply(Op::Create, &stale).expect("create");
    let mut commit = FlowCommit::start(&mut core, true);
    assert!(commit.quiet());
    let mut rejoined_at = None;
    let mut chunks = 0;
    while let Some(chunk) = commit.next_chunk(&core, now) {
        if kernel.commit_chunk(&mut commit, &chunk) {
            rejoined_at = Some(chunks);
        }
        chunks += 1;
    }
    assert_eq!(
        rejoined_at,
        Some(1),
        "the quiet part ends at the chunk that met it"
    );
    assert!(!commit.quiet());
    assert_eq!(commit.totals(), (u64::from(n), 0));
    let replaced = kernel
        .table
        .get(&flow(existing, false).key().expect("key"))
        .expect("there");
    assert_eq!(
        replaced.mark, None,
        "replaced with the replicated attributes"
    );
    // Adopted: what the first and second chunks created while quiet (not
    // the replaced one: its events come as usual), nothing of the third.
    let adopted = commit.adopted();
    assert_eq!(adopted.len(), 2 * COMMIT_CHUNK - 1);
    assert!(!adopted.contains(&existing));
    assert!(adopted.iter().all(|at| (*at as usize) < 2 * COMMIT_CHUNK));
}

#[test]
fn the_committed_timeout_is_what_is_left_in_virtual_time() {
    let start = Instant::now();
    let mut core = core_with([flow(1, false)], start);
    // 100 s later, 200 of the 300 reported seconds are left.
    let later = start + Duration::from_secs(100);
    let mut commit = FlowCommit::start(&mut core, false);
    let chunk = commit.next_chunk(&core, later).expect("a chunk");
    assert_eq!(chunk.flows[0].timeout, Some(200));
    // After 400 s nothing is left: 60 s.
    let mut commit = FlowCommit::start(&mut core, false);
    let chunk = commit
        .next_chunk(&core, start + Duration::from_secs(400))
        .expect("a chunk");
    assert_eq!(chunk.flows[0].timeout, Some(60));
}

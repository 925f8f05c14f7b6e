//! Carries out the core's kernel writes (docs/sync-modes.md §8): the
//! commit (`-c`) and, with `DisableExternalCache`, each received message.
//! What to send and how to retry is decided by
//! `conntrackd_core::sync::kernel_write`; here requests are sent, their
//! results reported back, and failures logged as 1.4.7 words them.

use std::time::Instant;

use conntrack_model::{Conntrack, Expect};
use conntrack_text::PlainOptions;
use conntrackd_core::sync::kernel_write::{
    Chunk, FlowCommit, Intent, Next, Op, Outcome, Stage, Write,
};
use conntrackd_core::sync::{Inject, SyncCore, inject_requests};
use ctnl::{CtSocket, groups, request};

use super::SyncStartError;
use crate::logger;

pub use crate::counters::model::{CommitReport, InjectCounters};

/// The kernel writes of sync mode, with their own sockets: events caused
/// by them come back with their port id, so that the core neither echoes
/// commits to peers nor takes injected flows for local ones.
#[derive(Debug)]
pub(super) struct KernelWriter {
    /// Events caused by this socket have origin COMMIT (not echoed).
    commit_socket: CtSocket,
    /// Events caused by this socket have origin INJECT (ignored).
    inject_socket: CtSocket,
    pub(super) inject: InjectCounters,
    pub(super) last_commit: Option<CommitReport>,
    /// External-cache positions a quiet commit wrote, for the internal
    /// cache once the client has its answer (see `finish_commit`).
    pending_adoption: Vec<u32>,
}

fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// An errno for a request whose batch failed as a whole.
const EIO: i32 = 5;

/// Runs one write to its end; `send` sends a request and returns its
/// result.
fn run(intent: Intent, mut send: impl FnMut(Op) -> Result<(), i32>) -> Outcome {
    let mut write = Write::new(intent);
    loop {
        match write.after(send(write.op())) {
            Next::Send(next) => write = next,
            Next::Finished(outcome) => return outcome,
        }
    }
}

fn build(op: Op) -> fn(&mut Vec<u8>, u32, &Conntrack) {
    match op {
        Op::Create => request::create,
        Op::Update => request::update,
        Op::Delete => request::delete,
    }
}

/// One request for one flow.
fn apply_one(socket: &mut CtSocket, op: Op, ct: &Conntrack) -> Result<(), i32> {
    match socket.apply_batch(std::slice::from_ref(ct), build(op)) {
        Ok(results) => results.into_iter().next().unwrap_or(Err(EIO)),
        Err(e) => Err(e.raw_os_error().unwrap_or(EIO)),
    }
}

/// One request for one expectation.
fn apply_expect(socket: &mut CtSocket, op: Op, exp: &Expect) -> Result<(), i32> {
    let result = match op {
        Op::Create => socket.request_ack(|buf, seq| request::create_expect(buf, seq, exp)),
        Op::Update | Op::Delete => {
            socket.request_ack(|buf, seq| request::delete_expect(buf, seq, exp))
        }
    };
    result.unwrap_or_else(|e| Err(e.raw_os_error().unwrap_or(EIO)))
}

impl KernelWriter {
    /// The reason of a failure is logged (1.4.7's words).
    pub(super) fn open() -> Result<KernelWriter, SyncStartError> {
        let open = || {
            CtSocket::open(0, false).map_err(|e| {
                logger::error(&format!("can't open netlink handler: {e}"));
                SyncStartError::Init
            })
        };
        Ok(KernelWriter {
            commit_socket: open()?,
            inject_socket: open()?,
            inject: InjectCounters::default(),
            last_commit: None,
            pending_adoption: Vec::new(),
        })
    }

    /// (commit, inject) netlink port ids.
    pub(super) fn ports(&self) -> (u32, u32) {
        (self.commit_socket.port_id(), self.inject_socket.port_id())
    }

    /// DisableExternalCache: a received message goes to the kernel
    /// (docs/sync-modes.md §8.1).
    pub(super) fn inject(&mut self, op: Inject, tcp_window_tracking: bool) {
        let socket = &mut self.inject_socket;
        let c = &mut self.inject;
        match op {
            Inject::CtNew(ct) => {
                let (create, _) = inject_requests(&ct, tcp_window_tracking);
                match run(Intent::Create, |op| apply_one(socket, op, &create)) {
                    Outcome::Done => c.created += 1,
                    Outcome::Failed(stage, e) => {
                        logger::error(&if stage == Stage::Recreating {
                            format!(
                                "could not add new ct entry, even when deleting it first: {}",
                                errno_text(e)
                            )
                        } else {
                            format!("could not add new ct entry: {}", errno_text(e))
                        });
                        logger::flow_error(&conntrack_text::plain(
                            &create,
                            PlainOptions::default(),
                        ));
                        c.create_failed += 1;
                    }
                }
            }
            Inject::CtUpdate(ct) => {
                let (create, update) = inject_requests(&ct, tcp_window_tracking);
                let request = |op| if op == Op::Update { &update } else { &create };
                match run(Intent::Update, |op| apply_one(socket, op, request(op))) {
                    Outcome::Done => c.updated += 1,
                    Outcome::Failed(stage, e) => {
                        logger::error(&if stage == Stage::CreatingInstead {
                            format!(
                                "could not update ct entry, even if creating it instead: {}",
                                errno_text(e)
                            )
                        } else {
                            format!(
                                "could not update ct entry, even when deleting it first: {}",
                                errno_text(e)
                            )
                        });
                        logger::flow_error(&conntrack_text::plain(
                            &update,
                            PlainOptions::default(),
                        ));
                        c.update_failed += 1;
                    }
                }
            }
            Inject::CtDelete(ct) => match run(Intent::Delete, |op| apply_one(socket, op, &ct)) {
                Outcome::Done => c.destroyed += 1,
                Outcome::Failed(_, e) => {
                    logger::error(&format!("could not destroy ct entry: {}", errno_text(e)));
                    logger::flow_error(&conntrack_text::plain(&ct, PlainOptions::default()));
                    c.destroy_failed += 1;
                }
            },
            Inject::ExpNew(exp) => {
                if let Outcome::Failed(_, e) =
                    run(Intent::Create, |op| apply_expect(socket, op, &exp))
                {
                    logger::error(&format!("could not add new exp entry: {}", errno_text(e)));
                }
            }
            Inject::ExpDelete(exp) => {
                if let Outcome::Failed(_, e) =
                    run(Intent::Delete, |op| apply_expect(socket, op, &exp))
                {
                    logger::error(&format!("could not delete exp entry: {}", errno_text(e)));
                }
            }
        }
    }

    /// `-c`: writes the external cache into the kernel, in chunks
    /// (docs/sync-modes.md §8.2), and returns when done. With `events`
    /// (the event socket, when an internal cache wants the committed
    /// flows), the commit runs quiet (see `FlowCommit`).
    pub(super) fn commit(
        &mut self,
        core: &mut SyncCore,
        now: Instant,
        flows: bool,
        expects: bool,
        events: Option<&CtSocket>,
    ) {
        let started = Instant::now();
        let (mut committed_total, mut failed_total) = (0u64, 0u64);
        if flows {
            let quiet =
                events.is_some_and(|socket| socket.set_event_group(groups::CT_NEW, false).is_ok());
            let mut commit = FlowCommit::start(core, quiet);
            while let Some(chunk) = commit.next_chunk(core, now) {
                self.commit_chunk(&mut commit, &chunk, events);
            }
            if commit.quiet() {
                rejoin_new_events(events);
            }
            let (ok, failed) = commit.totals();
            self.pending_adoption.extend(commit.adopted());
            committed_total += ok;
            failed_total += failed;
            logger::notice(&format!("Committed {ok} new entries"));
            if failed > 0 {
                logger::notice(&format!("{failed} entries can't be committed"));
            }
        }
        if expects && core.expectations().is_some() {
            let (mut ok, mut failed) = (0u64, 0u64);
            let socket = &mut self.commit_socket;
            for exp in &core.commit_expects() {
                match run(Intent::Create, |op| apply_expect(socket, op, exp)) {
                    Outcome::Done => ok += 1,
                    Outcome::Failed(_, e) => {
                        failed += 1;
                        logger::error(&format!("commit-create: {}", errno_text(e)));
                    }
                }
            }
            committed_total += ok;
            failed_total += failed;
            logger::notice(&format!("Committed {ok} new expectations"));
            if failed > 0 {
                logger::notice(&format!("{failed} expectations can't be committed"));
            }
        }
        let took = started.elapsed();
        self.last_commit = Some(CommitReport {
            seconds: took.as_secs_f64(),
            committed: committed_total,
            failed: failed_total,
        });
        logger::notice(&format!(
            "commit has taken {}.{:06} seconds",
            took.as_secs(),
            took.subsec_micros()
        ));
    }

    /// One chunk: the creates pipelined (once more with an ACK per request
    /// if an answer may have been lost: a flow created the first time then
    /// reports EEXIST and is recreated with the same attributes), then each
    /// write carried on in batches, one request kind at a time.
    fn commit_chunk(&mut self, commit: &mut FlowCommit, chunk: &Chunk, events: Option<&CtSocket>) {
        let socket = &mut self.commit_socket;
        let first = socket
            .apply_pipelined(&chunk.flows, request::create)
            .and_then(|piped| match piped {
                Some(results) => Ok(results),
                None => socket.apply_batch(&chunk.flows, request::create),
            });
        let first = match first {
            Ok(results) => results,
            Err(e) => {
                logger::error(&format!("commit-create: {e}"));
                let none = vec![Err(EIO); chunk.flows.len()];
                commit.first_pass_done(chunk, &none);
                commit.chunk_done(&vec![Outcome::Failed(Stage::First, EIO); chunk.flows.len()]);
                return;
            }
        };
        if commit.first_pass_done(chunk, &first) {
            rejoin_new_events(events);
        }
        let mut next: Vec<Next> = first
            .iter()
            .map(|r| Write::new(Intent::Create).after(*r))
            .collect();
        // Batches that failed as a whole were logged once, not per flow.
        let mut logged = vec![false; next.len()];
        loop {
            let pending: Vec<usize> = (0..next.len())
                .filter(|i| matches!(next[*i], Next::Send(_)))
                .collect();
            let Some(op) = pending.first().and_then(|i| match next[*i] {
                Next::Send(w) => Some(w.op()),
                Next::Finished(_) => None,
            }) else {
                break;
            };
            let batch: Vec<usize> = pending
                .into_iter()
                .filter(|i| matches!(next[*i], Next::Send(w) if w.op() == op))
                .collect();
            let flows: Vec<Conntrack> = batch.iter().map(|i| chunk.flows[*i].clone()).collect();
            let results = match socket.apply_batch(&flows, build(op)) {
                Ok(results) => results,
                Err(e) => {
                    // A failed delete is followed by the create anyway.
                    if op != Op::Delete {
                        logger::error(&format!("commit-create: {e}"));
                        for i in &batch {
                            logged[*i] = true;
                        }
                    }
                    vec![Err(EIO); batch.len()]
                }
            };
            for (i, result) in batch.into_iter().zip(results) {
                if let Next::Send(w) = next[i] {
                    next[i] = w.after(result);
                }
            }
        }
        let outcomes: Vec<Outcome> = next
            .iter()
            .map(|n| match n {
                Next::Finished(outcome) => *outcome,
                Next::Send(_) => Outcome::Failed(Stage::First, EIO),
            })
            .collect();
        // As 1.4.7 words them: the recreations first, then the others.
        for stage in [Stage::Recreating, Stage::First] {
            for ((outcome, ct), logged) in outcomes.iter().zip(&chunk.flows).zip(&logged) {
                if let Outcome::Failed(at, e) = outcome
                    && *at == stage
                    && !logged
                {
                    let name = if stage == Stage::First {
                        "commit-create"
                    } else {
                        "commit-destroy"
                    };
                    logger::error(&format!("{name}: {}", errno_text(*e)));
                    logger::flow_error(&conntrack_text::plain(ct, PlainOptions::default()));
                }
            }
        }
        commit.chunk_done(&outcomes);
    }

    /// After a quiet commit's reply: its flows enter the internal cache,
    /// where 1.4.7 has them once it has read their NEW events, which also
    /// happens after its `-c` returned. Runs before any other input, so
    /// the external cache is as the commit left it.
    pub(super) fn finish_commit(&mut self, core: &mut SyncCore, now: Instant) {
        for position in std::mem::take(&mut self.pending_adoption) {
            core.adopt_committed_at(position as usize, now);
        }
    }
}

/// Back in the NEW group after a quiet commit; if that fails, events are
/// lost from now on, which the log must say.
fn rejoin_new_events(events: Option<&CtSocket>) {
    if let Some(socket) = events
        && let Err(e) = socket.set_event_group(groups::CT_NEW, true)
    {
        logger::error(&format!(
            "can't listen to new conntrack events again: {e}; restart conntrackd"
        ));
    }
}

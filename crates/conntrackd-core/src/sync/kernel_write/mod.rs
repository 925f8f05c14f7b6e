//! How replicated objects are written into the kernel, and retried
//! (docs/sync-modes.md §8): decided here, executed by the shell, which
//! reports each request's result. Sans-IO.
//!
//! One policy for every write (the commit, and the received messages
//! written at once with `DisableExternalCache`):
//! - create: an object that exists already (EEXIST) is deleted and
//!   created again, with the replicated attributes (as 1.4.7 does);
//! - update: one that does not exist (ENOENT) is created instead; any
//!   other refusal, deleted and created again;
//! - delete: one already gone (ENOENT) is fine.
//!
//! A commit also decides, per chunk of flows, when it may run quiet (its
//! event socket out of the NEW group, the flows adopted into the internal
//! cache after the reply) and when it must stop being quiet.

use std::time::Instant;

use conntrack_model::Conntrack;

use super::SyncCore;

pub const EEXIST: i32 = 17;
pub const ENOENT: i32 = 2;

/// A kernel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// What a write of an object means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// A new object (a commit, a CT_NEW/EXP_NEW).
    Create,
    /// A changed one (CT_UPDATE).
    Update,
    /// A gone one (CT_DELETE/EXP_DELETE).
    Delete,
}

/// Where a write stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The first request.
    First,
    /// Deleting an object that had to be replaced.
    Clearing,
    /// Creating it again after that.
    Recreating,
    /// Creating an object an update did not find.
    CreatingInstead,
}

/// A write in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub intent: Intent,
    pub stage: Stage,
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Refused with this errno at this stage.
    Failed(Stage, i32),
}

/// What to do after a request's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Send(Write),
    Finished(Outcome),
}

impl Write {
    pub fn new(intent: Intent) -> Write {
        Write {
            intent,
            stage: Stage::First,
        }
    }

    /// The request this stage sends.
    pub fn op(self) -> Op {
        match (self.intent, self.stage) {
            (Intent::Create, Stage::First) => Op::Create,
            (Intent::Update, Stage::First) => Op::Update,
            (Intent::Delete, Stage::First) | (_, Stage::Clearing) => Op::Delete,
            (_, Stage::Recreating | Stage::CreatingInstead) => Op::Create,
        }
    }

    /// The next step once this stage's request returned `result`.
    pub fn after(self, result: Result<(), i32>) -> Next {
        let at = |stage| {
            Next::Send(Write {
                intent: self.intent,
                stage,
            })
        };
        match (self.intent, self.stage, result) {
            (_, Stage::Clearing, _) => at(Stage::Recreating),
            (_, _, Ok(())) | (Intent::Delete, Stage::First, Err(ENOENT)) => {
                Next::Finished(Outcome::Done)
            }
            (Intent::Create, Stage::First, Err(EEXIST)) => at(Stage::Clearing),
            (Intent::Update, Stage::First, Err(ENOENT)) => at(Stage::CreatingInstead),
            (Intent::Update, Stage::First, Err(_)) => at(Stage::Clearing),
            (_, stage, Err(errno)) => Next::Finished(Outcome::Failed(stage, errno)),
        }
    }
}

/// Flows a commit sends per chunk: the requests of a large cache are
/// never all in memory at once.
pub const COMMIT_CHUNK: usize = 2048;

/// One chunk of a commit: external-cache positions and their create
/// requests.
#[derive(Debug, Default)]
pub struct Chunk {
    pub positions: Vec<u32>,
    pub flows: Vec<Conntrack>,
}

/// A commit of the external flow cache, chunk by chunk (docs/sync-modes.md
/// §8.2): plain flows first, then related ones (their master must exist).
///
/// Quiet: when the internal cache wants the committed flows and events are
/// what fills it, the shell takes its event socket out of the NEW group
/// for the commit, so that the kernel builds no event per committed flow
/// (about half of a large commit's time), and the flows created meanwhile
/// enter the internal cache straight from the external one after the
/// reply ([`FlowCommit::adopted`]). The first flow that has to be deleted
/// and created again ends the quiet part: its DESTROY event is on its way,
/// so from then on events flow as usual. NEW events of flows others create
/// meanwhile are missed; such a flow is cached at its first UPDATE.
#[derive(Debug)]
pub struct FlowCommit {
    quiet: bool,
    related: bool,
    at: usize,
    positions: usize,
    adopted: Vec<u32>,
    committed: u64,
    failed: u64,
}

impl FlowCommit {
    /// Starts a commit; `quiet` if the shell left the NEW group.
    pub fn start(core: &mut SyncCore, quiet: bool) -> FlowCommit {
        if quiet {
            core.prepare_adoption();
        }
        FlowCommit {
            quiet,
            related: false,
            at: 0,
            positions: core.commit_positions(),
            adopted: Vec::new(),
            committed: 0,
            failed: 0,
        }
    }

    /// The events of the commit's flows are not listened to.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// The next chunk of create requests; None once both passes are done.
    pub fn next_chunk(&mut self, core: &SyncCore, now: Instant) -> Option<Chunk> {
        loop {
            if self.at >= self.positions {
                if self.related {
                    return None;
                }
                self.related = true;
                self.at = 0;
            }
            let mut chunk = Chunk::default();
            while chunk.flows.len() < COMMIT_CHUNK && self.at < self.positions {
                if let Some(flow) = core.commit_request_at(self.at, self.related, now) {
                    chunk.flows.push(flow);
                    chunk
                        .positions
                        .push(u32::try_from(self.at).unwrap_or(u32::MAX));
                }
                self.at += 1;
            }
            if !chunk.flows.is_empty() {
                return Some(chunk);
            }
        }
    }

    /// The first requests of `chunk` came back with `first`; the flows
    /// that existed will be deleted and created again. Returns true if the
    /// shell must listen to NEW events again before that (the quiet part
    /// ends).
    pub fn first_pass_done(&mut self, chunk: &Chunk, first: &[Result<(), i32>]) -> bool {
        if self.quiet {
            self.adopted.extend(
                chunk
                    .positions
                    .iter()
                    .zip(first)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(at, _)| *at),
            );
        }
        let retries = first.contains(&Err(EEXIST));
        let rejoin = self.quiet && retries;
        if rejoin {
            self.quiet = false;
        }
        rejoin
    }

    /// How the chunk's writes ended.
    pub fn chunk_done(&mut self, outcomes: &[Outcome]) {
        let done = outcomes.iter().filter(|o| **o == Outcome::Done).count() as u64;
        self.committed += done;
        self.failed += outcomes.len() as u64 - done;
    }

    /// (committed, failed) so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.committed, self.failed)
    }

    /// The positions created while quiet, for the internal cache once the
    /// client has its answer ([`SyncCore::adopt_committed_at`]).
    pub fn adopted(self) -> Vec<u32> {
        self.adopted
    }
}

#[cfg(test)]
mod tests;

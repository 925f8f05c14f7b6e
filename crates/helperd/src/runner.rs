//! The queue path: bound queues, packets read in batches, a verdict for
//! each (one batch verdict per queue and read), expectations created.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Instant;

use conntrack_model::Expect;
use cthelpers::flow::{CtContext, Endpoints};
use cthelpers::{Engine, Output};
use ctnl::{CtSocket, request};
use nfq::cthelper::{self, HelperStub};
use nfq::frame::frames;
use nfq::queue::{self, CopyMode, QueueParams};
use nfq::socket::RecvError;
use nfq::{QueueBatch, QueueSocket};

use crate::plan::PlannedHelper;
use crate::probe::{CTHELPER_OPTION, GLUE_OPTION};

/// How the runner sets itself up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerOptions {
    /// Create or update each helper's kernel stub (as 1.4.7 does at every
    /// start). Off only where the queue path is exercised alone, on a
    /// kernel without the cthelper subsystem (tests, bench).
    pub configure_stubs: bool,
    /// Delete the stubs at shutdown (`Setup on`).
    pub remove_stubs_at_exit: bool,
    /// Create the expectations in the kernel; off, they are only computed
    /// (kept for [`QueueRunner::take_recorded`]).
    pub create_expectations: bool,
    /// Keep a copy of every expectation computed.
    pub record_expectations: bool,
    /// Receive buffer of the queue socket.
    pub recv_buffer: usize,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            configure_stubs: true,
            remove_stubs_at_exit: false,
            create_expectations: true,
            record_expectations: false,
            recv_buffer: 4 << 20,
        }
    }
}

/// Why the runner could not start: the daemon refuses to start then.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("trying to configure cthelper `{name}': {error}{hint}")]
    Stub {
        name: String,
        error: io::Error,
        hint: &'static str,
    },
    #[error("cannot bind NFQUEUE queue {queue} for helper `{name}': {error}")]
    Bind {
        queue: u16,
        name: String,
        error: io::Error,
    },
    #[error("cannot open the helper sockets: {0}")]
    Io(#[from] io::Error),
}

/// The hint for a stub refused with EINVAL when creating it.
pub const NO_CTHELPER_HINT: &str = " (this kernel has no user-space helper support: it was built without CONFIG_NF_CT_NETLINK_HELPER)";
/// The hint for a stub refused with EINVAL when updating it (`Setup off`).
pub const NO_STUB_HINT: &str = " (with `Setup off' the helper stub must exist already: make it with `nfct add helper NAME inet|inet6 tcp|udp', or write `Setup on'; a kernel without CONFIG_NF_CT_NETLINK_HELPER answers the same)";
/// The hint for a stub refused because one of that name exists.
pub const STUB_EXISTS_HINT: &str = " (a helper of that name and protocol is registered already: the kernel's own, or a stub left by another process)";

/// What to add to the kernel's refusal of a stub.
fn stub_hint(errno: i32, creating: bool) -> &'static str {
    match (errno, creating) {
        (22, true) => NO_CTHELPER_HINT,
        (22, false) => NO_STUB_HINT,
        (16 | 17, _) => STUB_EXISTS_HINT,
        _ => "",
    }
}

/// What the runner itself counts (the helpers count in the engine).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerStats {
    /// Datagrams read from the queue socket.
    pub datagrams: u64,
    /// Packets given a verdict.
    pub verdicts: u64,
    /// Verdict messages sent (one per queue and read).
    pub verdict_messages: u64,
    /// Messages from the queue socket that could not be decoded.
    pub decode_errors: u64,
    /// ENOBUFS on the queue socket.
    pub overruns: u64,
    /// Expectations deleted for ExpectMax.
    pub expectations_deleted: u64,
}

/// The queue path of one daemon.
#[derive(Debug)]
pub struct QueueRunner {
    socket: QueueSocket,
    ct: Option<CtSocket>,
    engine: Engine,
    batch: QueueBatch,
    out: Vec<u8>,
    queues: Vec<u16>,
    stubs_to_remove: Vec<HelperStub>,
    conntrack_attached: bool,
    record: bool,
    recorded: Vec<Expect>,
    drained: bool,
    pub stats: RunnerStats,
}

impl AsRawFd for QueueRunner {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

impl QueueRunner {
    /// Configures the stubs, binds the queues, and is ready to read.
    pub fn start(
        planned: &[PlannedHelper],
        options: RunnerOptions,
    ) -> Result<QueueRunner, StartError> {
        let mut socket = QueueSocket::open()?;
        let mut stubs_to_remove = Vec::new();
        if options.configure_stubs {
            for helper in planned {
                let answer = socket.request(|b, s| cthelper::new_stub(b, s, &helper.stub))?;
                if let Err(errno) = answer {
                    return Err(StartError::Stub {
                        name: helper.stub.name.clone(),
                        error: io::Error::from_raw_os_error(errno),
                        hint: stub_hint(errno, helper.stub.priv_data_len.is_some()),
                    });
                }
                if options.remove_stubs_at_exit {
                    stubs_to_remove.push(helper.stub.clone());
                }
            }
        }
        let mut queues: Vec<u16> = Vec::new();
        let mut conntrack_attached = true;
        for helper in planned {
            let queue = helper.setup.queue_num;
            if queues.contains(&queue) {
                continue;
            }
            let mut params = QueueParams {
                copy_mode: CopyMode::Packet,
                copy_range: 0xffff,
                max_len: helper.queue_len,
                flags: queue::flags::FAIL_OPEN | queue::flags::CONNTRACK,
                mask: queue::flags::FAIL_OPEN | queue::flags::CONNTRACK,
            };
            let bind_error = |errno: i32| StartError::Bind {
                queue,
                name: helper.stub.name.clone(),
                error: io::Error::from_raw_os_error(errno),
            };
            let mut answer = socket.bind_queue(queue, &params)?;
            if answer == Err(95) {
                // EOPNOTSUPP: no conntrack attached to queued packets on
                // this kernel; the helpers derive the flow themselves.
                conntrack_attached = false;
                params.flags = queue::flags::FAIL_OPEN;
                answer = socket.request(|b, s| queue::config_params(b, s, queue, &params))?;
            }
            answer.map_err(bind_error)?;
            queues.push(queue);
        }
        socket.set_nonblocking()?;
        let _ = socket.set_recv_buffer_force(options.recv_buffer);
        let ct = if options.create_expectations {
            Some(CtSocket::open(0, false)?)
        } else {
            None
        };
        Ok(QueueRunner {
            socket,
            ct,
            engine: Engine::new(planned.iter().map(|p| p.setup.clone()).collect()),
            batch: QueueSocket::batch(),
            out: Vec::with_capacity(4096),
            queues,
            stubs_to_remove,
            conntrack_attached,
            record: options.record_expectations,
            recorded: Vec::new(),
            drained: false,
            stats: RunnerStats::default(),
        })
    }

    /// Whether the kernel attaches conntracks to queued packets; when not,
    /// a note naming the missing kernel option.
    pub fn conntrack_note(&self) -> Option<String> {
        (!self.conntrack_attached).then(|| {
            format!("queued packets come without their conntrack here ({GLUE_OPTION} is off): the helpers derive each flow from its packets")
        })
    }

    /// The descriptor to wait on.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The queues bound.
    pub fn queues(&self) -> &[u16] {
        &self.queues
    }

    /// The expectations computed so far (with `record_expectations`).
    pub fn take_recorded(&mut self) -> Vec<Expect> {
        std::mem::take(&mut self.recorded)
    }

    /// Reads what is queued now (up to `max_batches` reads), gives every
    /// packet its verdict, then creates the expectations. Returns the
    /// packets handled.
    pub fn handle_readable(&mut self, now: Instant, max_batches: usize) -> io::Result<usize> {
        let mut handled = 0;
        self.drained = false;
        for _ in 0..max_batches {
            match self.socket.recv_batch(&mut self.batch) {
                Ok(_) => {}
                Err(RecvError::WouldBlock) => {
                    self.drained = true;
                    break;
                }
                Err(RecvError::Overrun) => {
                    self.stats.overruns += 1;
                    continue;
                }
                Err(RecvError::Io(e)) => return Err(e),
            }
            let mut last_ids: BTreeMap<u16, u32> = BTreeMap::new();
            for datagram in self.batch.datagrams() {
                self.stats.datagrams += 1;
                let Some(datagram) = datagram else {
                    self.stats.decode_errors += 1;
                    continue;
                };
                for frame in frames(datagram) {
                    let Ok(frame) = frame else {
                        self.stats.decode_errors += 1;
                        break;
                    };
                    let Ok(packet) = queue::decode_packet(&frame) else {
                        if frame.errno().is_some_and(|e| e != 0) {
                            self.stats.decode_errors += 1;
                        }
                        continue;
                    };
                    let ct = packet.conntrack().and_then(|c| c.ok()).and_then(|c| {
                        Some(CtContext {
                            orig: Endpoints::from_tuple(c.orig.as_ref()?)?,
                            reply: Endpoints::from_tuple(c.reply.as_ref()?)?,
                            ctinfo: packet.ct_info?,
                        })
                    });
                    self.engine.handle_packet(
                        now,
                        packet.queue,
                        packet.packet_id,
                        packet.payload,
                        ct.as_ref(),
                    );
                    let last = last_ids.entry(packet.queue).or_insert(packet.packet_id);
                    *last = (*last).max(packet.packet_id);
                    handled += 1;
                }
            }
            // Every verdict is ACCEPT: one batch verdict per queue covers
            // every packet read, in id order.
            self.out.clear();
            for (queue, last_id) in &last_ids {
                let seq = self.socket.take_seq();
                queue::verdict_batch(&mut self.out, seq, *queue, *last_id, queue::NF_ACCEPT);
                self.stats.verdict_messages += 1;
            }
            if !self.out.is_empty() {
                self.socket.send(&self.out)?;
            }
        }
        self.stats.verdicts += handled as u64;
        self.apply_outputs();
        Ok(handled)
    }

    fn apply_outputs(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Create { helper, expect } => {
                    if self.record {
                        self.recorded.push(expect.clone());
                    }
                    if let Some(ct) = self.ct.as_mut() {
                        let result = ct
                            .request_ack(|b, s| request::create_expect(b, s, &expect))
                            .unwrap_or(Err(5));
                        self.engine.handle_expect_result(helper, result);
                    }
                }
                Output::Delete { expect, .. } => {
                    if let Some(ct) = self.ct.as_mut() {
                        let _ = ct.request_ack(|b, s| request::delete_expect(b, s, &expect));
                        self.stats.expectations_deleted += 1;
                    }
                }
            }
        }
    }

    /// Whether the last [`QueueRunner::handle_readable`] read everything
    /// queued (rather than stopping at its batch limit).
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// When [`QueueRunner::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
    }

    /// Reads the kernel's drop counters of our queues.
    pub fn refresh_queue_drops(&mut self) {
        if let Ok(counters) = nfq::socket::read_proc_counters() {
            for c in counters
                .iter()
                .filter(|c| c.port_id == self.socket.port_id())
            {
                self.engine
                    .handle_queue_drops(c.queue, c.queue_dropped + c.user_dropped);
            }
        }
    }

    /// Unbinds the queues and, with `Setup on`, removes the stubs.
    pub fn shutdown(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for queue in self.queues.clone() {
            let _ = self.socket.unbind_queue(queue);
        }
        for stub in std::mem::take(&mut self.stubs_to_remove) {
            match self
                .socket
                .request(|b, s| cthelper::delete_stub(b, s, &stub))
            {
                Ok(Ok(())) => {}
                Ok(Err(errno)) => problems.push(format!(
                    "trying to destroy cthelper `{}': {}",
                    stub.name,
                    io::Error::from_raw_os_error(errno)
                )),
                Err(e) => problems.push(format!("trying to destroy cthelper `{}': {e}", stub.name)),
            }
        }
        problems
    }
}

/// The message for a Helper section on a kernel without the cthelper
/// subsystem (`--check` and start-up).
pub fn missing_cthelper_message(first_helper: &str) -> String {
    format!(
        "trying to configure cthelper `{first_helper}': Invalid argument: this kernel has no user-space helper support ({CTHELPER_OPTION} is off), so the `Helper' section cannot be honoured"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_stub_is_explained_by_what_was_asked() {
        assert_eq!(stub_hint(22, true), NO_CTHELPER_HINT);
        assert_eq!(stub_hint(22, false), NO_STUB_HINT);
        assert_eq!(stub_hint(17, true), STUB_EXISTS_HINT);
        assert_eq!(stub_hint(1, true), "");
    }
}

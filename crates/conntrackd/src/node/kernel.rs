//! The kernel side of a node: the ctnetlink event socket (its buffer,
//! overruns, the pause after a burst) and the socket for dumps, flushes
//! and other requests (docs/sync-modes.md §9). It reads and decodes; what
//! an event means is for the engine it is handed to.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use conntrack_model::{Conntrack, Expect};
use conntrackd_config::Config;
use conntrackd_core::filter::Filter;
use conntrackd_core::local::{EventKind, NetlinkCounters, Origin};
use ctnl::{CtEvent, CtSocket, Message, RecvBatch, RecvError, groups, messages, request};
use tokio::io::unix::AsyncFd;

use super::StartError;
use crate::logger;

/// After a read that found events, the loop sends what they produced and
/// waits `EventBatchDelay` (4 ms unless written) before reading again.
/// 4 ms gathers a few hundred events per wake-up at full kernel speed (1 ms
/// gave about 4 times the wake-ups, and more CPU) and stays far below the
/// lag that matters at failover. Any read counts: at the rates a firewall
/// sees (1k-50k events/s) events come one per wake-up otherwise, and the
/// wake-ups were most of the primary's time (at 1k events/s, 40 µs per
/// event against 3 µs for a listener that pauses). The trade against lag
/// is measured in bench/ (README, "Lag or CPU").
///
/// The wait needs room: 1 MiB of event buffer per millisecond holds the
/// events of the wait at over ten times the rate the kernel creates flows
/// here.
const BUFFER_PER_MS_OF_DELAY: u64 = 1 << 20;

/// Datagrams (one event each) read per wake-up at most, unless
/// `EventIterationLimit` says otherwise: a flood of events then leaves
/// turns to the control socket (a `-c` at failover), the sync link and
/// timers, and what is left is read on the next turn of the loop.
pub(super) const DRAIN_CAP: usize = conntrackd_config::DEFAULT_KERNEL_EVENTS_PER_WAKEUP as usize;

/// What the configuration says about the kernel side.
#[derive(Debug, Clone, Copy)]
pub(super) struct KernelSettings {
    /// Datagrams read per wake-up: `EventIterationLimit`, or [`DRAIN_CAP`].
    pub(super) drain_cap: usize,
    /// `NetlinkOverrunResync`: resync with the kernel this long after an
    /// overrun.
    pub(super) overrun_resync: Option<Duration>,
    /// `PollSecs`: no event socket; resync this often instead.
    pub(super) poll_every: Option<Duration>,
    /// `NetlinkBufferSizeMaxGrowth`.
    pub(super) max_buffer: usize,
    /// `EventBatchDelay`: the wait after a read that found events.
    pub(super) batch_delay: Duration,
}

impl KernelSettings {
    pub(super) fn from_config(config: &Config) -> KernelSettings {
        let general = &config.general;
        KernelSettings {
            drain_cap: general
                .event_iteration_limit
                .map_or(DRAIN_CAP, |n| n as usize),
            overrun_resync: general
                .netlink_overrun_resync
                .map(|s| Duration::from_secs(u64::from(s))),
            poll_every: general.poll_secs.map(|s| Duration::from_secs(u64::from(s))),
            max_buffer: general.netlink_buffer_size_max_growth as usize,
            batch_delay: Duration::from_millis(u64::from(general.event_batch_delay)),
        }
    }
}

/// What the loop does after a read of kernel events, once their output is
/// queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterRead {
    /// Nothing more: a partly filled datagram waits for more messages.
    Nothing,
    /// Send everything now (`EventBatchDelay 0`).
    Flush,
    /// Send everything now, then wait `EventBatchDelay` before reading
    /// again.
    FlushAndWait,
}

/// Whether the loop waits `delay` before reading events again, after a
/// read of `received` events (`capped`: it stopped at the cap, so events
/// are waiting already) with an event buffer of `buffer_size` bytes.
fn waits_after_read(delay: Duration, received: usize, buffer_size: u64, capped: bool) -> bool {
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let roomy = buffer_size >= delay_ms.saturating_mul(BUFFER_PER_MS_OF_DELAY);
    delay_ms > 0 && roomy && received > 0 && !capped
}

/// Which of our own sockets an event came from (its netlink port id), so
/// that the engine does not echo our own writes (docs/sync-modes.md §2.4).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct OwnPorts {
    pub(super) flush: u32,
    pub(super) commit: u32,
    pub(super) inject: u32,
}

impl OwnPorts {
    fn origin(&self, pid: u32, flushes_too: bool) -> Origin {
        match pid {
            0 => Origin::NotMe,
            p if flushes_too && p == self.flush => Origin::Flush,
            p if p == self.commit => Origin::Commit,
            p if p == self.inject => Origin::Inject,
            _ => Origin::NotMe,
        }
    }
}

/// One decoded event, for the engine.
#[derive(Debug)]
pub(super) enum KernelInput {
    /// Boxed as decoded: moved on, never copied.
    Conntrack(EventKind, Box<Conntrack>, Origin),
    Expect(EventKind, Box<Expect>, Origin),
    /// A message that could not be read (`catch event failed`).
    Unreadable,
    /// A message of another type (`events unknown type`).
    OtherType,
}

/// What a drain of the event socket found besides events.
#[derive(Debug, Default)]
pub(super) struct Drained {
    pub(super) overrun: bool,
}

/// Readiness of the kernel event socket.
#[derive(Debug)]
pub struct KernelReady;

/// The sockets.
#[derive(Debug)]
pub(super) struct Kernel {
    /// None in polling mode.
    events: Option<AsyncFd<CtSocket>>,
    requests: CtSocket,
    rx: RecvBatch,
    settings: KernelSettings,
    /// What the loop does once the last read's output is queued.
    after_read: AfterRead,
    /// The last read stopped at `drain_cap`: events are waiting, though
    /// the socket's readiness was consumed.
    backlog: bool,
    /// The buffer reached `NetlinkBufferSizeMaxGrowth` and that was said
    /// (once, as 1.4.7 says it).
    growth_exhausted: bool,
    /// When the overrun or polling resync is due.
    resync_at: Option<Instant>,
}

fn kind(event: CtEvent) -> EventKind {
    match event {
        CtEvent::New => EventKind::New,
        CtEvent::Update | CtEvent::Entry => EventKind::Update,
        CtEvent::Destroy => EventKind::Destroy,
    }
}

impl Kernel {
    /// Opens the event socket (unless polling) and the request socket,
    /// with the buffer rules of docs/sync-modes.md §9.
    pub(super) fn open(config: &Config, expectations: bool) -> Result<Kernel, StartError> {
        let general = &config.general;
        let fail = |e: std::io::Error| {
            logger::error(&format!("can't open netlink handler: {e}"));
            logger::error("no ctnetlink kernel support?");
            StartError::Init
        };
        let requests = CtSocket::open(0, false).map_err(fail)?;
        let events = if general.poll_secs.is_some() {
            None
        } else {
            let mut event_groups = groups::CT_ALL;
            if expectations {
                event_groups |= groups::EXP_NEW | groups::EXP_UPDATE | groups::EXP_DESTROY;
            }
            let socket = CtSocket::open(event_groups, true).map_err(fail)?;
            if general.netlink_events_reliable {
                socket.set_reliable().map_err(fail)?;
                logger::notice("reliable ctnetlink event delivery is ENABLED.");
            }
            let wanted = general.netlink_buffer_size as usize;
            let max = general.netlink_buffer_size_max_growth as usize;
            let size = if wanted > 0 && wanted <= max {
                socket.set_recv_buffer_force(wanted).map_err(fail)?
            } else {
                logger::notice(
                    "NetlinkBufferSize is either not set or is greater than NetlinkBufferSizeMaxGrowth. Using current system buffer size",
                );
                socket.recv_buffer().map_err(fail)?
            };
            logger::notice(&format!(
                "netlink event socket buffer size has been set to {size} bytes"
            ));
            // CtSocket owns its descriptor, so the I/O-safety concern behind
            // the deprecation (a borrowed fd closed under tokio) cannot arise.
            #[allow(deprecated)]
            let fd = AsyncFd::new(socket).map_err(fail)?;
            Some(fd)
        };
        Ok(Kernel {
            events,
            requests,
            rx: RecvBatch::default(),
            settings: KernelSettings::from_config(config),
            after_read: AfterRead::Nothing,
            backlog: false,
            growth_exhausted: false,
            resync_at: None,
        })
    }

    /// `PollSecs`: schedules the first resync.
    pub(super) fn start_polling(&mut self, now: Instant) {
        if let Some(every) = self.settings.poll_every {
            logger::notice("running in polling mode");
            self.resync_at = Some(now + every);
        }
    }

    /// Attaches the filter as a BPF program to the event socket; true if
    /// events now arrive filtered.
    pub(super) fn filter_in_kernel(&self, filter: &Filter) -> bool {
        let Some(events) = &self.events else {
            return false;
        };
        let prog = match conntrackd_core::bpf::compile(filter) {
            Ok(prog) => prog,
            Err(e) => {
                logger::error(&format!("cannot set event filtering: {e}"));
                return false;
            }
        };
        let prog: Vec<oscalls::SockFilter> = prog
            .iter()
            .map(|i| oscalls::SockFilter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        match oscalls::attach_filter(events.get_ref().as_fd(), &prog) {
            Ok(()) => true,
            Err(e) => {
                logger::error(&format!("cannot set event filtering: {e}"));
                false
            }
        }
    }

    /// The event socket's receive buffer now (0 when polling).
    pub(super) fn buffer_size(&self) -> u64 {
        self.events
            .as_ref()
            .and_then(|e| e.get_ref().recv_buffer().ok())
            .unwrap_or(0) as u64
    }

    /// The port id of the request socket (flushes come from it).
    pub(super) fn request_port(&self) -> u32 {
        self.requests.port_id()
    }

    /// The request socket, for the engine's kernel writes.
    pub(super) fn requests(&mut self) -> &mut CtSocket {
        &mut self.requests
    }

    /// The event socket, for a quiet commit (which leaves its NEW group).
    pub(super) fn events(&self) -> Option<&CtSocket> {
        self.events.as_ref().map(AsyncFd::get_ref)
    }

    /// When the kernel side next needs [`Kernel::resync_due`].
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.resync_at
    }

    /// True if the overrun or polling resync is due now (and schedules the
    /// next polling one).
    pub(super) fn resync_due(&mut self, now: Instant) -> bool {
        if self.resync_at.is_some_and(|at| at <= now) {
            self.resync_at = self.settings.poll_every.map(|every| now + every);
            return true;
        }
        false
    }

    /// Resolves when the event socket has data.
    pub(super) async fn readable(&self) -> KernelReady {
        match &self.events {
            Some(_) if self.backlog => KernelReady,
            Some(fd) => {
                if let Ok(mut guard) = fd.readable().await {
                    // We drain until WouldBlock (or note a backlog), so
                    // readiness can be reset now.
                    guard.clear_ready();
                }
                KernelReady
            }
            None => std::future::pending().await,
        }
    }

    /// Reads the event socket, handing each datagram's events to `handle`
    /// before reading the next: a backlog of thousands of events is never
    /// held decoded in memory at once. Expectation events come after the
    /// others (they look at the conntrack cache).
    /// `buffer_size` is the event buffer as last counted.
    pub(super) fn drain(
        &mut self,
        ports: OwnPorts,
        buffer_size: u64,
        mut handle: impl FnMut(KernelInput),
    ) -> Drained {
        let mut drained = Drained::default();
        let Some(events) = self.events.as_ref() else {
            return drained;
        };
        self.backlog = false;
        let mut received = 0usize;
        let mut expectations = Vec::new();
        loop {
            if received >= self.settings.drain_cap {
                self.backlog = true;
                break;
            }
            match events.get_ref().recv_batch(&mut self.rx) {
                Ok(n) => received += n,
                Err(RecvError::WouldBlock) => break,
                Err(RecvError::Overrun) => {
                    drained.overrun = true;
                    continue;
                }
                Err(RecvError::Io(e)) => {
                    handle(KernelInput::Unreadable);
                    logger::error(&format!("netlink event socket: {e}"));
                    break;
                }
            }
            for datagram in self.rx.datagrams() {
                // A truncated event cannot be decoded: counted like a bad one.
                let Some(datagram) = datagram else {
                    handle(KernelInput::Unreadable);
                    continue;
                };
                for message in messages(datagram) {
                    match message {
                        Ok(Message::Conntrack {
                            header, event, ct, ..
                        }) => handle(KernelInput::Conntrack(
                            kind(event),
                            ct,
                            ports.origin(header.pid, true),
                        )),
                        Ok(Message::Expect {
                            header, event, exp, ..
                        }) => expectations.push(KernelInput::Expect(
                            kind(event),
                            exp,
                            ports.origin(header.pid, false),
                        )),
                        Ok(_) => handle(KernelInput::OtherType),
                        Err(_) => handle(KernelInput::Unreadable),
                    }
                }
            }
        }
        for event in expectations {
            handle(event);
        }
        // A busy socket is left alone for a moment, so the next wake-up
        // finds many events instead of one (fewer wake-ups and syscalls).
        // Only with room to spare in the socket buffer, or the pause itself
        // would cause an overrun; and not after a capped read: events are
        // waiting already. Without a delay, what was read goes out at once
        // instead of waiting for a fuller datagram.
        self.after_read = if waits_after_read(
            self.settings.batch_delay,
            received,
            buffer_size,
            self.backlog,
        ) {
            AfterRead::FlushAndWait
        } else if self.settings.batch_delay.is_zero() && received > 0 && !self.backlog {
            AfterRead::Flush
        } else {
            AfterRead::Nothing
        };
        drained
    }

    /// What follows the last read; asking clears it.
    pub(super) fn take_after_read(&mut self) -> AfterRead {
        std::mem::replace(&mut self.after_read, AfterRead::Nothing)
    }

    /// Sleeps briefly before the next read. The sleep blocks the
    /// (single-threaded) loop on purpose: a task parked in epoll instead
    /// would be woken by every event that arrives meanwhile, and those
    /// wake-ups are the cost the pause is there to save.
    pub(super) fn pause(&self) {
        std::thread::sleep(self.settings.batch_delay);
    }

    /// An overrun: the event buffer doubles (up to
    /// `NetlinkBufferSizeMaxGrowth`) and a resync is scheduled
    /// (`NetlinkOverrunResync`). Counted in `netlink`.
    pub(super) fn handle_overrun(&mut self, now: Instant, netlink: &mut NetlinkCounters) {
        netlink.overrun += 1;
        netlink.catch_failed += 1;
        if let Some(events) = &self.events {
            let current = events.get_ref().recv_buffer().unwrap_or(0);
            let doubled = current.saturating_mul(2);
            if self.settings.max_buffer > 0 && doubled <= self.settings.max_buffer {
                if let Ok(size) = events.get_ref().set_recv_buffer_force(doubled) {
                    netlink.buffer_size = size as u64;
                    logger::notice(&format!(
                        "netlink event socket buffer size has been doubled to {size} bytes"
                    ));
                }
            } else if !std::mem::replace(&mut self.growth_exhausted, true) {
                logger::warning(
                    "netlink event socket buffer size cannot be doubled further since it will exceed NetlinkBufferSizeMaxGrowth. We are likely to be losing events, this may lead to unsynchronized replicas. Please, consider increasing netlink socket buffer size via NetlinkBufferSize and NetlinkBufferSizeMaxGrowth clauses in conntrackd.conf",
                );
            }
        }
        if let Some(delay) = self.settings.overrun_resync
            && self.resync_at.is_none()
        {
            self.resync_at = Some(now + delay);
        }
    }

    /// Streams the kernel's conntrack table to `each`.
    pub(super) fn dump_each(&mut self, each: impl FnMut(Conntrack)) -> Result<(), std::io::Error> {
        self.requests.dump_conntrack_each(each)
    }

    /// The kernel's conntrack table, `filter` applied.
    pub(super) fn dump_filtered(
        &mut self,
        filter: Option<&Filter>,
    ) -> Result<Vec<Conntrack>, std::io::Error> {
        let flows = self.requests.dump_conntrack()?;
        Ok(flows
            .into_iter()
            .filter(|ct| filter.is_none_or(|f| f.accepts(ct)))
            .collect())
    }

    /// The kernel's expectation table.
    pub(super) fn dump_expectations(&mut self) -> Result<Vec<Expect>, std::io::Error> {
        self.requests.dump_expect()
    }

    /// `-F`: deletes every kernel entry `filter` accepts (ignored flows,
    /// such as the firewall's own, survive).
    pub(super) fn flush(&mut self, filter: Option<&Filter>) {
        let doomed = match self.dump_filtered(filter) {
            Ok(flows) => flows,
            Err(e) => {
                logger::error(&format!("can't dump the kernel conntrack table: {e}"));
                return;
            }
        };
        if let Err(e) = self.requests.apply_batch(&doomed, request::delete) {
            logger::error(&format!("flushing kernel conntrack table failed: {e}"));
        }
    }

    /// `-F expect`.
    pub(super) fn flush_expectations(&mut self) {
        match self.requests.request_ack(request::flush_expect) {
            Ok(Ok(())) => {}
            Ok(Err(errno)) => logger::error(&format!(
                "flushing kernel expect table failed: {}",
                std::io::Error::from_raw_os_error(errno)
            )),
            Err(e) => logger::error(&format!("flushing kernel expect table failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_iteration_limit_caps_the_events_read_per_wake_up() {
        let mut config = Config::default();
        let settings = KernelSettings::from_config(&config);
        assert_eq!(settings.drain_cap, DRAIN_CAP);
        config.general.event_iteration_limit = Some(100);
        let settings = KernelSettings::from_config(&config);
        assert_eq!(settings.drain_cap, 100);
    }

    #[test]
    fn event_batch_delay_sets_the_wait_after_a_read() {
        let mut config = Config::default();
        let settings = KernelSettings::from_config(&config);
        assert_eq!(settings.batch_delay, Duration::from_millis(4));
        config.general.event_batch_delay = 0;
        let settings = KernelSettings::from_config(&config);
        assert!(settings.batch_delay.is_zero());
    }

    #[test]
    fn the_wait_follows_an_uncapped_read_with_room_in_the_buffer() {
        let ms = Duration::from_millis;
        let mib = 1u64 << 20;
        assert!(waits_after_read(ms(4), 1, 4 * mib, false));
        // Nothing read, a capped read, no delay, or too small a buffer for
        // the events of the wait: read again at once.
        assert!(!waits_after_read(ms(4), 0, 4 * mib, false));
        assert!(!waits_after_read(ms(4), 1, 4 * mib, true));
        assert!(!waits_after_read(ms(0), 1, 4 * mib, false));
        assert!(!waits_after_read(ms(4), 1, 4 * mib - 1, false));
        assert!(waits_after_read(ms(1), 1, mib, false));
    }
}

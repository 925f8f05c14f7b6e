//! The user-space helpers in the daemon (`docs/helpers.md`): checked
//! against the kernel at start-up and by `--check`, then run as a task
//! of their own on the daemon's thread. The queue path itself is the
//! `helperd` crate's; this module only wires it to the event loop, the
//! logs and the counters (`-s`, `--json`, metrics).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use conntrackd_config::{Config, HelperSection};
use cthelpers::{HelperCounters, HelperSetup};
use helperd::probe::{CTHELPER_OPTION, KernelSupport};
use helperd::{QueueRunner, RunnerOptions, RunnerStats};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use crate::counters::stats_text;
use crate::logger;

/// What `-s`, `--json` and the metrics show of the helpers.
#[derive(Debug, Default, Clone)]
pub struct HelperReport {
    pub helpers: Vec<(HelperSetup, HelperCounters)>,
    pub runner: RunnerStats,
}

/// Shared between the helpers' task and the control requests.
pub type SharedReport = Rc<RefCell<HelperReport>>;

/// How often the kernel's queue drop counters are read.
const DROPS_EVERY: Duration = Duration::from_secs(1);
/// Reads per wake-up before yielding to the rest of the daemon.
const BATCHES_PER_WAKEUP: usize = 64;

/// The first helper's name, for messages.
/// The helper 1.4.7 configures first, and so names when the kernel
/// refuses: it configures them last to first.
fn first_configured(section: &HelperSection) -> &str {
    section.types.last().map_or("?", |t| t.name.as_str())
}

/// What `--check` concludes about the helpers from the kernel it runs on.
pub enum CheckOutcome {
    /// No Helper section, or the kernel has what it needs.
    Usable(Option<String>),
    /// The daemon would refuse to start on this kernel.
    Refused(String),
    /// The kernel could not be asked (not root, …).
    Unknown(String),
}

/// `--check`: asks this machine's kernel (in the caller's network
/// namespace) whether it has the cthelper subsystem. The answer is only
/// as good as the machine: run `--check` on the firewall itself.
pub fn check(config: &Config) -> CheckOutcome {
    let Some(section) = &config.helper else {
        return CheckOutcome::Usable(None);
    };
    if section.types.is_empty() {
        return CheckOutcome::Usable(None);
    }
    match helperd::probe_cthelper() {
        Ok(KernelSupport::Present) => CheckOutcome::Usable(Some(
            "helpers: this machine's kernel has user-space helper support (cthelper)".to_owned(),
        )),
        Ok(KernelSupport::Absent) => CheckOutcome::Refused(format!(
            "{} (asked of this machine's kernel: the daemon refuses to start on it, as 1.4.7 does; on another kernel, run --check there)",
            helperd::runner::missing_cthelper_message(first_configured(section))
        )),
        Err(e) => CheckOutcome::Unknown(format!(
            "helpers: could not ask this machine's kernel whether it has user-space helper support ({CTHELPER_OPTION}): {e}; run --check as root on the firewall"
        )),
    }
}

/// The helpers' task, running.
pub struct Helpers {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<Vec<String>>,
}

/// Why the helpers could not start (the daemon refuses to start then, as
/// 1.4.7 does).
#[derive(Debug, thiserror::Error)]
pub enum HelperStartError {
    #[error(transparent)]
    Plan(#[from] helperd::PlanError),
    /// The kernel has no cthelper subsystem (1.4.7's words).
    #[error("{0}")]
    NoKernelSupport(String),
    #[error(transparent)]
    Runner(#[from] helperd::runner::StartError),
    #[error("can't watch the helpers' queue socket: {0}")]
    Watch(std::io::Error),
}

impl Helpers {
    /// Configures the stubs and binds the queues (refusing to start as
    /// 1.4.7 does when the kernel refuses), then runs them as a task.
    pub fn start(
        config: &Config,
        report: SharedReport,
    ) -> Result<Option<Helpers>, HelperStartError> {
        let Some(section) = config.helper.as_ref().filter(|s| !s.types.is_empty()) else {
            return Ok(None);
        };
        let planned = helperd::plan(section)?;
        // Before touching anything: a kernel without the subsystem
        // answers EINVAL to any stub, as 1.4.7 reports it.
        let absent = matches!(helperd::probe_cthelper(), Ok(KernelSupport::Absent));
        // As 1.4.7: last to first, each announced with its policy; on a
        // kernel without the subsystem, the first one fails and stops it.
        for p in planned.iter().rev() {
            logger::notice(&format!(
                "configuring helper `{}' with queuenum={} and queuelen={}",
                p.stub.name,
                p.setup.queue_num,
                p.queue_len.unwrap_or(0)
            ));
            for policy in &p.stub.policies {
                logger::notice(&format!(
                    "policy name={} expect_timeout={} expect_max={}",
                    policy.name, policy.expect_timeout, policy.expect_max
                ));
            }
            if absent {
                return Err(HelperStartError::NoKernelSupport(
                    helperd::runner::missing_cthelper_message(&p.stub.name),
                ));
            }
        }
        let options = RunnerOptions {
            remove_stubs_at_exit: section.setup,
            ..RunnerOptions::default()
        };
        let runner = QueueRunner::start(&planned, options)?;
        if let Some(note) = runner.conntrack_note() {
            logger::notice(&note);
        }
        for p in &planned {
            logger::notice(&format!("helper `{}' configured successfully", p.stub.name));
        }
        // The runner owns its socket, so the I/O-safety concern behind
        // the deprecation (a borrowed fd closed under tokio) cannot arise.
        #[allow(deprecated)]
        let runner = AsyncFd::new(runner).map_err(HelperStartError::Watch)?;
        let (stop, stopped) = oneshot::channel();
        let done = tokio::task::spawn_local(run(runner, report, stopped));
        Ok(Some(Helpers { stop, done }))
    }

    /// Stops the task: queues unbound, stubs removed with `Setup on`.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Ok(problems) = self.done.await {
            for p in problems {
                logger::error(&p);
            }
        }
    }
}

/// What woke the helpers' task.
enum Wake {
    Stop,
    Readable,
    Drops,
    Timeout,
}

async fn run(
    mut runner: AsyncFd<QueueRunner>,
    report: SharedReport,
    mut stopped: oneshot::Receiver<()>,
) -> Vec<String> {
    let mut drops = tokio::time::interval(DROPS_EVERY);
    loop {
        let timeout = runner.get_ref().poll_timeout();
        let wake = tokio::select! {
            _ = &mut stopped => Wake::Stop,
            // Readiness is cleared below, only once the queue is drained.
            ready = runner.readable() => if ready.is_ok() { Wake::Readable } else { Wake::Stop },
            _ = drops.tick() => Wake::Drops,
            _ = sleep_until(timeout) => Wake::Timeout,
        };
        match wake {
            Wake::Stop => break,
            Wake::Readable => {
                let read = runner.try_io_mut(Interest::READABLE, |r| {
                    r.handle_readable(Instant::now(), BATCHES_PER_WAKEUP)?;
                    if r.drained() {
                        Err(std::io::ErrorKind::WouldBlock.into())
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = read
                    && e.kind() != std::io::ErrorKind::WouldBlock
                {
                    logger::error(&format!("user-space helpers: reading the queue: {e}"));
                }
            }
            Wake::Drops => runner.get_mut().refresh_queue_drops(),
            Wake::Timeout => runner.get_mut().handle_timeout(Instant::now()),
        }
        publish(runner.get_ref(), &report);
    }
    runner.into_inner().shutdown()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn publish(runner: &QueueRunner, report: &SharedReport) {
    let mut r = report.borrow_mut();
    r.helpers = runner
        .engine()
        .counters()
        .map(|(s, c)| (s.clone(), c.clone()))
        .collect();
    r.runner = runner.stats.clone();
}

pub use crate::counters::model::HelperStats;

fn names(setup: &HelperSetup) -> (&'static str, &'static str) {
    let family = if setup.family == cthelpers::engine::AF_INET6 {
        "inet6"
    } else {
        "inet"
    };
    let l4 = if setup.l4proto == cthelpers::kind::IPPROTO_TCP {
        "tcp"
    } else {
        "udp"
    };
    (family, l4)
}

/// The helpers' part of a snapshot.
pub fn stats(report: &HelperReport) -> Vec<HelperStats> {
    report
        .helpers
        .iter()
        .map(|(setup, c)| {
            let (family, protocol) = names(setup);
            HelperStats {
                name: setup.kind.name(),
                family,
                protocol,
                queue: setup.queue_num,
                packets: c.packets,
                expectations_created: c.expectations_created,
                expectations_refused: c.expectations_refused,
                refused_by_policy: c.refused_by_policy,
                evicted_by_policy: c.evicted_by_policy,
                parse_errors: c.parse_errors,
                queue_drops: c.queue_drops,
            }
        })
        .collect()
}

/// Where a helper's counters are shown.
const BLOCK: &str = "-s: user-space helpers: ... ";

/// The `-s` block of the helpers (nothing without a Helper section): a
/// line per counter described as shown in it.
pub fn render_block(helpers: &[HelperStats]) -> String {
    let mut out = String::new();
    if helpers.is_empty() {
        return out;
    }
    out.push_str("user-space helpers:\n");
    for h in helpers {
        out.push_str(&format!(
            "helper {} {} {} queue {}:\n",
            h.name, h.family, h.protocol, h.queue
        ));
        stats_text::lines(&mut out, HelperStats::FIELDS, BLOCK, |f| h.number(f));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> HelperReport {
        let setup = HelperSetup {
            kind: cthelpers::HelperKind::Ftp,
            family: cthelpers::engine::AF_INET,
            l4proto: cthelpers::kind::IPPROTO_TCP,
            queue_num: 5,
            policy: cthelpers::HelperKind::Ftp.default_policy(),
        };
        let counters = HelperCounters {
            packets: 12,
            expectations: 3,
            expectations_created: 2,
            expectations_refused: 1,
            refused_by_policy: 4,
            evicted_by_policy: 5,
            parse_errors: 6,
            queue_drops: 7,
        };
        HelperReport {
            helpers: vec![(setup, counters)],
            runner: RunnerStats::default(),
        }
    }

    #[test]
    fn the_s_block_lists_each_helper_with_its_counters() {
        let text = render_block(&stats(&report()));
        assert!(
            text.starts_with("user-space helpers:\nhelper ftp inet tcp queue 5:\n"),
            "{text}"
        );
        assert!(
            text.contains("\tpackets seen:\t\t\t          12\n"),
            "{text}"
        );
        assert!(
            text.contains("\tparse errors:\t\t\t           6\n"),
            "{text}"
        );
        assert!(
            text.contains("\tqueue drops:\t\t\t           7\n"),
            "{text}"
        );
        assert_eq!(render_block(&[]), "");
    }
}

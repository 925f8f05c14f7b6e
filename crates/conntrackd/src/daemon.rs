//! The daemon shell: start-up sequence (docs/sync-modes.md §1.1), the main loop
//! and orderly shutdown. Everything protocol-related lives in the core; this
//! module only owns sockets, signals, files and time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use conntrackd_config::{Config, LogTarget};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::client_slots::ClientSlots;
use crate::control::reply::{NoMore, Replies};
use crate::control::{self, ControlRequest};
use crate::daemonize;
use crate::dump_feed::{ChunkRequest, DumpFeed};
use crate::lockfile::{Acquired, LockFile};
use crate::logger;
use crate::metrics;
use crate::node::Reply;
use crate::runtime_stats::RuntimeStats;
use crate::systemd;
use conntrackd_core::request::Request;

/// Runs the daemon until `-k`, SIGTERM or SIGINT. `background` is true in
/// the re-executed child of `-d`; `config_path` is read again on SIGHUP
/// for the sync keys.
pub fn run(config: Config, config_path: &Path, background: bool) -> ExitCode {
    // Flow tables grow by remapping; see oscalls::set_mmap_threshold.
    oscalls::set_mmap_threshold(256 * 1024);
    match &config.general.log_file {
        LogTarget::Off => {}
        LogTarget::Default => open_log(&PathBuf::from(conntrackd_config::DEFAULT_LOG_FILE)),
        LogTarget::Path(path) => open_log(path),
    }
    // Syslog is opened if either section wants it, always with General's
    // facility (syslog's `user` if General has none), as 1.4.7 does.
    let stats_syslog = config.stats.as_ref().is_some_and(|s| s.syslog.is_some());
    if config.general.syslog.is_some() || stats_syslog {
        let code = match config.general.syslog {
            Some(conntrackd_config::Facility::Daemon) => 3,
            Some(conntrackd_config::Facility::Local(n)) => 16 + n,
            None => 1,
        };
        if let Err(e) = logger::set_syslog(code, config.general.syslog.is_some()) {
            logger::warning(&format!("can't open syslog: {e}"));
        }
    }
    if background {
        daemonize::detach();
    }
    apply_scheduler(&config);

    let lock = match LockFile::acquire(&config.general.lock_file) {
        Ok((lock, Acquired::Fresh)) => lock,
        Ok((lock, Acquired::TookOverStale { previous_pid })) => {
            logger::warning(&format!(
                "lockfile `{}' was left by a process that no longer runs (pid {}); taking it over",
                lock.path().display(),
                previous_pid.map_or_else(|| "unknown".to_string(), |p| p.to_string())
            ));
            lock
        }
        Err(e) => {
            logger::error(&e.to_string());
            return ExitCode::FAILURE;
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logger::error(&format!("initialization failed: {e}"));
            lock.release();
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, main_loop(&config, config_path, background));
    if let Some(path) = &config.general.unix_path {
        let _ = std::fs::remove_file(path);
    }
    lock.release();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            logger::error(&error.to_string());
            logger::error("conntrackd cannot start, please review your configuration");
            ExitCode::FAILURE
        }
    }
}

/// SCHED_RR at priority 99 unless `Scheduler` says otherwise, as 1.4.7;
/// a failure only warns.
fn apply_scheduler(config: &Config) {
    let (kind, priority) = config.general.scheduler.effective();
    let policy = match kind {
        conntrackd_config::SchedulerType::Rr => oscalls::SchedPolicy::RoundRobin,
        conntrackd_config::SchedulerType::Fifo => oscalls::SchedPolicy::Fifo,
    };
    if let Err(e) = oscalls::set_scheduler(policy, i32::from(priority)) {
        logger::warning(&format!(
            "scheduler configuration failed: {e}. Likely a bug in conntrackd, please report it. Continuing with system default scheduler."
        ));
    }
}

fn open_log(path: &Path) {
    if let Err(e) = logger::set_file(path) {
        logger::error(&format!("can't open log file `{}': {e}", path.display()));
    }
}

/// Why the daemon could not start (logged as the C daemon words it, then
/// "conntrackd cannot start, please review your configuration").
#[derive(Debug, thiserror::Error)]
enum DaemonError {
    #[error("can't open unix socket! {0}")]
    ControlSocket(std::io::Error),
    #[error("{0}")]
    Signal(std::io::Error),
    #[error(transparent)]
    Metrics(#[from] metrics::BindError),
    #[error(transparent)]
    Start(#[from] crate::node::StartError),
    #[error(transparent)]
    Helpers(#[from] crate::helpers::HelperStartError),
}

async fn main_loop(
    config: &Config,
    config_path: &Path,
    background: bool,
) -> Result<(), DaemonError> {
    let mut stats = RuntimeStats::new(Instant::now());
    let (request_tx, mut request_rx) = mpsc::channel::<ControlRequest>(64);
    // Without a UNIX path the C daemon binds an unreachable abstract
    // socket; we simply do not listen.
    if let Some(path) = &config.general.unix_path {
        let listener = control::bind(path).map_err(DaemonError::ControlSocket)?;
        tokio::task::spawn_local(control::accept::accept_loop(
            listener,
            request_tx.clone(),
            ClientSlots::new(config.general.max_clients as usize),
            Rc::clone(&stats.control),
        ));
    }
    let replies = Replies::new(
        Duration::from_secs(u64::from(config.general.reply_timeout)),
        Rc::clone(&stats.control),
    );
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<ChunkRequest>(64);
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;

    let (scrape_tx, mut scrape_rx) = mpsc::channel::<metrics::ScrapeRequest>(16);
    if let Some(m) = &config.general.metrics {
        let counters = Rc::new(crate::runtime_stats::MetricsCounters::default());
        for listener in metrics::bind(&m.listen()).await? {
            tokio::task::spawn_local(metrics::serve(
                listener,
                scrape_tx.clone(),
                Rc::clone(&counters),
            ));
        }
        stats.metrics = Some(counters);
    }
    drop(scrape_tx);
    let mut node = crate::node::Node::new(config, Instant::now())?;
    let helpers = crate::helpers::Helpers::start(config, Rc::clone(&stats.helpers))?;
    node.flush_sync(Instant::now());
    logger::notice("initialization completed");

    let notifier = config
        .general
        .systemd
        .then(systemd::Notifier::from_env)
        .flatten();
    let watchdog = notifier.as_ref().and(systemd::watchdog_interval());
    if background {
        logger::notice("-- starting in daemon mode --");
        daemonize::signal_ready();
        logger::set_console(false);
    } else {
        logger::notice("-- starting in console mode --");
    }
    if let Some(n) = &notifier {
        let _ = n.notify(&format!("READY=1\nMAINPID={}", std::process::id()));
    }
    let mut watchdog_tick = watchdog.map(tokio::time::interval);
    stats.started = Instant::now();

    loop {
        let deadline = node.poll_timeout();
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                if let Err(e) = logger::reopen_file() {
                    logger::error(&format!("can't reopen log file: {e}"));
                }
                node.reopen_logs();
                reload_keys(&mut node, config_path);
            }
            Some(ControlRequest { asked, stream, slot }) = request_rx.recv() => {
                if asked.request == Request::Kill {
                    break;
                }
                let reply = node.handle_request(asked, Instant::now(), &stats);
                node.flush_sync(Instant::now());
                // The reply is computed here and written by `replies`,
                // which never waits for the client.
                match reply {
                    Reply::Text(text) => replies.send(stream, slot, text, None::<NoMore>),
                    Reply::Dump(mut cursor) => {
                        let first = node.dump_chunk(&mut cursor, Instant::now());
                        let rest = (!cursor.finished())
                            .then(|| DumpFeed::new(cursor, chunk_tx.clone()));
                        replies.send(stream, slot, first, rest);
                    }
                    Reply::KernelDump(dump) => {
                        replies.send(stream, slot, String::new(), Some(dump.start()));
                    }
                }
                // Before any other input: what the request left for after
                // its reply (a quiet commit's flows). A `-c` reply is empty,
                // so its client has seen the connection close by now.
                node.after_reply(Instant::now());
                node.flush_sync(Instant::now());
            }
            Some(ChunkRequest { mut cursor, reply }) = chunk_rx.recv() => {
                let chunk = node.dump_chunk(&mut cursor, Instant::now());
                let _ = reply.send((chunk, cursor));
            }
            readable = node.kernel_readable() => {
                node.handle_kernel_readable(readable, Instant::now());
                node.flush_sync(Instant::now());
                node.after_kernel_read();
            }
            channel = node.sync_ready() => {
                node.handle_sync_ready(Instant::now(), channel);
            }
            _ = sleep_until(deadline) => {
                node.handle_timeout(Instant::now());
            }
            Some(scrape) = scrape_rx.recv() => {
                let _ = scrape.send(crate::counters::exposition::render(&node.snapshot(&stats, Instant::now())));
            }
            _ = tick(&mut watchdog_tick) => {
                if let Some(n) = &notifier {
                    let _ = n.notify("WATCHDOG=1");
                }
            }
        }
        node.flush_sync(Instant::now());
    }
    logger::notice("---- shutdown received ----");
    if let Some(helpers) = helpers {
        helpers.stop().await;
    }
    if let Some(n) = &notifier {
        let _ = n.notify("STOPPING=1");
    }
    Ok(())
}

/// SIGHUP: the sync keys from the configuration file as it is now (for a
/// key rotation); other changes take effect at restart.
fn reload_keys(node: &mut crate::node::Node, path: &Path) {
    if !node.uses_sync_keys() {
        return;
    }
    match conntrackd_config::load(path) {
        Ok((
            _,
            conntrackd_config::Parsed {
                config: Some(config),
                ..
            },
        )) => node.reload_keys(&config),
        Ok(_) => logger::error(&format!(
            "`{}' has errors now (see conntrackd --check); the sync keys in use stay",
            path.display()
        )),
        Err(e) => logger::error(&format!(
            "can't read `{}': {e}; the sync keys in use stay",
            path.display()
        )),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

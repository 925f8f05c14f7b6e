//! Stats mode (docs/sync-modes.md §12): no replication; the cache of
//! local flows, and each destroyed flow written to the Stats `LogFile`
//! as `<ctime>\t<flow>` and, with `Syslog`, to syslog.

use std::path::PathBuf;
use std::time::Instant;

use conntrack_model::{Conntrack, FlowKey};
use conntrack_text::PlainOptions;
use conntrackd_config::{LogTarget, StatsSection};
use conntrackd_core::local::{EventKind, LocalCache, LocalOutput, Origin};

use super::StartError;
use crate::logger;

#[derive(Debug)]
pub(super) struct StatsMode {
    local: LocalCache,
    flow_log: Option<FlowLog>,
    /// Stats `Syslog`: destroyed flows also go to syslog at INFO.
    flow_syslog: bool,
}

impl StatsMode {
    pub(super) fn new(stats: &StatsSection, local: LocalCache) -> Result<StatsMode, StartError> {
        let path = match &stats.log_file {
            LogTarget::Off => None,
            LogTarget::Default => Some(PathBuf::from(conntrackd_config::DEFAULT_STATS_LOG_FILE)),
            LogTarget::Path(p) => Some(p.clone()),
        };
        let flow_log = match path {
            Some(path) => Some(
                FlowLog::open(path.clone())
                    .map_err(|source| StartError::StatsLog { path, source })?,
            ),
            None => None,
        };
        Ok(StatsMode {
            local,
            flow_log,
            flow_syslog: stats.syslog.is_some(),
        })
    }

    pub(super) fn local(&self) -> &LocalCache {
        &self.local
    }

    pub(super) fn local_mut(&mut self) -> &mut LocalCache {
        &mut self.local
    }

    pub(super) fn handle_kernel_event(
        &mut self,
        now: Instant,
        kind: EventKind,
        ct: Conntrack,
        origin: Origin,
    ) {
        self.local.handle_kernel_event(now, kind, ct, origin);
    }

    pub(super) fn handle_dump_entry(&mut self, now: Instant, ct: Conntrack, purge: bool) {
        self.local.handle_dump_entry(now, ct, purge);
    }

    /// A flow a resync no longer found in the kernel: destroyed.
    pub(super) fn handle_vanished(&mut self, key: &FlowKey) {
        if let Some(entry) = self.local.remove(key) {
            self.record_destroyed(&entry.ct());
        }
    }

    /// Writes what the cache reported (destroyed flows, unreadable events).
    pub(super) fn drain_outputs(&mut self) {
        while let Some(output) = self.local.poll_output() {
            match output {
                LocalOutput::FlowDestroyed(ct) => self.record_destroyed(&ct),
                LocalOutput::Malformed => {
                    logger::error("missing IPv4 address. You forgot to load nf_conntrack_ipv4?");
                }
            }
        }
    }

    /// A destroyed flow goes to the flow log and/or syslog.
    fn record_destroyed(&mut self, ct: &Conntrack) {
        let text = conntrack_text::plain(ct, PlainOptions::default());
        if let Some(log) = self.flow_log.as_mut() {
            log.write(&text);
        }
        if self.flow_syslog {
            // 1.4.7 sends the record with its newline.
            logger::syslog_record(logger::Level::Info, &format!("{text}\n"));
        }
    }

    /// SIGHUP.
    pub(super) fn reopen_logs(&mut self) {
        if let Some(log) = self.flow_log.as_mut() {
            let _ = log.reopen();
        }
    }
}

/// The Stats-mode flow log: `<ctime>\t<flow>` per destroyed flow.
#[derive(Debug)]
struct FlowLog {
    path: PathBuf,
    file: std::fs::File,
}

impl FlowLog {
    fn open(path: PathBuf) -> std::io::Result<FlowLog> {
        let file = logger::open_log_file(&path)?;
        Ok(FlowLog { path, file })
    }

    fn write(&mut self, text: &str) {
        use std::io::Write as _;
        let _ = writeln!(self.file, "{}\t{}", logger::ctime_now(), text);
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        self.file = logger::open_log_file(&self.path)?;
        Ok(())
    }
}

//! Log lines in conntrackd 1.4.7's format:
//! `[Www Mmm dd hh:mm:ss yyyy] (pid=N) [level] message`, to the console,
//! the log file and syslog (docs/control-and-cli.md §6.1).
//!
//! The daemon is single-threaded; a global behind a mutex keeps call sites
//! as short as the C daemon's `dlog()`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Severity of a log line, with the word the C daemon prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Notice,
    Warning,
    Error,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "ERROR",
        }
    }

    /// syslog(3) priority.
    fn syslog_priority(self) -> u8 {
        match self {
            Level::Info => 6,
            Level::Notice => 5,
            Level::Warning => 4,
            Level::Error => 3,
        }
    }

    fn to_stderr(self) -> bool {
        matches!(self, Level::Warning | Level::Error)
    }
}

/// Where syslog lines go and with which facility code.
#[derive(Debug)]
struct Syslog {
    socket: UnixDatagram,
    facility: u8,
    /// Daemon log lines go to syslog only with General `Syslog`; the
    /// socket may be open for Stats records alone.
    daemon_lines: bool,
}

#[derive(Debug, Default)]
struct Sinks {
    console: bool,
    file: Option<(PathBuf, File)>,
    syslog: Option<Syslog>,
}

static SINKS: Mutex<Sinks> = Mutex::new(Sinks {
    console: true,
    file: None,
    syslog: None,
});

/// `ctime()` without the newline, in local time.
pub fn ctime_now() -> String {
    chrono::Local::now()
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// Formats one line exactly as the C daemon does (without newline).
pub fn format_line(level: Level, message: &str) -> String {
    format!(
        "[{}] (pid={}) [{}] {}",
        ctime_now(),
        std::process::id(),
        level.word(),
        message
    )
}

/// Writes one log line to every configured sink.
pub fn log(level: Level, message: &str) {
    let line = format_line(level, message);
    let mut sinks = match SINKS.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    if sinks.console {
        if level.to_stderr() {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    if let Some((_, file)) = sinks.file.as_mut() {
        // A full disk must not stop the daemon; the line is lost, nothing else.
        let _ = writeln!(file, "{line}");
    }
    if let Some(syslog) = sinks.syslog.as_ref().filter(|s| s.daemon_lines) {
        send_syslog(syslog, level, message);
    }
}

fn send_syslog(syslog: &Syslog, level: Level, message: &str) {
    let pri = u32::from(syslog.facility) * 8 + u32::from(level.syslog_priority());
    let msg = format!(
        "<{pri}>{} conntrack-tools[{}]: {message}",
        chrono::Local::now().format("%b %e %H:%M:%S"),
        std::process::id()
    );
    let _ = syslog.socket.send(msg.as_bytes());
}

/// The flow of a failed commit or injection, as 1.4.7 logs it: to the log
/// file as `<ctime>\t<flow>` (no brackets, no level), and to syslog at
/// ERR (docs/control-and-cli.md §6.1).
pub fn flow_error(flow: &str) {
    let mut sinks = sinks();
    if let Some((_, file)) = sinks.file.as_mut() {
        let _ = writeln!(file, "{}\t{flow}", ctime_now());
    }
    if let Some(syslog) = sinks.syslog.as_ref().filter(|s| s.daemon_lines) {
        send_syslog(syslog, Level::Error, flow);
    }
}

/// Sends one record to syslog only (Stats-mode flow records).
pub fn syslog_record(level: Level, message: &str) {
    if let Some(syslog) = sinks().syslog.as_ref() {
        send_syslog(syslog, level, message);
    }
}

pub fn notice(message: &str) {
    log(Level::Notice, message);
}
pub fn warning(message: &str) {
    log(Level::Warning, message);
}
pub fn error(message: &str) {
    log(Level::Error, message);
}

fn sinks() -> std::sync::MutexGuard<'static, Sinks> {
    match SINKS.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Opens a log file in append mode, created 0600 like the C daemon's.
pub fn open_log_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Starts writing to the log file at `path`.
pub fn set_file(path: &Path) -> std::io::Result<()> {
    let file = open_log_file(path)?;
    sinks().file = Some((path.to_path_buf(), file));
    Ok(())
}

/// Reopens the log file (SIGHUP, for logrotate).
pub fn reopen_file() -> std::io::Result<()> {
    let mut sinks = sinks();
    if let Some((path, file)) = sinks.file.as_mut() {
        *file = open_log_file(path)?;
    }
    Ok(())
}

/// Turns console output on or off (off once a `-d` daemon is detached).
pub fn set_console(on: bool) {
    sinks().console = on;
}

/// Opens syslog (`/dev/log`) with the given facility code (daemon = 3,
/// local0..7 = 16..23, user = 1); `daemon_lines` also sends log lines there.
pub fn set_syslog(facility: u8, daemon_lines: bool) -> std::io::Result<()> {
    set_syslog_at(Path::new("/dev/log"), facility, daemon_lines)
}

/// As [`set_syslog`], with the socket path given.
pub fn set_syslog_at(path: &Path, facility: u8, daemon_lines: bool) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_nonblocking(true)?;
    sinks().syslog = Some(Syslog {
        socket,
        facility,
        daemon_lines,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sinks are global: tests that change them take turns.
    static SINKS_IN_USE: Mutex<()> = Mutex::new(());

    fn take_sinks() -> std::sync::MutexGuard<'static, ()> {
        SINKS_IN_USE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn a_failed_flow_is_logged_as_ctime_tab_flow() {
        let _turn = take_sinks();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conntrackd.log");
        set_file(&path).expect("log file");
        flow_error("udp      17 src=10.1.1.5 dst=10.2.2.9 sport=5000 dport=53");
        sinks().file = None;
        let text = std::fs::read_to_string(&path).expect("read");
        let line = text
            .lines()
            .find(|l| l.contains("src=10.1.1.5"))
            .expect("logged");
        // `Sun Dec  6 07:45:58 2026<TAB>udp ...`: ctime, a tab, the flow.
        let (time, flow) = line.split_once('\t').expect("tab");
        assert_eq!(time.len(), 24, "{line}");
        assert!(!time.contains('['), "{line}");
        assert_eq!(
            flow,
            "udp      17 src=10.1.1.5 dst=10.2.2.9 sport=5000 dport=53"
        );
    }

    #[test]
    fn line_has_c_layout() {
        let line = format_line(Level::Notice, "initialization completed");
        // [Tue Nov 24 23:54:49 2026] (pid=17394) [notice] initialization completed
        assert!(line.starts_with('['));
        let close = line.find(']').expect("bracket");
        assert_eq!(close, 25, "ctime is 24 characters: {line}");
        assert!(line.contains(&format!("] (pid={}) [notice] ", std::process::id())));
        assert!(line.ends_with("initialization completed"));
        assert!(format_line(Level::Error, "x").contains("[ERROR] x"));
    }

    #[test]
    fn syslog_gets_daemon_lines_and_records_with_priority() {
        let _turn = take_sinks();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).expect("bind");
        server.set_nonblocking(true).expect("nonblocking");
        set_console(false);
        set_syslog_at(&path, 16, false).expect("open");
        log(Level::Notice, "not for syslog");
        syslog_record(Level::Info, "tcp      6 ESTABLISHED src=1.1.1.1");
        set_syslog_at(&path, 3, true).expect("open");
        log(Level::Error, "daemon line");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).expect("record");
        let first = String::from_utf8_lossy(&buf[..n]).into_owned();
        // local0 (16) * 8 + info (6) = 134
        assert!(first.starts_with("<134>"), "{first}");
        assert!(
            first.ends_with(": tcp      6 ESTABLISHED src=1.1.1.1"),
            "{first}"
        );
        let n = server.recv(&mut buf).expect("daemon line");
        let second = String::from_utf8_lossy(&buf[..n]).into_owned();
        // daemon (3) * 8 + err (3) = 27
        assert!(
            second.starts_with("<27>") && second.contains("conntrack-tools["),
            "{second}"
        );
        assert!(server.recv(&mut buf).is_err(), "nothing else was sent");
        sinks().syslog = None;
        set_console(true);
    }
}

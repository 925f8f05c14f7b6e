//! `-d`: run in the background.
//!
//! Instead of fork() (unsafe in a Rust process), the parent re-executes
//! itself with the very same command line (`argv[0]` included, so that `ps`
//! and `pgrep -f "conntrackd -C FILE -d"` find the daemon as they find the
//! C one), marked as the child by an environment variable, in a new
//! session, with its stdout on a pipe. The child writes one readiness line
//! there once initialisation succeeded, so the parent can exit 0 only for a
//! daemon that really started (the C daemon's parent exits 0 before the
//! child has done anything) and 1 otherwise.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

/// Environment variable that marks the re-executed child.
pub const CHILD_ENV: &str = "CONNTRACKD_DAEMON_CHILD";
/// The line the child prints when it is ready.
pub const READY_LINE: &str = "conntrackd-ready";

/// True in the re-executed background child.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Parent side: starts the child with our own command line and waits for
/// its readiness line.
pub fn spawn_child() -> ExitCode {
    let Ok(exe) = std::env::current_exe() else {
        return ExitCode::FAILURE;
    };
    let mut command_line = std::env::args_os();
    let Some(argv0) = command_line.next() else {
        return ExitCode::FAILURE;
    };
    let child = Command::new(exe)
        .arg0(argv0)
        .args(command_line)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Both streams go through the parent: a child holding the caller's
        // own stdout/stderr would keep `$(conntrackd -d)` waiting forever.
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return ExitCode::FAILURE;
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return ExitCode::FAILURE;
    };
    // Start-up errors printed by the child are shown on our stderr.
    let forward = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    // Start-up log lines the child printed before it was ready: silent on
    // success, as 1.4.7's `-d` is; shown on failure, so the reason is not
    // only in the log file.
    let mut early = Vec::new();
    for line in BufReader::new(stdout).lines() {
        match line {
            Ok(line) if line == READY_LINE => {
                // The child lets go of its stderr once ready: what it wrote
                // before (warnings) is shown before we exit.
                let _ = forward.join();
                return ExitCode::SUCCESS;
            }
            Ok(line) => early.push(line),
            Err(_) => break,
        }
    }
    // The child closed its stdout without becoming ready: it failed.
    let _ = child.wait();
    let _ = forward.join();
    for line in early {
        eprintln!("{line}");
    }
    ExitCode::FAILURE
}

/// Child side: detach from the terminal's session.
pub fn detach() {
    let _ = rustix::process::setsid();
}

/// Child side: tell the waiting parent that start-up succeeded, then let
/// go of the pipes to it (stdout and stderr go to /dev/null, as a daemon's
/// do), so that the parent sees the end of what we wrote and exits.
pub fn signal_ready() {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{READY_LINE}");
    let _ = out.flush();
    let _ = std::io::stderr().flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
}

//! The daemon shell without kernel access: lock file, control socket,
//! `-k`, `-s runtime`, client errors. Runs unprivileged.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{C_DAEMON, Scratch, conntrackd_bin, wait_until};

fn idle_config(s: &Scratch) -> std::path::PathBuf {
    let text = format!(
        "General {{\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n}}\n",
        s.path("log").display(),
        s.path("lock").display(),
        s.path("sock").display()
    );
    s.write("idle.conf", &text)
}

fn client(conf: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(conntrackd_bin())
        .arg("-C")
        .arg(conf)
        .args(args)
        .output()
        .expect("run client")
}

#[test]
fn idle_daemon_start_second_instance_stats_and_kill() {
    let s = Scratch::new();
    let conf = idle_config(&s);
    let start = client(&conf, &["-d"]);
    assert!(start.status.success(), "{start:?}");
    // Silent on success, as 1.4.7's `-d` is (the lines go to the log).
    assert!(
        start.stdout.is_empty() && start.stderr.is_empty(),
        "{start:?}"
    );
    assert!(s.path("lock").exists());
    let mode = std::fs::metadata(s.path("sock"))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "control socket must be owner-only");

    let second = client(&conf, &["-d"]);
    assert_eq!(
        second.status.code(),
        Some(1),
        "a second daemon must be refused"
    );
    // Unlike 1.4.7, the reason is also shown, not only logged.
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("perhaps conntrackd already running?"),
        "{second:?}"
    );
    let log = std::fs::read_to_string(s.path("log")).expect("log");
    assert!(
        log.contains("exists, perhaps conntrackd already running?"),
        "{log}"
    );

    let runtime = client(&conf, &["-s", "runtime"]);
    assert!(runtime.status.success());
    let text = String::from_utf8_lossy(&runtime.stdout);
    assert!(
        text.starts_with("daemon uptime: 0 min\n\nruntime stats:\n"),
        "{text}"
    );

    // A code 1.4.7 does not define is counted, not served.
    {
        use std::io::{Read, Write};
        let mut raw = std::os::unix::net::UnixStream::connect(s.path("sock")).expect("connect");
        raw.write_all(&99i32.to_ne_bytes()).expect("write");
        let mut reply = Vec::new();
        let _ = raw.read_to_end(&mut reply);
        assert!(reply.is_empty());
    }
    let runtime = client(&conf, &["-s", "runtime"]);
    let text = String::from_utf8_lossy(&runtime.stdout);
    assert!(
        text.contains("local unknown request:\t\t           1"),
        "{text}"
    );

    let kill = client(&conf, &["-k"]);
    assert!(kill.status.success());
    assert!(
        wait_until(Duration::from_secs(5), || !s.path("lock").exists()),
        "lock file must be removed on -k"
    );
    assert!(!s.path("sock").exists(), "socket file removed on shutdown");
    let log = std::fs::read_to_string(s.path("log")).expect("log");
    assert!(
        log.contains("[notice] ---- shutdown received ----"),
        "{log}"
    );

    let after = client(&conf, &["-s"]);
    assert_eq!(after.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&after.stderr)
            .contains("[ERROR] can't connect: is conntrackd running? appropriate permissions?")
    );
}

/// Monitoring checks and Pacemaker agents look the daemon up by the
/// command line it was started with (`pgrep -f "conntrackd -C FILE -d"`):
/// the background process keeps it, `argv[0]` as typed included.
#[test]
fn background_daemon_keeps_its_command_line() {
    let s = Scratch::new();
    let conf = idle_config(&s);
    // Started by name through PATH, as an init script or an operator does.
    let bin_dir = s.path("bin");
    std::fs::create_dir(&bin_dir).expect("mkdir");
    std::os::unix::fs::symlink(conntrackd_bin(), bin_dir.join("conntrackd")).expect("symlink");
    let conf_text = conf.display().to_string();
    let start = Command::new("conntrackd")
        .env("PATH", &bin_dir)
        .args(["-C", &conf_text, "-d"])
        .output()
        .expect("start");
    assert!(start.status.success(), "{start:?}");
    let typed = format!("conntrackd -C {conf_text} -d");
    let found = Command::new("pgrep")
        .args(["-f", "-x", &typed])
        .output()
        .expect("pgrep");
    let pids = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    let stopped = client(&conf, &["-k"]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        found.status.success() && !pids.contains('\n'),
        "pgrep -f -x {typed:?} must find the one daemon, found {pids:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !s.path("lock").exists()),
        "the daemon found by its command line is the one -k stopped"
    );
    let gone = Command::new("pgrep")
        .args(["-f", "-x", &typed])
        .output()
        .expect("pgrep");
    assert!(!gone.status.success(), "{gone:?}");
}

#[test]
fn sigterm_is_an_orderly_shutdown() {
    let s = Scratch::new();
    let conf = idle_config(&s);
    let mut child = Command::new(conntrackd_bin())
        .arg("-C")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_until(Duration::from_secs(5), || s
        .path("sock")
        .exists()));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(!s.path("lock").exists());
}

#[test]
fn check_accepts_the_seed_and_reports_errors_with_positions() {
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conntrackd-config/tests/data/seed-alarm.conf"
    );
    let out = Command::new(conntrackd_bin())
        .args(["-C", seed, "--check"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("mode: sync ALARM"));
    let s = Scratch::new();
    let bad = s.write(
        "bad.conf",
        "General {\n\tHashSise 10\n}\nSync {\n\tMode FTFW { }\n\tMulticast {\n\t\tIPv4_address 225.0.0.999\n\t\tInterface lo\n\t\tGroup 3780\n\t}\n}\n",
    );
    let out = Command::new(conntrackd_bin())
        .arg("-C")
        .arg(&bad)
        .arg("--check")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.conf:2:2: error"), "{err}");
    assert!(err.contains("did you mean `HashSize'?"), "{err}");
    assert!(
        err.contains("bad.conf:7:16:"),
        "invalid address reported with position: {err}"
    );
}

/// A configuration the daemon refuses starts the log with 1.4.7's own
/// line for the first syntax error (scripts grep for it), then ours; the
/// line is the C daemon's, word for word, where it is installed.
#[test]
fn a_syntax_error_is_reported_first_in_the_words_of_1_4_7() {
    let s = Scratch::new();
    for (name, text, want) in [
        (
            "case.conf",
            "general {\n}\n",
            "parsing config file in line (1), symbol 'general': syntax error",
        ),
        (
            "eof.conf",
            "General {\n\tHashSize 10\n",
            "parsing config file in line (3), symbol '': syntax error",
        ),
    ] {
        let conf = s.write(name, text);
        let first_error = |bin: &str| {
            let out = Command::new(bin)
                .arg("-C")
                .arg(&conf)
                .output()
                .expect("run");
            assert_eq!(out.status.code(), Some(1), "{bin}");
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            let line = err.lines().next().unwrap_or_default().to_string();
            line.split_once(" [ERROR] ")
                .map(|(_, message)| message.to_string())
                .unwrap_or_else(|| panic!("{bin}: no log line in {err}"))
        };
        assert_eq!(first_error(conntrackd_bin().to_str().expect("utf8")), want);
        if std::path::Path::new(C_DAEMON).exists() {
            assert_eq!(first_error(C_DAEMON), want, "1.4.7 says otherwise");
        } else {
            eprintln!("NOT COMPARED with 1.4.7: {C_DAEMON} missing");
        }
    }
}

/// A value the daemon drops: `--check` fails with status 2 (not 1, the
/// status of a configuration the daemon refuses), and the daemon still
/// starts, logging a warning, as 1.4.7 does.
#[test]
fn check_exits_2_for_what_the_daemon_would_ignore_and_the_daemon_starts() {
    let s = Scratch::new();
    let conf = s.write(
        "ignored.conf",
        &format!(
            "General {{\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n\tFilter {{ Address Ignore {{ IPv4_address 300.1.2.3 }} }}\n}}\n",
            s.path("log").display(),
            s.path("lock").display(),
            s.path("sock").display()
        ),
    );
    let check = client(&conf, &["--check"]);
    assert_eq!(check.status.code(), Some(2), "{check:?}");
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains("ignored.conf:5:41: error: 300.1.2.3 is not a valid IPv4, ignoring"),
        "{err}"
    );
    assert!(
        err.contains("1 setting(s) the daemon would leave unused"),
        "{err}"
    );
    // As 1.4.7's `-d`, the warning goes to the terminal.
    let start = client(&conf, &["-d"]);
    assert!(start.status.success(), "{start:?}");
    assert!(client(&conf, &["-k"]).status.success());
    let shown = String::from_utf8_lossy(&start.stderr);
    assert!(
        shown.contains("[warning] ") && shown.contains("300.1.2.3 is not a valid IPv4, ignoring"),
        "{shown}"
    );
    // A legacy spelling alone leaves the status at 0.
    let legacy = s.write(
        "legacy.conf",
        "General {\n\tNice -1\n}\nIgnoreProtocol { UDP }\n",
    );
    let check = client(&legacy, &["--check"]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
}

#[test]
fn cli_exit_codes_match_the_c_daemon_1_4_9() {
    let out = Command::new(conntrackd_bin())
        .arg("-v")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("Connection tracking userspace daemon v1.4.7.")
    );
    let out = Command::new(conntrackd_bin())
        .args(["-i", "foo"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown option exits 1 like 1.4.9 (1.4.7: 0)"
    );
    // 1.4.7 went on with the default file; 1.4.9 exits 1.
    let out = Command::new(conntrackd_bin())
        .arg("-C")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[ERROR] Missing config filename"));
    let out = Command::new(conntrackd_bin())
        .args(["-s", "bogus"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(conntrackd_bin())
        .arg("-x")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

/// Even with the socket opened up (chmod 666), a request from a user
/// other than root is refused (SO_PEERCRED) and logged.
#[test]
fn requests_from_other_users_are_refused() {
    if !common::netns_available("requests_from_other_users_are_refused") {
        return;
    }
    let s = Scratch::new();
    let conf = idle_config(&s);
    assert!(client(&conf, &["-d"]).status.success());
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(s.path("idle.conf"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    std::fs::set_permissions(s.path("sock"), std::fs::Permissions::from_mode(0o666))
        .expect("chmod");
    let as_nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(conntrackd_bin())
        .arg("-C")
        .arg(&conf)
        .arg("-k")
        .output()
        .expect("setpriv");
    assert!(
        wait_until(Duration::from_secs(3), || std::fs::read_to_string(
            s.path("log")
        )
        .unwrap_or_default()
        .contains("refused a control request from uid 65534")),
        "{as_nobody:?}\n{}",
        std::fs::read_to_string(s.path("log")).unwrap_or_default()
    );
    // The daemon is still there and still answers root.
    assert!(s.path("lock").exists());
    assert!(client(&conf, &["-s", "runtime"]).status.success());
    assert!(client(&conf, &["-k"]).status.success());
}

/// `Systemd on` under a service manager: READY=1 with MAINPID once up,
/// WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on `-k`; `Systemd off`
/// says nothing.
#[test]
fn systemd_notifications() {
    use std::os::unix::net::UnixDatagram;
    for systemd in ["on", "off"] {
        let s = Scratch::new();
        let conf = s.write(
            "sd.conf",
            &format!(
                "General {{\n\tSystemd {systemd}\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n}}\n",
                s.path("log").display(),
                s.path("lock").display(),
                s.path("sock").display()
            ),
        );
        let listener = UnixDatagram::bind(s.path("notify")).expect("bind");
        listener
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut daemon = Command::new(conntrackd_bin())
            .arg("-C")
            .arg(&conf)
            .env("NOTIFY_SOCKET", s.path("notify"))
            .env("WATCHDOG_USEC", "200000")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start");
        assert!(wait_until(Duration::from_secs(5), || s
            .path("sock")
            .exists()));
        // Collect for a second: READY once, then a WATCHDOG every 100 ms.
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        let until = std::time::Instant::now() + Duration::from_secs(1);
        while std::time::Instant::now() < until {
            if let Ok(n) = listener.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        let _ = client(&conf, &["-k"]);
        let _ = daemon.wait();
        while let Ok(n) = listener.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if systemd == "off" {
            assert!(got.is_empty(), "Systemd off, yet: {got:?}");
            continue;
        }
        assert_eq!(
            got.first().map(String::as_str),
            Some(format!("READY=1\nMAINPID={}", daemon.id()).as_str()),
            "{got:?}"
        );
        let watchdogs = got.iter().filter(|m| *m == "WATCHDOG=1").count();
        assert!(watchdogs >= 5, "{watchdogs} watchdog pings in 1 s: {got:?}");
        assert_eq!(
            got.last().map(String::as_str),
            Some("STOPPING=1"),
            "{got:?}"
        );
    }
}

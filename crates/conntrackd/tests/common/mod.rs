//! Test support: network namespaces with unique names that are always
//! removed, and daemons started inside them.
#![allow(dead_code, unreachable_pub)]

pub mod pair;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short name: `<prefix><pid36><n>` (interface names are limited to
/// 15 characters, so keep prefixes short).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", radix36(std::process::id()))
}

fn radix36(mut v: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Returns false (after a loud message) when namespace tests cannot run
/// here; panics instead when CONNTRACKD_REQUIRE_NETNS=1.
pub fn netns_available(test: &str) -> bool {
    let is_root = rustix_uid_is_root();
    let ip_ok = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let conntrack_ok = Command::new("conntrack")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if is_root && ip_ok && conntrack_ok {
        return true;
    }
    let why = format!(
        "SKIPPING {test}: needs root, `ip netns` and the `conntrack` tool (root={is_root}, ip={ip_ok}, conntrack={conntrack_ok})"
    );
    if std::env::var("CONNTRACKD_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{why} — and CONNTRACKD_REQUIRE_NETNS=1 forbids skipping");
    }
    eprintln!("\n!!!!!!!! {why} !!!!!!!!\n");
    false
}

fn rustix_uid_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A network namespace, deleted (with every process in it) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = unique(prefix);
        run_ok("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace and returns its output.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("spawn ip netns exec")
    }

    /// Runs a command inside the namespace and panics if it fails.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.exec(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?} in {} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ip(&self, args: &[&str]) -> String {
        self.exec_ok("ip", args)
    }

    /// Starts a long-running command in the namespace.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in netns")
    }

    /// Creates a conntrack entry with the `conntrack` tool.
    pub fn conntrack(&self, args: &[&str]) -> String {
        self.exec_ok("conntrack", args)
    }

    /// Runs `f` on a thread that joined the namespace.
    pub fn thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).expect("netns file");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then remove the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// A scratch directory for configs, sockets, locks and logs.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("ctd-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

/// The binary under test.
pub fn conntrackd_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_conntrackd"))
}

/// Which daemon runs on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    Ours,
    C,
}

pub const C_DAEMON: &str = "/usr/sbin/conntrackd";

impl Impl {
    pub fn bin(self) -> &'static str {
        match self {
            Impl::Ours => conntrackd_bin().to_str().expect("utf8 path"),
            Impl::C => C_DAEMON,
        }
    }
}

/// A conntrackd (ours or the C one) in a namespace, with its scratch
/// directory (config, log, lock, socket); killed on drop.
pub struct Daemon {
    pub ns: Netns,
    pub scratch: Scratch,
    pub conf: PathBuf,
    pub imp: Impl,
}

impl Daemon {
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut all = vec!["-C", self.conf.to_str().expect("utf8 path")];
        all.extend_from_slice(args);
        let out = self.ns.exec(self.imp.bin(), &all);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn start(&self) {
        let out = self.ns.exec(
            self.imp.bin(),
            &["-C", self.conf.to_str().expect("utf8 path"), "-d"],
        );
        assert!(
            out.status.success(),
            "{:?} daemon did not start: {}{}\nlog:\n{}",
            self.imp,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        // The C daemon forks before it is ready; wait for its socket.
        assert!(
            wait_until(Duration::from_secs(5), || self
                .scratch
                .path("sock")
                .exists()),
            "no control socket"
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.path("log")).unwrap_or_default()
    }

    /// Sends `signal` (`-STOP`, `-CONT`, ...) to the running daemon.
    pub fn signal(&self, signal: &str) {
        let pid = std::fs::read_to_string(self.scratch.path("lock")).expect("lock holds the pid");
        let sent = Command::new("kill")
            .args([signal, pid.trim()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {signal}");
    }

    pub fn kernel(&self) -> String {
        String::from_utf8_lossy(&self.ns.exec("conntrack", &["-L"]).stdout).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.ns.exec(
            self.imp.bin(),
            &["-C", self.conf.to_str().unwrap_or(""), "-k"],
        );
    }
}

/// Runs one of the repository's scenario scripts (scripts/NAME) with
/// `--quiet --bin <ours>` and `args`; (exit 0, stdout+stderr). Exit 1 is
/// the scenario's failure; anything else means it could not run.
pub fn run_scenario(name: &str, args: &[&str]) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name);
    let out = Command::new("bash")
        .arg(script)
        .args([
            "--quiet",
            "--bin",
            conntrackd_bin().to_str().expect("utf8 path"),
        ])
        .args(args)
        .output()
        .expect("run a scenario script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "scripts/{name} could not run: {text}"
    );
    (out.status.success(), text)
}

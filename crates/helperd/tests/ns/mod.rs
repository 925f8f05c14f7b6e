//! Namespace support for the queue-path tests: a namespace deleted with
//! everything in it, a runner driven on a thread that joined it, and the
//! loud skip.
#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use helperd::{PlannedHelper, QueueRunner, RunnerOptions};

static N: AtomicU32 = AtomicU32::new(0);

/// False (after a loud message) where namespace tests cannot run; a
/// panic instead with CONNTRACKD_REQUIRE_NETNS=1.
pub fn available(test: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let tools = ["ip", "iptables-legacy", "conntrack", "python3"]
        .iter()
        .all(|t| {
            Command::new("which")
                .arg(t)
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if root && tools {
        return true;
    }
    let why = format!(
        "SKIPPING {test}: needs root, ip, iptables-legacy, conntrack and python3 (root={root}, tools={tools})"
    );
    if std::env::var("CONNTRACKD_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{why} — and CONNTRACKD_REQUIRE_NETNS=1 forbids skipping");
    }
    eprintln!("\n!!!!!!!! {why} !!!!!!!!\n");
    false
}

/// A kernel feature this machine lacks: said loudly, not a failure (the
/// namespace machinery works; the kernel cannot do it).
pub fn skip_for_kernel(test: &str, option: &str) {
    eprintln!("\n!!!!!!!! SKIPPING {test}: this kernel lacks {option} !!!!!!!!\n");
}

pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new() -> Ns {
        let name = format!(
            "hlp{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip")
            .success();
        assert!(ok, "ip netns add {name}");
        let ns = Ns { name };
        ns.ok("ip", &["link", "set", "lo", "up"]);
        ns
    }

    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.exec(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    }

    /// Runs `python3 -c SCRIPT ARGS…` and returns its stdout.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let mut all = vec!["-c", script];
        all.extend_from_slice(args);
        self.ok("python3", &all)
    }

    /// Runs `PYTHON -c SCRIPT ARGS…` and returns its stdout.
    pub fn python_with(&self, python: &str, script: &str, args: &[&str]) -> String {
        let mut all = vec!["-c", script];
        all.extend_from_slice(args);
        self.ok(python, &all)
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

impl Drop for Ns {
    fn drop(&mut self) {
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

/// A runner working in a namespace until stopped.
pub struct Running {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<QueueRunner>,
}

impl Running {
    /// Starts a runner in `ns` (after start-up, `ready` is true).
    pub fn start(ns: &Ns, planned: Vec<PlannedHelper>, options: RunnerOptions) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let (s, r) = (Arc::clone(&stop), Arc::clone(&ready));
        let handle = ns.thread(move || {
            let mut runner = QueueRunner::start(&planned, options).expect("runner starts");
            r.store(true, Ordering::SeqCst);
            while !s.load(Ordering::SeqCst) {
                let now = Instant::now();
                let n = runner.handle_readable(now, 64).expect("reads");
                runner.handle_timeout(now);
                if n == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            // What is still queued.
            let _ = runner.handle_readable(Instant::now(), 64);
            runner.refresh_queue_drops();
            runner
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.load(Ordering::SeqCst) {
            assert!(!handle.is_finished(), "the runner did not start");
            assert!(Instant::now() < deadline, "runner start timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
        Running { stop, handle }
    }

    pub fn stop(self) -> QueueRunner {
        std::thread::sleep(Duration::from_millis(100));
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("runner thread")
    }
}

//! Control-socket clients that are slow, stopped or silent cannot hold up
//! the daemon: while one of them waits, `-s` is answered at once and new
//! kernel flows still reach the backup (issue 13, part 1). Two of our
//! daemons in FTFW over UDP on a veth link, 20,000 flows on the primary.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon as Node, Impl, Netns, Scratch, netns_available, unique, wait_until};

/// Request codes (docs/json.md for the JSON flag; the rest are 1.4.7's).
const CT_DUMP_INTERNAL: i32 = 16;
const STATS: i32 = 21;
const STATS_RUNTIME: i32 = 30;
const JSON_FLAG: i32 = 0x1_0000;

/// The flows the primary starts with, and those created while a client
/// is stuck.
const FLOWS: usize = 20_000;
const MORE_FLOWS: usize = 1_000;

/// The bound the issue sets on `-s` while another client is stuck.
const PROMPT: Duration = Duration::from_millis(100);

/// The sync mode of both daemons in most tests.
const FTFW: &str = "FTFW { }";

fn write_conf(s: &Scratch, me: u8, peer: u8, mode: &str, unix_extra: &str) -> PathBuf {
    let text = format!(
        "Sync {{\n\tMode {mode}\n\tUDP {{\n\t\tIPv4_address 10.78.0.{me}\n\t\tIPv4_Destination_Address 10.78.0.{peer}\n\t\tPort 3781\n\t\tInterface sync0\n\t}}\n}}\nGeneral {{\n\tSystemd off\n\tHashSize 32768\n\tHashLimit 131072\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{\n\t\tPath {}\n{unix_extra}\t}}\n\tNetlinkBufferSize 16777216\n\tNetlinkBufferSizeMaxGrowth 67108864\n\tFilter {{ Address Ignore {{ IPv4_address 10.78.0.0/24 }} }}\n}}\n",
        s.path("log").display(),
        s.path("lock").display(),
        s.path("sock").display()
    );
    s.write("ct.conf", &text)
}

/// Two namespaces joined by a veth link, our daemon in each (the backup
/// started first); `unix_extra` goes into the primary's `UNIX` block.
fn pair(unix_extra: &str) -> (Node, Node) {
    pair_with((FTFW, FTFW), unix_extra, |_| {})
}

/// [`pair`] with the sync `modes` of the primary and the backup, and
/// `before_start` run on the primary's namespace before the daemons start.
fn pair_with(
    modes: (&str, &str),
    unix_extra: &str,
    before_start: impl FnOnce(&Netns),
) -> (Node, Node) {
    let a = Netns::new("cca");
    let b = Netns::new("ccb");
    let (va, vb) = (unique("va"), unique("vb"));
    common::run_ok(
        "ip",
        &["link", "add", &va, "type", "veth", "peer", "name", &vb],
    );
    common::run_ok("ip", &["link", "set", &va, "netns", &a.name]);
    common::run_ok("ip", &["link", "set", &vb, "netns", &b.name]);
    for (ns, dev, n) in [(&a, &va, 1), (&b, &vb, 2)] {
        ns.ip(&["link", "set", dev, "name", "sync0"]);
        ns.ip(&["addr", "add", &format!("10.78.0.{n}/24"), "dev", "sync0"]);
        ns.ip(&["link", "set", "sync0", "up"]);
    }
    before_start(&a);
    let node = |ns: Netns, me: u8, peer: u8, mode: &str, extra: &str| {
        let scratch = Scratch::new();
        let conf = write_conf(&scratch, me, peer, mode, extra);
        Node {
            ns,
            scratch,
            conf,
            imp: Impl::Ours,
        }
    };
    let backup = node(b, 2, 1, modes.1, "");
    let primary = node(a, 1, 2, modes.0, unix_extra);
    backup.start();
    primary.start();
    // Let the FTFW handshake end first: flows sent before the backup's
    // HELLO_BACK arrives make the backup take the primary for restarted a
    // moment later, ask it for a resync, and the primary then bulk-sends
    // its whole cache in one turn of its loop (replication's business,
    // and a stall the measurements below must not catch).
    std::thread::sleep(Duration::from_millis(2500));
    (primary, backup)
}

/// Creates `count` established TCP flows from `172.{net}.x.y` in the
/// namespace's kernel, in one `conntrack -R` run.
fn create_flows(node: &Node, net: u8, count: usize) {
    create_flows_in(&node.ns, &node.scratch, net, count);
}

fn create_flows_in(ns: &Netns, scratch: &Scratch, net: u8, count: usize) {
    let batch: String = (0..count)
        .map(|i| {
            format!(
                "-I -s 172.{net}.{}.{} -d 192.168.1.1 -p tcp --sport {} --dport 80 --state ESTABLISHED -u ASSURED,SEEN_REPLY -t 3600\n",
                i / 250,
                i % 250 + 1,
                1024 + i
            )
        })
        .collect();
    let file = scratch.write(&format!("flows-{net}.txt"), &batch);
    ns.conntrack(&["-R", file.to_str().expect("utf8 path")]);
}

/// The backup's external cache size, from `-s --json`.
fn external_flows(backup: &Node) -> u64 {
    let text = backup.ctl(&["-s", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    doc["caches"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "external" && c["kind"] == "conntrack")
        .and_then(|c| c["active"].as_u64())
        .unwrap_or(0)
}

/// Waits until the backup holds `want` external flows; how many it holds.
fn backup_reaches(backup: &Node, want: u64, within: Duration) -> u64 {
    let mut seen = 0;
    wait_until(within, || {
        seen = external_flows(backup);
        seen == want
    });
    seen
}

/// A raw control client: connected, its request sent, nothing read yet.
fn raw_request(sock: &Path, code: i32) -> UnixStream {
    let mut stream = UnixStream::connect(sock).expect("connect to the control socket");
    stream
        .write_all(&code.to_ne_bytes())
        .expect("send the request");
    stream
}

/// Sends `code` and reads the reply to its end; the reply and how long
/// it took from connecting. Gives up reading after 5 s.
fn timed_request(sock: &Path, code: i32) -> (String, Duration) {
    let start = Instant::now();
    let mut stream = UnixStream::connect(sock).expect("connect to the control socket");
    // A refused client may find the connection closed before it writes.
    let _ = stream.write_all(&code.to_ne_bytes());
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    (
        String::from_utf8_lossy(&reply).into_owned(),
        start.elapsed(),
    )
}

/// `-s` five times: each answer must be complete, and they must come
/// within [`PROMPT`]. The daemon runs at SCHED_RR, this test does not: a
/// busy machine (real-time daemons of other tests in a burst) can delay
/// the asking side now and then, so one answer in five may take up to a
/// second; a daemon that waits for a client answers none in time.
fn stats_are_prompt(primary: &Node, context: &str) {
    let sock = primary.scratch.path("sock");
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let (reply, took) = timed_request(&sock, STATS);
        // Without an internal cache its block is `internal bypass:`.
        let whole = reply.contains("cache internal:") || reply.contains("internal bypass:");
        assert!(
            whole && reply.ends_with("\n\n"),
            "{context}: -s gave no complete answer within 5 s ({took:?}): {reply:?}"
        );
        latencies.push(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{context}: -s latencies {latencies:?}");
    let late = latencies.iter().filter(|t| **t >= PROMPT).count();
    assert!(
        late <= 1 && latencies.iter().all(|t| *t < Duration::from_secs(1)),
        "{context}: -s took {latencies:?}; more than {PROMPT:?} is allowed once, and never a second"
    );
}

/// A `-i` dump that must list every one of the first [`FLOWS`] flows
/// exactly once, any of the later ones at most once, and nothing else.
fn assert_complete_dump(text: &str) {
    assert!(text.ends_with('\n'), "dump ends mid-line");
    let mut seen = HashSet::new();
    let (mut first, mut later) = (0, 0);
    for line in text.lines() {
        assert!(
            line.starts_with("tcp      6 ESTABLISHED src=172.")
                && line.ends_with("s]")
                && line.contains(" [active since "),
            "malformed dump line: {line:?}"
        );
        let source = line
            .split_whitespace()
            .find(|w| w.starts_with("src="))
            .unwrap_or_default()
            .to_string();
        assert!(seen.insert(source.clone()), "listed twice: {line}");
        if source.starts_with("src=172.16.") {
            first += 1;
        } else if source.starts_with("src=172.17.") {
            later += 1;
        }
    }
    assert_eq!(first, FLOWS, "flows that existed all along");
    assert!(later <= MORE_FLOWS, "{later} later flows");
    assert_eq!(seen.len(), first + later);
}

/// A primary with [`FLOWS`] flows, all of them replicated.
fn loaded_pair(unix_extra: &str) -> (Node, Node) {
    let (a, b) = pair(unix_extra);
    create_flows(&a, 16, FLOWS);
    let held = backup_reaches(&b, FLOWS as u64, Duration::from_secs(30));
    assert_eq!(held, FLOWS as u64, "backup before the test\n{}", a.log());
    (a, b)
}

/// While a client is stuck: `-s` is prompt and new flows replicate.
fn daemon_keeps_working(a: &Node, b: &Node, context: &str) {
    stats_are_prompt(a, context);
    create_flows(a, 17, MORE_FLOWS);
    let held = backup_reaches(b, (FLOWS + MORE_FLOWS) as u64, Duration::from_secs(15));
    assert_eq!(
        held,
        (FLOWS + MORE_FLOWS) as u64,
        "{context}: new flows did not all reach the backup"
    );
    let later = b
        .ctl(&["-e"])
        .lines()
        .filter(|l| l.contains("src=172.17."))
        .count();
    assert_eq!(later, MORE_FLOWS, "{context}: new flows in the backup's -e");
}

/// The reproduction: a raw client asks for `-i` and does not read.
#[test]
fn a_reader_that_does_not_read_holds_up_nothing() {
    if !netns_available("a_reader_that_does_not_read_holds_up_nothing") {
        return;
    }
    let (a, b) = loaded_pair("");
    let mut stuck = raw_request(&a.scratch.path("sock"), CT_DUMP_INTERNAL);
    // Time for the daemon to fill the socket buffers.
    std::thread::sleep(Duration::from_millis(500));
    daemon_keeps_working(&a, &b, "reader asleep");
    // The reader wakes up and gets its whole dump.
    stuck
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut dump = Vec::new();
    let _ = stuck.read_to_end(&mut dump);
    assert_complete_dump(&String::from_utf8_lossy(&dump));
    // The other formats span many chunks too: one element per flow.
    let all = FLOWS + MORE_FLOWS;
    let json: serde_json::Value =
        serde_json::from_str(&a.ctl(&["-i", "--json"])).expect("-i --json is one JSON document");
    assert_eq!(json.as_array().map(Vec::len), Some(all));
    let xml = a.ctl(&["-i", "-x"]);
    assert_eq!(xml.lines().count(), all);
    assert!(
        xml.lines()
            .all(|l| l.starts_with("<flow>") && l.ends_with("</flow>"))
    );
}

/// The same with a real `conntrackd -i` stopped by SIGSTOP.
#[test]
fn a_stopped_dump_client_holds_up_nothing() {
    if !netns_available("a_stopped_dump_client_holds_up_nothing") {
        return;
    }
    let (a, b) = loaded_pair("");
    let mut client: Child = Command::new("ip")
        .args(["netns", "exec", &a.ns.name])
        .arg(common::conntrackd_bin())
        .args(["-C", a.conf.to_str().expect("utf8 path"), "-i"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start conntrackd -i");
    let mut out = BufReader::new(client.stdout.take().expect("client stdout"));
    let mut dump = String::new();
    out.read_line(&mut dump).expect("first line of the dump");
    // `ip netns exec` execs the client, so this is its pid.
    let pid = client.id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {name} {pid}");
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_millis(500));
    let outcome = std::panic::catch_unwind(|| daemon_keeps_working(&a, &b, "client stopped"));
    signal("-CONT");
    if let Err(failure) = outcome {
        let _ = client.kill();
        let _ = client.wait();
        std::panic::resume_unwind(failure);
    }
    out.read_to_string(&mut dump).expect("rest of the dump");
    let status = client.wait().expect("client exits");
    assert!(status.success(), "{status:?}");
    assert_complete_dump(&dump);
}

/// The number after `label` in a `-s` text report.
fn counter(report: &str, label: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no counter {label:?} in:\n{report}"))
}

/// 64 clients connect and send nothing. With 32 slots (the default
/// `MaxClients`), each newcomer beyond them closes the oldest silent
/// connection: `-s` is answered at once, flows replicate, the daemon
/// holds no more than 32 connections, and it counts what it closed.
#[test]
fn silent_clients_cannot_lock_out_the_operator() {
    if !netns_available("silent_clients_cannot_lock_out_the_operator") {
        return;
    }
    let (a, b) = pair("");
    let sock = a.scratch.path("sock");
    let silent: Vec<UnixStream> = (0..64)
        .map(|_| UnixStream::connect(&sock).expect("connect"))
        .collect();
    stats_are_prompt(&a, "64 silent clients");
    let (runtime, _) = timed_request(&sock, STATS_RUNTIME);
    // 32 closed for the other silent ones, one for the first -s; the
    // slot of each answered -s is free for the next.
    let evicted = 32 + 1;
    assert_eq!(
        counter(&runtime, "silent clients dropped:"),
        evicted as u64,
        "{runtime}"
    );
    assert_eq!(counter(&runtime, "local read failed:"), 0, "{runtime}");
    // `--json` reads the same counter.
    let (json, _) = timed_request(&sock, STATS | JSON_FLAG);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("-s --json");
    assert_eq!(
        doc["control"]["silent_clients_dropped"].as_u64(),
        Some(evicted as u64),
        "{json}"
    );
    let closed = |s: &UnixStream| {
        let _ = s.set_nonblocking(true);
        matches!((&*s).read(&mut [0u8; 1]), Ok(0))
    };
    assert!(
        wait_until(Duration::from_secs(2), || silent[..evicted]
            .iter()
            .all(closed)),
        "the oldest silent clients were not closed"
    );
    assert!(
        !silent[evicted..].iter().any(closed),
        "the newest silent clients were closed too"
    );
    create_flows(&a, 17, MORE_FLOWS);
    let held = backup_reaches(&b, MORE_FLOWS as u64, Duration::from_secs(15));
    assert_eq!(held, MORE_FLOWS as u64, "flows replicated");
    drop(silent);
}

/// A reply is a whole, non-empty `-s` report.
fn answered(reply: &str) -> bool {
    reply.contains("runtime stats:") || reply.contains("cache internal:")
}

/// With `MaxClients 2` and `ReplyTimeout 2`: two readers that stop
/// reading hold both slots, so a newcomer is closed at once (counted);
/// after 2 s without progress both replies are abandoned (counted and
/// logged), the slots come back, and the readers get truncated dumps.
#[test]
fn stuck_readers_are_abandoned_and_newcomers_refused_meanwhile() {
    if !netns_available("stuck_readers_are_abandoned_and_newcomers_refused_meanwhile") {
        return;
    }
    let (a, _b) = loaded_pair("\t\tMaxClients 2\n\t\tReplyTimeout 2\n");
    let sock = a.scratch.path("sock");
    let stuck: Vec<UnixStream> = (0..2)
        .map(|_| raw_request(&sock, CT_DUMP_INTERNAL))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (refused, _) = timed_request(&sock, STATS);
    assert_eq!(refused, "", "a third client while two replies are stuck");
    // Until a stuck reply is given up, every -s is refused too. (The two
    // are given up a moment apart: each reader's last progress differs.)
    let mut refusals = 1;
    let mut runtime = String::new();
    let abandoned = wait_until(Duration::from_secs(10), || {
        runtime = timed_request(&sock, STATS_RUNTIME).0;
        if !answered(&runtime) {
            refusals += 1;
            return false;
        }
        counter(&runtime, "replies abandoned:") == 2
    });
    assert!(abandoned, "the stuck replies were not given up:\n{runtime}");
    assert_eq!(
        counter(&runtime, "clients refused (busy):"),
        refusals,
        "{runtime}"
    );
    assert!(
        a.log()
            .contains("abandoned a control reply: the client read nothing for 2 s"),
        "{}",
        a.log()
    );
    for mut reader in stuck {
        reader
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut dump = Vec::new();
        let _ = reader.read_to_end(&mut dump);
        let lines = dump.iter().filter(|b| **b == b'\n').count();
        assert!(
            lines > 0 && lines < FLOWS,
            "a reader that stopped gets a truncated dump ({lines} lines)"
        );
    }
}

/// The daemon out of file descriptors: `accept` fails with EMFILE while
/// the clients wait in the backlog. The daemon pauses between attempts
/// instead of retrying at once (at SCHED_RR that would take a CPU), counts
/// the failures, and serves the waiting clients once descriptors are back.
/// (A daemon without `Sync` or `Stats`: only its control socket matters.)
#[test]
fn accept_errors_back_off_and_are_counted() {
    if !netns_available("accept_errors_back_off_and_are_counted") {
        return;
    }
    let scratch = Scratch::new();
    let conf = scratch.write(
        "idle.conf",
        &format!(
            "General {{\n\tSystemd off\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n}}\n",
            scratch.path("log").display(),
            scratch.path("lock").display(),
            scratch.path("sock").display()
        ),
    );
    let daemon = Node {
        ns: Netns::new("cce"),
        scratch,
        conf,
        imp: Impl::Ours,
    };
    daemon.start();
    let sock = daemon.scratch.path("sock");
    let pid = std::fs::read_to_string(daemon.scratch.path("lock")).expect("lock holds the pid");
    let pid = pid.trim();
    let limits_now = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let (soft, hard) = limits_now
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| {
            let mut words = rest.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .expect("the daemon's descriptor limit");
    let set_limit = |soft: &str| {
        common::run_ok(
            "prlimit",
            &["--pid", pid, &format!("--nofile={soft}:{hard}")],
        );
    };
    // A limit at the lowest free descriptor leaves none to open.
    let open: HashSet<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the daemon's descriptors")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let lowest_free = (0..).find(|fd| !open.contains(fd)).unwrap_or(0);
    set_limit(&lowest_free.to_string());
    let waiting: Vec<UnixStream> = (0..3).map(|_| raw_request(&sock, STATS_RUNTIME)).collect();
    std::thread::sleep(Duration::from_secs(2));
    for client in &waiting {
        client.set_nonblocking(true).expect("nonblocking");
        let unanswered = matches!(
            (&*client).read(&mut [0u8; 1]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        assert!(unanswered, "a client was accepted without a descriptor");
    }
    set_limit(&soft);
    for mut client in waiting {
        client.set_nonblocking(false).expect("blocking");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut reply = String::new();
        let _ = client.read_to_string(&mut reply);
        assert!(answered(&reply), "a waiting client: {reply:?}");
    }
    let (runtime, _) = timed_request(&sock, STATS_RUNTIME);
    let errors = counter(&runtime, "accept errors:");
    eprintln!("accept errors while out of descriptors for 2 s: {errors}");
    // Pauses of 10, 20, 40 ms ... up to 1 s: 8 or 9 attempts in 2 s.
    assert!(
        (2..=20).contains(&errors),
        "{errors} accept errors in 2 s\n{runtime}"
    );
    assert!(
        daemon.log().contains("control socket: accept failed: "),
        "{}",
        daemon.log()
    );
}

/// (scheduling class, name) of every thread of a node's daemon (`ps -L`).
fn scheduling_classes(node: &Node) -> Vec<(String, String)> {
    let conf = node.conf.to_str().expect("utf8 path");
    let pids = Command::new("pgrep")
        .args(["-f", &format!("conntrackd -C {conf}")])
        .output()
        .expect("pgrep");
    let pid = String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let out = Command::new("ps")
        .args(["-L", "-o", "cls=,comm=", "-p", &pid])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// `-i` without an internal cache lists the kernel's table: 100,000 flows
/// here. Two clients ask for it and do not read; meanwhile `-s` is
/// prompt and new flows replicate, and each client, once it reads, gets
/// the whole table. (Dumped inside the loop, each listing held the daemon
/// up for as long as the dump took.)
#[test]
fn a_kernel_dump_holds_up_nothing() {
    if !netns_available("a_kernel_dump_holds_up_nothing") {
        return;
    }
    const TABLE: usize = 100_000;
    let scratch = Scratch::new();
    // In the kernel before the daemons start: NOTRACK sends only what
    // happens afterwards.
    let (a, b) = pair_with(
        ("NOTRACK {\n\t\tDisableInternalCache on\n\t}", "NOTRACK { }"),
        "",
        |ns| {
            for (part, net) in [(0, 18), (1, 19)] {
                let count = (TABLE / 2).min(TABLE - part * TABLE / 2);
                create_flows_in(ns, &scratch, net, count);
            }
        },
    );
    let sock = a.scratch.path("sock");
    let mut stuck: Vec<UnixStream> = (0..2)
        .map(|_| raw_request(&sock, CT_DUMP_INTERNAL))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // The dumps' threads wait for their clients under the normal policy,
    // whatever the daemon's own (SCHED_RR by default).
    let threads = scheduling_classes(&a);
    let dumps: Vec<_> = threads
        .iter()
        .filter(|(_, name)| name == "kernel-dump")
        .collect();
    assert_eq!(dumps.len(), 2, "threads: {threads:?}");
    assert!(
        dumps.iter().all(|(class, _)| class == "TS"),
        "threads: {threads:?}"
    );
    stats_are_prompt(&a, "kernel dumps unread");
    create_flows(&a, 17, MORE_FLOWS);
    let held = backup_reaches(&b, MORE_FLOWS as u64, Duration::from_secs(15));
    assert_eq!(
        held,
        MORE_FLOWS as u64,
        "new flows while kernel dumps wait\n{}",
        a.log()
    );
    for client in &mut stuck {
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let mut dump = Vec::new();
        let _ = client.read_to_end(&mut dump);
        let text = String::from_utf8_lossy(&dump);
        assert!(text.ends_with('\n'), "kernel dump ends mid-line");
        let table = text
            .lines()
            .filter(|l| l.contains("src=172.18.") || l.contains("src=172.19."))
            .count();
        assert_eq!(table, TABLE, "flows of the table in the kernel dump");
        assert!(
            text.lines().all(|l| l.starts_with("tcp      6 ")),
            "not a kernel listing"
        );
    }
}

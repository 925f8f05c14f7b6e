//! `Authentication` against the real kernel, in namespaces: TCP channels
//! lose nothing to their framing, and an attacker on the sync link (here a
//! script in one of the namespaces, capturing with a packet socket and
//! sending from spoofed addresses) can neither replay, nor reflect, nor
//! lock a peer out, nor take over a TCP channel (docs/authentication.md,
//! "Threat model").

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pair::{
    Transport, create_flows, external_flows, external_reaches, pair, pair_nodes, port, stats,
    with_key, words,
};
use common::{Daemon, Impl, netns_available, wait_until};

const FTFW: &str = "FTFW { }";
const ALARM: &str = "ALARM { RefreshTime 5 CacheTimeout 30 }";
const NOTRACK: &str = "NOTRACK { }";

const FLOW_X: &str = "-I -s 192.168.10.1 -d 192.168.20.2 -p tcp --sport 40000 --dport 80 --state ESTABLISHED -u ASSURED,SEEN_REPLY -t 3600 --mark 7";
const FLOW_X_SHOWN: &str = "src=192.168.10.1 dst=192.168.20.2 sport=40000 dport=80";
const DELETE_X: &str = "-D -s 192.168.10.1 -d 192.168.20.2 -p tcp --sport 40000";

/// A pair of our daemons with the same key, started (backup first), each
/// having verified the other. The event buffer holds a burst of 20,000
/// flows, so that no kernel overrun (and its resync) hides a loss.
fn keyed_pair(mode: &str, t: Transport, encrypt: bool) -> (Daemon, Daemon) {
    let (a, b) = pair_nodes(mode, t, Impl::Ours, Impl::Ours);
    for node in [&a, &b] {
        with_key(node, encrypt);
        let conf = std::fs::read_to_string(&node.conf).expect("config");
        let conf = conf
            .replace("NetlinkBufferSize 2097152", "NetlinkBufferSize 16777216")
            .replace("MaxGrowth 8388608", "MaxGrowth 33554432");
        std::fs::write(&node.conf, conf).expect("config");
    }
    b.start();
    a.start();
    wait_verified(&a, &b);
    (a, b)
}

/// Waits until each node has verified the other's session.
fn wait_verified(a: &Daemon, b: &Daemon) {
    let verified = |n: &Daemon| stats(n)["sync"]["auth"]["verified_now"].as_u64() == Some(1);
    assert!(
        wait_until(Duration::from_secs(10), || verified(a) && verified(b)),
        "the nodes did not verify each other:\n{}\n{}",
        a.ctl(&["-s", "network"]),
        b.ctl(&["-s", "network"])
    );
}

/// A refusal counter of a node (`sync.auth.refused.<reason>`).
fn refused(node: &Daemon, reason: &str) -> u64 {
    stats(node)["sync"]["auth"]["refused"][reason]
        .as_u64()
        .unwrap_or(0)
}

fn auth_failures(node: &Daemon) -> u64 {
    stats(node)["sync"]["received"]["auth_failures"]
        .as_u64()
        .unwrap_or(0)
}

/// A UDP flow from 192.168.10.`n` in the node's kernel.
fn udp_flow(node: &Daemon, n: u8) {
    let src = format!("192.168.10.{n}");
    node.ns.conntrack(&[
        "-I",
        "-s",
        &src,
        "-d",
        "192.168.20.9",
        "-p",
        "udp",
        "--sport",
        "5000",
        "--dport",
        "53",
        "-t",
        "600",
    ]);
}

/// Waits until `node`'s external cache holds the flow of [`udp_flow`].
fn has_udp_flow(node: &Daemon, n: u8, within: Duration) -> bool {
    let src = format!("src=192.168.10.{n} ");
    wait_until(within, || node.ctl(&["-e"]).contains(&src))
}

fn has_x(node: &Daemon) -> bool {
    node.ctl(&["-e"]).contains(FLOW_X_SHOWN)
}

/// A running capture; stopped when dropped.
struct Capture(Child);

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Records, as hex lines in `file`, the UDP payloads to `port` from `from`
/// that pass `sync0` in the namespace of `node`, until dropped.
fn capture(node: &Daemon, from: &str, port: u16, file: &std::path::Path) -> Capture {
    let script = format!(
        r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.bind(("sync0", 0))
out = open({file:?}, "w")
want = socket.inet_aton({from:?})
while True:
    ip, _ = s.recvfrom(65535)
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17 or ip[12:16] != want:
        continue
    udp = ip[ihl:]
    if int.from_bytes(udp[2:4], "big") == {port}:
        out.write(udp[8:].hex() + "\n")
        out.flush()
"#,
        file = file.display().to_string(),
    );
    let child = Command::new("ip")
        .args(["netns", "exec", &node.ns.name, "python3", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the capture");
    // The packet socket must be open before anything is sent: the script
    // creates the file once it is (a fixed 300 ms was too short for
    // Python to start while the whole suite ran in parallel).
    wait_until(Duration::from_secs(10), || file.exists());
    Capture(child)
}

fn captured(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Sends `payloads` (hex) once to the UDP channel's port at `to`, from
/// `source` (an address of the namespace of `node`).
fn replay(node: &Daemon, source: &str, to: &str, payloads: &[String]) {
    let port = port(Transport::Udp);
    let script = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(({source:?}, 0))
for p in {payloads:?}:
    s.sendto(bytes.fromhex(p), ({to:?}, {port}))
"#
    );
    node.ns.exec_ok("python3", &["-c", &script]);
}

/// 20,000 flows over TCP with `Authentication` (and `Encrypt`) in every
/// mode: all of them on the backup, no envelope refused. Several envelopes
/// cut from the stream in one piece were refused whole: FTFW got there
/// after thousands of "Auth failures", NOTRACK never did.
fn tcp_loses_nothing(mode: &str, encrypt: bool) {
    let (a, b) = keyed_pair(mode, Transport::Tcp, encrypt);
    create_flows(&a, 16, 20_000);
    let got = external_reaches(&b, 20_000, Duration::from_secs(60));
    assert_eq!(
        got,
        20_000,
        "{mode} encrypt={encrypt}: backup holds {got}\nprimary:\n{}{}{}\nbackup:\n{}",
        a.ctl(&["-s", "network"]),
        a.ctl(&["-s", "queue"]),
        a.ctl(&["-s", "runtime"]),
        b.ctl(&["-s", "network"])
    );
    assert_eq!(auth_failures(&b), 0, "{}", b.ctl(&["-s", "network"]));
    assert_eq!(auth_failures(&a), 0, "{}", a.ctl(&["-s", "network"]));
    let q = &stats(&a)["sync"]["queues"];
    assert_eq!(q["error_queue_dropped"], 0, "batches dropped: {q}");
    assert_eq!(stats(&a)["netlink"]["overruns"], 0, "an overrun hid losses");
}

macro_rules! tcp_loses_nothing {
    ($name:ident, $mode:expr, $encrypt:expr) => {
        #[test]
        fn $name() {
            if netns_available(stringify!($name)) {
                tcp_loses_nothing($mode, $encrypt);
            }
        }
    };
}

tcp_loses_nothing!(tcp_authenticated_ftfw_loses_nothing, FTFW, false);
tcp_loses_nothing!(tcp_encrypted_ftfw_loses_nothing, FTFW, true);
tcp_loses_nothing!(tcp_authenticated_alarm_loses_nothing, ALARM, false);
tcp_loses_nothing!(tcp_encrypted_alarm_loses_nothing, ALARM, true);
tcp_loses_nothing!(tcp_authenticated_notrack_loses_nothing, NOTRACK, false);
tcp_loses_nothing!(tcp_encrypted_notrack_loses_nothing, NOTRACK, true);

/// The envelopes of a flow that was created and then deleted, replayed to
/// the backup from another address: refused (the replay window was kept
/// per source address, so every new address took them all again and the
/// deleted flow came back).
#[test]
fn replayed_envelopes_from_a_spoofed_source_are_refused() {
    if !netns_available("replayed_envelopes_from_a_spoofed_source_are_refused") {
        return;
    }
    let (a, b) = keyed_pair(FTFW, Transport::Udp, false);
    let payloads = capture_the_creation_of_x(&a, &b);
    a.ns.conntrack(&words(DELETE_X));
    assert!(wait_until(Duration::from_secs(5), || !has_x(&b)));
    a.ns.ip(&["addr", "add", "10.77.0.99/24", "dev", "sync0"]);
    replay(&a, "10.77.0.99", "10.77.0.2", &payloads);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !has_x(&b),
        "the replayed flow came back:\n{}",
        b.ctl(&["-e"])
    );
    assert!(
        refused(&b, "replayed") >= payloads.len() as u64,
        "{}",
        b.ctl(&["-s", "network"])
    );
}

/// What the primary sends while flow X is created, until the backup has it.
fn capture_the_creation_of_x(a: &Daemon, b: &Daemon) -> Vec<String> {
    let file = b.scratch.path("captured-x");
    let sniffer = capture(b, "10.77.0.1", port(Transport::Udp), &file);
    a.ns.conntrack(&words(FLOW_X));
    assert!(wait_until(Duration::from_secs(5), || has_x(b)));
    std::thread::sleep(Duration::from_millis(200));
    drop(sniffer);
    let payloads = captured(&file);
    assert!(!payloads.is_empty(), "nothing captured");
    payloads
}

/// The primary's own first envelopes (its handshake and FTFW HELLO) sent
/// back to it with the backup's address. They were taken as the backup's:
/// the primary's window for the backup moved ahead (the backup's real
/// envelopes were refused as replays from then on), and the HELLO made
/// the primary take the backup for restarted and sweep its flows 10 s
/// later. Now refused as reflected; nothing changes.
#[test]
fn a_reflected_hello_changes_nothing() {
    if !netns_available("a_reflected_hello_changes_nothing") {
        return;
    }
    let (a, b) = pair_nodes(FTFW, Transport::Udp, Impl::Ours, Impl::Ours);
    for node in [&a, &b] {
        with_key(node, false);
    }
    b.start();
    let file = b.scratch.path("captured");
    let sniffer = capture(&b, "10.77.0.1", port(Transport::Udp), &file);
    a.start();
    wait_verified(&a, &b);
    // The backup has flows of its own in the primary's external cache.
    b.ns.conntrack(&words(FLOW_X));
    assert!(wait_until(Duration::from_secs(5), || has_x(&a)));
    drop(sniffer);
    let first: Vec<String> = captured(&file).into_iter().take(5).collect();
    assert!(!first.is_empty(), "nothing captured");
    replay(&b, "10.77.0.2", "10.77.0.1", &first);
    std::thread::sleep(Duration::from_secs(12));
    assert!(has_x(&a), "the backup's flow was swept:\n{}", a.log());
    udp_flow(&b, 9);
    assert!(
        has_udp_flow(&a, 9, Duration::from_secs(5)),
        "the backup is no longer heard:\n{}",
        a.ctl(&["-s", "network"])
    );
    assert!(refused(&a, "reflected") >= first.len() as u64);
}

/// Envelopes captured before the backup restarted, replayed to the new
/// backup process at once, from the primary's own address: the deleted
/// flow they carry must not come back (a restarted receiver took all
/// captured history again).
#[test]
fn a_replay_after_a_receiver_restart_is_refused() {
    if !netns_available("a_replay_after_a_receiver_restart_is_refused") {
        return;
    }
    let (a, b) = keyed_pair(FTFW, Transport::Udp, false);
    let payloads = capture_the_creation_of_x(&a, &b);
    a.ns.conntrack(&words(DELETE_X));
    assert!(wait_until(Duration::from_secs(5), || !has_x(&b)));
    // Older than the 2 s a handshake allows for held envelopes.
    std::thread::sleep(Duration::from_secs(3));
    // The primary pauses, so that the replays reach the new backup before
    // the primary can answer its handshake: they are held, then found old.
    a.signal("-STOP");
    b.ctl(&["-k"]);
    assert!(wait_until(Duration::from_secs(5), || !b
        .scratch
        .path("sock")
        .exists()));
    b.start();
    replay(&a, "10.77.0.1", "10.77.0.2", &payloads);
    std::thread::sleep(Duration::from_millis(500));
    a.signal("-CONT");
    wait_verified(&a, &b);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !has_x(&b),
        "the replayed flow came back:\n{}",
        b.ctl(&["-e"])
    );
    assert!(
        refused(&b, "stale") + refused(&b, "replayed") > 0,
        "{}",
        b.ctl(&["-s", "network"])
    );
}

/// The primary restarts with its clock set back one hour (an NTP step, a
/// machine without RTC, a VM restored from a snapshot): its flows reach
/// the backup within 5 s. Counters started at the wall clock, so the
/// backup refused everything it sent until the backup restarted.
#[test]
fn a_sender_restarted_with_its_clock_set_back_is_heard() {
    if !netns_available("a_sender_restarted_with_its_clock_set_back_is_heard") {
        return;
    }
    // libfaketime itself: the `faketime` wrapper waits for every process
    // it started, daemons included.
    let Some(faketime) = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists()) else {
        let why = "SKIPPING a_sender_restarted_with_its_clock_set_back_is_heard: needs libfaketime (apt-get install faketime)";
        assert!(
            std::env::var("CONNTRACKD_REQUIRE_NETNS").as_deref() != Ok("1"),
            "{why}"
        );
        eprintln!("\n!!!!!!!! {why} !!!!!!!!\n");
        return;
    };
    let (a, b) = keyed_pair(FTFW, Transport::Udp, false);
    a.ns.conntrack(&words(FLOW_X));
    assert!(wait_until(Duration::from_secs(5), || has_x(&b)));
    a.ctl(&["-k"]);
    assert!(wait_until(Duration::from_secs(5), || !a
        .scratch
        .path("sock")
        .exists()));
    // Only the wall clock moves: the monotonic clock does not jump in
    // the cases above.
    let out = Command::new("ip")
        .args(["netns", "exec", &a.ns.name, "env", "DONT_FAKE_MONOTONIC=1"])
        .arg("FAKETIME=-1h")
        .arg(format!("LD_PRELOAD={faketime}"))
        .args([
            Impl::Ours.bin(),
            "-C",
            a.conf.to_str().expect("utf8 path"),
            "-d",
        ])
        .output()
        .expect("start with the clock set back");
    assert!(out.status.success(), "{}", a.log());
    assert!(
        a.log().contains(&format!("[{}", clock_an_hour_ago())),
        "the clock was not set back:\n{}",
        a.log()
    );
    let started = Instant::now();
    udp_flow(&a, 3);
    assert!(
        has_udp_flow(&b, 3, Duration::from_secs(5)),
        "the restarted primary is not heard:\n{}",
        b.ctl(&["-s", "network"])
    );
    eprintln!("heard again after {:?}", started.elapsed());
}

/// `Sun Dec  6 04` (the log's time stamp up to the hour) an hour ago.
fn clock_an_hour_ago() -> String {
    let out = Command::new("date")
        .args(["-d", "1 hour ago", "+%a %b %e %H"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// 64 spoofed senders refreshed every second while the real primary
/// restarts after a 6 s pause: it is heard again. Without
/// `Authentication` they send forged ALIVEs; with it, replays of the
/// primary's captured envelopes (each new address had its own window).
/// The peer table made room only for peers silent 5 s, so the spoofers
/// kept the restarted primary out for good.
fn spoofers_cannot_lock_out(authenticated: bool) {
    let (a, b) = if authenticated {
        keyed_pair(FTFW, Transport::Udp, false)
    } else {
        pair(FTFW, Transport::Udp, Impl::Ours, Impl::Ours)
    };
    let spoofed: Vec<String> = (100..164).map(|i| format!("10.77.0.{i}")).collect();
    for addr in &spoofed {
        a.ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "sync0"]);
    }
    let payloads = if authenticated {
        // Enough envelopes for one new one per round.
        let file = b.scratch.path("captured");
        let sniffer = capture(&b, "10.77.0.1", port(Transport::Udp), &file);
        for i in 0..20 {
            a.ns.conntrack(&[
                "-I",
                "-s",
                &format!("192.168.11.{i}"),
                "-d",
                "192.168.20.4",
                "-p",
                "udp",
                "--sport",
                "5000",
                "--dport",
                "53",
                "-t",
                "600",
            ]);
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        drop(sniffer);
        captured(&file)
    } else {
        // An ALIVE: version 1, type 10 (control), flag 0x10.
        vec!["1a10000800000001".to_string()]
    };
    assert!(!payloads.is_empty());
    a.ctl(&["-k"]);
    // The attack runs through the pause and the restart.
    let attacker = {
        let (ns, spoofed, payloads) = (a.ns.name.clone(), spoofed.clone(), payloads.clone());
        std::thread::spawn(move || {
            let script = format!(
                r#"
import socket, time
payloads = [bytes.fromhex(p) for p in {payloads:?}]
socks = []
for src in {spoofed:?}:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    socks.append(s)
# Each round the next envelope, from every source: each source's own
# replay window (as it was) takes it as new.
for r in range(14):
    p = payloads[r % len(payloads)]
    for s in socks:
        s.sendto(p, ("10.77.0.2", 3781))
    time.sleep(1)
"#
            );
            let _ = Command::new("ip")
                .args(["netns", "exec", &ns, "python3", "-c", &script])
                .output();
        })
    };
    std::thread::sleep(Duration::from_secs(6));
    a.start();
    udp_flow(&a, 4);
    let heard = has_udp_flow(&b, 4, Duration::from_secs(6));
    let _ = attacker.join();
    assert!(
        heard,
        "authenticated={authenticated}: the restarted primary is locked out:\n{}",
        b.ctl(&["-s", "--json"])
    );
}

#[test]
fn spoofed_senders_cannot_lock_out_a_restarting_peer() {
    if netns_available("spoofed_senders_cannot_lock_out_a_restarting_peer") {
        spoofers_cannot_lock_out(false);
    }
}

#[test]
fn replaying_spoofers_cannot_lock_out_a_restarting_authenticated_peer() {
    if netns_available("replaying_spoofers_cannot_lock_out_a_restarting_authenticated_peer") {
        spoofers_cannot_lock_out(true);
    }
}

/// Connections to the backup's TCP server while the primary's works: one
/// from a foreign address (refused at once), and repeated ones from the
/// primary's own address that send a forged plain message and garbage.
/// The primary's connection stays (any new connection replaced it, so the
/// attacker could keep cutting the primary off), and its flows arrive.
#[test]
fn a_tcp_connection_hijack_is_refused() {
    if !netns_available("a_tcp_connection_hijack_is_refused") {
        return;
    }
    let (a, b) = keyed_pair(FTFW, Transport::Tcp, false);
    create_flows(&a, 17, 100);
    assert_eq!(external_reaches(&b, 100, Duration::from_secs(10)), 100);
    let send_errors = |n: &Daemon| stats(n)["sync"]["channels"][0]["send_errors"].as_u64();
    let errors_before = send_errors(&a);
    a.ns.ip(&["addr", "add", "10.77.0.66/24", "dev", "sync0"]);
    let script = r#"
import socket, time, os
def attempt(src, payload):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    try:
        s.connect(("10.77.0.2", 3782))
        s.sendall(payload)
    except OSError:
        pass
    return s
keep = [attempt("10.77.0.66", bytes.fromhex("1a10000800000001"))]
for i in range(20):
    keep.append(attempt("10.77.0.1", bytes.fromhex("1a10000800000001") + os.urandom(64)))
    time.sleep(0.1)
time.sleep(1)
"#;
    let attacker = {
        let ns = a.ns.name.clone();
        std::thread::spawn(move || {
            let _ = Command::new("ip")
                .args(["netns", "exec", &ns, "python3", "-c", script])
                .output();
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    create_flows(&a, 18, 100);
    let got = external_reaches(&b, 200, Duration::from_secs(2));
    let _ = attacker.join();
    assert_eq!(got, 200, "{}", b.ctl(&["-s", "network"]));
    assert_eq!(
        send_errors(&a),
        errors_before,
        "the primary's connection was cut:\n{}",
        a.ctl(&["-s"])
    );
    assert_eq!(
        stats(&b)["sync"]["channels"][0]["foreign_connections"].as_u64(),
        Some(1)
    );
    let network = b.ctl(&["-s", "network"]);
    assert!(
        network.contains("TCP connections refused (not from the peer):\n\t                   1\n"),
        "{network}"
    );
    assert_eq!(external_flows(&b), 200);
}

/// A TCP peer that stops reading (SIGSTOP) while 20,000 flows are made:
/// the sender waits for it instead of dropping batches from its error
/// queue (bounded by `ErrorQueueLength`, here 4), and NOTRACK, which never
/// resends, loses nothing once the peer reads again.
#[test]
fn a_stalled_tcp_peer_loses_nothing() {
    if !netns_available("a_stalled_tcp_peer_loses_nothing") {
        return;
    }
    let (a, b) = pair_nodes(NOTRACK, Transport::Tcp, Impl::Ours, Impl::Ours);
    for node in [&a, &b] {
        let conf = std::fs::read_to_string(&node.conf).expect("config");
        let conf = conf
            .replace(
                "\t\tPort 3782\n",
                "\t\tPort 3782\n\t\tSndSocketBuffer 8192\n\t\tErrorQueueLength 4\n",
            )
            .replace("NetlinkBufferSize 2097152", "NetlinkBufferSize 16777216")
            .replace("MaxGrowth 8388608", "MaxGrowth 33554432");
        std::fs::write(&node.conf, conf).expect("config");
    }
    b.start();
    a.start();
    create_flows(&a, 19, 10);
    assert_eq!(external_reaches(&b, 10, Duration::from_secs(10)), 10);
    // The backup's start-up resync request has been answered (answered
    // after the burst, its bulk send would make up for any loss).
    assert!(wait_until(Duration::from_secs(10), || a
        .log()
        .contains("resync requested by other node")));
    b.signal("-STOP");
    create_flows(&a, 20, 20_000);
    std::thread::sleep(Duration::from_secs(2));
    b.signal("-CONT");
    let got = external_reaches(&b, 20_010, Duration::from_secs(30));
    assert_eq!(
        got,
        20_010,
        "{}{}",
        a.ctl(&["-s", "queue"]),
        a.ctl(&["-s", "network"])
    );
    assert_eq!(stats(&a)["sync"]["queues"]["error_queue_dropped"], 0);
}

/// A key rotation as docs/authentication.md describes it, each step a
/// SIGHUP: flows keep coming through every step, nothing is refused
/// meanwhile, and at the end an envelope sealed with the old key is
/// refused as sealed with an unknown key.
#[test]
fn keys_rotate_on_sighup_without_a_flag_day() {
    use std::os::unix::fs::PermissionsExt;
    if !netns_available("keys_rotate_on_sighup_without_a_flag_day") {
        return;
    }
    let (a, b) = keyed_pair(FTFW, Transport::Udp, false);
    let old_envelopes = capture_the_creation_of_x(&a, &b);
    let rewrite = |node: &Daemon, block: &str| {
        let new = node
            .scratch
            .write("new.key", "the next shared secret, 32 bytes");
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let old = node.scratch.path("sync.key");
        let block = block
            .replace("OLD", &old.display().to_string())
            .replace("NEW", &new.display().to_string());
        let conf = std::fs::read_to_string(&node.conf).expect("config");
        let start = conf.find("\tAuthentication {").expect("block");
        let end = start + conf[start..].find('}').expect("end") + 1;
        let conf = format!(
            "{}\tAuthentication {{ {block} }}{}",
            &conf[..start],
            &conf[end..]
        );
        std::fs::write(&node.conf, conf).expect("config");
        node.signal("-HUP");
    };
    let step = |n: u8, what: &str| {
        udp_flow(&a, n);
        assert!(
            has_udp_flow(&b, n, Duration::from_secs(5)),
            "{what}: not replicated\n{}\n{}",
            a.log(),
            b.ctl(&["-s", "network"])
        );
    };
    // 1. Everyone accepts the new key.
    for node in [&a, &b] {
        rewrite(node, "KeyFile OLD AcceptKeyFile NEW");
    }
    step(21, "both accept the new key");
    // 2. One by one, everyone sends with it.
    rewrite(&a, "KeyFile NEW AcceptKeyFile OLD");
    step(22, "the primary sends with the new key");
    rewrite(&b, "KeyFile NEW AcceptKeyFile OLD");
    step(23, "both send with the new key");
    // 3. The old key goes.
    for node in [&a, &b] {
        rewrite(node, "KeyFile NEW");
    }
    step(24, "the old key is gone");
    assert!(a.log().contains("sync keys reloaded"), "{}", a.log());
    assert_eq!(auth_failures(&b), 0, "{}", b.ctl(&["-s", "network"]));
    replay(&a, "10.77.0.1", "10.77.0.2", &old_envelopes);
    assert!(
        wait_until(Duration::from_secs(2), || refused(&b, "unknown_key")
            >= old_envelopes.len() as u64),
        "{}",
        b.ctl(&["-s", "network"])
    );
}

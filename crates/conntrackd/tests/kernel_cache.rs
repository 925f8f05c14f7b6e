//! The daemon against the real kernel, in a namespace made for the test:
//! flows appear in `-i`, leave on destroy, `-f`/`-R`/`-F`/`-s`/`-k`, and
//! Stats mode logs destroyed flows.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Netns, Scratch, conntrackd_bin, netns_available, wait_until};

/// Writes a configuration: `sections` (Sync or Stats) plus a General
/// block with this test's paths and `general_extra` items.
fn write_config(s: &Scratch, sections: &str, general_extra: &str) -> std::path::PathBuf {
    let text = format!(
        "{sections}\nGeneral {{\n\tSystemd off\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n{general_extra}\n}}\n",
        s.path("log").display(),
        s.path("lock").display(),
        s.path("sock").display()
    );
    s.write("ct.conf", &text)
}

/// The usual test configuration: buffer sizes and an ignored network.
fn config(s: &Scratch, sections: &str) -> std::path::PathBuf {
    write_config(
        s,
        sections,
        "\tNetlinkBufferSize 2097152\n\tNetlinkBufferSizeMaxGrowth 8388608\n\tFilter { Address Ignore { IPv4_address 10.66.0.0/16 } }",
    )
}

fn ctl(ns: &Netns, conf: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["-C", conf.to_str().expect("utf8 path")];
    all.extend_from_slice(args);
    ns.exec_ok(conntrackd_bin().to_str().expect("utf8 path"), &all)
}

/// The flow of the spec's captures (docs/wire-protocol.md §12.3).
const SPEC_FLOW: &str = "-I -s 192.168.10.1 -d 192.168.20.2 -p tcp --sport 40000 --dport 80 --state ESTABLISHED -u ASSURED,SEEN_REPLY -t 120 --mark 7";

fn words(args: &str) -> Vec<&str> {
    args.split(' ').collect()
}

const SYNC: &str = "Sync {\n\tMode FTFW { }\n\tMulticast {\n\t\tIPv4_address 225.0.0.50\n\t\tIPv4_interface 127.0.0.1\n\t\tInterface lo\n\t\tGroup 3780\n\t}\n}";

/// Creates `flows` UDP flows from `{net}.x.y` while the daemon of the
/// scratch directory's lock file is stopped: their events wait in its
/// socket buffer (or overflow it) until it runs again.
fn burst_while_stopped(ns: &Netns, s: &Scratch, flows: usize, net: &str) {
    let pid = std::fs::read_to_string(s.path("lock")).expect("lock holds the pid");
    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args([name, pid.trim()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {name}");
    };
    signal("-STOP");
    let mut batch = String::new();
    for i in 0..flows {
        batch.push_str(&format!(
            "-I -s {net}.{}.{} -d 10.6.0.1 -p udp --sport 1000 --dport 53 -t 300\n",
            i / 250,
            i % 250 + 1
        ));
    }
    let file = s.write("burst.txt", &batch);
    ns.conntrack(&["-R", file.to_str().expect("path")]);
    signal("-CONT");
}

/// Waits up to 10 s for `-i` to list `want` flows; how many it lists.
fn cached_after_waiting(ns: &Netns, conf: &std::path::Path, want: usize) -> usize {
    let count = || ctl(ns, conf, &["-i"]).lines().count();
    wait_until(Duration::from_secs(10), || count() == want);
    count()
}

/// A counter of `-s runtime` by its label.
fn runtime_counter(runtime: &str, label: &str) -> u64 {
    runtime
        .lines()
        .find(|l| l.contains(label))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter {label:?} in {runtime}"))
}

#[test]
fn internal_cache_follows_the_kernel() {
    if !netns_available("internal_cache_follows_the_kernel") {
        return;
    }
    let ns = Netns::new("ctk");
    let s = Scratch::new();
    let conf = config(&s, SYNC);
    // A flow that exists before the daemon starts is dumped at start-up.
    ns.conntrack(&words(SPEC_FLOW));
    ctl(&ns, &conf, &["-d"]);
    // Like 1.4.7 without a Scheduler clause: SCHED_RR (2) at priority 99.
    let pid = std::fs::read_to_string(s.path("lock")).expect("lock holds the pid");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).expect("stat");
    let fields: Vec<&str> = stat.rsplit_once(") ").expect("comm").1.split(' ').collect();
    // After the comm: field 3 is index 0, so rt_priority (40) and policy (41) are 37, 38.
    assert_eq!(
        (fields[37], fields[38]),
        ("99", "2"),
        "rt_priority and policy"
    );
    let dump = ctl(&ns, &conf, &["-i"]);
    assert!(
        dump.starts_with("tcp      6 ESTABLISHED src=192.168.10.1 dst=192.168.20.2 sport=40000 dport=80 src=192.168.20.2 dst=192.168.10.1 sport=80 dport=40000 [ASSURED] mark=7 [active since "),
        "{dump}"
    );
    // Events: a new flow appears, a filtered one does not.
    ns.conntrack(&[
        "-I", "-s", "10.1.1.5", "-d", "10.2.2.9", "-p", "udp", "--sport", "5000", "--dport", "53",
        "-t", "30",
    ]);
    ns.conntrack(&[
        "-I",
        "-s",
        "10.66.1.1",
        "-d",
        "10.2.2.9",
        "-p",
        "udp",
        "--sport",
        "5000",
        "--dport",
        "53",
        "-t",
        "30",
    ]);
    assert!(wait_until(Duration::from_secs(5), || ctl(
        &ns,
        &conf,
        &["-i"]
    )
    .contains("src=10.1.1.5")));
    let dump = ctl(&ns, &conf, &["-i"]);
    assert!(
        !dump.contains("10.66.1.1"),
        "ignored address must be filtered: {dump}"
    );
    let xml = ctl(&ns, &conf, &["-i", "-x"]);
    assert_eq!(xml.lines().count(), 2, "{xml}");
    assert!(
        xml.lines()
            .all(|l| l.starts_with("<flow>") && l.ends_with("</flow>"))
    );

    // Destroy leaves the cache.
    ns.conntrack(&["-D", "-s", "10.1.1.5"]);
    assert!(wait_until(Duration::from_secs(5), || !ctl(
        &ns,
        &conf,
        &["-i"]
    )
    .contains("10.1.1.5")));

    let stats = ctl(&ns, &conf, &["-s"]);
    assert!(
        stats.starts_with("cache internal:\ncurrent active connections:\t           1\n"),
        "{stats}"
    );
    let runtime = ctl(&ns, &conf, &["-s", "runtime"]);
    assert!(
        runtime.contains("\tevents filtered:\t                   1\n"),
        "{runtime}"
    );
    assert!(
        runtime.contains("current buffer size (in bytes):\t     2097152"),
        "{runtime}"
    );

    // -f empties, -R refills from the kernel.
    ctl(&ns, &conf, &["-f", "internal"]);
    assert_eq!(ctl(&ns, &conf, &["-i"]), "");
    ctl(&ns, &conf, &["-R"]);
    assert_eq!(ctl(&ns, &conf, &["-i"]).lines().count(), 1);

    // -F flushes the kernel table except ignored flows.
    ctl(&ns, &conf, &["-F"]);
    let left = ns.conntrack(&["-L"]);
    assert!(
        left.contains("10.66.1.1") && !left.contains("192.168.10.1"),
        "{left}"
    );

    // A second daemon is refused; -k stops the first and removes the lock.
    let second = ns.exec(
        conntrackd_bin().to_str().expect("path"),
        &["-C", conf.to_str().expect("path"), "-d"],
    );
    assert_eq!(second.status.code(), Some(1));
    ctl(&ns, &conf, &["-k"]);
    assert!(wait_until(Duration::from_secs(5), || !s
        .path("lock")
        .exists()));
}

#[test]
fn stats_mode_logs_destroyed_flows() {
    if !netns_available("stats_mode_logs_destroyed_flows") {
        return;
    }
    let ns = Netns::new("cts");
    let s = Scratch::new();
    let body = format!("Stats {{\n\tLogFile {}\n}}", s.path("flows.log").display());
    let conf = config(&s, &body);
    ctl(&ns, &conf, &["-d"]);
    ns.conntrack(&words(SPEC_FLOW));
    assert!(wait_until(Duration::from_secs(5), || ctl(
        &ns,
        &conf,
        &["-i"]
    )
    .contains("192.168.10.1")));
    let stats = ctl(&ns, &conf, &["-s"]);
    assert!(
        stats.starts_with("cache stats:\ncurrent active connections:\t           1\n"),
        "{stats}"
    );
    ns.conntrack(&["-D", "-s", "192.168.10.1"]);
    let log = s.path("flows.log");
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty())
    }));
    let text = std::fs::read_to_string(&log).expect("log");
    let (_, flow) = text.trim_end().split_once('\t').expect("ctime<TAB>flow");
    assert_eq!(
        flow,
        "tcp      6 ESTABLISHED src=192.168.10.1 dst=192.168.20.2 sport=40000 dport=80 src=192.168.20.2 dst=192.168.10.1 sport=80 dport=40000 [ASSURED] mark=7"
    );
    ctl(&ns, &conf, &["-k"]);
    let _ = Command::new("true").status();
}

#[test]
fn overrun_is_detected_counted_and_repaired() {
    if !netns_available("overrun_is_detected_counted_and_repaired") {
        return;
    }
    let ns = Netns::new("cto");
    let s = Scratch::new();
    let conf = write_config(
        &s,
        SYNC,
        "	NetlinkBufferSize 8192
	NetlinkBufferSizeMaxGrowth 16384
	NetlinkOverrunResync 1",
    );
    ctl(&ns, &conf, &["-d"]);
    // A stopped daemon reads nothing, so a burst must overflow its buffer.
    const FLOWS: usize = 3000;
    burst_while_stopped(&ns, &s, FLOWS, "10.5");
    let cached = cached_after_waiting(&ns, &conf, FLOWS);
    assert_eq!(
        cached, FLOWS,
        "after the overrun resync every flow must be cached"
    );
    let runtime = ctl(&ns, &conf, &["-s", "runtime"]);
    let counter = |label: &str| runtime_counter(&runtime, label);
    assert!(counter("netlink overrun:") >= 1, "{runtime}");
    assert!(counter("resync with kernel table:") >= 1, "{runtime}");
    // Two more bursts, past NetlinkBufferSizeMaxGrowth: repaired as well,
    // and 1.4.7's warning that the buffer cannot grow is logged once, not
    // at every overrun.
    for (burst, net) in ["10.8", "10.9"].into_iter().enumerate() {
        burst_while_stopped(&ns, &s, FLOWS, net);
        let want = FLOWS * (burst + 2);
        assert_eq!(cached_after_waiting(&ns, &conf, want), want);
    }
    let runtime = ctl(&ns, &conf, &["-s", "runtime"]);
    assert!(
        runtime_counter(&runtime, "netlink overrun:") >= 3,
        "{runtime}"
    );
    let log = std::fs::read_to_string(s.path("log")).expect("log");
    assert_eq!(log.matches("cannot be doubled further").count(), 1, "{log}");
    ctl(&ns, &conf, &["-k"]);
}

/// A backlog larger than one wake-up reads (the daemon stops after a share,
/// so that a flood cannot starve the control socket) is still read to the
/// end with no further event to wake the daemon, and without an overrun.
#[test]
fn a_backlog_beyond_one_read_is_drained_without_new_events() {
    if !netns_available("a_backlog_beyond_one_read_is_drained_without_new_events") {
        return;
    }
    let ns = Netns::new("ctb");
    let s = Scratch::new();
    let conf = write_config(
        &s,
        SYNC,
        "\tNetlinkBufferSize 33554432\n\tNetlinkBufferSizeMaxGrowth 33554432",
    );
    ctl(&ns, &conf, &["-d"]);
    // Several times the datagrams one wake-up reads (2048).
    const FLOWS: usize = 7000;
    burst_while_stopped(&ns, &s, FLOWS, "10.7");
    let cached = cached_after_waiting(&ns, &conf, FLOWS);
    assert_eq!(cached, FLOWS, "every waiting event must be read");
    let runtime = ctl(&ns, &conf, &["-s", "runtime"]);
    let overruns = runtime_counter(&runtime, "netlink overrun:");
    assert_eq!(overruns, 0, "read from the buffer, not repaired: {runtime}");
    ctl(&ns, &conf, &["-k"]);
}

/// `-i` prints each flow exactly as `conntrack -L` (libnetfilter_conntrack)
/// does, minus the timeout and use count that conntrackd strips.
#[test]
fn internal_dump_matches_the_conntrack_tool() {
    if !netns_available("internal_dump_matches_the_conntrack_tool") {
        return;
    }
    let ns = Netns::new("ctg");
    let s = Scratch::new();
    let conf = config(&s, SYNC);
    for args in [
        "-I -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2 --state ESTABLISHED -u ASSURED,SEEN_REPLY -t 100 --mark 7 --zone 3",
        "-I -s 2001:db8::1 -d 2001:db8::2 -p udp --sport 5 --dport 53 -t 30",
        "-I -s 1.1.1.1 -d 2.2.2.2 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30",
        "-I -s 1.1.1.1 -d 2.2.2.2 -p sctp --sport 5 --dport 6 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 30",
        "-I -s 2001:db8::1 -d 2001:db8::2 -p icmpv6 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 9 -t 30",
        "-I -s 1.1.1.1 -d 2.2.2.2 -p tcp --sport 1 --dport 2 --state SYN_SENT -t 100 --src-nat 9.9.9.9",
    ] {
        ns.conntrack(&words(args));
    }
    ctl(&ns, &conf, &["-d"]);
    let mut ours: Vec<String> = ctl(&ns, &conf, &["-i"])
        .lines()
        .map(|l| {
            l.rsplit_once(" [active since ")
                .map_or(l, |(flow, _)| flow)
                .to_string()
        })
        .collect();
    let mut tool: Vec<String> = ns
        .conntrack(&["-L"])
        .lines()
        .map(|l| {
            // "tcp      6 99 ESTABLISHED ..." -> drop the timeout and "use=N".
            let mut words: Vec<&str> = l.split(' ').collect();
            let timeout_at = words
                .iter()
                .position(|w| !w.is_empty())
                .map_or(0, |p| p + 1);
            let timeout_at = words[timeout_at..]
                .iter()
                .position(|w| !w.is_empty())
                .map_or(0, |p| timeout_at + p + 1);
            words.remove(timeout_at);
            words.retain(|w| !w.starts_with("use="));
            words.join(" ")
        })
        .collect();
    ours.sort();
    tool.sort();
    assert_eq!(ours, tool);
    ctl(&ns, &conf, &["-k"]);
}

/// `Filter From Kernelspace`: the BPF program on the event socket drops
/// ignored flows before they reach the daemon.
#[test]
fn kernel_space_filter_drops_events_in_the_kernel() {
    if !netns_available("kernel_space_filter_drops_events_in_the_kernel") {
        return;
    }
    let ns = Netns::new("ctb");
    let s = Scratch::new();
    let conf = write_config(
        &s,
        SYNC,
        "	Filter From Kernelspace {
		Protocol Accept { TCP UDP }
		Address Ignore { IPv4_address 10.66.0.0/16 IPv6_address 2001:db8:66::1 }
	}",
    );
    ctl(&ns, &conf, &["-d"]);
    let log = std::fs::read_to_string(s.path("log")).expect("log");
    assert!(log.contains("using kernel-space event filtering"), "{log}");
    for args in [
        "-I -s 10.1.1.5 -d 10.2.2.9 -p udp --sport 5000 --dport 53 -t 30",
        "-I -s 10.66.1.1 -d 10.2.2.9 -p udp --sport 5000 --dport 53 -t 30",
        "-I -s 2001:db8:66::1 -d 2001:db8::9 -p tcp --sport 1 --dport 2 --state ESTABLISHED -t 30",
        "-I -s 2001:db8:1::1 -d 2001:db8::9 -p tcp --sport 1 --dport 2 --state ESTABLISHED -t 30",
        "-I -s 10.1.1.5 -d 10.2.2.9 -p icmp --icmp-type 8 --icmp-code 0 --icmp-id 1 -t 30",
    ] {
        ns.conntrack(&words(args));
    }
    assert!(wait_until(Duration::from_secs(5), || ctl(
        &ns,
        &conf,
        &["-i"]
    )
    .lines()
    .count()
        == 2));
    std::thread::sleep(Duration::from_millis(200));
    let dump = ctl(&ns, &conf, &["-i"]);
    assert!(
        dump.contains("src=10.1.1.5") && dump.contains("src=2001:db8:1::1"),
        "{dump}"
    );
    assert_eq!(dump.lines().count(), 2, "{dump}");
    let runtime = ctl(&ns, &conf, &["-s", "runtime"]);
    // Filtered in the kernel: the daemon never saw those three events.
    assert!(
        runtime.contains("\tevents received:\t                   2\n"),
        "{runtime}"
    );
    assert!(
        runtime.contains("\tevents filtered:\t                   0\n"),
        "{runtime}"
    );
    ctl(&ns, &conf, &["-k"]);
}

/// `PollSecs`: no event socket; the table is re-read every N seconds and
/// vanished flows are purged.
#[test]
fn polling_mode_follows_the_kernel() {
    if !netns_available("polling_mode_follows_the_kernel") {
        return;
    }
    let ns = Netns::new("ctp");
    let s = Scratch::new();
    let conf = write_config(&s, SYNC, "	PollSecs 1");
    ctl(&ns, &conf, &["-d"]);
    assert!(
        std::fs::read_to_string(s.path("log"))
            .expect("log")
            .contains("running in polling mode")
    );
    ns.conntrack(&[
        "-I", "-s", "10.1.1.5", "-d", "10.2.2.9", "-p", "udp", "--sport", "5000", "--dport", "53",
        "-t", "30",
    ]);
    assert!(wait_until(Duration::from_secs(4), || ctl(
        &ns,
        &conf,
        &["-i"]
    )
    .contains("10.1.1.5")));
    let runtime = ctl(&ns, &conf, &["-s", "runtime"]);
    assert!(
        runtime.contains("\tevents received:\t                   0\n"),
        "no event socket: {runtime}"
    );
    ns.conntrack(&["-D", "-s", "10.1.1.5"]);
    assert!(wait_until(Duration::from_secs(4), || ctl(
        &ns,
        &conf,
        &["-i"]
    )
    .is_empty()));
    ctl(&ns, &conf, &["-k"]);
}

/// ExpectationSync: an FTP helper expectation made by a real PASV exchange
/// reaches the internal expectation cache, printed like `conntrack -L expect`.
#[test]
fn ftp_expectation_is_cached() {
    if !netns_available("ftp_expectation_is_cached") {
        return;
    }
    let ns = Netns::new("cte");
    let s = Scratch::new();
    let sync = SYNC.replacen(
        "
}",
        "
	Options { ExpectationSync { ftp } }
}",
        1,
    );
    let conf = write_config(&s, &sync, "");
    let rules = s.write(
        "helper.nft",
        "table inet h {\n ct helper ftp-std { type \"ftp\" protocol tcp; }\n chain out { type filter hook output priority 0; tcp dport 21 ct helper set \"ftp-std\"; }\n}\n",
    );
    ns.exec_ok("nft", &["-f", rules.to_str().expect("path")]);
    ctl(&ns, &conf, &["-d"]);
    let ftp = s.write(
        "ftp.py",
        "import socket,threading,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR,1); s.bind(('127.0.0.1',21)); s.listen(1)\ndef srv():\n    c,_=s.accept(); c.sendall(b'220 hi\\r\\n'); c.recv(100); c.sendall(b'227 Entering Passive Mode (127,0,0,1,39,16)\\r\\n'); time.sleep(6)\nthreading.Thread(target=srv).start()\nk=socket.create_connection(('127.0.0.1',21)); k.recv(100); k.sendall(b'PASV\\r\\n'); k.recv(100); time.sleep(5)\n",
    );
    let mut session = ns.spawn("python3", &[ftp.to_str().expect("path")]);
    let has_expect = || ctl(&ns, &conf, &["-i", "expect"]).contains("helper=ftp");
    let seen = wait_until(Duration::from_secs(4), has_expect);
    let ours = ctl(&ns, &conf, &["-i", "expect"]);
    let tool = ns.conntrack(&["-L", "expect"]);
    let _ = session.kill();
    let _ = session.wait();
    assert!(
        seen,
        "no expectation in -i expect: {ours:?}; kernel has {tool:?}"
    );
    let ours_line = ours
        .lines()
        .next()
        .and_then(|l| l.rsplit_once(" [active since "))
        .map(|(e, _)| e.to_string());
    let tool_line = tool
        .lines()
        .next()
        .and_then(|l| l.split_once(' '))
        .map(|(_, rest)| rest.to_string());
    assert_eq!(
        ours_line, tool_line,
        "rendering differs from conntrack -L expect"
    );
    let xml = ctl(&ns, &conf, &["-i", "expect", "-x"]);
    assert!(
        xml.starts_with(
            "<flow><layer3 protonum=\"2\" protoname=\"ipv4\"><expected><src>127.0.0.1</src>"
        ) && xml.contains("<helper-name>ftp</helper-name>"),
        "{xml}"
    );
    let stats = ctl(&ns, &conf, &["-s", "expect"]);
    assert!(
        stats.starts_with("cache internal:\ncurrent active connections:\t           1\n"),
        "{stats}"
    );
    ctl(&ns, &conf, &["-k"]);
}

//! The queue path against the real kernel, in namespaces: packets queued
//! by `iptables-legacy -j NFQUEUE` are read, parsed, given their verdict
//! (they reach their destination) and counted; hostile payloads are
//! counted parse errors and still pass. Also the kernel features the
//! helpers need: the cthelper subsystem (helper stubs, `Setup on`) and
//! expectation creation, tested where the kernel has them and skipped
//! loudly elsewhere.

mod ns;

use std::time::Duration;

use helperd::probe::{CTHELPER_OPTION, KernelSupport};
use helperd::{PlannedHelper, RunnerOptions, plan, probe_cthelper};
use ns::{Ns, Running, available, skip_for_kernel};

fn planned(config: &str) -> Vec<PlannedHelper> {
    let parsed = conntrackd_config::parse_str(config);
    let config = parsed.config.expect("a valid configuration");
    plan(config.helper.as_ref().expect("a Helper section")).expect("plan")
}

const TFTP_ON_7: &str =
    "Helper {\n\tType tftp inet udp {\n\t\tQueueNum 7\n\t\tQueueLen 512\n\t}\n}\n";

/// Binds UDP 127.0.0.1:PORT, prints every datagram received within the
/// time given (as hex), one per line, after a first line `ready`.
const RECEIVER: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.settimeout(0.2)
end = time.time() + float(sys.argv[2])
print('ready', flush=True)
while time.time() < end:
    try:
        data, _ = s.recvfrom(65535)
        print(data.hex(), flush=True)
    except socket.timeout:
        pass
"#;

const SENDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', int(sys.argv[2])))
for h in sys.argv[3:]:
    s.sendto(bytes.fromhex(h), ('127.0.0.1', int(sys.argv[1])))
"#;

fn read_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let out = child.stdout.as_mut().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .expect("line");
    line
}

/// Queues the namespace's outgoing TFTP requests (UDP port 69) to `queue`.
fn queue_tftp(ns: &Ns, queue: u16) {
    ns.ok(
        "iptables-legacy",
        &[
            "-A",
            "OUTPUT",
            "-p",
            "udp",
            "--dport",
            "69",
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue.to_string(),
        ],
    );
}

#[test]
fn queued_packets_are_read_parsed_accepted_and_counted() {
    if !available("queued_packets_are_read_parsed_accepted_and_counted") {
        return;
    }
    let ns = Ns::new();
    queue_tftp(&ns, 7);
    let options = RunnerOptions {
        // The queue path alone: on a kernel without the cthelper
        // subsystem no stub can be made (the daemon refuses to start).
        configure_stubs: probe_in(&ns) == KernelSupport::Present,
        record_expectations: true,
        ..RunnerOptions::default()
    };
    let running = Running::start(&ns, planned(TFTP_ON_7), options);
    let mut receiver = ns.spawn("python3", &["-c", RECEIVER, "69", "3"]);
    assert_eq!(read_line(&mut receiver).trim(), "ready");
    let rrq = hex(b"\x00\x01hello.txt\x00octet\x00");
    let hostile = ["", "00", "0009ffff", &"41".repeat(2000)];
    let mut payloads = vec![rrq.as_str()];
    payloads.extend(hostile);
    let mut args = vec!["69", "40000"];
    args.extend(payloads.iter().copied().filter(|p| !p.is_empty()));
    ns.python(SENDER, &args);
    let received = receiver.wait_with_output().expect("receiver");
    let mut runner = running.stop();
    // Every packet passed: the verdicts were given.
    let lines: Vec<String> = String::from_utf8_lossy(&received.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let sent: Vec<&str> = payloads.iter().copied().filter(|p| !p.is_empty()).collect();
    assert_eq!(lines, sent, "every queued datagram reached the receiver");
    let (setup, c) = runner.engine().counters().next().expect("one helper");
    let (setup, c) = (setup.clone(), c.clone());
    assert_eq!(setup.queue_num, 7);
    assert_eq!(c.packets, 4, "{c:?}");
    assert_eq!(
        c.parse_errors, 3,
        "the one-byte payload and the two of unknown opcodes: {c:?}"
    );
    assert_eq!(c.expectations, 1, "{c:?}");
    assert_eq!(runner.stats.verdicts, 4);
    assert!(runner.stats.verdict_messages >= 1 && runner.stats.verdict_messages <= 4);
    let expect = runner
        .take_recorded()
        .pop()
        .expect("the read request's expectation");
    let tuple = expect.tuple.expect("tuple");
    assert_eq!((tuple.dst_port, tuple.l4proto), (Some(40000), 17));
    // Sent to the kernel through ctnetlink, which created it or refused
    // it (here: no conntrack in this namespace, ENOENT; a master without
    // a helper, EOPNOTSUPP).
    assert_eq!(c.expectations_created + c.expectations_refused, 1, "{c:?}");
}

#[test]
fn a_full_queue_fails_open() {
    if !available("a_full_queue_fails_open") {
        return;
    }
    let ns = Ns::new();
    queue_tftp(&ns, 8);
    // Bound with QueueLen 1 and never read: every packet past the first
    // finds the queue full and, with fail-open, passes unseen.
    let config = "Helper {\n\tType tftp inet udp {\n\t\tQueueNum 8\n\t\tQueueLen 1\n\t}\n}\n";
    let plan = planned(config);
    let options = RunnerOptions {
        configure_stubs: probe_in(&ns) == KernelSupport::Present,
        ..RunnerOptions::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let handle = ns.thread(move || {
        let runner = helperd::QueueRunner::start(&plan, options).expect("starts");
        tx.send(()).expect("ready");
        let _ = done_rx.recv();
        runner
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("runner ready");
    let mut receiver = ns.spawn("python3", &["-c", RECEIVER, "69", "2"]);
    assert_eq!(read_line(&mut receiver).trim(), "ready");
    let payloads: Vec<String> = (0..5)
        .map(|i| hex(format!("\x00\x01f{i}\x00octet\x00").as_bytes()))
        .collect();
    let mut args = vec!["69", "40001"];
    args.extend(payloads.iter().map(String::as_str));
    ns.python(SENDER, &args);
    let received = receiver.wait_with_output().expect("receiver");
    done_tx.send(()).expect("stop");
    let mut runner = handle.join().expect("runner");
    let got = String::from_utf8_lossy(&received.stdout).lines().count();
    assert_eq!(got, 4, "the four packets beyond the full queue passed");
    runner.refresh_queue_drops();
    let _ = runner.handle_readable(std::time::Instant::now(), 4);
}

fn probe_in(ns: &Ns) -> KernelSupport {
    ns.thread(|| probe_cthelper().expect("probe"))
        .join()
        .expect("probe thread")
}

#[test]
fn the_probe_agrees_with_the_kernel_configuration() {
    if !available("the_probe_agrees_with_the_kernel_configuration") {
        return;
    }
    let ns = Ns::new();
    let support = probe_in(&ns);
    let config = std::process::Command::new("sh")
        .args([
            "-c",
            "zcat /proc/config.gz 2>/dev/null | grep NF_CT_NETLINK_HELPER",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if config.is_empty() {
        eprintln!("no /proc/config.gz here: the probe said {support:?}");
        return;
    }
    let built_in = config.contains("=y") || config.contains("=m");
    assert_eq!(support == KernelSupport::Present, built_in, "{config}");
}

#[test]
fn helper_stubs_are_registered_and_removed_where_the_kernel_supports_them() {
    let test = "helper_stubs_are_registered_and_removed_where_the_kernel_supports_them";
    if !available(test) {
        return;
    }
    let ns = Ns::new();
    if probe_in(&ns) == KernelSupport::Absent {
        skip_for_kernel(test, CTHELPER_OPTION);
        return;
    }
    let config = "Helper {\n\tSetup on\n\tType ftp inet tcp {\n\t\tQueueNum 9\n\t\tPolicy ftp {\n\t\t\tExpectMax 2\n\t\t\tExpectTimeout 120\n\t\t}\n\t}\n}\n";
    let plan = planned(config);
    let options = RunnerOptions {
        remove_stubs_at_exit: true,
        ..RunnerOptions::default()
    };
    let listed = ns
        .thread(move || {
            let runner = helperd::QueueRunner::start(&plan, options).expect("starts");
            let listed = list_stubs();
            let problems = runner.shutdown();
            assert!(problems.is_empty(), "{problems:?}");
            (listed, list_stubs())
        })
        .join()
        .expect("thread");
    let ftp = listed
        .0
        .iter()
        .find(|s| s.name == "ftp")
        .expect("the ftp stub");
    assert_eq!(ftp.queue_num, Some(9));
    assert_eq!(ftp.policies[0].expect_max, 2);
    assert_eq!(ftp.policies[0].expect_timeout, 120);
    assert!(listed.1.iter().all(|s| s.name != "ftp"), "removed at exit");
}

fn list_stubs() -> Vec<nfq::cthelper::HelperStub> {
    let mut socket = nfq::QueueSocket::open().expect("socket");
    let seq = socket.take_seq();
    let mut req = Vec::new();
    nfq::cthelper::dump_stubs(&mut req, seq);
    socket.send(&req).expect("send");
    let mut stubs = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (n, _) =
            rustix::net::recv(&socket, &mut buf, rustix::net::RecvFlags::empty()).expect("recv");
        for frame in nfq::frame::frames(&buf[..n]).flatten() {
            if frame.kind == nfq::frame::NLMSG_DONE || frame.errno().is_some() {
                return stubs;
            }
            if let Ok(stub) = nfq::cthelper::decode_stub(&frame) {
                stubs.push(stub);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! Against the real kernel, in a network namespace made for the test.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use conntrack_model::consts;
use ctnl::{CtEvent, CtSocket, Message, groups, messages, request};

static N: AtomicU32 = AtomicU32::new(0);

fn usable() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let tools = Command::new("conntrack").arg("--version").output().is_ok();
    if root && tools {
        return true;
    }
    let msg = "SKIPPING ctnl kernel test: needs root and the conntrack tool";
    if std::env::var("CONNTRACKD_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{msg}, and CONNTRACKD_REQUIRE_NETNS=1 forbids skipping");
    }
    eprintln!("!!!!!!!! {msg} !!!!!!!!");
    false
}

/// Runs `body` in a fresh namespace (entered by this thread with setns).
struct Ns(String);
impl Ns {
    fn new() -> Ns {
        let name = format!(
            "ctnl{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        assert!(
            Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .expect("ip")
                .success()
        );
        Ns(name)
    }
    fn conntrack(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "conntrack"])
            .args(args)
            .output()
            .expect("conntrack");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn list(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "conntrack", "-L"])
            .output()
            .expect("conntrack");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// Runs `f` on a thread that has joined the namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(path).expect("netns file");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            f()
        })
        .join()
        .expect("thread")
    }
}
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn dump_sees_flows_made_by_the_conntrack_tool() {
    if !usable() {
        return;
    }
    let ns = Ns::new();
    ns.conntrack(&[
        "-I",
        "-s",
        "192.168.10.1",
        "-d",
        "192.168.20.2",
        "-p",
        "tcp",
        "--sport",
        "40000",
        "--dport",
        "80",
        "--state",
        "ESTABLISHED",
        "-u",
        "ASSURED,SEEN_REPLY",
        "-t",
        "120",
        "--mark",
        "7",
        "--zone",
        "3",
    ]);
    ns.conntrack(&[
        "-I",
        "-s",
        "2001:db8::1",
        "-d",
        "2001:db8::2",
        "-p",
        "udp",
        "--sport",
        "5000",
        "--dport",
        "53",
        "-t",
        "30",
    ]);
    let flows = ns.run(|| {
        CtSocket::open(0, false)
            .expect("socket")
            .dump_conntrack()
            .expect("dump")
    });
    assert_eq!(flows.len(), 2, "{flows:?}");
    let tcp = flows
        .iter()
        .find(|f| f.l4proto() == Some(consts::IPPROTO_TCP))
        .expect("tcp flow");
    let orig = tcp.orig.as_ref().expect("orig");
    assert_eq!(orig.src.to_string(), "192.168.10.1");
    assert_eq!(orig.dst_port, Some(80));
    assert_eq!(tcp.mark, Some(7));
    assert_eq!(tcp.zone, Some(3));
    assert_eq!(tcp.tcp_state(), Some(consts::tcp_state::ESTABLISHED));
    assert!(tcp.has_status(consts::status::ASSURED | consts::status::SEEN_REPLY));
    let udp = flows
        .iter()
        .find(|f| f.l4proto() == Some(consts::IPPROTO_UDP))
        .expect("udp flow");
    assert_eq!(
        udp.orig.as_ref().map(|t| t.src.to_string()),
        Some("2001:db8::1".into())
    );
}

#[test]
fn events_create_delete_and_batch() {
    if !usable() {
        return;
    }
    let ns = Ns::new();
    // Subscribe first, then let the tool make a flow, then read the event.
    let events = ns.run(|| CtSocket::open(groups::CT_ALL, false).expect("socket"));
    ns.conntrack(&[
        "-I", "-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "udp", "--sport", "1", "--dport", "2",
        "-t", "50",
    ]);
    ns.conntrack(&["-D", "-s", "10.0.0.1"]);
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    while seen.len() < 2 {
        events.recv(&mut buf).expect("recv");
        for m in messages(&buf) {
            if let Ok(Message::Conntrack { event, .. }) = m {
                seen.push(event);
            }
        }
    }
    assert_eq!(seen, vec![CtEvent::New, CtEvent::Destroy]);

    // Our own create/delete requests, batched.
    let flows: Vec<_> = (0..300u16)
        .map(|i| {
            let t = conntrack_model::Tuple::new(
                "10.9.0.1".parse().expect("ip"),
                "10.9.0.2".parse().expect("ip"),
                consts::IPPROTO_TCP,
            )
            .with_ports(10000 + i, 443);
            conntrack_model::Conntrack {
                reply: Some(t.inverted()),
                orig: Some(t),
                timeout: Some(100),
                status: Some(consts::status::ASSURED | consts::status::SEEN_REPLY),
                tcp: Some(conntrack_model::TcpInfo {
                    state: Some(consts::tcp_state::ESTABLISHED),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let batch = flows.clone();
    let results = ns.run(move || {
        let mut s = CtSocket::open(0, false).expect("socket");
        s.apply_batch(&batch, request::create).expect("batch")
    });
    let failed: Vec<_> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, first {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(
        ns.list().lines().filter(|l| l.contains("10.9.0.1")).count(),
        300
    );
    let again = flows.clone();
    let dup = ns.run(move || {
        let mut s = CtSocket::open(0, false).expect("socket");
        s.apply_batch(&again[..1], request::create).expect("batch")
    });
    assert_eq!(dup, vec![Err(17)], "EEXIST for a duplicate create");
    // Pipelined: 600 creates of which the first 300 exist already; only
    // failures come back (and the last request's ACK), in order.
    let mut more: Vec<_> = flows.clone();
    more.extend(flows.iter().map(|ct| {
        let mut ct = ct.clone();
        if let Some(t) = ct.orig.as_mut() {
            t.dst_port = Some(444);
        }
        ct.reply = ct.orig.as_ref().map(conntrack_model::Tuple::inverted);
        ct
    }));
    let piped = ns.run(move || {
        let mut s = CtSocket::open(0, false).expect("socket");
        s.apply_pipelined(&more, request::create)
            .expect("send")
            .expect("no answer lost")
    });
    assert_eq!(piped.len(), 600);
    assert!(
        piped[..300].iter().all(|r| *r == Err(17)),
        "{:?}",
        &piped[..3]
    );
    assert!(piped[300..].iter().all(Result::is_ok));
    assert_eq!(
        ns.list().lines().filter(|l| l.contains("10.9.0.1")).count(),
        600
    );
    ns.run(|| {
        let mut s = CtSocket::open(0, false).expect("socket");
        s.request_ack(request::flush)
            .expect("flush")
            .expect("flush ack");
    });
    assert_eq!(ns.list().lines().count(), 0);
}

#[test]
fn expectation_table_dump_answers() {
    if !usable() {
        return;
    }
    let ns = Ns::new();
    let exps = ns.run(|| {
        CtSocket::open(0, false)
            .expect("socket")
            .dump_expect()
            .expect("dump")
    });
    assert!(
        exps.is_empty(),
        "a fresh namespace has no expectations: {exps:?}"
    );
}

//! Two network namespaces joined by a veth pair; each node runs on its own
//! thread (entered into its namespace with setns) with a current-thread
//! tokio runtime, like the daemon.
//!
//! Skipped loudly without root / `ip netns`, unless
//! CONNTRACKD_REQUIRE_NETNS=1 makes that a failure.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conntrackd_config::{Channel, ChannelKind, DEFAULT_ERROR_QUEUE_LENGTH};
use synclink::{Link, LinkCounters, LinkState};

static N: AtomicU32 = AtomicU32::new(0);

fn usable() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if root && netns {
        return true;
    }
    let msg = "SKIPPED: synclink namespace test: needs root and `ip netns`";
    if std::env::var("CONNTRACKD_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{msg}, and CONNTRACKD_REQUIRE_NETNS=1 forbids skipping");
    }
    eprintln!("!!!!!!!! {msg} !!!!!!!!");
    false
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces, `ns[0]` (node A) and `ns[1]` (node B), joined by a veth
/// pair `ifs[0]` <-> `ifs[1]`.  A has 10.77.0.1, fe80::1, fd00::1; B has .2.
/// Deleted on drop.
struct Pair {
    ns: [String; 2],
    ifs: [String; 2],
}

const V4: [&str; 2] = ["10.77.0.1", "10.77.0.2"];
const LL: [&str; 2] = ["fe80::1", "fe80::2"];
const GLOBAL6: [&str; 2] = ["fd00::1", "fd00::2"];

impl Pair {
    fn new() -> Pair {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let names = [format!("sl{pid}a{n}"), format!("sl{pid}b{n}")];
        let mut pair = Pair {
            ns: [String::new(), String::new()],
            ifs: names.clone(),
        };
        for (i, name) in names.iter().enumerate() {
            ip(&["netns", "add", name]);
            // Recorded at once so that Drop removes it even if setup fails.
            pair.ns[i] = name.clone();
        }
        ip(&[
            "link",
            "add",
            "name",
            &pair.ifs[0],
            "netns",
            &pair.ns[0],
            "type",
            "veth",
            "peer",
            "name",
            &pair.ifs[1],
            "netns",
            &pair.ns[1],
        ]);
        for i in 0..2 {
            let (ns, dev) = (&pair.ns[i], &pair.ifs[i]);
            // No automatic (tentative) link-local address: only ours, which
            // skips DAD.
            ip(&["-n", ns, "link", "set", "dev", dev, "addrgenmode", "none"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", V4[i]),
                "dev",
                dev,
            ]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/64", LL[i]),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/64", GLOBAL6[i]),
                "dev",
                dev,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", "dev", dev, "up"]);
        }
        pair
    }

    /// Runs `a` in namespace A and `b` in namespace B, concurrently, each on
    /// a thread of its own; re-raises a panic of either.
    fn run<A, B>(
        &self,
        a: impl FnOnce(Rv) -> A + Send + 'static,
        b: impl FnOnce(Rv) -> B + Send + 'static,
    ) -> (A, B)
    where
        A: Send + 'static,
        B: Send + 'static,
    {
        let (rva, rvb) = rendezvous();
        let ha = in_ns(&self.ns[0], move || a(rva));
        let hb = in_ns(&self.ns[1], move || b(rvb));
        let ra = ha.join();
        let rb = hb.join();
        match (ra, rb) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in &self.ns {
            if !ns.is_empty() {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
    }
}

/// Spawns a thread that joins namespace `ns` and runs `f`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
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

/// One side of a two-party barrier; fails instead of hanging when the
/// other side panicked or stalls.
struct Rv {
    tx: mpsc::Sender<()>,
    rx: mpsc::Receiver<()>,
}

fn rendezvous() -> (Rv, Rv) {
    let (ta, rb) = mpsc::channel();
    let (tb, ra) = mpsc::channel();
    (Rv { tx: ta, rx: ra }, Rv { tx: tb, rx: rb })
}

impl Rv {
    fn sync(&self) {
        self.tx.send(()).expect("the other node is gone");
        self.rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the other node did not reach the rendezvous");
    }
}

fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// One sync message of `len` bytes (>= 8) with sequence number `seq`.
fn message(seq: u32, len: u16) -> Vec<u8> {
    let mut m = vec![0x10, 0x00];
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.resize(usize::from(len), seq.to_be_bytes()[3]);
    m
}

/// The three batches node `node` sends.
fn batches(node: u32) -> Vec<Vec<u8>> {
    (0..3u32)
        .map(|b| {
            let first = node * 1000 + b * 10;
            (first..first + b + 1)
                .flat_map(|s| message(s, 84 + 4 * u16::try_from(b).unwrap_or(0)))
                .collect()
        })
        .collect()
}

type Items = Vec<(Vec<u8>, SocketAddr)>;

/// readable + recv until `done` holds or `limit` passes.
async fn pump(
    link: &mut Link,
    got: &mut Items,
    limit: Duration,
    mut done: impl FnMut(&Link, &Items) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let mut fresh = Vec::new();
        link.recv(&mut fresh);
        got.extend(fresh.into_iter().map(|r| (r.bytes, r.from)));
        if done(link, got) {
            return true;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), link.readable()).await;
    }
}

async fn wait_running(link: &Link) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while link.link_state() != LinkState::Running {
        assert!(Instant::now() < deadline, "interface never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn concat(items: &Items) -> Vec<u8> {
    items.iter().flat_map(|(b, _)| b.iter().copied()).collect()
}

/// A raw IPv4 socket seeing every incoming UDP packet, to read the UDP
/// checksum field of the datagrams to `port`.
struct UdpSniffer {
    sock: socket2::Socket,
    port: u16,
}

impl UdpSniffer {
    fn open(port: u16) -> UdpSniffer {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::RAW,
            Some(socket2::Protocol::UDP),
        )
        .expect("raw socket");
        sock.set_nonblocking(true).expect("nonblocking");
        UdpSniffer { sock, port }
    }

    /// Checksum fields of the datagrams to our port seen so far.
    fn checksums(&self) -> Vec<u16> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = (&self.sock).read(&mut buf) {
            let pkt = &buf[..n];
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let Some(udp) = pkt.get(ihl..ihl + 8) else {
                continue;
            };
            if u16::from_be_bytes([udp[2], udp[3]]) == self.port {
                out.push(u16::from_be_bytes([udp[6], udp[7]]));
            }
        }
        out
    }
}

struct Node {
    index: u32,
    spec: Channel,
    /// Expected source address of the peer's datagrams.
    peer: IpAddr,
    /// Check the UDP checksum field of the peer's datagrams: Some(true) =
    /// must be zero (peer has `Checksum off`), Some(false) = non-zero.
    peer_csum_zero: Option<bool>,
}

/// Datagram channels: A sends its 3 batches, B must receive exactly those;
/// then B sends, A must receive exactly B's (so not its own: multicast
/// loopback is off); finally nobody receives anything more.
fn datagram_node(node: Node, rv: Rv) -> LinkCounters {
    block(async move {
        let mut link = Link::open(&node.spec, ERROR_QUEUE_LENGTH).expect("open");
        assert_eq!(link.tcp_state(), None);
        wait_running(&link).await;
        let sniffer = node
            .peer_csum_zero
            .map(|_| UdpSniffer::open(node.spec.port));
        rv.sync();
        let mine = batches(node.index);
        let theirs = batches(1 - node.index);
        let mut got = Items::new();
        for turn in 0..2u32 {
            if turn == node.index {
                for b in &mine {
                    link.send(Instant::now(), b);
                }
            } else {
                let ok = pump(&mut link, &mut got, Duration::from_secs(10), |_, g| {
                    g.len() >= 3
                })
                .await;
                assert!(ok, "node {} got {} datagrams", node.index, got.len());
                // Anything extra (e.g. our own datagrams looped back) shows
                // up by now.
                pump(&mut link, &mut got, Duration::from_millis(300), |_, _| {
                    false
                })
                .await;
                let data: Vec<_> = got.iter().map(|(b, _)| b.clone()).collect();
                assert_eq!(data, theirs, "node {}", node.index);
                for (_, from) in &got {
                    assert_eq!(from.ip(), node.peer, "source of a datagram");
                }
                if let (Some(zero), Some(sniffer)) = (node.peer_csum_zero, &sniffer) {
                    let sums = sniffer.checksums();
                    assert_eq!(sums.len(), 3, "sniffed {sums:?}");
                    assert!(
                        sums.iter().all(|&s| (s == 0) == zero),
                        "node {}: checksums {sums:04x?}, expected zero={zero}",
                        node.index
                    );
                }
            }
            rv.sync();
        }
        pump(&mut link, &mut got, Duration::from_millis(300), |_, _| {
            false
        })
        .await;
        assert_eq!(got.len(), 3, "node {} received more", node.index);
        rv.sync();
        link.counters()
    })
}

fn datagram_exchange(pair: &Pair, specs: [Channel; 2], peers: [IpAddr; 2], csum: bool) {
    let [sa, sb] = specs;
    // A sends with `Checksum off` when the spec says so; B checks the field.
    let a = Node {
        index: 0,
        peer_csum_zero: csum.then_some(!sb.checksum),
        spec: sa,
        peer: peers[1],
    };
    let b = Node {
        index: 1,
        peer_csum_zero: csum.then_some(!a.spec.checksum),
        spec: sb,
        peer: peers[0],
    };
    let (ca, cb) = pair.run(
        move |rv| datagram_node(a, rv),
        move |rv| datagram_node(b, rv),
    );
    let bytes: u64 = batches(0).iter().map(|b| b.len() as u64).sum();
    for c in [ca, cb] {
        assert_eq!((c.pkts_sent, c.pkts_recv), (3, 3), "{c:?}");
        assert_eq!((c.bytes_sent, c.bytes_recv), (bytes, bytes), "{c:?}");
        assert_eq!((c.send_errors, c.recv_errors), (0, 0), "{c:?}");
    }
}

fn base(kind: ChannelKind, address: &str, dest: Option<&str>, dev: &str) -> Channel {
    Channel {
        address: Some(address.parse().expect("ip")),
        destination: dest.map(|d| d.parse().expect("ip")),
        interface: Some(dev.to_owned()),
        port: 3780,
        ..Channel::new(kind, 0..0, 0)
    }
}

const ERROR_QUEUE_LENGTH: usize = DEFAULT_ERROR_QUEUE_LENGTH as usize;

fn addr(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn multicast_ipv4_both_ways_without_loopback() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    let specs = [0, 1].map(|i| Channel {
        ipv4_interface: Some(V4[i].parse().expect("ip")),
        port: 3790,
        rcv_buf: Some(1 << 20),
        snd_buf: Some(1 << 20),
        ..base(ChannelKind::Multicast, "225.0.0.50", None, &pair.ifs[i])
    });
    datagram_exchange(&pair, specs, [addr(V4[0]), addr(V4[1])], false);
}

#[test]
fn multicast_ipv6_both_ways_without_loopback() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    let specs = [0, 1].map(|i| Channel {
        port: 3791,
        ..base(ChannelKind::Multicast, "ff12::50", None, &pair.ifs[i])
    });
    datagram_exchange(&pair, specs, [addr(LL[0]), addr(LL[1])], false);
}

#[test]
fn udp_ipv4_both_ways_and_checksum_off_sends_zero() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    let specs = [0, 1].map(|i| Channel {
        // A: Checksum off, B: Checksum on.
        checksum: i == 1,
        ..base(ChannelKind::Udp, V4[i], Some(V4[1 - i]), &pair.ifs[i])
    });
    datagram_exchange(&pair, specs, [addr(V4[0]), addr(V4[1])], true);
}

#[test]
fn udp_ipv6_link_local_both_ways() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    let specs = [0, 1].map(|i| base(ChannelKind::Udp, LL[i], Some(LL[1 - i]), &pair.ifs[i]));
    datagram_exchange(&pair, specs, [addr(LL[0]), addr(LL[1])], false);
}

#[test]
fn udp_ipv6_global_both_ways() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    let specs = [0, 1].map(|i| {
        base(
            ChannelKind::Udp,
            GLOBAL6[i],
            Some(GLOBAL6[1 - i]),
            &pair.ifs[i],
        )
    });
    datagram_exchange(&pair, specs, [addr(GLOBAL6[0]), addr(GLOBAL6[1])], false);
}

/// TCP: A opens first and sends 3 batches while B is not listening — they
/// wait in A's error queue.  B opens; A retries the connect (at most once
/// per second) and sends a fourth batch; B receives A's 4 batches, in
/// order, as one byte stream.  B's 3 batches reach A the same way.
fn tcp_exchange(addrs: [&'static str; 2], ifs: [String; 2], pair: &Pair) {
    let spec = |i: usize| base(ChannelKind::Tcp, addrs[i], Some(addrs[1 - i]), &ifs[i]);
    let (sa, sb) = (spec(0), spec(1));
    let a_peer = addr(addrs[1]);
    let b_peer = addr(addrs[0]);
    let node_a = move |rv: Rv| {
        block(async move {
            let mut link = Link::open(&sa, ERROR_QUEUE_LENGTH).expect("open A");
            wait_running(&link).await;
            let mine = batches(0);
            let now = Instant::now();
            for b in &mine {
                link.send(now, b);
            }
            assert_eq!(link.error_queue(), (3, 128, 0), "queued while B is away");
            assert_eq!(link.tcp_state(), Some((false, false)));
            assert_eq!(link.counters().bytes_sent, 0);
            rv.sync(); // B may open now
            rv.sync(); // B is open
            let mut got = Items::new();
            // Past the one-second retry limit, then a fourth batch.
            pump(&mut link, &mut got, Duration::from_millis(1100), |_, _| {
                false
            })
            .await;
            let fourth = message(9999, 64);
            link.send(Instant::now(), &fourth);
            let theirs: Vec<u8> = batches(1).concat();
            let ok = pump(&mut link, &mut got, Duration::from_secs(10), |l, g| {
                l.error_queue().0 == 0
                    && l.tcp_state() == Some((true, true))
                    && concat(g).len() >= theirs.len()
            })
            .await;
            assert!(
                ok,
                "A: queue {:?} state {:?} got {} bytes",
                link.error_queue(),
                link.tcp_state(),
                concat(&got).len()
            );
            assert_eq!(concat(&got), theirs);
            assert!(got.iter().all(|(_, from)| from.ip() == a_peer));
            rv.sync();
            let c = link.counters();
            let sent: usize = mine.iter().map(Vec::len).sum::<usize>() + fourth.len();
            assert_eq!(c.bytes_sent, sent as u64);
            assert!(c.send_errors >= 3, "{c:?}");
            assert_eq!(c.recv_errors, 0);
        })
    };
    let node_b = move |rv: Rv| {
        block(async move {
            rv.sync(); // A has queued its batches
            let mut link = Link::open(&sb, ERROR_QUEUE_LENGTH).expect("open B");
            wait_running(&link).await;
            rv.sync();
            for b in &batches(1) {
                link.send(Instant::now(), b);
            }
            let mut expected = batches(0).concat();
            expected.extend(message(9999, 64));
            let mut got = Items::new();
            let ok = pump(&mut link, &mut got, Duration::from_secs(10), |l, g| {
                l.error_queue().0 == 0
                    && l.tcp_state() == Some((true, true))
                    && concat(g).len() >= expected.len()
            })
            .await;
            assert!(
                ok,
                "B: queue {:?} state {:?} got {} bytes",
                link.error_queue(),
                link.tcp_state(),
                concat(&got).len()
            );
            assert_eq!(concat(&got), expected, "A's batches in order");
            assert!(got.iter().all(|(_, from)| from.ip() == b_peer));
            rv.sync();
            assert_eq!(link.counters().recv_errors, 0);
        })
    };
    pair.run(node_a, node_b);
}

#[test]
fn tcp_ipv4_error_queue_then_both_ways() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    tcp_exchange(V4, pair.ifs.clone(), &pair);
}

#[test]
fn tcp_ipv6_link_local_error_queue_then_both_ways() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    tcp_exchange(LL, pair.ifs.clone(), &pair);
}

#[test]
fn batch_size_follows_the_mtu_and_link_state_follows_the_interface() {
    if !usable() {
        return;
    }
    let pair = Pair::new();
    ip(&[
        "-n",
        &pair.ns[0],
        "link",
        "set",
        "dev",
        &pair.ifs[0],
        "mtu",
        "1400",
    ]);
    let (ns_a, ns_b) = (pair.ns[0].clone(), pair.ns[1].clone());
    let (if_a, if_b) = (pair.ifs[0].clone(), pair.ifs[1].clone());
    let thread = in_ns(&pair.ns[0], move || {
        block(async move {
            let mcast = Link::open(
                &Channel {
                    ipv4_interface: Some(V4[0].parse().expect("ip")),
                    ..base(ChannelKind::Multicast, "225.0.0.51", None, &if_a)
                },
                ERROR_QUEUE_LENGTH,
            )
            .expect("multicast");
            let udp = Link::open(
                &base(ChannelKind::Udp, V4[0], Some(V4[1]), &if_a),
                ERROR_QUEUE_LENGTH,
            )
            .expect("udp");
            let tcp = Link::open(
                &base(ChannelKind::Tcp, V4[0], Some(V4[1]), &if_a),
                ERROR_QUEUE_LENGTH,
            )
            .expect("tcp");
            let udp6 = Link::open(
                &Channel {
                    port: 3781,
                    ..base(ChannelKind::Udp, LL[0], Some(LL[1]), &if_a)
                },
                ERROR_QUEUE_LENGTH,
            )
            .expect("udp6");
            assert_eq!(mcast.batch_size(), 1372);
            assert_eq!(udp.batch_size(), 1372);
            assert_eq!(udp6.batch_size(), 1372, "IPv6 uses the IPv4 overhead too");
            assert_eq!(tcp.batch_size(), 1360);
            let unknown = Link::open(
                &Channel {
                    port: 3782,
                    ..base(ChannelKind::Udp, V4[0], Some(V4[1]), "nosuchif0")
                },
                ERROR_QUEUE_LENGTH,
            )
            .expect("unknown interface");
            assert_eq!(unknown.batch_size(), 1472);
            assert_eq!(unknown.link_state(), LinkState::Running);

            wait_running(&udp).await;
            ip(&["-n", &ns_b, "link", "set", "dev", &if_b, "down"]);
            assert_eq!(udp.link_state(), LinkState::NoCarrier);
            ip(&["-n", &ns_a, "link", "set", "dev", &if_a, "down"]);
            assert_eq!(udp.link_state(), LinkState::Down);
            assert_eq!(tcp.link_state(), LinkState::Down);
            ip(&["-n", &ns_a, "link", "set", "dev", &if_a, "up"]);
            ip(&["-n", &ns_b, "link", "set", "dev", &if_b, "up"]);
            wait_running(&mcast).await;
        })
    });
    if let Err(e) = thread.join() {
        std::panic::resume_unwind(e);
    }
}

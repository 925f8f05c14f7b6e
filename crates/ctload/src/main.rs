//! Conntrack load generator for the benchmark.
//!
//! `ctload create|update|delete N [ipv6] [--mix] [--labels] [--rate R]`: N flows into
//! the current network namespace's conntrack table with batched ctnetlink
//! requests (the flows are built before the clock starts). By default as
//! fast as the kernel takes them, all IPv4 (or all IPv6) TCP; `--mix`
//! gives each flow the shape of a real firewall's (see [`Shape`]), and
//! `--rate R` paces the requests at R per second, a few per millisecond,
//! as traffic spreads them. An update is a new mark (uniform flows) or the
//! next TCP state (`--mix`). `--labels` gives every flow a connection
//! label (bit `i % 128`); the kernel keeps labels only in a namespace
//! where a ruleset uses them (`ct label set`).
//!
//! `ctload churn E [--rate R] [--seed S]`: E events of a realistic stream:
//! flows of every [`Shape`] opened, moved through their states and, for
//! the short-lived, closed, interleaved; what is left at the end are the
//! long-lived flows and those still in progress (`live`).
//!
//! Each prints one JSON line: `{"op":…,"n":…,"seconds":…,"rate":…,"errors":…,"end":…}`
//! (`end`: when the last answer came, Unix time; churn adds the events of
//! each kind and `live`).
//!
//! `ctload listen SECONDS`: the cheapest possible event listener, for
//! comparison: it reads conntrack events (many per system call, pausing
//! 4 ms when the socket runs dry, as conntrackd does) and discards them.
//! Prints `{"op":"listen","events":…,"overruns":…}` at the end.
//!
//! `ctload forward SECONDS ADDRESS:PORT` and `ctload sink SECONDS PORT`:
//! the cheapest possible replication, the floor for a pair of daemons. The
//! forwarder reads events as `listen` does and sends [`FORWARDED_BYTES`]
//! of each to the address, packed into datagrams of at most
//! [`FORWARD_DATAGRAM`] bytes, the last partial one before each pause; the
//! sink receives them and discards them. Each prints its counts at the end.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use conntrack_model::consts::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use conntrack_model::consts::{status, tcp_state};
use conntrack_model::{Conntrack, TcpInfo, Tuple};
use ctnl::{CtSocket, RecvBatch, RecvError, groups, request};

/// Flow `i`: 172.16.0.0 + i -> 192.168.1.1 (or 2001:db8:ac10:: + i ->
/// 2001:db8:1::1), ports varying.
fn flow(i: u32, mark: u32, ipv6: bool) -> Conntrack {
    let (src, dst) = addresses(i, ipv6);
    let orig = Tuple::new(src, dst, IPPROTO_TCP).with_ports(1024 + (i % 60_000) as u16, 80);
    Conntrack {
        reply: Some(orig.inverted()),
        orig: Some(orig),
        status: Some(status::SEEN_REPLY | status::ASSURED | status::CONFIRMED),
        timeout: Some(3600),
        mark: Some(mark),
        tcp: Some(TcpInfo {
            state: Some(tcp_state::ESTABLISHED),
            ..TcpInfo::default()
        }),
        ..Conntrack::default()
    }
}

/// `ct` with connection label `i % 128` set: the kernel's label bitmap is
/// 128 bits, 16 bytes (bit n is bit n % 32 of the n / 32th host-order word).
fn labelled(mut ct: Conntrack, i: u32) -> Conntrack {
    let bit = i % 128;
    let mut words = [0u32; 4];
    if let Some(w) = words.get_mut((bit / 32) as usize) {
        *w = 1 << (bit % 32);
    }
    ct.labels = Some(words.iter().flat_map(|w| w.to_ne_bytes()).collect());
    ct
}

fn addresses(i: u32, ipv6: bool) -> (IpAddr, IpAddr) {
    if ipv6 {
        let net = 0x2001_0db8_ac10_u128 << 80;
        (
            IpAddr::V6(Ipv6Addr::from(net + u128::from(i))),
            IpAddr::V6(Ipv6Addr::from(0x2001_0db8_0001_u128 << 80 | 1)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(0xac10_0000 + i)),
            IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
        )
    }
}

/// A flow of the realistic mix: its protocol, family, NAT and lifetime are
/// drawn from its number, so that every run (and every wave of one run)
/// sees the same flows.
#[derive(Debug, Clone, Copy)]
struct Shape {
    proto: u8,
    ipv6: bool,
    nat: bool,
    long_lived: bool,
}

impl Shape {
    /// 70 % TCP, 25 % UDP, 5 % ICMP; 10 % IPv6; 20 % source-NATed; 20 %
    /// long-lived (ICMP never).
    fn of(i: u32, seed: u64) -> Shape {
        let r = mix64(u64::from(i) ^ seed.rotate_left(17));
        let pick = |shift: u32| (r >> shift) % 100;
        let proto = match pick(0) {
            0..70 => IPPROTO_TCP,
            70..95 => IPPROTO_UDP,
            _ => IPPROTO_ICMP,
        };
        Shape {
            proto,
            ipv6: pick(12) < 10,
            nat: pick(24) < 20,
            long_lived: proto != IPPROTO_ICMP && pick(36) < 20,
        }
    }

    /// The states a flow goes through, one event each after its creation
    /// (the last step of a short-lived flow is its deletion).
    fn steps(&self) -> usize {
        match (self.proto, self.long_lived) {
            (IPPROTO_TCP, true) => 3,  // SYN_SENT, SYN_RECV, ESTABLISHED
            (IPPROTO_TCP, false) => 6, // ..., FIN_WAIT, TIME_WAIT, deleted
            (IPPROTO_UDP, true) => 3,  // new, replied, assured
            _ => 3,                    // new, replied, deleted
        }
    }

    /// The flow as the kernel has it at `step` (0: as created).
    fn at(&self, i: u32, step: usize) -> Conntrack {
        let (src, dst) = addresses(i, self.ipv6);
        let sport = 1024 + (i % 60_000) as u16;
        let proto = match (self.proto, self.ipv6) {
            (IPPROTO_ICMP, true) => IPPROTO_ICMPV6,
            (p, _) => p,
        };
        let orig = match proto {
            IPPROTO_ICMP => Tuple::new(src, dst, proto).with_icmp(sport, 8, 0),
            IPPROTO_ICMPV6 => Tuple::new(src, dst, proto).with_icmp(sport, 128, 0),
            IPPROTO_TCP => Tuple::new(src, dst, proto).with_ports(sport, 443),
            _ => Tuple::new(src, dst, proto).with_ports(sport, 53),
        };
        let mut reply = orig.inverted();
        let mut status_bits = status::CONFIRMED;
        if self.nat {
            // Source NAT to one of the firewall's outside addresses, a new
            // port: 30,000 ports per address, so that no two flows share a
            // reply tuple (the kernel refuses the second).
            let outside = 1 + i / 30_000;
            reply.dst = if self.ipv6 {
                IpAddr::V6(Ipv6Addr::from(
                    0x2001_0db8_ffff_u128 << 80 | u128::from(outside),
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(0xcb00_7100 + 1 + (outside - 1) % 254))
            };
            if reply.dst_port.is_some() {
                reply.dst_port = Some(30_000 + (i % 30_000) as u16);
            }
            status_bits |= status::SRC_NAT | status::SRC_NAT_DONE;
        }
        let replied = step >= 1;
        if replied {
            status_bits |= status::SEEN_REPLY;
        }
        let assured = match self.proto {
            IPPROTO_TCP => step >= 2,
            IPPROTO_UDP => self.long_lived && step >= 2,
            _ => false,
        };
        if assured {
            status_bits |= status::ASSURED;
        }
        let tcp = (self.proto == IPPROTO_TCP).then(|| TcpInfo {
            state: Some(match step {
                0 => tcp_state::SYN_SENT,
                1 => tcp_state::SYN_RECV,
                2 => tcp_state::ESTABLISHED,
                3 => tcp_state::FIN_WAIT,
                _ => tcp_state::TIME_WAIT,
            }),
            ..TcpInfo::default()
        });
        let timeout = match (self.proto, self.long_lived, step) {
            (_, true, _) => 3600,
            (IPPROTO_TCP, false, 2) => 600,
            _ => 120,
        };
        Conntrack {
            orig: Some(orig),
            reply: Some(reply),
            status: Some(status_bits),
            timeout: Some(timeout),
            tcp,
            ..Conntrack::default()
        }
    }
}

/// splitmix64's finaliser: a well-mixed number from any input.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Update,
    Delete,
}

fn build(buf: &mut Vec<u8>, seq: u32, (op, ct): &(Op, Conntrack)) {
    match op {
        Op::Create => request::create(buf, seq, ct),
        Op::Update => request::update(buf, seq, ct),
        Op::Delete => request::delete(buf, seq, ct),
    }
}

/// Requests issued so far, and how they went.
#[derive(Debug, Default)]
struct Sent {
    errors: usize,
    seconds: f64,
    /// When the last answer came, in seconds since the Unix epoch: the
    /// bench measures lag from here (the process's exit comes later, after
    /// it freed what it built).
    end: f64,
}

/// Sends `requests` in order: as batches as large as the kernel takes, or
/// paced at `rate` per second (each millisecond, the requests due by then,
/// in one batch).
fn send(
    socket: &mut CtSocket,
    requests: &[(Op, Conntrack)],
    rate: Option<u32>,
) -> anyhow::Result<Sent> {
    let start = Instant::now();
    let mut sent = Sent::default();
    let count = |results: Vec<Result<(), i32>>| results.iter().filter(|r| r.is_err()).count();
    match rate {
        None => {
            sent.errors = count(
                socket
                    .apply_batch(requests, build)
                    .context("sending requests")?,
            );
        }
        Some(rate) => {
            let rate = f64::from(rate.max(1));
            let mut done = 0;
            while done < requests.len() {
                let due = ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(requests.len());
                if due > done {
                    let batch = requests.get(done..due).unwrap_or_default();
                    sent.errors += count(
                        socket
                            .apply_batch(batch, build)
                            .context("sending requests")?,
                    );
                    done = due;
                }
                // The next request is due then (at most 1 ms away at the
                // rates that matter; a sleep is never shorter than that).
                let next = Duration::from_secs_f64(done as f64 / rate);
                if let Some(wait) = next.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait.max(Duration::from_micros(200)));
                }
            }
        }
    }
    sent.seconds = start.elapsed().as_secs_f64();
    sent.end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(sent)
}

/// Command-line options after the operation and its count.
#[derive(Debug, Default)]
struct Options {
    ipv6: bool,
    mix: bool,
    labels: bool,
    rate: Option<u32>,
    seed: u64,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        seed: 1,
        ..Options::default()
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "ipv6" | "--ipv6" => o.ipv6 = true,
            "--mix" => o.mix = true,
            "--labels" => o.labels = true,
            "--rate" => {
                let n = args.next().context("--rate needs a number")?;
                o.rate = Some(n.parse().context("--rate")?).filter(|r| *r > 0);
            }
            "--seed" => {
                o.seed = args
                    .next()
                    .context("--seed needs a number")?
                    .parse()
                    .context("--seed")?
            }
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

const USAGE: &str = "usage: ctload create|update|delete N [ipv6] [--mix] [--labels] [--rate R] | ctload churn EVENTS [--rate R] [--seed S] | ctload listen SECONDS | ctload forward SECONDS ADDRESS:PORT | ctload sink SECONDS PORT";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(op), Some(n)) = (args.get(1), args.get(2)) else {
        bail!("{USAGE}");
    };
    let n: u32 = n.parse().context("N")?;
    match op.as_str() {
        "forward" => {
            let to = args.get(3).context("forward needs ADDRESS:PORT")?;
            return forward(
                Duration::from_secs(u64::from(n)),
                to.parse().context("ADDRESS:PORT")?,
            );
        }
        "sink" => {
            let port = args.get(3).context("sink needs a PORT")?;
            return sink(
                Duration::from_secs(u64::from(n)),
                port.parse().context("PORT")?,
            );
        }
        _ => {}
    }
    let o = options(args.get(3..).unwrap_or_default())?;
    let op = match op.as_str() {
        "listen" => return listen(Duration::from_secs(u64::from(n))),
        "churn" => return churn(n, &o),
        "create" => Op::Create,
        "update" => Op::Update,
        "delete" => Op::Delete,
        other => bail!("unknown operation {other}\n{USAGE}"),
    };
    let requests: Vec<(Op, Conntrack)> = (0..n)
        .map(|i| {
            let ct = if o.mix {
                let shape = Shape::of(i, o.seed);
                // Created established (or replied); updated to the next
                // state (a TCP flow closing), or a new mark.
                let mut ct = shape.at(i, if op == Op::Update { 3 } else { 2 });
                if op == Op::Update && shape.proto != IPPROTO_TCP {
                    ct.mark = Some(1);
                }
                ct
            } else {
                flow(i, u32::from(op == Op::Update), o.ipv6)
            };
            (op, if o.labels { labelled(ct, i) } else { ct })
        })
        .collect();
    let mut socket = CtSocket::open(0, false).context("netlink socket")?;
    let sent = send(&mut socket, &requests, o.rate)?;
    println!(
        "{{\"op\":\"{}\",\"n\":{n},\"seconds\":{:.6},\"rate\":{:.0},\"errors\":{},\"end\":{:.6}}}",
        args[1],
        sent.seconds,
        f64::from(n) / sent.seconds.max(1e-9),
        sent.errors,
        sent.end
    );
    Ok(())
}

/// The realistic stream: `events` requests, each opening a flow or moving
/// one in progress to its next state (or closing it). About a thousand
/// flows are in progress at any time, as on a firewall that sees flows
/// come and go; which one moves next is drawn at random.
fn churn(events: u32, o: &Options) -> anyhow::Result<()> {
    const IN_PROGRESS: usize = 1000;
    let mut rng = mix64(o.seed) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // (flow number, its shape, the step it is at)
    let mut open: Vec<(u32, Shape, usize)> = Vec::new();
    let mut opened = 0u32;
    let (mut creates, mut updates, mut deletes) = (0u32, 0u32, 0u32);
    let mut requests = Vec::with_capacity(events as usize);
    while requests.len() < events as usize {
        let start_one = open.is_empty() || (open.len() < IN_PROGRESS && next() % 3 == 0);
        if start_one {
            let shape = Shape::of(opened, o.seed);
            requests.push((Op::Create, shape.at(opened, 0)));
            creates += 1;
            open.push((opened, shape, 0));
            opened += 1;
            continue;
        }
        let at = (next() % open.len() as u64) as usize;
        let Some(&(i, shape, step)) = open.get(at) else {
            continue;
        };
        let step = step + 1;
        let last = step + 1 >= shape.steps();
        if last && !shape.long_lived {
            requests.push((Op::Delete, shape.at(i, step)));
            deletes += 1;
        } else {
            requests.push((Op::Update, shape.at(i, step)));
            updates += 1;
        }
        if last {
            open.swap_remove(at);
        } else if let Some(entry) = open.get_mut(at) {
            entry.2 = step;
        }
    }
    let mut socket = CtSocket::open(0, false).context("netlink socket")?;
    let sent = send(&mut socket, &requests, o.rate)?;
    println!(
        "{{\"op\":\"churn\",\"n\":{events},\"seconds\":{:.6},\"rate\":{:.0},\"errors\":{},\"creates\":{creates},\"updates\":{updates},\"deletes\":{deletes},\"live\":{},\"end\":{:.6}}}",
        sent.seconds,
        f64::from(events) / sent.seconds.max(1e-9),
        sent.errors,
        creates - deletes,
        sent.end
    );
    Ok(())
}

/// The event-reading loop of `listen` and `forward`: reads conntrack
/// events for `period`, many per system call, handing each batch to
/// `batch_read` and calling `ran_dry` (then pausing 4 ms, as conntrackd
/// does) whenever the socket has no more. Returns (events, overruns).
fn read_events(
    period: Duration,
    mut batch_read: impl FnMut(&RecvBatch) -> anyhow::Result<()>,
    mut ran_dry: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(u64, u64)> {
    let socket = CtSocket::open(groups::CT_ALL, true).context("netlink socket")?;
    socket
        .set_recv_buffer_force(32 << 20)
        .context("receive buffer")?;
    let mut batch = RecvBatch::default();
    let (mut events, mut overruns) = (0u64, 0u64);
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        match socket.recv_batch(&mut batch) {
            Ok(n) => {
                events += n as u64;
                batch_read(&batch)?;
            }
            Err(RecvError::WouldBlock) => {
                ran_dry()?;
                std::thread::sleep(Duration::from_millis(4));
            }
            Err(RecvError::Overrun) => overruns += 1,
            Err(RecvError::Io(e)) => return Err(e).context("receiving events"),
        }
    }
    Ok((events, overruns))
}

/// Reads and discards conntrack events for `period`.
fn listen(period: Duration) -> anyhow::Result<()> {
    let (events, overruns) = read_events(period, |_| Ok(()), || Ok(()))?;
    println!("{{\"op\":\"listen\",\"events\":{events},\"overruns\":{overruns}}}");
    Ok(())
}

/// Bytes of each event the forwarder sends: about what a sync message
/// takes per event in `bench/` (the sync bytes divided by the events).
const FORWARDED_BYTES: usize = 86;
/// The forwarder's datagrams at most: a 1500-byte MTU less the IP and UDP
/// headers, as conntrackd fills them.
const FORWARD_DATAGRAM: usize = 1472;

fn forward(period: Duration, to: std::net::SocketAddr) -> anyhow::Result<()> {
    let link = std::net::UdpSocket::bind(("0.0.0.0", 0)).context("UDP socket")?;
    // Shared by both callbacks: the datagram being filled and the count.
    let out = std::cell::RefCell::new((Vec::with_capacity(FORWARD_DATAGRAM), 0u64));
    let send = || -> anyhow::Result<()> {
        let (datagram, sent) = &mut *out.borrow_mut();
        if !datagram.is_empty() {
            link.send_to(datagram, to).context("sending")?;
            *sent += 1;
            datagram.clear();
        }
        Ok(())
    };
    let (events, overruns) = read_events(
        period,
        |batch| {
            for event in batch.datagrams().flatten() {
                let part = event.get(..FORWARDED_BYTES).unwrap_or(event);
                if out.borrow().0.len() + part.len() > FORWARD_DATAGRAM {
                    send()?;
                }
                out.borrow_mut().0.extend_from_slice(part);
            }
            Ok(())
        },
        send,
    )?;
    let sent = out.borrow().1;
    println!(
        "{{\"op\":\"forward\",\"events\":{events},\"overruns\":{overruns},\"datagrams\":{sent}}}"
    );
    Ok(())
}

fn sink(period: Duration, port: u16) -> anyhow::Result<()> {
    let link = std::net::UdpSocket::bind(("0.0.0.0", port)).context("UDP socket")?;
    link.set_read_timeout(Some(Duration::from_millis(100)))
        .context("read timeout")?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut datagrams, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        match link.recv(&mut buf) {
            Ok(n) => {
                datagrams += 1;
                bytes += n as u64;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e).context("receiving"),
        }
    }
    println!("{{\"op\":\"sink\",\"datagrams\":{datagrams},\"bytes\":{bytes}}}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_the_shares_it_promises() {
        let shapes: Vec<Shape> = (0..100_000).map(|i| Shape::of(i, 1)).collect();
        let share = |f: &dyn Fn(&Shape) -> bool| shapes.iter().filter(|s| f(s)).count() / 1000;
        assert!((68..=72).contains(&share(&|s| s.proto == IPPROTO_TCP)));
        assert!((8..=12).contains(&share(&|s| s.ipv6)));
        assert!((18..=22).contains(&share(&|s| s.nat)));
    }

    #[test]
    fn a_short_lived_flow_ends_deleted_and_a_long_lived_one_established() {
        let tcp = Shape {
            proto: IPPROTO_TCP,
            ipv6: false,
            nat: true,
            long_lived: false,
        };
        assert_eq!(tcp.steps(), 6);
        let established = tcp.at(5, 2);
        assert_eq!(established.tcp_state(), Some(tcp_state::ESTABLISHED));
        assert_ne!(
            established.reply,
            established.orig.as_ref().map(Tuple::inverted)
        );
        let long = Shape {
            long_lived: true,
            ..tcp
        };
        assert_eq!(
            long.at(5, long.steps() - 1).tcp_state(),
            Some(tcp_state::ESTABLISHED)
        );
    }
}

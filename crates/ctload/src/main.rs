//! `ctload create|update|delete N [ipv6]`: N TCP flows (IPv4, or IPv6)
//! into the current network namespace's conntrack table as fast as the
//! kernel takes them (batched ctnetlink requests; the flows are built
//! before the clock starts).
//! Prints one JSON line: `{"op":…,"n":…,"seconds":…,"rate":…,"errors":…}`.
//!
//! `ctload listen SECONDS`: the cheapest possible event listener, for
//! comparison: it reads conntrack events (many per system call, pausing
//! 4 ms when the socket runs dry, as conntrackd does) and discards them.
//! Prints `{"op":"listen","events":…,"overruns":…}` at the end.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use anyhow::{Context, bail};
use conntrack_model::consts::{IPPROTO_TCP, status, tcp_state};
use conntrack_model::{Conntrack, TcpInfo, Tuple};
use ctnl::{CtSocket, RecvBatch, RecvError, groups, request};

/// Flow `i`: 172.16.0.0 + i -> 192.168.1.1 (or 2001:db8:ac10:: + i ->
/// 2001:db8:1::1), ports varying.
fn flow(i: u32, mark: u32, ipv6: bool) -> Conntrack {
    let (src, dst) = if ipv6 {
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
    };
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

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(op), Some(n)) = (args.get(1), args.get(2)) else {
        bail!("usage: ctload create|update|delete N [ipv6] | ctload listen SECONDS");
    };
    let ipv6 = match args.get(3).map(String::as_str) {
        None => false,
        Some("ipv6") => true,
        Some(other) => bail!("unknown family {other} (ipv6 or nothing)"),
    };
    let n: u32 = n.parse().context("N")?;
    if op == "listen" {
        return listen(std::time::Duration::from_secs(u64::from(n)));
    }
    let build: fn(&mut Vec<u8>, u32, &Conntrack) = match op.as_str() {
        "create" => request::create,
        "update" => request::update,
        "delete" => request::delete,
        other => bail!("unknown operation {other}"),
    };
    let mark = if op == "update" { 1 } else { 0 };
    let flows: Vec<Conntrack> = (0..n).map(|i| flow(i, mark, ipv6)).collect();
    let mut socket = CtSocket::open(0, false).context("netlink socket")?;
    let start = Instant::now();
    let results = socket
        .apply_batch(&flows, build)
        .context("sending requests")?;
    let seconds = start.elapsed().as_secs_f64();
    let errors = results.iter().filter(|r| r.is_err()).count();
    println!(
        "{{\"op\":\"{op}\",\"n\":{n},\"seconds\":{seconds:.6},\"rate\":{:.0},\"errors\":{errors}}}",
        f64::from(n) / seconds.max(1e-9)
    );
    Ok(())
}

/// Reads and discards conntrack events for `period`.
fn listen(period: std::time::Duration) -> anyhow::Result<()> {
    let socket = CtSocket::open(groups::CT_ALL, true).context("netlink socket")?;
    socket
        .set_recv_buffer_force(32 << 20)
        .context("receive buffer")?;
    let mut batch = RecvBatch::default();
    let (mut events, mut overruns) = (0u64, 0u64);
    let deadline = Instant::now() + period;
    while Instant::now() < deadline {
        match socket.recv_batch(&mut batch) {
            Ok(n) => events += n as u64,
            Err(RecvError::WouldBlock) => std::thread::sleep(std::time::Duration::from_millis(4)),
            Err(RecvError::Overrun) => overruns += 1,
            Err(RecvError::Io(e)) => return Err(e).context("receiving events"),
        }
    }
    println!("{{\"op\":\"listen\",\"events\":{events},\"overruns\":{overruns}}}");
    Ok(())
}

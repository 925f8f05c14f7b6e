//! `ctload create|update|delete N`: N TCP flows into the current network
//! namespace's conntrack table as fast as the kernel takes them (batched
//! ctnetlink requests; the flows are built before the clock starts).
//! Prints one JSON line: `{"op":…,"n":…,"seconds":…,"rate":…,"errors":…}`.
//!
//! `ctload listen SECONDS`: the cheapest possible event listener, for
//! comparison: it reads conntrack events (many per system call, pausing
//! 4 ms when the socket runs dry, as conntrackd does) and discards them.
//! Prints `{"op":"listen","events":…,"overruns":…}` at the end.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::{Context, bail};
use conntrack_model::consts::{IPPROTO_TCP, status, tcp_state};
use conntrack_model::{Conntrack, TcpInfo, Tuple};
use ctnl::{CtSocket, RecvBatch, RecvError, groups, request};

/// Flow `i`: 172.16.0.0 + i -> 192.168.1.1, ports varying.
fn flow(i: u32, mark: u32) -> Conntrack {
    let orig = Tuple::new(
        IpAddr::V4(Ipv4Addr::from(0xac10_0000 + i)),
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
        IPPROTO_TCP,
    )
    .with_ports(1024 + (i % 60_000) as u16, 80);
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
        bail!("usage: ctload create|update|delete N | ctload listen SECONDS");
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
    let flows: Vec<Conntrack> = (0..n).map(|i| flow(i, mark)).collect();
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

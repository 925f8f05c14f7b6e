//! Flows for tests, examples and benchmarks: one definition, so that the
//! sync tests and `examples/core_costs.rs` measure the same flows.

use std::net::{IpAddr, Ipv4Addr};

use conntrack_model::consts::{IPPROTO_TCP, status, tcp_state};
use conntrack_model::{Conntrack, TcpInfo, Tuple};

/// Flow `i`: an established TCP flow from 10.0.0.0 + i to 192.168.1.1:80,
/// as the kernel reports it (both tuples, status, timeout, mark `i`).
pub fn tcp_flow(i: u32) -> Conntrack {
    let orig = Tuple::new(
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
        IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)),
        IPPROTO_TCP,
    )
    .with_ports(1024 + (i % 50_000) as u16, 80);
    Conntrack {
        reply: Some(orig.inverted()),
        orig: Some(orig),
        status: Some(status::ASSURED | status::SEEN_REPLY | status::CONFIRMED),
        timeout: Some(300),
        mark: Some(i),
        tcp: Some(TcpInfo {
            state: Some(tcp_state::ESTABLISHED),
            ..TcpInfo::default()
        }),
        ..Conntrack::default()
    }
}

//! What the discovery helpers share: a query sent to a multicast group
//! is answered by unicast datagrams from hosts nobody knew in advance, so
//! the expected connection is "from anyone, to the querier's address
//! and port" (as the kernel's netbios-ns helper does for broadcasts).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::expectation::{EXPECT_PERMANENT, ExpectationRequest};
use crate::kind::IPPROTO_UDP;
use crate::packet::Packet;

/// Expect UDP replies from anyone to the sender of `packet`, on `port`.
pub(crate) fn replies_to_sender(packet: &Packet<'_>, port: u16) -> ExpectationRequest {
    let mut request = ExpectationRequest::new(None, packet.src, IPPROTO_UDP, port);
    request.flags = EXPECT_PERMANENT;
    request
}

/// Whether `addr` is one of `v4` or `v6`.
pub(crate) fn is_group(addr: IpAddr, v4: &[Ipv4Addr], v6: &[Ipv6Addr]) -> bool {
    match addr {
        IpAddr::V4(a) => v4.contains(&a),
        IpAddr::V6(a) => v6.contains(&a),
    }
}

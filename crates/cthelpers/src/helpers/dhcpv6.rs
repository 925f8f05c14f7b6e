//! DHCPv6 (RFC 8415): a client sends from UDP port 546 to the multicast
//! group of its servers (port 547), and a server answers by unicast to
//! the client's port 546. Expected: from anyone to the client on 546.
//! The expectation lives as long as the message type waits for an
//! answer (120 s for Solicit, 30 s for Request, 600 s for Renew, …, as
//! 1.4.7's table); a type without an answer uses the policy's timeout.
//! IPv6 and multicast destinations only.

use super::multicast::replies_to_sender;
use super::{Findings, Inspection};
use crate::flow::FlowView;
use crate::kind::IPPROTO_UDP;
use crate::packet::Packet;

const CLIENT_PORT: u16 = 546;

/// Seconds an answer to each message type (1..=13) may take; 0 = the
/// policy's `ExpectTimeout`.
const ANSWER_TIMEOUTS: [u32; 14] = [0, 120, 0, 30, 4, 600, 600, 0, 1, 1, 0, 120, 0, 0];

pub fn inspect(_flow: &FlowView, packet: &Packet<'_>) -> Inspection {
    let multicast = matches!(packet.dst, std::net::IpAddr::V6(a) if a.is_multicast());
    if packet.l4proto != IPPROTO_UDP || !multicast {
        return Ok(Findings::default());
    }
    let kind = *packet.payload.first().ok_or("DHCPv6 message empty")?;
    let timeout = *ANSWER_TIMEOUTS
        .get(usize::from(kind))
        .ok_or("unknown DHCPv6 message type")?;
    let mut request = replies_to_sender(packet, CLIENT_PORT);
    request.timeout = (timeout > 0).then_some(timeout);
    Ok(Findings::one(request))
}

//! Service Location Protocol (RFC 2608, UDP 427): a request to the
//! 239.255.255.253 group (ff02::116 or ff05::116 for IPv6, RFC 3111) is
//! answered by unicast to the requester's port. Expected: from anyone to
//! the requester. The header must be SLPv1 or SLPv2 and carry a request
//! (function 1 SrvRqst, 6 AttrRqst, 9 SrvTypeRqst).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::multicast::{is_group, replies_to_sender};
use super::{Findings, Inspection};
use crate::flow::FlowView;
use crate::kind::IPPROTO_UDP;
use crate::packet::Packet;

const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 253);
const GROUPS_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x116),
    Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 0, 0x116),
];

pub fn inspect(_flow: &FlowView, packet: &Packet<'_>) -> Inspection {
    if packet.l4proto != IPPROTO_UDP || !is_group(packet.dst, &[GROUP_V4], &GROUPS_V6) {
        return Ok(Findings::default());
    }
    let header = packet.payload.get(..2).ok_or("SLP header truncated")?;
    if header[0] != 1 && header[0] != 2 {
        return Err("SLP version is neither 1 nor 2");
    }
    match header[1] {
        1 | 6 | 9 => Ok(Findings::one(replies_to_sender(packet, packet.sport))),
        _ => Ok(Findings::default()),
    }
}

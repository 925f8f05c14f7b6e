//! Multicast DNS (RFC 6762, UDP 5353): a query to 224.0.0.251 or
//! ff02::fb from another port than 5353 (a "legacy" one-shot query) is
//! answered by unicast to the querier's port. Expected: from anyone to
//! the querier's address and port. Only queries (QR bit clear) count.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::multicast::{is_group, replies_to_sender};
use super::{Findings, Inspection};
use crate::flow::FlowView;
use crate::kind::IPPROTO_UDP;
use crate::packet::Packet;

const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
const DNS_HEADER: usize = 12;

pub fn inspect(_flow: &FlowView, packet: &Packet<'_>) -> Inspection {
    if packet.l4proto != IPPROTO_UDP || !is_group(packet.dst, &[GROUP_V4], &[GROUP_V6]) {
        return Ok(Findings::default());
    }
    let header = packet
        .payload
        .get(..DNS_HEADER)
        .ok_or("mDNS header truncated")?;
    let is_response = header[2] & 0x80 != 0;
    if is_response {
        return Ok(Findings::default());
    }
    Ok(Findings::one(replies_to_sender(packet, packet.sport)))
}

//! TFTP (RFC 1350, UDP 69): a read or write request opens the transfer,
//! which the server answers from a new port. The expected connection is
//! the reply direction of the request's flow with any source port, as
//! the kernel's helper expects it.

use super::{Findings, Inspection};
use crate::expectation::ExpectationRequest;
use crate::flow::FlowView;
use crate::kind::IPPROTO_UDP;
use crate::packet::Packet;

const OPCODE_READ: u16 = 1;
const OPCODE_WRITE: u16 = 2;
/// DATA, ACK, ERROR, OACK (RFC 2347): valid, nothing to expect.
const LAST_OPCODE: u16 = 6;

pub fn inspect(flow: &FlowView, packet: &Packet<'_>) -> Inspection {
    if packet.l4proto != IPPROTO_UDP {
        return Ok(Findings::default());
    }
    let opcode = packet
        .payload
        .first_chunk::<2>()
        .map(|b| u16::from_be_bytes(*b))
        .ok_or("TFTP opcode truncated")?;
    match opcode {
        OPCODE_READ | OPCODE_WRITE => {
            let reply = &flow.reply;
            Ok(Findings::one(ExpectationRequest::new(
                Some(reply.src),
                reply.dst,
                IPPROTO_UDP,
                reply.dport,
            )))
        }
        3..=LAST_OPCODE => Ok(Findings::default()),
        _ => Err("unknown TFTP opcode"),
    }
}

//! SANE network scanning (saned, TCP 6566): after the client's
//! `SANE_NET_START` request (an 8-byte message: RPC code 7 and a handle)
//! the server's reply (status, a zero half-word, a port) opens a data
//! connection from the client to the server on that port. As the
//! kernel's helper: only once the connection is established, a request
//! is exactly 8 bytes, and the reply must report success.
//!
//! State per flow: whether a `SANE_NET_START` awaits its reply.

use super::{Findings, Inspection};
use crate::expectation::ExpectationRequest;
use crate::flow::{Direction, FlowView};
use crate::kind::IPPROTO_TCP;
use crate::packet::Packet;

const SANE_NET_START: u32 = 7;
const SANE_STATUS_SUCCESS: u32 = 0;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaneState {
    start_requested: bool,
}

pub fn inspect(flow: &FlowView, packet: &Packet<'_>, state: &mut SaneState) -> Inspection {
    let data = packet.payload;
    if packet.l4proto != IPPROTO_TCP || !flow.established || data.is_empty() {
        return Ok(Findings::default());
    }
    match flow.dir {
        Direction::Original => {
            if let Some(request) = data.first_chunk::<8>().filter(|_| data.len() == 8) {
                let code = u32::from_be_bytes([request[0], request[1], request[2], request[3]]);
                state.start_requested = code == SANE_NET_START;
            }
            Ok(Findings::default())
        }
        Direction::Reply => {
            if !std::mem::take(&mut state.start_requested) {
                return Ok(Findings::default());
            }
            let reply = data
                .first_chunk::<8>()
                .ok_or("SANE_NET_START reply too short")?;
            let status = u32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]);
            let zero = u16::from_be_bytes([reply[4], reply[5]]);
            let port = u16::from_be_bytes([reply[6], reply[7]]);
            if status != SANE_STATUS_SUCCESS || zero != 0 || port == 0 {
                return Ok(Findings::default());
            }
            Ok(Findings::one(ExpectationRequest::new(
                Some(flow.orig.src),
                flow.orig.dst,
                IPPROTO_TCP,
                port,
            )))
        }
    }
}

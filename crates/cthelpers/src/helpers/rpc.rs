//! ONC RPC portmapper (RFC 1833 version 2, over RFC 5531 RPC): a client's
//! `PMAPPROC_GETPORT` call asks the portmapper for the port of a program,
//! and the accepted reply gives it. The expected connection is from the
//! client to the server on that port, over the transport the call asked
//! for; it stays after it matched (NF_CT_EXPECT_PERMANENT), as 1.4.7's.
//! Over TCP, messages start with the 4-byte record mark, and nothing is
//! read before the connection is established. No expectation is made for
//! the portmapper's own port (as 1.4.9 fixed).
//!
//! State per flow: the call waiting for its reply (XID and transport).

use super::{Findings, Inspection};
use crate::expectation::{EXPECT_PERMANENT, ExpectationRequest};
use crate::flow::{Direction, FlowView};
use crate::kind::{IPPROTO_TCP, IPPROTO_UDP};
use crate::packet::Packet;

const CALL: u32 = 0;
const REPLY: u32 = 1;
const RPC_VERSION: u32 = 2;
const PMAP_PROGRAM: u32 = 100_000;
const PMAP_VERSION: u32 = 2;
const PMAPPROC_GETPORT: u32 = 3;
const MSG_ACCEPTED: u32 = 0;
const SUCCESS: u32 = 0;
/// Largest credential or verifier body (RFC 5531).
const MAX_AUTH_BYTES: usize = 400;

/// The GETPORT call waiting for its reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpcState {
    pending: Option<PendingCall>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingCall {
    xid: u32,
    transport: u8,
}

/// Reads big-endian words.
struct Words<'a> {
    bytes: &'a [u8],
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Result<u32, &'static str> {
        let (word, rest) = self
            .bytes
            .split_first_chunk::<4>()
            .ok_or("RPC message truncated")?;
        self.bytes = rest;
        Ok(u32::from_be_bytes(*word))
    }

    /// Skips an `opaque_auth` (flavour, length, body padded to 4).
    fn skip_auth(&mut self) -> Result<(), &'static str> {
        let _flavour = self.next()?;
        let len = usize::try_from(self.next()?).map_err(|_| "RPC auth too long")?;
        if len > MAX_AUTH_BYTES {
            return Err("RPC auth body over 400 bytes");
        }
        let padded = len.div_ceil(4) * 4;
        self.bytes = self.bytes.get(padded..).ok_or("RPC auth truncated")?;
        Ok(())
    }
}

pub fn inspect(flow: &FlowView, packet: &Packet<'_>, state: &mut RpcState) -> Inspection {
    let mut message = packet.payload;
    if packet.l4proto == IPPROTO_TCP {
        if !flow.established || message.is_empty() {
            return Ok(Findings::default());
        }
        message = message.get(4..).ok_or("RPC record mark truncated")?;
    }
    let mut words = Words { bytes: message };
    let xid = words.next()?;
    let kind = words.next()?;
    match (kind, flow.dir) {
        (CALL, Direction::Original) => {
            state.pending =
                getport_call(&mut words)?.map(|transport| PendingCall { xid, transport });
            Ok(Findings::default())
        }
        (REPLY, Direction::Reply) => {
            let Some(call) = state.pending.filter(|c| c.xid == xid) else {
                return Ok(Findings::default());
            };
            state.pending = None;
            let Some(port) = getport_reply(&mut words)? else {
                return Ok(Findings::default());
            };
            if port == flow.orig.dport {
                // The portmapper's own port: nothing to open.
                return Ok(Findings::default());
            }
            let mut request =
                ExpectationRequest::new(Some(flow.orig.src), flow.orig.dst, call.transport, port);
            request.flags = EXPECT_PERMANENT;
            Ok(Findings::one(request))
        }
        _ => {
            state.pending = None;
            Ok(Findings::default())
        }
    }
}

/// The transport a GETPORT call asks about; None for any other call.
fn getport_call(words: &mut Words<'_>) -> Result<Option<u8>, &'static str> {
    let rpc_version = words.next()?;
    let program = words.next()?;
    let version = words.next()?;
    let procedure = words.next()?;
    if rpc_version != RPC_VERSION
        || program != PMAP_PROGRAM
        || version != PMAP_VERSION
        || procedure != PMAPPROC_GETPORT
    {
        return Ok(None);
    }
    words.skip_auth()?;
    words.skip_auth()?;
    // struct mapping { prog, vers, prot, port }: exactly that is left.
    if words.bytes.len() != 16 {
        return Err("GETPORT call of the wrong size");
    }
    let _program = words.next()?;
    let _version = words.next()?;
    let transport = words.next()?;
    let port = words.next()?;
    let transport = match transport {
        6 => IPPROTO_TCP,
        17 => IPPROTO_UDP,
        _ => return Err("GETPORT for a transport other than TCP or UDP"),
    };
    if port != 0 {
        return Err("GETPORT call with a port");
    }
    Ok(Some(transport))
}

/// The port an accepted, successful GETPORT reply gives; None for a
/// refusal or "not registered" (port 0).
fn getport_reply(words: &mut Words<'_>) -> Result<Option<u16>, &'static str> {
    if words.next()? != MSG_ACCEPTED {
        return Ok(None);
    }
    words.skip_auth()?;
    if words.bytes.len() != 8 {
        return Err("GETPORT reply of the wrong size");
    }
    if words.next()? != SUCCESS {
        return Ok(None);
    }
    let port = words.next()?;
    match u16::try_from(port) {
        Ok(0) => Ok(None),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err("GETPORT reply with a port above 65535"),
    }
}

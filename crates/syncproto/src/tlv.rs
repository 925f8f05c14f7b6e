//! The sync protocol's TLV: `nta_len` (u16 BE, 4 + payload, unpadded),
//! `nta_id` (u16 BE), payload, zero padding to 4 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_model::Tuple;

use crate::ct::PayloadError;
use crate::header::{Header, MsgType, VERSION};

/// Appends one message: the header, then what `fill` writes, then the
/// total length patched into the header.
pub(crate) fn message(
    out: &mut Vec<u8>,
    kind: MsgType,
    flags: u8,
    seq: u32,
    fill: impl FnOnce(&mut TlvWriter<'_>),
) {
    let start = out.len();
    Header {
        version: VERSION,
        kind,
        flags,
        len: 0,
        seq,
    }
    .write(out);
    fill(&mut TlvWriter { out });
    let len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

pub(crate) struct TlvWriter<'a> {
    pub(crate) out: &'a mut Vec<u8>,
}

impl TlvWriter<'_> {
    pub(crate) fn attr(&mut self, id: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.out.extend_from_slice(&len.to_be_bytes());
        self.out.extend_from_slice(&id.to_be_bytes());
        self.out.extend_from_slice(payload);
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
    pub(crate) fn u8(&mut self, id: u16, v: u8) {
        self.attr(id, &[v]);
    }
    pub(crate) fn be32(&mut self, id: u16, v: u32) {
        self.attr(id, &v.to_be_bytes());
    }
    pub(crate) fn string(&mut self, id: u16, s: &str) {
        let mut p = s.as_bytes().to_vec();
        p.push(0);
        self.attr(id, &p);
    }
    pub(crate) fn ports(&mut self, id: u16, s: u16, d: u16) {
        let mut b = [0u8; 4];
        b[..2].copy_from_slice(&s.to_be_bytes());
        b[2..].copy_from_slice(&d.to_be_bytes());
        self.attr(id, &b);
    }
    /// Source and destination of `t` as the v4 or v6 attribute.
    pub(crate) fn addrs(&mut self, v4: u16, v6: u16, t: &Tuple) {
        match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&s.octets());
                b[4..].copy_from_slice(&d.octets());
                self.attr(v4, &b);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut b = [0u8; 32];
                b[..16].copy_from_slice(&s.octets());
                b[16..].copy_from_slice(&d.octets());
                self.attr(v6, &b);
            }
            // Mixed families cannot come from the kernel; send nothing.
            _ => {}
        }
    }
}

/// Iterates over `(id, nta_len, payload)`; a length out of bounds ends
/// the iteration with an error.
pub(crate) fn attributes(
    body: &[u8],
) -> impl Iterator<Item = Result<(u16, usize, &[u8]), PayloadError>> {
    let mut rest = body;
    std::iter::from_fn(move || {
        // As 1.4.7's receiver: an attribute needs more than 4 bytes left;
        // up to 4 bytes at the end of the message are ignored
        // (docs/wire-protocol.md §6).
        if rest.len() <= 4 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let id = u16::from_be_bytes([rest[2], rest[3]]);
        if len < 4 || len > rest.len() {
            rest = &[];
            return Some(Err(PayloadError::Truncated));
        }
        let payload = &rest[4..len];
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
        Some(Ok((id, len, payload)))
    })
}

pub(crate) fn ip4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}
pub(crate) fn ip6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(a))
}
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

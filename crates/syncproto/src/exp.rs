//! Expectation state messages (types 3–5), docs/wire-protocol.md §5.7.

use std::net::IpAddr;

use conntrack_model::{Expect, ExpectNat, Tuple, consts};

use crate::ct::{EncodeOptions, PayloadError};
use crate::header::{HEADER_LEN, MsgType};
use crate::tlv::{TlvWriter, attributes, be16, be32, ip4, ip6};

const MASTER_IPV4: u16 = 0;
const MASTER_IPV6: u16 = 1;
const MASTER_L4PROTO: u16 = 2;
const MASTER_PORT: u16 = 3;
const EXPECT_IPV4: u16 = 4;
const EXPECT_IPV6: u16 = 5;
const EXPECT_L4PROTO: u16 = 6;
const EXPECT_PORT: u16 = 7;
const MASK_IPV4: u16 = 8;
const MASK_IPV6: u16 = 9;
const MASK_L4PROTO: u16 = 10;
const MASK_PORT: u16 = 11;
const TIMEOUT: u16 = 12;
const FLAGS: u16 = 13;
const CLASS: u16 = 14;
const NAT_IPV4: u16 = 15;
const NAT_PORT: u16 = 16;
const NAT_L4PROTO: u16 = 17;
const NAT_DIR: u16 = 18;
const HELPER_NAME: u16 = 19;
const FN: u16 = 20;

fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        consts::IPPROTO_TCP | consts::IPPROTO_UDP | consts::IPPROTO_SCTP | consts::IPPROTO_DCCP
    )
}

/// Appends one expectation message. Returns false (writing nothing) if the
/// expectation lacks its master or expected tuple.
pub fn encode_expect(
    kind: MsgType,
    flags: u8,
    seq: u32,
    exp: &Expect,
    opts: EncodeOptions,
    out: &mut Vec<u8>,
) -> bool {
    let (Some(master), Some(tuple)) = (&exp.master, &exp.tuple) else {
        return false;
    };
    crate::tlv::message(out, kind, flags, seq, |w| {
        let ports = has_ports(master.l4proto);
        let group = |w: &mut TlvWriter<'_>, t: &Tuple, ids: [u16; 4]| {
            w.addrs(ids[0], ids[1], t);
            w.u8(ids[2], t.l4proto);
            if ports {
                w.ports(ids[3], t.src_port.unwrap_or(0), t.dst_port.unwrap_or(0));
            }
        };
        group(
            w,
            master,
            [MASTER_IPV4, MASTER_IPV6, MASTER_L4PROTO, MASTER_PORT],
        );
        group(
            w,
            tuple,
            [EXPECT_IPV4, EXPECT_IPV6, EXPECT_L4PROTO, EXPECT_PORT],
        );
        if let Some(mask) = &exp.mask {
            group(w, mask, [MASK_IPV4, MASK_IPV6, MASK_L4PROTO, MASK_PORT]);
        }
        if !opts.omit_timeout
            && let Some(t) = exp.timeout
        {
            w.be32(TIMEOUT, t);
        }
        w.be32(FLAGS, exp.flags.unwrap_or(0));
        if let Some(c) = exp.class {
            w.be32(CLASS, c);
        }
        if let Some(nat) = &exp.nat
            && let Some(t) = &nat.tuple
        {
            if let (IpAddr::V4(s), IpAddr::V4(d)) = (t.src, t.dst) {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&s.octets());
                b[4..].copy_from_slice(&d.octets());
                w.attr(NAT_IPV4, &b);
            }
            w.u8(NAT_L4PROTO, t.l4proto);
            if ports {
                w.ports(NAT_PORT, t.src_port.unwrap_or(0), t.dst_port.unwrap_or(0));
            }
            w.be32(NAT_DIR, nat.dir.unwrap_or(0));
        }
        if let Some(h) = exp
            .helper
            .as_ref()
            .filter(|h| h.len() <= crate::ct::MAX_HELPER_NAME)
        {
            w.string(HELPER_NAME, h);
        }
        if let Some(f) = exp.func.as_ref().filter(|f| f.len() < 28) {
            w.string(FN, f);
        }
    });
    true
}

#[derive(Default)]
struct Group {
    addrs: Option<(IpAddr, IpAddr)>,
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
}

impl Group {
    fn tuple(&self) -> Option<Tuple> {
        let (s, d) = self.addrs?;
        let mut t = Tuple::new(s, d, self.proto.unwrap_or(0));
        if let Some((a, b)) = self.ports {
            t = t.with_ports(a, b);
        }
        Some(t)
    }
}

/// Decodes an expectation message (header included).
pub fn decode_expect(message: &[u8]) -> Result<Expect, PayloadError> {
    let body = message.get(HEADER_LEN..).ok_or(PayloadError::Truncated)?;
    let mut exp = Expect::default();
    let (mut master, mut tuple, mut mask, mut nat) = (
        Group::default(),
        Group::default(),
        Group::default(),
        Group::default(),
    );
    let mut nat_dir = None;
    for attr in attributes(body) {
        let (id, len, p) = attr?;
        let exact = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(PayloadError::BadLength(id))
            }
        };
        let group = match id {
            0..=3 => Some(&mut master),
            4..=7 => Some(&mut tuple),
            8..=11 => Some(&mut mask),
            _ => None,
        };
        if let Some(g) = group {
            match id % 4 {
                0 => {
                    exact(12)?;
                    g.addrs = Some((ip4(p), ip4(&p[4..])));
                }
                1 => {
                    exact(36)?;
                    g.addrs = Some((ip6(p), ip6(&p[16..])));
                }
                2 => {
                    exact(5)?;
                    g.proto = Some(p[0]);
                }
                _ => {
                    exact(8)?;
                    g.ports = Some((be16(p), be16(&p[2..])));
                }
            }
            continue;
        }
        match id {
            TIMEOUT => {
                exact(8)?;
                exp.timeout = Some(be32(p));
            }
            FLAGS => {
                exact(8)?;
                exp.flags = Some(be32(p));
            }
            CLASS => {
                exact(8)?;
                exp.class = Some(be32(p));
            }
            NAT_IPV4 => {
                exact(12)?;
                nat.addrs = Some((ip4(p), ip4(&p[4..])));
            }
            NAT_PORT => {
                exact(8)?;
                nat.ports = Some((be16(p), be16(&p[2..])));
            }
            NAT_L4PROTO => {
                exact(5)?;
                nat.proto = Some(p[0]);
            }
            NAT_DIR => {
                exact(8)?;
                nat_dir = Some(be32(p));
            }
            HELPER_NAME | FN => {
                let max = if id == HELPER_NAME { 16 } else { 32 };
                if len > max {
                    return Err(PayloadError::BadLength(id));
                }
                let end = p.iter().position(|b| *b == 0).unwrap_or(p.len());
                let text = String::from_utf8_lossy(&p[..end]).into_owned();
                if id == HELPER_NAME {
                    exp.helper = Some(text);
                } else {
                    exp.func = Some(text);
                }
            }
            other => return Err(PayloadError::UnknownAttribute(other)),
        }
    }
    exp.master = master.tuple();
    exp.tuple = Some(tuple.tuple().ok_or(PayloadError::NoAddress)?);
    exp.mask = mask.tuple();
    if nat.addrs.is_some() || nat_dir.is_some() {
        exp.nat = Some(ExpectNat {
            dir: nat_dir,
            tuple: nat.tuple(),
        });
    }
    Ok(exp)
}

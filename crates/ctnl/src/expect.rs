//! `CTA_EXPECT_*` attributes of an expectation message.

use conntrack_model::{Expect, ExpectNat, RawAttr};

use crate::DecodeError;
use crate::conntrack::{decode_tuple, encode_tuple};
use crate::nla::{NlaWriter, attributes};

pub const CTA_EXPECT_MASTER: u16 = 1;
pub const CTA_EXPECT_TUPLE: u16 = 2;
pub const CTA_EXPECT_MASK: u16 = 3;
pub const CTA_EXPECT_TIMEOUT: u16 = 4;
pub const CTA_EXPECT_ID: u16 = 5;
pub const CTA_EXPECT_HELP_NAME: u16 = 6;
pub const CTA_EXPECT_ZONE: u16 = 7;
pub const CTA_EXPECT_FLAGS: u16 = 8;
pub const CTA_EXPECT_CLASS: u16 = 9;
pub const CTA_EXPECT_NAT: u16 = 10;
pub const CTA_EXPECT_FN: u16 = 11;
const CTA_EXPECT_NAT_DIR: u16 = 1;
const CTA_EXPECT_NAT_TUPLE: u16 = 2;

/// Decodes the attributes of an expectation message (after the nfgenmsg).
pub fn decode_expect(buf: &[u8]) -> Result<Expect, DecodeError> {
    let mut exp = Expect::default();
    for nla in attributes(buf) {
        let nla = nla?;
        match nla.kind {
            CTA_EXPECT_MASTER => exp.master = Some(decode_tuple(nla.payload)?),
            CTA_EXPECT_TUPLE => exp.tuple = Some(decode_tuple(nla.payload)?),
            CTA_EXPECT_MASK => exp.mask = Some(decode_tuple(nla.payload)?),
            CTA_EXPECT_TIMEOUT => exp.timeout = Some(nla.be32()?),
            CTA_EXPECT_ID => exp.id = Some(nla.be32()?),
            CTA_EXPECT_HELP_NAME => exp.helper = Some(nla.string()?),
            CTA_EXPECT_ZONE => exp.zone = Some(nla.be16()?),
            CTA_EXPECT_FLAGS => exp.flags = Some(nla.be32()?),
            CTA_EXPECT_CLASS => exp.class = Some(nla.be32()?),
            CTA_EXPECT_NAT => {
                let mut nat = ExpectNat {
                    dir: None,
                    tuple: None,
                };
                for inner in attributes(nla.payload) {
                    let inner = inner?;
                    match inner.kind {
                        CTA_EXPECT_NAT_DIR => nat.dir = Some(inner.be32()?),
                        CTA_EXPECT_NAT_TUPLE => nat.tuple = Some(decode_tuple(inner.payload)?),
                        _ => {}
                    }
                }
                exp.nat = Some(nat);
            }
            CTA_EXPECT_FN => exp.func = Some(nla.string()?),
            _ => exp.unknown.push(RawAttr {
                kind: nla.kind,
                flags: nla.flags,
                payload: nla.payload.to_vec(),
            }),
        }
    }
    crate::conntrack::unknown_in_nests(
        buf,
        &mut exp.unknown_nested,
        crate::conntrack::expect_known_children,
    )?;
    Ok(exp)
}

/// Encodes every attribute present in `exp`, unknown nested ones back in
/// their nests.
pub fn encode_expect(w: &mut NlaWriter<'_>, exp: &Expect) {
    w.with_extras(&exp.unknown_nested, |w| encode_known(w, exp));
}

fn encode_known(w: &mut NlaWriter<'_>, exp: &Expect) {
    if let Some(t) = &exp.master {
        encode_tuple(w, CTA_EXPECT_MASTER, t);
    }
    if let Some(t) = &exp.tuple {
        encode_tuple(w, CTA_EXPECT_TUPLE, t);
    }
    if let Some(t) = &exp.mask {
        encode_tuple(w, CTA_EXPECT_MASK, t);
    }
    if let Some(v) = exp.timeout {
        w.be32(CTA_EXPECT_TIMEOUT, v);
    }
    if let Some(v) = exp.id {
        w.be32(CTA_EXPECT_ID, v);
    }
    if let Some(h) = &exp.helper {
        w.string(CTA_EXPECT_HELP_NAME, h);
    }
    if let Some(v) = exp.zone {
        w.be16(CTA_EXPECT_ZONE, v);
    }
    if let Some(v) = exp.flags {
        w.be32(CTA_EXPECT_FLAGS, v);
    }
    if let Some(v) = exp.class {
        w.be32(CTA_EXPECT_CLASS, v);
    }
    if let Some(nat) = &exp.nat {
        w.nested(CTA_EXPECT_NAT, |w| {
            if let Some(d) = nat.dir {
                w.be32(CTA_EXPECT_NAT_DIR, d);
            }
            if let Some(t) = &nat.tuple {
                encode_tuple(w, CTA_EXPECT_NAT_TUPLE, t);
            }
        });
    }
    if let Some(f) = &exp.func {
        w.string(CTA_EXPECT_FN, f);
    }
    for attr in &exp.unknown {
        w.bytes(attr.kind | attr.flags, &attr.payload);
    }
}

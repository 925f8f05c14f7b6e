//! Netlink attributes (TLV): a bounds-checked reader and a writer.

use conntrack_model::NestedAttr;

use crate::DecodeError;

/// `NLA_F_NESTED`.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_F_NET_BYTEORDER`.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// One attribute borrowed from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Nla<'a> {
    /// Type without the flag bits.
    pub kind: u16,
    /// The flag bits of the type field.
    pub flags: u16,
    pub payload: &'a [u8],
}

/// Iterates over the attributes of `buf`; stops with an error at the first
/// malformed header.
pub fn attributes(buf: &[u8]) -> NlaIter<'_> {
    NlaIter { buf }
}

#[derive(Debug, Clone)]
pub struct NlaIter<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for NlaIter<'a> {
    type Item = Result<Nla<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < 4 {
            // Trailing padding shorter than a header is tolerated.
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([self.buf[0], self.buf[1]]));
        let raw_kind = u16::from_ne_bytes([self.buf[2], self.buf[3]]);
        if len < 4 || len > self.buf.len() {
            self.buf = &[];
            return Some(Err(DecodeError::BadAttributeLength));
        }
        let payload = &self.buf[4..len];
        let advance = align4(len).min(self.buf.len());
        self.buf = &self.buf[advance..];
        Some(Ok(Nla {
            kind: raw_kind & NLA_TYPE_MASK,
            flags: raw_kind & !NLA_TYPE_MASK,
            payload,
        }))
    }
}

pub fn align4(len: usize) -> usize {
    (len + 3) & !3
}

impl Nla<'_> {
    pub fn u8(&self) -> Result<u8, DecodeError> {
        self.payload
            .first()
            .copied()
            .ok_or(DecodeError::BadAttributeLength)
    }
    pub fn be16(&self) -> Result<u16, DecodeError> {
        let b: [u8; 2] = self.fixed()?;
        Ok(u16::from_be_bytes(b))
    }
    pub fn be32(&self) -> Result<u32, DecodeError> {
        let b: [u8; 4] = self.fixed()?;
        Ok(u32::from_be_bytes(b))
    }
    pub fn be64(&self) -> Result<u64, DecodeError> {
        let b: [u8; 8] = self.fixed()?;
        Ok(u64::from_be_bytes(b))
    }
    pub fn fixed<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        self.payload
            .get(..N)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::BadAttributeLength)
    }
    /// A NUL-terminated string (the NUL is optional).
    pub fn string(&self) -> Result<String, DecodeError> {
        let end = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.payload.len());
        String::from_utf8(self.payload[..end].to_vec()).map_err(|_| DecodeError::BadString)
    }
}

/// Appends attributes to a message buffer.
#[derive(Debug)]
pub struct NlaWriter<'a> {
    pub buf: &'a mut Vec<u8>,
    /// Kinds of the nests being written, outermost first.
    path: [u16; MAX_DEPTH],
    depth: usize,
    /// Unknown attributes to put back into the nests they came from.
    extras: &'a [NestedAttr],
}

const MAX_DEPTH: usize = 4;

impl<'a> NlaWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> NlaWriter<'a> {
        NlaWriter {
            buf,
            path: [0; MAX_DEPTH],
            depth: 0,
            extras: &[],
        }
    }

    /// Writes with `extras` re-inserted at the end of their nests.
    pub fn with_extras(&mut self, extras: &[NestedAttr], fill: impl FnOnce(&mut NlaWriter<'_>)) {
        fill(&mut NlaWriter {
            buf: self.buf,
            path: self.path,
            depth: self.depth,
            extras,
        });
    }
}

impl NlaWriter<'_> {
    pub fn bytes(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        // Attribute payloads in ctnetlink are far below 64 KiB.
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
    }
    pub fn u8(&mut self, kind: u16, v: u8) {
        self.bytes(kind, &[v]);
    }
    pub fn be16(&mut self, kind: u16, v: u16) {
        self.bytes(kind, &v.to_be_bytes());
    }
    pub fn be32(&mut self, kind: u16, v: u32) {
        self.bytes(kind, &v.to_be_bytes());
    }
    pub fn be64(&mut self, kind: u16, v: u64) {
        self.bytes(kind, &v.to_be_bytes());
    }
    pub fn string(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(kind, &v);
    }
    /// Writes a nested attribute whose content `fill` appends.
    pub fn nested(&mut self, kind: u16, fill: impl FnOnce(&mut NlaWriter<'_>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        let mut path = self.path;
        let depth = (self.depth + 1).min(MAX_DEPTH);
        path[depth - 1] = kind;
        let mut child = NlaWriter {
            buf: self.buf,
            path,
            depth,
            extras: self.extras,
        };
        fill(&mut child);
        for extra in self.extras {
            if extra.path.as_slice() == &path[..depth] {
                child.bytes(extra.attr.kind | extra.attr.flags, &extra.attr.payload);
            }
        }
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
}

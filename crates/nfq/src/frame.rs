//! Netlink framing shared by both subsystems: the message header, the
//! nfgenmsg that follows it, and the messages of a received datagram.

use ctnl::nla::align4;

use crate::DecodeError;

pub const NLMSG_HDRLEN: usize = 16;
pub const NFGENMSG_LEN: usize = 4;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_CREATE: u16 = 0x400;

/// `AF_UNSPEC`.
pub const AF_UNSPEC: u8 = 0;

/// One netlink message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// `nlmsg_type`: subsystem << 8 | message.
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// Everything after the netlink header.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The errno of an NLMSG_ERROR (0 for an ACK).
    pub fn errno(&self) -> Option<i32> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        let code = self.payload.first_chunk::<4>()?;
        Some(i32::from_ne_bytes(*code).wrapping_neg())
    }

    /// The nfgenmsg (family, version, res_id in host order) and the
    /// attributes after it.
    pub fn nfgen(&self) -> Result<(u8, u16, &'a [u8]), DecodeError> {
        let head = self
            .payload
            .get(..NFGENMSG_LEN)
            .ok_or(DecodeError::Truncated)?;
        let res_id = u16::from_be_bytes([head[2], head[3]]);
        Ok((head[0], res_id, &self.payload[NFGENMSG_LEN..]))
    }
}

/// The messages of a datagram; stops at the first malformed header.
pub fn frames(buf: &[u8]) -> impl Iterator<Item = Result<Frame<'_>, DecodeError>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(head) = rest.get(..NLMSG_HDRLEN) else {
            rest = &[];
            return Some(Err(DecodeError::Truncated));
        };
        let word = |i: usize| u32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let len = usize::try_from(word(0)).unwrap_or(usize::MAX);
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let frame = Frame {
            kind: u16::from_ne_bytes([head[4], head[5]]),
            flags: u16::from_ne_bytes([head[6], head[7]]),
            seq: word(8),
            pid: word(12),
            payload: &rest[NLMSG_HDRLEN..len],
        };
        rest = &rest[align4(len).min(rest.len())..];
        Some(Ok(frame))
    })
}

/// Appends one nfnetlink message (ctnetlink's builder: the header and
/// nfgenmsg are the same for every nfnetlink subsystem).
pub use ctnl::message::push_nfnl_message as push_message;

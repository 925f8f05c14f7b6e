//! Splitting a received datagram into messages with the receiver's checks
//! (docs/wire-protocol.md §7).

use crate::header::{HEADER_LEN, Header, LONG_CONTROL_LEN, VERSION};

/// Why (part of) a datagram was dropped; each maps to a `-s network`
/// counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("truncated message")]
    Truncated,
    #[error("bad message size")]
    BadSize,
    #[error("wrong protocol version")]
    BadVersion,
}

/// One message of a datagram: its header and all its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    pub header: Header,
    pub bytes: &'a [u8],
}

/// Iterates over the messages of a datagram. A framing error ends the
/// datagram (the rest is dropped), except a wrong version, which drops
/// only that message.
pub fn frames(datagram: &[u8]) -> Frames<'_> {
    Frames { rest: datagram }
}

#[derive(Debug)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Framed<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let stop = |this: &mut Self, e| {
            this.rest = &[];
            Some(Err(e))
        };
        let Some(header) = Header::parse(self.rest) else {
            return stop(self, FrameError::Truncated);
        };
        let len = usize::from(header.len);
        if len == 0 || len > self.rest.len() {
            return stop(self, FrameError::BadSize);
        }
        if header.is_long_control() {
            if self.rest.len() < LONG_CONTROL_LEN {
                return stop(self, FrameError::Truncated);
            }
            if len < LONG_CONTROL_LEN {
                return stop(self, FrameError::BadSize);
            }
        } else if len < HEADER_LEN {
            return stop(self, FrameError::BadSize);
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        if header.version != VERSION {
            return Some(Err(FrameError::BadVersion));
        }
        Some(Ok(Framed { header, bytes }))
    }
}

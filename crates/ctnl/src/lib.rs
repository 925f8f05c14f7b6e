//! ctnetlink codec: conntrack messages to and from bytes, and a netlink
//! socket for the daemon. The codec modules do no I/O.

pub mod conntrack;
pub mod expect;
pub mod message;
pub mod nla;
pub mod socket;

pub use message::{CtEvent, Message, NlHeader, groups, messages, request};
pub use socket::{CtSocket, RecvBatch, RecvError};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message shorter than its header or length field")]
    Truncated,
    #[error("attribute length out of bounds")]
    BadAttributeLength,
    #[error("attribute string is not UTF-8")]
    BadString,
    #[error("missing attribute: {0}")]
    MissingAttribute(&'static str),
}

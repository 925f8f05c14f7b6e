//! The conntrackd 1.4.x sync wire format (wire-protocol.md): the 8-byte
//! header, control messages, sequence arithmetic and datagram framing with
//! the receiver's validation counters. Pure code, no I/O.
//!
//! State-message attributes (`NTA_*`) come in a later module.

pub mod ct;
pub mod exp;
pub mod frame;
pub mod header;
pub mod seq;
mod tlv;

pub use frame::{FrameError, Framed, frames};
pub use header::{Control, Header, MsgType, flags};

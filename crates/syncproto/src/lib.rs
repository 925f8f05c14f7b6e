//! The conntrackd 1.4.x sync wire format (docs/wire-protocol.md): the 8-byte
//! header, control messages, sequence arithmetic and datagram framing with
//! the receiver's validation counters. Pure code, no I/O.
//!
//! [`stream`] cuts a TCP channel's byte stream back into messages (or
//! authenticated envelopes, which carry their length in the same place).

pub mod ct;
pub mod exp;
pub mod frame;
pub mod header;
pub mod seq;
pub mod stream;
mod tlv;

pub use frame::{FrameError, Framed, frames};
pub use header::{Control, Header, MsgType, flags};

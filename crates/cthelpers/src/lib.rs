//! User-space connection-tracking helpers, sans IO: a queued packet goes
//! in, a verdict and the expectations it calls for come out
//! (`docs/helpers.md`). Nothing here reads a clock or touches a socket:
//! time comes in with each call, outputs are drained with `poll_*`.
//!
//! - [`packet`] reads the IP and TCP/UDP headers of a queued packet;
//! - [`flow`] knows the flow a packet belongs to, its direction, and the
//!   helper's state kept with it;
//! - [`helpers`] has one module per protocol, each a parser from payload
//!   to expectation requests;
//! - [`engine`] ties them together with the policies and the counters.

pub mod engine;
pub mod expectation;
pub mod flow;
pub mod fuzzing;
pub mod helpers;
pub mod kind;
pub mod packet;
mod text;

pub use engine::{Engine, HelperCounters, HelperSetup, Output, Verdict};
pub use expectation::ExpectationRequest;
pub use kind::{HelperKind, Policy};

/// Why a payload could not be used. Always counted, never fatal: the
/// packet is accepted without an expectation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet shorter than its IP header")]
    ShortIpHeader,
    #[error("not an IPv4 or IPv6 packet")]
    NotIp,
    #[error("not a TCP or UDP packet")]
    NotTcpOrUdp,
    #[error("packet shorter than its transport header")]
    ShortTransportHeader,
    #[error("{0}")]
    Payload(&'static str),
}

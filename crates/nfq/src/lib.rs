//! Codecs for two nfnetlink subsystems, and a socket for them:
//!
//! - [`queue`]: nfnetlink_queue (NFQUEUE): binding a queue, its
//!   parameters, the packets the kernel queues and the verdicts;
//! - [`cthelper`]: nfnetlink_cthelper: registering a user-space helper
//!   stub in the kernel, with its queue and expectation policy.
//!
//! The codec modules do no I/O; [`socket`] does. Attributes are read and
//! written with `ctnl`'s netlink attribute code. Formats:
//! `docs/helpers.md`.

pub mod cthelper;
pub mod frame;
pub mod queue;
pub mod socket;

pub use socket::{QueueBatch, QueueSocket};

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message shorter than its header or length field")]
    Truncated,
    #[error("not a message of this subsystem")]
    WrongSubsystem,
    #[error("missing attribute: {0}")]
    MissingAttribute(&'static str),
    #[error(transparent)]
    Attribute(#[from] ctnl::DecodeError),
}

/// The `nfq_decode` fuzz target's body (`fuzz/`): every message of a
/// datagram decoded as a queued packet and as a helper stub; a stub
/// that decodes is re-encoded and decodes to the same stub.
pub fn fuzz_decode(data: &[u8]) {
    for frame in frame::frames(data).flatten() {
        let _ = frame.errno();
        if let Ok(packet) = queue::decode_packet(&frame) {
            let _ = packet.conntrack();
        }
        if let Ok(stub) = cthelper::decode_stub(&frame) {
            let mut again = Vec::new();
            cthelper::new_stub(&mut again, frame.seq, &stub);
            let reread = frame::frames(&again)
                .next()
                .and_then(Result::ok)
                .map(|f| cthelper::decode_stub(&f));
            assert_eq!(
                reread,
                Some(Ok(stub)),
                "a decoded stub re-encodes to itself"
            );
        }
    }
}

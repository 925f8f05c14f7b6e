//! One module per helper protocol. Each is a parser: from the payload of
//! one packet, its flow and the state kept with the flow, to the
//! expectations the packet announces. A payload it cannot make sense of
//! is an error, counted by the engine; it never panics.

pub mod amanda;
pub mod dhcpv6;
pub mod ftp;
pub mod mdns;
pub mod rpc;
pub mod sane;
pub mod slp;
pub mod ssdp;
pub mod tftp;
pub mod tns;

mod multicast;

use crate::expectation::ExpectationRequest;
use crate::flow::FlowView;
use crate::kind::HelperKind;
use crate::packet::Packet;

/// The per-flow state of whichever helper runs on the flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HelperState {
    #[default]
    None,
    Ftp(ftp::FtpState),
    Rpc(rpc::RpcState),
    Sane(sane::SaneState),
    Tns(tns::TnsState),
}

/// What a packet told a helper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Expectations to create.
    pub expectations: Vec<ExpectationRequest>,
    /// Expectations the packet announced that the helper's policy does
    /// not allow (an FTP PORT naming another host, …).
    pub refused: u32,
}

impl Findings {
    pub(crate) fn one(request: ExpectationRequest) -> Findings {
        Findings {
            expectations: vec![request],
            refused: 0,
        }
    }

    pub(crate) fn refused() -> Findings {
        Findings {
            expectations: Vec::new(),
            refused: 1,
        }
    }
}

/// Result of inspecting one packet.
pub type Inspection = Result<Findings, &'static str>;

/// Runs the helper `kind` on a packet of `flow`.
pub fn inspect(
    kind: HelperKind,
    flow: &FlowView,
    packet: &Packet<'_>,
    state: &mut HelperState,
) -> Inspection {
    match kind {
        HelperKind::Ftp => ftp::inspect(
            flow,
            packet,
            with_state(state, HelperState::Ftp, |s| {
                if let HelperState::Ftp(f) = s {
                    Some(f)
                } else {
                    None
                }
            }),
        ),
        HelperKind::Rpc => rpc::inspect(
            flow,
            packet,
            with_state(state, HelperState::Rpc, |s| {
                if let HelperState::Rpc(r) = s {
                    Some(r)
                } else {
                    None
                }
            }),
        ),
        HelperKind::Sane => sane::inspect(
            flow,
            packet,
            with_state(state, HelperState::Sane, |s| {
                if let HelperState::Sane(r) = s {
                    Some(r)
                } else {
                    None
                }
            }),
        ),
        HelperKind::Tns => tns::inspect(
            flow,
            packet,
            with_state(state, HelperState::Tns, |s| {
                if let HelperState::Tns(r) = s {
                    Some(r)
                } else {
                    None
                }
            }),
        ),
        HelperKind::Tftp => tftp::inspect(flow, packet),
        HelperKind::Amanda => amanda::inspect(flow, packet),
        HelperKind::Dhcpv6 => dhcpv6::inspect(flow, packet),
        HelperKind::Mdns => mdns::inspect(flow, packet),
        HelperKind::Slp => slp::inspect(flow, packet),
        HelperKind::Ssdp => ssdp::inspect(flow, packet),
    }
}

/// The helper's own state in `state`, (re)initialised if the flow held
/// none or another helper's.
fn with_state<T: Default>(
    state: &mut HelperState,
    wrap: fn(T) -> HelperState,
    get: fn(&mut HelperState) -> Option<&mut T>,
) -> &mut T {
    if get(state).is_none() {
        *state = wrap(T::default());
    }
    match get(state) {
        Some(inner) => inner,
        None => unreachable!("the state was just set to this helper's"),
    }
}

//! From the `Helper` section to what the runtime sets up: per `Type`,
//! the engine's setup (helper, family, transport, queue, policy) and the
//! kernel stub that routes the helped flows to that queue.

use conntrackd_config::{HelperL3, HelperL4, HelperSection};
use cthelpers::engine::{AF_INET, AF_INET6};
use cthelpers::kind::{IPPROTO_TCP, IPPROTO_UDP};
use cthelpers::{HelperKind, HelperSetup, Policy};
use nfq::cthelper::{HelperStub, STATUS_ENABLED, StubPolicy};

/// One configured helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedHelper {
    pub setup: HelperSetup,
    /// `QueueLen`, if written.
    pub queue_len: Option<u32>,
    /// The kernel stub (with its private data length when `Setup on`).
    pub stub: HelperStub,
}

/// A `Type` the runtime cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Unknown `{0}' helper")]
    UnknownHelper(String),
    #[error("the `{name}' helper does not serve {l4}")]
    WrongTransport { name: String, l4: &'static str },
    #[error("`QueueNum' {0} of helper `{1}' is above 65535")]
    QueueNumTooLarge(u32, String),
}

/// The helpers of a section, in file order.
pub fn plan(section: &HelperSection) -> Result<Vec<PlannedHelper>, PlanError> {
    section
        .types
        .iter()
        .map(|t| {
            let kind = HelperKind::from_name(&t.name)
                .ok_or_else(|| PlanError::UnknownHelper(t.name.clone()))?;
            let (l4proto, l4) = match t.l4 {
                HelperL4::Tcp => (IPPROTO_TCP, "tcp"),
                HelperL4::Udp => (IPPROTO_UDP, "udp"),
            };
            if !kind.serves(l4proto) {
                return Err(PlanError::WrongTransport {
                    name: t.name.clone(),
                    l4,
                });
            }
            // 1.4.7: QueueNum 0 when not written.
            let queue = t.queue_num.unwrap_or(0);
            let queue_num = u16::try_from(queue)
                .map_err(|_| PlanError::QueueNumTooLarge(queue, t.name.clone()))?;
            let family = match t.l3 {
                HelperL3::Inet => AF_INET,
                HelperL3::Inet6 => AF_INET6,
            };
            let mut policy = kind.default_policy();
            for p in &t.policies {
                policy = Policy {
                    expect_max: p.expect_max.unwrap_or(policy.expect_max),
                    expect_timeout: p.expect_timeout.unwrap_or(policy.expect_timeout),
                };
            }
            Ok(PlannedHelper {
                setup: HelperSetup {
                    kind,
                    family,
                    l4proto,
                    queue_num,
                    policy,
                },
                queue_len: t.queue_len,
                stub: HelperStub {
                    name: kind.name().to_owned(),
                    l3num: u16::from(family),
                    l4num: l4proto,
                    queue_num: Some(u32::from(queue_num)),
                    policies: vec![StubPolicy {
                        name: kind.name().to_owned(),
                        expect_max: policy.expect_max,
                        expect_timeout: policy.expect_timeout,
                    }],
                    priv_data_len: section.setup.then_some(kind.private_data_len()),
                    status: Some(STATUS_ENABLED),
                },
            })
        })
        .collect()
}

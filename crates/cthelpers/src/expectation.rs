//! What a helper asks for: a connection to let in, related to its master
//! flow. The source port of an expected connection is never known, so it
//! is always a wildcard; the source address may be one too (replies to a
//! multicast query come from anyone).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_model::{Expect, Tuple};

use crate::flow::Endpoints;

/// `NF_CT_EXPECT_PERMANENT`: the expectation stays after it matched.
pub const EXPECT_PERMANENT: u32 = 0x1;

/// An expectation as a helper computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectationRequest {
    /// Source address of the expected connection; None = any.
    pub src: Option<IpAddr>,
    pub dst: IpAddr,
    pub l4proto: u8,
    pub dport: u16,
    /// `NF_CT_EXPECT_*` flags.
    pub flags: u32,
    /// A lifetime the protocol dictates (seconds), overriding the
    /// policy's `ExpectTimeout`.
    pub timeout: Option<u32>,
}

impl ExpectationRequest {
    /// To `dst:dport` over `l4proto` from `src` (any port).
    pub fn new(src: Option<IpAddr>, dst: IpAddr, l4proto: u8, dport: u16) -> Self {
        ExpectationRequest {
            src,
            dst,
            l4proto,
            dport,
            flags: 0,
            timeout: None,
        }
    }

    /// The ctnetlink expectation for `master` (its original direction):
    /// expected tuple, mask, timeout, helper name.
    pub fn to_expect(&self, master: &Endpoints, helper: &str, timeout: u32) -> Expect {
        let unspecified = match self.dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let all_ones = match self.dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        };
        let tuple = Tuple::new(self.src.unwrap_or(unspecified), self.dst, self.l4proto)
            .with_ports(0, self.dport);
        let mask = Tuple::new(
            if self.src.is_some() {
                all_ones
            } else {
                unspecified
            },
            all_ones,
            self.l4proto,
        )
        .with_ports(0, 0xffff);
        Expect {
            master: Some(master.to_tuple()),
            tuple: Some(tuple),
            mask: Some(mask),
            timeout: Some(self.timeout.unwrap_or(timeout)),
            helper: Some(helper.to_owned()),
            flags: (self.flags != 0).then_some(self.flags),
            ..Expect::default()
        }
    }
}

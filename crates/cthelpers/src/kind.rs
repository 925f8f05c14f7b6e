//! The helpers conntrackd 1.4.7 ships, with the facts each carries: the
//! transports it serves, its default expectation policy and the size of
//! its per-flow data in the kernel (`docs/helpers.md` lists them).

/// IANA protocol numbers.
pub const IPPROTO_TCP: u8 = 6;
/// IANA protocol numbers.
pub const IPPROTO_UDP: u8 = 17;

/// One helper protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HelperKind {
    Amanda,
    Dhcpv6,
    Ftp,
    Mdns,
    Rpc,
    Sane,
    Slp,
    Ssdp,
    Tftp,
    Tns,
}

/// An expectation policy: how many expectations a master flow may have
/// at once, and how long each lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `ExpectMax`; 0 = no limit, as in the kernel.
    pub expect_max: u32,
    /// `ExpectTimeout`, seconds.
    pub expect_timeout: u32,
}

impl HelperKind {
    /// Every helper, in name order.
    pub const ALL: [HelperKind; 10] = [
        HelperKind::Amanda,
        HelperKind::Dhcpv6,
        HelperKind::Ftp,
        HelperKind::Mdns,
        HelperKind::Rpc,
        HelperKind::Sane,
        HelperKind::Slp,
        HelperKind::Ssdp,
        HelperKind::Tftp,
        HelperKind::Tns,
    ];

    /// The helper of that name (`Type NAME …`).
    pub fn from_name(name: &str) -> Option<HelperKind> {
        HelperKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its name, also the name of its one policy and of the kernel helper
    /// stub it registers.
    pub fn name(self) -> &'static str {
        match self {
            HelperKind::Amanda => "amanda",
            HelperKind::Dhcpv6 => "dhcpv6",
            HelperKind::Ftp => "ftp",
            HelperKind::Mdns => "mdns",
            HelperKind::Rpc => "rpc",
            HelperKind::Sane => "sane",
            HelperKind::Slp => "slp",
            HelperKind::Ssdp => "ssdp",
            HelperKind::Tftp => "tftp",
            HelperKind::Tns => "tns",
        }
    }

    /// Whether it serves that transport (1.4.7 looks a helper up by name
    /// and transport; rpc and ssdp serve both).
    pub fn serves(self, l4proto: u8) -> bool {
        match self {
            HelperKind::Ftp | HelperKind::Sane | HelperKind::Tns => l4proto == IPPROTO_TCP,
            HelperKind::Rpc | HelperKind::Ssdp => l4proto == IPPROTO_TCP || l4proto == IPPROTO_UDP,
            HelperKind::Amanda
            | HelperKind::Dhcpv6
            | HelperKind::Mdns
            | HelperKind::Slp
            | HelperKind::Tftp => l4proto == IPPROTO_UDP,
        }
    }

    /// The policy used where the configuration gives none (the values
    /// 1.4.7's helper modules carry).
    pub fn default_policy(self) -> Policy {
        let (expect_max, expect_timeout) = match self {
            HelperKind::Amanda => (3, 180),
            HelperKind::Mdns => (8, 30),
            HelperKind::Slp => (8, 16),
            HelperKind::Ssdp => (8, 300),
            HelperKind::Dhcpv6
            | HelperKind::Ftp
            | HelperKind::Rpc
            | HelperKind::Sane
            | HelperKind::Tftp
            | HelperKind::Tns => (1, 300),
        };
        Policy {
            expect_max,
            expect_timeout,
        }
    }

    /// Bytes of per-flow data the kernel keeps for it when the helper
    /// stub is created (`Setup on`, NFCTH_PRIV_DATA_LEN), as 1.4.7's.
    pub fn private_data_len(self) -> u32 {
        match self {
            HelperKind::Ftp => 24,
            HelperKind::Rpc => 16,
            HelperKind::Sane => 4,
            HelperKind::Tns => 1,
            _ => 0,
        }
    }

    /// The server's well-known port: used to tell client from server
    /// when a flow is first seen in the middle (no conntrack attached).
    pub fn server_port(self) -> u16 {
        match self {
            HelperKind::Amanda => 10080,
            HelperKind::Dhcpv6 => 547,
            HelperKind::Ftp => 21,
            HelperKind::Mdns => 5353,
            HelperKind::Rpc => 111,
            HelperKind::Sane => 6566,
            HelperKind::Slp => 427,
            HelperKind::Ssdp => 1900,
            HelperKind::Tftp => 69,
            HelperKind::Tns => 1521,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_configuration_list() {
        for kind in HelperKind::ALL {
            assert_eq!(HelperKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(HelperKind::from_name("sip"), None);
    }
}

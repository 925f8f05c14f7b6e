//! Numeric constants of the conntrack world (Linux uapi values).

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_DCCP: u8 = 33;
pub const IPPROTO_GRE: u8 = 47;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;
pub const IPPROTO_UDPLITE: u8 = 136;

/// `IPS_*` status bits.
pub mod status {
    pub const EXPECTED: u32 = 0x1;
    pub const SEEN_REPLY: u32 = 0x2;
    pub const ASSURED: u32 = 0x4;
    pub const CONFIRMED: u32 = 0x8;
    pub const SRC_NAT: u32 = 0x10;
    pub const DST_NAT: u32 = 0x20;
    pub const SEQ_ADJUST: u32 = 0x40;
    pub const SRC_NAT_DONE: u32 = 0x80;
    pub const DST_NAT_DONE: u32 = 0x100;
    pub const DYING: u32 = 0x200;
    pub const FIXED_TIMEOUT: u32 = 0x400;
    pub const TEMPLATE: u32 = 0x800;
    pub const UNTRACKED: u32 = 0x1000;
    pub const HELPER: u32 = 0x2000;
    pub const OFFLOAD: u32 = 0x4000;
    pub const HW_OFFLOAD: u32 = 0x8000;
}

/// TCP conntrack states (`enum tcp_conntrack`).
pub mod tcp_state {
    pub const NONE: u8 = 0;
    pub const SYN_SENT: u8 = 1;
    pub const SYN_RECV: u8 = 2;
    pub const ESTABLISHED: u8 = 3;
    pub const FIN_WAIT: u8 = 4;
    pub const CLOSE_WAIT: u8 = 5;
    pub const LAST_ACK: u8 = 6;
    pub const TIME_WAIT: u8 = 7;
    pub const CLOSE: u8 = 8;
    /// Also printed as `SYN_SENT2` by libnetfilter_conntrack.
    pub const LISTEN: u8 = 9;
    /// Names as printed by libnetfilter_conntrack, indexed by state.
    pub const NAMES: [&str; 10] = [
        "NONE",
        "SYN_SENT",
        "SYN_RECV",
        "ESTABLISHED",
        "FIN_WAIT",
        "CLOSE_WAIT",
        "LAST_ACK",
        "TIME_WAIT",
        "CLOSE",
        "SYN_SENT2",
    ];
}

/// TCP flag bits of `nf_ct_tcp_flags` (`IP_CT_TCP_FLAG_*`).
pub mod tcp_flags {
    pub const WINDOW_SCALE: u8 = 0x01;
    pub const SACK_PERM: u8 = 0x02;
    pub const CLOSE_INIT: u8 = 0x04;
    pub const BE_LIBERAL: u8 = 0x08;
    pub const DATA_UNACKNOWLEDGED: u8 = 0x10;
    pub const MAXACK_SET: u8 = 0x20;
}

/// SCTP conntrack states (`enum sctp_conntrack`).
pub mod sctp_state {
    pub const NAMES: [&str; 10] = [
        "NONE",
        "CLOSED",
        "COOKIE_WAIT",
        "COOKIE_ECHOED",
        "ESTABLISHED",
        "SHUTDOWN_SENT",
        "SHUTDOWN_RECD",
        "SHUTDOWN_ACK_SENT",
        "HEARTBEAT_SENT",
        "HEARTBEAT_ACKED",
    ];
}

/// DCCP conntrack states (`enum ct_dccp_states`).
pub mod dccp_state {
    pub const NAMES: [&str; 10] = [
        "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT",
        "IGNORE", "INVALID",
    ];
}

/// Expectation flags (`NF_CT_EXPECT_*`).
pub mod expect_flags {
    pub const PERMANENT: u32 = 0x1;
    pub const INACTIVE: u32 = 0x2;
    pub const USERSPACE: u32 = 0x4;
}

/// Name of a layer-4 protocol as libnetfilter_conntrack prints it.
pub fn l4proto_name(proto: u8) -> &'static str {
    match proto {
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        IPPROTO_UDPLITE => "udplite",
        IPPROTO_ICMP => "icmp",
        IPPROTO_ICMPV6 => "icmpv6",
        IPPROTO_SCTP => "sctp",
        IPPROTO_GRE => "gre",
        IPPROTO_DCCP => "dccp",
        _ => "unknown",
    }
}

/// True for the protocols whose tuples carry source and destination ports.
pub fn has_ports(proto: u8) -> bool {
    matches!(
        proto,
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP | IPPROTO_GRE
    )
}

/// True for ICMP and ICMPv6.
pub fn is_icmp(proto: u8) -> bool {
    matches!(proto, IPPROTO_ICMP | IPPROTO_ICMPV6)
}

/// The ICMP type of the reply to a request type, as the kernel inverts it;
/// types without a reply map to themselves.
pub fn icmp_inverse_type(proto: u8, icmp_type: u8) -> u8 {
    let pairs: &[(u8, u8)] = match proto {
        IPPROTO_ICMP => &[(8, 0), (13, 14), (15, 16), (17, 18)],
        IPPROTO_ICMPV6 => &[(128, 129), (139, 140)],
        _ => &[],
    };
    for &(request, reply) in pairs {
        if icmp_type == request {
            return reply;
        }
        if icmp_type == reply {
            return request;
        }
    }
    icmp_type
}

//! The flat conntrack and expectation objects shared by every part of the
//! daemon: the ctnetlink codec fills them, the sync codec fills them, the
//! caches store and merge them, the renderers print them.
//!
//! The shape follows libnetfilter_conntrack's object: every attribute is
//! optional, and a newer event overwrites only the attributes it carries
//! (see [`Conntrack::merge`]).  Attributes the codecs do not understand are
//! kept in `unknown` so that nothing is lost on a round trip.

use std::net::IpAddr;

pub mod consts;

/// One direction of a flow: addresses, layer-4 protocol and its
/// protocol-specific identifiers.
#[derive(Debug, Clone)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IANA protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP, 33 DCCP, 47 GRE, 136 UDPLite).
    pub l4proto: u8,
    /// TCP/UDP/UDPLite/SCTP/DCCP port; for GRE the source key.
    pub src_port: Option<u16>,
    /// TCP/UDP/UDPLite/SCTP/DCCP port; for GRE the destination key.
    pub dst_port: Option<u16>,
    pub icmp_id: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// Per-direction zone (`CTA_TUPLE_ZONE`), rarely used.
    pub zone: Option<u16>,
}

/// An address as 128 bits plus its family, for hashing and comparing.
fn addr_bits(addr: &IpAddr) -> (u128, bool) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(*a)), false),
        IpAddr::V6(a) => (u128::from(*a), true),
    }
}

impl Tuple {
    /// Every field but the addresses, packed into one number (94 bits):
    /// tuples are cache keys, and hashing and comparing them field by
    /// field was a measurable part of the per-event cost.
    fn packed_rest(&self) -> u128 {
        fn opt16(v: Option<u16>) -> u128 {
            v.map_or(0, |v| (1 << 16) | u128::from(v))
        }
        fn opt8(v: Option<u8>) -> u128 {
            v.map_or(0, |v| (1 << 8) | u128::from(v))
        }
        u128::from(self.l4proto)
            | opt16(self.src_port) << 8
            | opt16(self.dst_port) << 25
            | opt16(self.icmp_id) << 42
            | opt16(self.zone) << 59
            | opt8(self.icmp_type) << 76
            | opt8(self.icmp_code) << 85
    }
}

impl PartialEq for Tuple {
    fn eq(&self, other: &Self) -> bool {
        self.packed_rest() == other.packed_rest()
            && addr_bits(&self.src) == addr_bits(&other.src)
            && addr_bits(&self.dst) == addr_bits(&other.dst)
    }
}

impl Eq for Tuple {}

impl std::hash::Hash for Tuple {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                state.write_u64(u64::from(u32::from(s)) << 32 | u64::from(u32::from(d)))
            }
            (s, d) => {
                state.write_u128(addr_bits(&s).0);
                state.write_u128(addr_bits(&d).0);
            }
        }
        state.write_u128(self.packed_rest());
    }
}

impl Tuple {
    /// A tuple with addresses and protocol only.
    pub fn new(src: IpAddr, dst: IpAddr, l4proto: u8) -> Self {
        Tuple {
            src,
            dst,
            l4proto,
            src_port: None,
            dst_port: None,
            icmp_id: None,
            icmp_type: None,
            icmp_code: None,
            zone: None,
        }
    }

    /// Same tuple with ports set.
    pub fn with_ports(mut self, src_port: u16, dst_port: u16) -> Self {
        self.src_port = Some(src_port);
        self.dst_port = Some(dst_port);
        self
    }

    /// Same tuple with ICMP identifiers set.
    pub fn with_icmp(mut self, id: u16, icmp_type: u8, code: u8) -> Self {
        self.icmp_id = Some(id);
        self.icmp_type = Some(icmp_type);
        self.icmp_code = Some(code);
        self
    }

    /// `AF_INET` (2) or `AF_INET6` (10), from the source address.
    pub fn family(&self) -> u8 {
        match self.src {
            IpAddr::V4(_) => consts::AF_INET,
            IpAddr::V6(_) => consts::AF_INET6,
        }
    }

    /// The exact inverse: addresses and ports swapped.  This is the reply
    /// tuple conntrackd synthesises when it creates a flow in the kernel.
    /// ICMP echo requests invert to echo replies as the kernel expects.
    pub fn inverted(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            l4proto: self.l4proto,
            src_port: self.dst_port,
            dst_port: self.src_port,
            icmp_id: self.icmp_id,
            icmp_type: self
                .icmp_type
                .map(|t| consts::icmp_inverse_type(self.l4proto, t)),
            icmp_code: self.icmp_code,
            zone: self.zone,
        }
    }
}

/// TCP protocol information (`CTA_PROTOINFO_TCP`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// `consts::tcp_state` value.
    pub state: Option<u8>,
    pub wscale_orig: Option<u8>,
    pub wscale_reply: Option<u8>,
    pub flags_orig: Option<TcpFlags>,
    pub flags_reply: Option<TcpFlags>,
}

/// `nf_ct_tcp_flags`: the flags byte and the mask byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub flags: u8,
    pub mask: u8,
}

/// SCTP protocol information (`CTA_PROTOINFO_SCTP`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SctpInfo {
    pub state: Option<u8>,
    pub vtag_orig: Option<u32>,
    pub vtag_reply: Option<u32>,
}

/// DCCP protocol information (`CTA_PROTOINFO_DCCP`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DccpInfo {
    pub state: Option<u8>,
    pub role: Option<u8>,
    pub handshake_seq: Option<u64>,
}

/// A NAT manipulation (`CTA_NAT_SRC` / `CTA_NAT_DST`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatRange {
    pub min_ip: Option<IpAddr>,
    pub max_ip: Option<IpAddr>,
    pub min_port: Option<u16>,
    pub max_port: Option<u16>,
}

/// TCP sequence adjustment of one direction (`CTA_SEQ_ADJ_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqAdj {
    pub correction_pos: Option<u32>,
    pub offset_before: Option<u32>,
    pub offset_after: Option<u32>,
}

/// Packet and byte counters of one direction (`CTA_COUNTERS_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

/// Start and stop timestamps in nanoseconds (`CTA_TIMESTAMP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub start: Option<u64>,
    pub stop: Option<u64>,
}

/// SYN proxy state (`CTA_SYNPROXY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synproxy {
    pub isn: u32,
    pub its: u32,
    pub tsoff: u32,
}

/// An unknown attribute inside a nest: `path` holds the kinds of the
/// enclosing nests, outermost first (e.g. `[CTA_PROTOINFO, CTA_PROTOINFO_TCP]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NestedAttr {
    pub path: Vec<u16>,
    pub attr: RawAttr,
}

/// An attribute a decoder did not understand, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttr {
    /// Attribute type without the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits.
    pub kind: u16,
    /// The flag bits that were set on the type (`NLA_F_*`), kept for re-encoding.
    pub flags: u16,
    pub payload: Vec<u8>,
}

/// One connection-tracking entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conntrack {
    pub orig: Option<Tuple>,
    pub reply: Option<Tuple>,
    /// Master conntrack of a related flow (`CTA_TUPLE_MASTER`).
    pub master: Option<Tuple>,
    /// `consts::status` bits.
    pub status: Option<u32>,
    /// Remaining lifetime in seconds.
    pub timeout: Option<u32>,
    pub mark: Option<u32>,
    pub mark_mask: Option<u32>,
    pub secmark: Option<u32>,
    pub zone: Option<u16>,
    pub use_count: Option<u32>,
    pub id: Option<u32>,
    pub tcp: Option<TcpInfo>,
    pub sctp: Option<SctpInfo>,
    pub dccp: Option<DccpInfo>,
    /// Helper name (`CTA_HELP` / `CTA_HELP_NAME`).
    pub helper: Option<String>,
    pub nat_src: Option<NatRange>,
    pub nat_dst: Option<NatRange>,
    pub seq_adj_orig: Option<SeqAdj>,
    pub seq_adj_reply: Option<SeqAdj>,
    pub counters_orig: Option<Counters>,
    pub counters_reply: Option<Counters>,
    pub timestamp: Option<Timestamp>,
    pub secctx: Option<String>,
    pub labels: Option<Vec<u8>>,
    pub labels_mask: Option<Vec<u8>>,
    pub synproxy: Option<Synproxy>,
    pub status_mask: Option<u32>,
    /// Top-level attributes not understood by the decoder.
    pub unknown: Vec<RawAttr>,
    /// Attributes not understood inside known nests, with their path.
    pub unknown_nested: Vec<NestedAttr>,
}

/// The identity of a flow in a cache: its original tuple and zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub orig: Tuple,
    pub zone: u16,
}

impl Conntrack {
    /// The cache key, if the flow has an original tuple.
    pub fn key(&self) -> Option<FlowKey> {
        let orig = self.orig.clone()?;
        Some(FlowKey {
            orig,
            zone: self.zone.unwrap_or(0),
        })
    }

    /// `AF_INET`/`AF_INET6` of the original tuple.
    pub fn family(&self) -> Option<u8> {
        self.orig.as_ref().map(Tuple::family)
    }

    /// Layer-4 protocol of the original tuple.
    pub fn l4proto(&self) -> Option<u8> {
        self.orig.as_ref().map(|t| t.l4proto)
    }

    /// TCP state, if this is a TCP flow whose state is known.
    pub fn tcp_state(&self) -> Option<u8> {
        self.tcp.as_ref().and_then(|t| t.state)
    }

    /// True if every bit of `bits` is set in the status.
    pub fn has_status(&self, bits: u32) -> bool {
        self.status.is_some_and(|s| s & bits == bits)
    }

    /// Overwrites the attributes that `newer` carries and keeps the others,
    /// as libnetfilter_conntrack's copy does when an event updates a cached
    /// object.
    pub fn merge(&mut self, newer: &Conntrack) {
        fn take<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
            if src.is_some() {
                dst.clone_from(src);
            }
        }
        take(&mut self.orig, &newer.orig);
        take(&mut self.reply, &newer.reply);
        take(&mut self.master, &newer.master);
        take(&mut self.status, &newer.status);
        take(&mut self.timeout, &newer.timeout);
        take(&mut self.mark, &newer.mark);
        take(&mut self.mark_mask, &newer.mark_mask);
        take(&mut self.secmark, &newer.secmark);
        take(&mut self.zone, &newer.zone);
        take(&mut self.use_count, &newer.use_count);
        take(&mut self.id, &newer.id);
        merge_tcp(&mut self.tcp, &newer.tcp);
        take(&mut self.sctp, &newer.sctp);
        take(&mut self.dccp, &newer.dccp);
        take(&mut self.helper, &newer.helper);
        take(&mut self.nat_src, &newer.nat_src);
        take(&mut self.nat_dst, &newer.nat_dst);
        take(&mut self.seq_adj_orig, &newer.seq_adj_orig);
        take(&mut self.seq_adj_reply, &newer.seq_adj_reply);
        take(&mut self.counters_orig, &newer.counters_orig);
        take(&mut self.counters_reply, &newer.counters_reply);
        take(&mut self.timestamp, &newer.timestamp);
        take(&mut self.secctx, &newer.secctx);
        take(&mut self.labels, &newer.labels);
        take(&mut self.labels_mask, &newer.labels_mask);
        take(&mut self.synproxy, &newer.synproxy);
        take(&mut self.status_mask, &newer.status_mask);
        for attr in &newer.unknown {
            match self.unknown.iter_mut().find(|a| a.kind == attr.kind) {
                Some(old) => *old = attr.clone(),
                None => self.unknown.push(attr.clone()),
            }
        }
        if !newer.unknown_nested.is_empty() {
            self.unknown_nested.clone_from(&newer.unknown_nested);
        }
    }

    /// Drops the packet and byte counters (conntrackd strips them from
    /// cached objects on NEW events and dumps).
    pub fn strip_counters(&mut self) {
        self.counters_orig = None;
        self.counters_reply = None;
    }
}

fn merge_tcp(dst: &mut Option<TcpInfo>, src: &Option<TcpInfo>) {
    let Some(src) = src else { return };
    let dst = dst.get_or_insert_with(TcpInfo::default);
    if src.state.is_some() {
        dst.state = src.state;
    }
    if src.wscale_orig.is_some() {
        dst.wscale_orig = src.wscale_orig;
    }
    if src.wscale_reply.is_some() {
        dst.wscale_reply = src.wscale_reply;
    }
    if src.flags_orig.is_some() {
        dst.flags_orig = src.flags_orig;
    }
    if src.flags_reply.is_some() {
        dst.flags_reply = src.flags_reply;
    }
}

/// NAT of an expectation (`CTA_EXPECT_NAT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectNat {
    pub dir: Option<u32>,
    pub tuple: Option<Tuple>,
}

/// One expectation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    pub master: Option<Tuple>,
    pub tuple: Option<Tuple>,
    pub mask: Option<Tuple>,
    pub timeout: Option<u32>,
    pub id: Option<u32>,
    pub helper: Option<String>,
    pub zone: Option<u16>,
    /// `consts::expect_flags` bits.
    pub flags: Option<u32>,
    pub class: Option<u32>,
    pub nat: Option<ExpectNat>,
    /// Expectation function name (`CTA_EXPECT_FN`).
    pub func: Option<String>,
    pub unknown: Vec<RawAttr>,
    /// Attributes not understood inside known nests, with their path.
    pub unknown_nested: Vec<NestedAttr>,
}

/// The identity of an expectation in a cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExpectKey {
    pub tuple: Tuple,
    pub zone: u16,
}

impl Expect {
    /// The cache key, if the expectation has an expected tuple.
    pub fn key(&self) -> Option<ExpectKey> {
        Some(ExpectKey {
            tuple: self.tuple.clone()?,
            zone: self.zone.unwrap_or(0),
        })
    }

    /// Overwrites the attributes that `newer` carries.
    pub fn merge(&mut self, newer: &Expect) {
        fn take<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
            if src.is_some() {
                dst.clone_from(src);
            }
        }
        take(&mut self.master, &newer.master);
        take(&mut self.tuple, &newer.tuple);
        take(&mut self.mask, &newer.mask);
        take(&mut self.timeout, &newer.timeout);
        take(&mut self.id, &newer.id);
        take(&mut self.helper, &newer.helper);
        take(&mut self.zone, &newer.zone);
        take(&mut self.flags, &newer.flags);
        take(&mut self.class, &newer.class);
        take(&mut self.nat, &newer.nat);
        take(&mut self.func, &newer.func);
        for attr in &newer.unknown {
            match self.unknown.iter_mut().find(|a| a.kind == attr.kind) {
                Some(old) => *old = attr.clone(),
                None => self.unknown.push(attr.clone()),
            }
        }
        if !newer.unknown_nested.is_empty() {
            self.unknown_nested.clone_from(&newer.unknown_nested);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::hash::BuildHasher;
    use std::net::Ipv4Addr;

    /// The fields as a plain tuple, compared the derived way.
    type Fields = (
        IpAddr,
        IpAddr,
        u8,
        Option<u16>,
        Option<u16>,
        Option<u16>,
        Option<u8>,
        Option<u8>,
        Option<u16>,
    );

    fn fields(t: &Tuple) -> Fields {
        (
            t.src,
            t.dst,
            t.l4proto,
            t.src_port,
            t.dst_port,
            t.icmp_id,
            t.icmp_type,
            t.icmp_code,
            t.zone,
        )
    }

    fn tuples() -> impl Strategy<Value = Tuple> {
        // Few distinct values per field, so that equal tuples and tuples
        // differing in one field both come up often.
        let addr = prop_oneof![
            (0u8..3).prop_map(|n| IpAddr::from([10, 0, 0, n])),
            (0u8..3).prop_map(|n| IpAddr::from([0, 0, 0, 0, 0, 0, 0, u16::from(n)])),
        ];
        let o16 = proptest::option::of(0u16..3);
        let o8 = proptest::option::of(0u8..3);
        (
            addr.clone(),
            addr,
            0u8..3,
            o16.clone(),
            o16.clone(),
            o16.clone(),
            o8.clone(),
            o8,
            o16,
        )
            .prop_map(|(src, dst, l4proto, sp, dp, id, ty, code, zone)| Tuple {
                src,
                dst,
                l4proto,
                src_port: sp,
                dst_port: dp,
                icmp_id: id,
                icmp_type: ty,
                icmp_code: code,
                zone,
            })
    }

    proptest! {
        #[test]
        fn tuple_equality_is_field_equality_and_equal_tuples_hash_alike(
            a in tuples(),
            other in tuples(),
            keep in proptest::collection::vec(proptest::bool::weighted(0.8), 9),
        ) {
            // b is a with some fields taken from other: often equal to a.
            let pick = |i: usize| keep[i];
            let b = Tuple {
                src: if pick(0) { a.src } else { other.src },
                dst: if pick(1) { a.dst } else { other.dst },
                l4proto: if pick(2) { a.l4proto } else { other.l4proto },
                src_port: if pick(3) { a.src_port } else { other.src_port },
                dst_port: if pick(4) { a.dst_port } else { other.dst_port },
                icmp_id: if pick(5) { a.icmp_id } else { other.icmp_id },
                icmp_type: if pick(6) { a.icmp_type } else { other.icmp_type },
                icmp_code: if pick(7) { a.icmp_code } else { other.icmp_code },
                zone: if pick(8) { a.zone } else { other.zone },
            };
            prop_assert_eq!(a == b, fields(&a) == fields(&b));
            if a == b {
                let s = std::collections::hash_map::RandomState::new();
                prop_assert_eq!(s.hash_one(&a), s.hash_one(&b));
            }
        }
    }

    #[test]
    fn a_v4_address_differs_from_the_v6_address_with_the_same_bits() {
        let v4 = Tuple::new(IpAddr::from([0, 0, 0, 1]), IpAddr::from([0, 0, 0, 2]), 6);
        let v6 = Tuple::new(
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]),
            IpAddr::from([0, 0, 0, 0, 0, 0, 0, 2]),
            6,
        );
        assert_ne!(v4, v6);
    }

    fn tcp_flow() -> Conntrack {
        Conntrack {
            orig: Some(
                Tuple::new(
                    Ipv4Addr::new(10, 0, 0, 1).into(),
                    Ipv4Addr::new(10, 0, 0, 2).into(),
                    consts::IPPROTO_TCP,
                )
                .with_ports(1000, 80),
            ),
            status: Some(consts::status::ASSURED),
            mark: Some(7),
            tcp: Some(TcpInfo {
                state: Some(consts::tcp_state::ESTABLISHED),
                wscale_orig: Some(7),
                ..TcpInfo::default()
            }),
            ..Conntrack::default()
        }
    }

    #[test]
    fn merge_overwrites_present_and_keeps_absent() {
        let mut cached = tcp_flow();
        let update = Conntrack {
            mark: Some(9),
            tcp: Some(TcpInfo {
                state: Some(consts::tcp_state::FIN_WAIT),
                ..TcpInfo::default()
            }),
            ..Conntrack::default()
        };
        cached.merge(&update);
        assert_eq!(cached.mark, Some(9));
        assert_eq!(cached.status, Some(consts::status::ASSURED));
        assert_eq!(cached.tcp_state(), Some(consts::tcp_state::FIN_WAIT));
        assert_eq!(cached.tcp.as_ref().and_then(|t| t.wscale_orig), Some(7));
    }

    #[test]
    fn inverted_swaps_addresses_and_ports() {
        let orig = tcp_flow().orig.expect("tuple");
        let reply = orig.inverted();
        assert_eq!(reply.src, orig.dst);
        assert_eq!(reply.src_port, Some(80));
        assert_eq!(reply.inverted(), orig);
    }

    #[test]
    fn icmp_echo_inverts_to_echo_reply() {
        let t = Tuple::new(
            Ipv4Addr::new(1, 1, 1, 1).into(),
            Ipv4Addr::new(2, 2, 2, 2).into(),
            consts::IPPROTO_ICMP,
        )
        .with_icmp(5, 8, 0);
        assert_eq!(t.inverted().icmp_type, Some(0));
    }

    #[test]
    fn key_requires_original_tuple() {
        assert!(Conntrack::default().key().is_none());
        assert_eq!(tcp_flow().key().map(|k| k.zone), Some(0));
    }
}

//! A compact in-memory form for cached flows. Almost every flow a firewall
//! tracks has a plain reply tuple, a TCP state and a few numbers; IPv4
//! ones fit in a fixed 68-byte record, IPv6 ones in a boxed 116-byte one.
//! So do flows from a peer with NAT (sync messages carry the NAT address
//! and port instead of a reply tuple, so they take the reply's place).
//! Flows with connection labels (the kernel's 128-bit bitmap) take a boxed
//! record of the same shape plus the 16 bytes of labels.
//! Anything else (helpers, counters, …) is kept as the full
//! [`Conntrack`], boxed (about 770 bytes). Reading gives back exactly the
//! [`Conntrack`] that was stored.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_model::{Conntrack, FlowKey, NatRange, Synproxy, TcpFlags, TcpInfo, Tuple};

/// Presence bits of the optional numbers of a [`Small`] flow.
mod has {
    pub(super) const STATUS: u16 = 1;
    pub(super) const TIMEOUT: u16 = 1 << 1;
    pub(super) const MARK: u16 = 1 << 2;
    pub(super) const ZONE: u16 = 1 << 3;
    pub(super) const ID: u16 = 1 << 4;
    pub(super) const USE: u16 = 1 << 5;
    pub(super) const TCP: u16 = 1 << 6;
    pub(super) const TCP_STATE: u16 = 1 << 7;
    pub(super) const WSCALE_ORIG: u16 = 1 << 8;
    pub(super) const WSCALE_REPLY: u16 = 1 << 9;
    pub(super) const FLAGS_ORIG: u16 = 1 << 10;
    pub(super) const FLAGS_REPLY: u16 = 1 << 11;
    pub(super) const SYNPROXY: u16 = 1 << 12;
    pub(super) const PORTS: u16 = 1 << 13;
    pub(super) const ICMP: u16 = 1 << 14;
    pub(super) const REPLY: u16 = 1 << 15;
}

/// NAT of a flow without a reply tuple (as peers send it): the `reply`
/// slot holds the addresses (`src` SNAT, `dst` DNAT) and ports (`a`, `b`),
/// and the otherwise unused `use_count` slot says which are there, four
/// bits per side (SNAT in the low ones). Non-zero exactly when the flow has
/// NAT.
mod nat {
    pub(super) const PRESENT: u32 = 1;
    pub(super) const IP: u32 = 1 << 1;
    pub(super) const PORT: u32 = 1 << 2;
    pub(super) const DNAT_SHIFT: u32 = 4;
}

/// An address of one family, as a compact record holds it.
pub(crate) trait Addr: Copy + Default + Eq + std::fmt::Debug {
    fn of(ip: IpAddr) -> Option<Self>;
    fn ip(self) -> IpAddr;
}

impl Addr for u32 {
    fn of(ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => Some(u32::from(a)),
            IpAddr::V6(_) => None,
        }
    }

    fn ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
}

/// Bytes rather than `u128`, whose 16-byte alignment would pad the record.
impl Addr for [u8; 16] {
    fn of(ip: IpAddr) -> Option<[u8; 16]> {
        match ip {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        }
    }

    fn ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
}

/// One side's NAT as (address, port, presence bits), if it has the shape
/// a sync message gives it: one address of the flow's family and one port,
/// each optional.
fn nat_part<A: Addr>(range: &Option<NatRange>) -> Option<(A, u16, u32)> {
    let Some(r) = range else {
        return Some((A::default(), 0, 0));
    };
    let mut bits = nat::PRESENT;
    let ip = match (r.min_ip, r.max_ip) {
        (None, None) => A::default(),
        (Some(a), Some(b)) if a == b => {
            bits |= nat::IP;
            A::of(a)?
        }
        _ => return None,
    };
    let port = match (r.min_port, r.max_port) {
        (None, None) => 0,
        (Some(a), Some(b)) if a == b => {
            bits |= nat::PORT;
            a
        }
        _ => return None,
    };
    Some((ip, port, bits))
}

fn nat_range<A: Addr>(bits: u32, ip: A, port: u16) -> Option<NatRange> {
    let ip = (bits & nat::IP != 0).then(|| ip.ip());
    let port = (bits & nat::PORT != 0).then_some(port);
    (bits & nat::PRESENT != 0).then_some(NatRange {
        min_ip: ip,
        max_ip: ip,
        min_port: port,
        max_port: port,
    })
}

/// One direction of a flow: ports, or ICMP id/type/code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Dir<A> {
    src: A,
    dst: A,
    /// Source port, or the ICMP id.
    a: u16,
    /// Destination port, or ICMP type << 8 | code.
    b: u16,
}

/// The common shape of a flow, with addresses of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compact<A> {
    orig: Dir<A>,
    reply: Dir<A>,
    status: u32,
    timeout: u32,
    mark: u32,
    id: u32,
    use_count: u32,
    synproxy: [u32; 3],
    zone: u16,
    has: u16,
    l4proto: u8,
    tcp_state: u8,
    wscale: [u8; 2],
    flags: [u8; 4],
}

pub(crate) type Small = Compact<u32>;
pub(crate) type Small6 = Compact<[u8; 16]>;

/// A cached flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    Small(Small),
    /// Boxed: inline it would make every IPv4 entry as large.
    Small6(Box<Small6>),
    Labelled(Box<Labelled<u32>>),
    Labelled6(Box<Labelled<[u8; 16]>>),
    Full(Box<Conntrack>),
}

/// The tuple in compact form, if it has the plain shape.
fn dir<A: Addr>(t: &Tuple, has: &mut u16) -> Option<Dir<A>> {
    if t.zone.is_some() {
        return None;
    }
    let (src, dst) = (A::of(t.src)?, A::of(t.dst)?);
    let icmp = (t.icmp_id, t.icmp_type, t.icmp_code);
    let (a, b, kind) = match ((t.src_port, t.dst_port), icmp) {
        ((None, None), (None, None, None)) => (0, 0, 0),
        ((Some(s), Some(d)), (None, None, None)) => (s, d, has::PORTS),
        ((None, None), (Some(id), Some(ty), Some(code))) => {
            (id, u16::from(ty) << 8 | u16::from(code), has::ICMP)
        }
        _ => return None,
    };
    // Both directions must have the same shape.
    if *has & (has::PORTS | has::ICMP) != 0 && *has & (has::PORTS | has::ICMP) != kind {
        return None;
    }
    *has |= kind;
    Some(Dir { src, dst, a, b })
}

fn tuple<A: Addr>(d: &Dir<A>, l4proto: u8, has: u16) -> Tuple {
    let t = Tuple::new(d.src.ip(), d.dst.ip(), l4proto);
    if has & has::PORTS != 0 {
        t.with_ports(d.a, d.b)
    } else if has & has::ICMP != 0 {
        t.with_icmp(d.a, (d.b >> 8) as u8, d.b as u8)
    } else {
        t
    }
}

/// Bytes of the kernel's label bitmap (`CTA_LABELS`: 128 bits); peers send
/// the same in `NTA_LABELS`. Other lengths take the full form.
const LABEL_BYTES: usize = 16;

/// A compact flow with connection labels, boxed: labelled flows are few
/// on most firewalls and would otherwise make every entry larger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Labelled<A> {
    flow: Compact<A>,
    labels: [u8; LABEL_BYTES],
}

impl<A: Addr> Labelled<A> {
    fn from_conntrack(ct: &Conntrack) -> Option<Labelled<A>> {
        if ct.labels_mask.is_some() {
            return None;
        }
        let labels = <[u8; LABEL_BYTES]>::try_from(ct.labels.as_deref()?).ok()?;
        Some(Labelled {
            flow: Compact::from_unlabelled(ct)?,
            labels,
        })
    }

    fn to_conntrack(&self) -> Conntrack {
        Conntrack {
            labels: Some(self.labels.to_vec()),
            ..self.flow.to_conntrack()
        }
    }
}

impl<A: Addr> Compact<A> {
    fn from_conntrack(ct: &Conntrack) -> Option<Compact<A>> {
        if ct.labels.is_some() || ct.labels_mask.is_some() {
            return None;
        }
        Compact::from_unlabelled(ct)
    }

    /// The compact form of `ct` ignoring its labels (the caller stores or
    /// refuses them).
    fn from_unlabelled(ct: &Conntrack) -> Option<Compact<A>> {
        let plain = ct.master.is_none()
            && ct.mark_mask.is_none()
            && ct.secmark.is_none()
            && ct.sctp.is_none()
            && ct.dccp.is_none()
            && ct.helper.is_none()
            && ct.seq_adj_orig.is_none()
            && ct.seq_adj_reply.is_none()
            && ct.counters_orig.is_none()
            && ct.counters_reply.is_none()
            && ct.timestamp.is_none()
            && ct.secctx.is_none()
            && ct.status_mask.is_none()
            && ct.unknown.is_empty()
            && ct.unknown_nested.is_empty();
        if !plain {
            return None;
        }
        let has_nat = ct.nat_src.is_some() || ct.nat_dst.is_some();
        // NAT goes in the places of the reply tuple and the use count.
        if has_nat && (ct.reply.is_some() || ct.use_count.is_some()) {
            return None;
        }
        let orig = ct.orig.as_ref()?;
        let mut has = 0;
        let o = dir(orig, &mut has)?;
        // Flows from peers come without a reply tuple.
        let r = match ct.reply.as_ref() {
            Some(reply) if reply.l4proto == orig.l4proto => {
                has |= has::REPLY;
                dir(reply, &mut has)?
            }
            Some(_) => return None,
            None => Dir::default(),
        };
        let mut s = Compact {
            orig: o,
            reply: r,
            status: 0,
            timeout: 0,
            mark: 0,
            id: 0,
            use_count: 0,
            synproxy: [0; 3],
            zone: 0,
            has,
            l4proto: orig.l4proto,
            tcp_state: 0,
            wscale: [0; 2],
            flags: [0; 4],
        };
        let mut bits = 0;
        for (bit, value, slot) in [
            (has::STATUS, ct.status, &mut s.status),
            (has::TIMEOUT, ct.timeout, &mut s.timeout),
            (has::MARK, ct.mark, &mut s.mark),
            (has::ID, ct.id, &mut s.id),
            (has::USE, ct.use_count, &mut s.use_count),
        ] {
            if let Some(v) = value {
                *slot = v;
                bits |= bit;
            }
        }
        if let Some(z) = ct.zone {
            s.zone = z;
            bits |= has::ZONE;
        }
        if let Some(tcp) = &ct.tcp {
            bits |= has::TCP;
            if let Some(v) = tcp.state {
                s.tcp_state = v;
                bits |= has::TCP_STATE;
            }
            if let Some(v) = tcp.wscale_orig {
                s.wscale[0] = v;
                bits |= has::WSCALE_ORIG;
            }
            if let Some(v) = tcp.wscale_reply {
                s.wscale[1] = v;
                bits |= has::WSCALE_REPLY;
            }
            if let Some(f) = tcp.flags_orig {
                s.flags[0] = f.flags;
                s.flags[1] = f.mask;
                bits |= has::FLAGS_ORIG;
            }
            if let Some(f) = tcp.flags_reply {
                s.flags[2] = f.flags;
                s.flags[3] = f.mask;
                bits |= has::FLAGS_REPLY;
            }
        }
        if let Some(sp) = &ct.synproxy {
            s.synproxy = [sp.isn, sp.its, sp.tsoff];
            bits |= has::SYNPROXY;
        }
        if has_nat {
            let (snat_ip, snat_port, snat) = nat_part(&ct.nat_src)?;
            let (dnat_ip, dnat_port, dnat) = nat_part(&ct.nat_dst)?;
            s.reply = Dir {
                src: snat_ip,
                dst: dnat_ip,
                a: snat_port,
                b: dnat_port,
            };
            s.use_count = snat | dnat << nat::DNAT_SHIFT;
        }
        s.has |= bits;
        Some(s)
    }

    fn to_conntrack(&self) -> Conntrack {
        let has = self.has;
        let opt = |bit: u16, v: u32| (has & bit != 0).then_some(v);
        let tcp = (has & has::TCP != 0).then(|| TcpInfo {
            state: (has & has::TCP_STATE != 0).then_some(self.tcp_state),
            wscale_orig: (has & has::WSCALE_ORIG != 0).then_some(self.wscale[0]),
            wscale_reply: (has & has::WSCALE_REPLY != 0).then_some(self.wscale[1]),
            flags_orig: (has & has::FLAGS_ORIG != 0).then_some(TcpFlags {
                flags: self.flags[0],
                mask: self.flags[1],
            }),
            flags_reply: (has & has::FLAGS_REPLY != 0).then_some(TcpFlags {
                flags: self.flags[2],
                mask: self.flags[3],
            }),
        });
        Conntrack {
            orig: Some(tuple(&self.orig, self.l4proto, has)),
            reply: (has & has::REPLY != 0).then(|| tuple(&self.reply, self.l4proto, has)),
            status: opt(has::STATUS, self.status),
            timeout: opt(has::TIMEOUT, self.timeout),
            mark: opt(has::MARK, self.mark),
            id: opt(has::ID, self.id),
            use_count: opt(has::USE, self.use_count),
            zone: (has & has::ZONE != 0).then_some(self.zone),
            tcp,
            synproxy: (has & has::SYNPROXY != 0).then_some(Synproxy {
                isn: self.synproxy[0],
                its: self.synproxy[1],
                tsoff: self.synproxy[2],
            }),
            nat_src: self
                .nat()
                .and_then(|n| nat_range(n, self.reply.src, self.reply.a)),
            nat_dst: self
                .nat()
                .and_then(|n| nat_range(n >> nat::DNAT_SHIFT, self.reply.dst, self.reply.b)),
            ..Conntrack::default()
        }
    }

    /// The NAT presence bits, if the flow has NAT (see [`nat`]).
    fn nat(&self) -> Option<u32> {
        let free = self.has & (has::REPLY | has::USE) == 0;
        (free && self.use_count != 0).then_some(self.use_count)
    }
}

impl<A: Addr> Compact<A> {
    /// [`Conntrack::merge`] on compact forms: what `newer` has replaces
    /// what this flow has, without building either flow in full. False,
    /// with nothing changed, where the flows differ in shape or either has
    /// NAT (it takes the reply tuple's place): the caller merges in full.
    fn merge(&mut self, newer: &Compact<A>) -> bool {
        const SHAPE: u16 = has::PORTS | has::ICMP;
        if self.nat().is_some()
            || newer.nat().is_some()
            || self.l4proto != newer.l4proto
            || self.has & SHAPE != newer.has & SHAPE
        {
            return false;
        }
        let n = newer.has;
        self.orig = newer.orig;
        if n & has::REPLY != 0 {
            self.reply = newer.reply;
        }
        for (bit, slot, value) in [
            (has::STATUS, &mut self.status, newer.status),
            (has::TIMEOUT, &mut self.timeout, newer.timeout),
            (has::MARK, &mut self.mark, newer.mark),
            (has::ID, &mut self.id, newer.id),
            (has::USE, &mut self.use_count, newer.use_count),
        ] {
            if n & bit != 0 {
                *slot = value;
            }
        }
        if n & has::ZONE != 0 {
            self.zone = newer.zone;
        }
        if n & has::TCP_STATE != 0 {
            self.tcp_state = newer.tcp_state;
        }
        for (bit, at) in [(has::WSCALE_ORIG, 0), (has::WSCALE_REPLY, 1)] {
            if n & bit != 0 {
                self.wscale[at] = newer.wscale[at];
            }
        }
        for (bit, at) in [(has::FLAGS_ORIG, 0), (has::FLAGS_REPLY, 2)] {
            if n & bit != 0 {
                self.flags[at] = newer.flags[at];
                self.flags[at + 1] = newer.flags[at + 1];
            }
        }
        if n & has::SYNPROXY != 0 {
            self.synproxy = newer.synproxy;
        }
        // Present in either is present in the result (TCP's parts too).
        self.has |= n;
        true
    }

    /// Whether `flow` is this flow's key, without building either.
    fn is_key(&self, flow: &FlowKey) -> bool {
        const SHAPE: u16 = has::PORTS | has::ICMP;
        let mut shape = 0;
        let zone = if self.has & has::ZONE != 0 {
            self.zone
        } else {
            0
        };
        dir::<A>(&flow.orig, &mut shape).is_some_and(|d| {
            d == self.orig
                && flow.orig.l4proto == self.l4proto
                && flow.zone == zone
                && shape == self.has & SHAPE
        })
    }

    fn flow_key(&self) -> FlowKey {
        FlowKey {
            orig: tuple(&self.orig, self.l4proto, self.has),
            zone: if self.has & has::ZONE != 0 {
                self.zone
            } else {
                0
            },
        }
    }
}

impl Stored {
    pub(crate) fn new(ct: Conntrack) -> Stored {
        Stored::compact(&ct).unwrap_or_else(|| Stored::Full(Box::new(ct)))
    }

    /// [`Stored::new`] of a borrowed flow: copied only in the full form.
    pub(crate) fn of(ct: &Conntrack) -> Stored {
        Stored::compact(ct).unwrap_or_else(|| Stored::Full(Box::new(ct.clone())))
    }

    /// The compact form of a flow, if it has one.
    fn compact(ct: &Conntrack) -> Option<Stored> {
        if ct.labels.is_some() {
            Labelled::from_conntrack(ct)
                .map(|l| Stored::Labelled(Box::new(l)))
                .or_else(|| Labelled::from_conntrack(ct).map(|l| Stored::Labelled6(Box::new(l))))
        } else {
            Small::from_conntrack(ct)
                .map(Stored::Small)
                .or_else(|| Small6::from_conntrack(ct).map(|s| Stored::Small6(Box::new(s))))
        }
    }

    /// Stores `ct` in place of this flow; an IPv6 record keeps its box.
    pub(crate) fn set(&mut self, ct: Conntrack) {
        if let Stored::Small6(boxed) = self
            && let Some(small) = Small6::from_conntrack(&ct)
        {
            **boxed = small;
        } else {
            *self = Stored::new(ct);
        }
    }

    /// Merges `newer` into this flow in its compact form; false, with
    /// nothing changed, where only the full form can (the caller then
    /// merges in full and [`Stored::set`]s the result).
    pub(crate) fn merge_compact(&mut self, newer: &Conntrack) -> bool {
        match self {
            Stored::Small(s) => Small::from_conntrack(newer).is_some_and(|n| s.merge(&n)),
            Stored::Small6(s) => Small6::from_conntrack(newer).is_some_and(|n| s.merge(&n)),
            _ => false,
        }
    }

    pub(crate) fn key(&self) -> Option<FlowKey> {
        match self {
            Stored::Small(s) => Some(s.flow_key()),
            Stored::Small6(s) => Some(s.flow_key()),
            Stored::Labelled(l) => Some(l.flow.flow_key()),
            Stored::Labelled6(l) => Some(l.flow.flow_key()),
            Stored::Full(ct) => ct.key(),
        }
    }

    pub(crate) fn get(&self) -> Cow<'_, Conntrack> {
        match self {
            Stored::Small(s) => Cow::Owned(s.to_conntrack()),
            Stored::Small6(s) => Cow::Owned(s.to_conntrack()),
            Stored::Labelled(l) => Cow::Owned(l.to_conntrack()),
            Stored::Labelled6(l) => Cow::Owned(l.to_conntrack()),
            Stored::Full(ct) => Cow::Borrowed(ct),
        }
    }
}

/// A cache key: IPv4 flows in 16 bytes, others boxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    V4 {
        dir: [u32; 2],
        ports: [u16; 2],
        zone: u16,
        l4proto: u8,
        shape: u8,
    },
    /// With a hash taken once: queues and maps hash a key at every
    /// operation, and a whole tuple of IPv6 addresses costs more than this.
    Other { fingerprint: u64, key: Box<FlowKey> },
}

// By hand: one 128-bit write for the common IPv4 key.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Key::V4 {
                dir,
                ports,
                zone,
                l4proto,
                shape,
            } => state.write_u128(
                u128::from(dir[0])
                    | u128::from(dir[1]) << 32
                    | u128::from(ports[0]) << 64
                    | u128::from(ports[1]) << 80
                    | u128::from(*zone) << 96
                    | u128::from(*l4proto) << 112
                    | u128::from(*shape) << 120,
            ),
            Key::Other { fingerprint, .. } => state.write_u64(*fingerprint),
        }
    }
}

/// The hash a boxed key carries: seeded once per process, so that nobody
/// outside can choose keys that collide (each map still mixes it with its
/// own seed).
fn fingerprint(key: &FlowKey) -> u64 {
    static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    SEED.get_or_init(Default::default).hash_one(key)
}

impl Key {
    pub(crate) fn new(key: &FlowKey) -> Key {
        Key::v4(key).unwrap_or_else(|| Key::Other {
            fingerprint: fingerprint(key),
            key: Box::new(key.clone()),
        })
    }

    /// The 16-byte form, if the flow has the plain IPv4 shape.
    fn v4(key: &FlowKey) -> Option<Key> {
        let mut has = 0;
        let d: Dir<u32> = dir(&key.orig, &mut has)?;
        Some(Key::V4 {
            dir: [d.src, d.dst],
            ports: [d.a, d.b],
            zone: key.zone,
            l4proto: key.orig.l4proto,
            shape: ((has & (has::PORTS | has::ICMP)) >> 13) as u8,
        })
    }

    /// Whether this is the key of `flow`, without allocating.
    fn is_of(&self, flow: &FlowKey) -> bool {
        match self {
            Key::Other { key, .. } => **key == *flow,
            v4 => Key::v4(flow).as_ref() == Some(v4),
        }
    }
}

impl Small {
    /// `Key::new(&key)` of this flow, built from the compact fields.
    fn table_key(&self) -> Key {
        Key::V4 {
            dir: [self.orig.src, self.orig.dst],
            ports: [self.orig.a, self.orig.b],
            zone: if self.has & has::ZONE != 0 {
                self.zone
            } else {
                0
            },
            l4proto: self.l4proto,
            shape: ((self.has & (has::PORTS | has::ICMP)) >> 13) as u8,
        }
    }
}

impl Stored {
    /// Whether `key` is this flow's cache key.
    pub(crate) fn has_key(&self, key: &Key) -> bool {
        match self {
            Stored::Small(s) => s.table_key() == *key,
            Stored::Small6(s) => matches!(key, Key::Other { key, .. } if s.is_key(key)),
            Stored::Labelled(l) => l.flow.table_key() == *key,
            Stored::Labelled6(l) => matches!(key, Key::Other { key, .. } if l.flow.is_key(key)),
            Stored::Full(ct) => ct.key().is_some_and(|flow| key.is_of(&flow)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::NatRange;
    use proptest::prelude::*;

    fn flows() -> impl Strategy<Value = Conntrack> {
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            prop_oneof![Just(6u8), Just(17), Just(1), Just(47)],
            any::<(u16, u16)>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u16>()),
            proptest::option::of((any::<u8>(), any::<u8>(), any::<(u8, u8)>())),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of((peer_nat_side(), peer_nat_side())),
            (
                any::<(u128, u128)>(),
                proptest::option::of(prop_oneof![
                    4 => proptest::collection::vec(any::<u8>(), 16),
                    1 => proptest::collection::vec(any::<u8>(), 0..24),
                ]),
            ),
        )
            .prop_map(
                |(
                    s,
                    d,
                    proto,
                    (sp, dp),
                    mark,
                    zone,
                    tcp,
                    nat,
                    v6,
                    synproxy,
                    from_peer,
                    ((s6, d6), labels),
                )| {
                    let src = if v6 {
                        IpAddr::V6(Ipv6Addr::from(s6))
                    } else {
                        IpAddr::V4(Ipv4Addr::from(s))
                    };
                    let dst = if v6 {
                        IpAddr::V6(Ipv6Addr::from(d6))
                    } else {
                        IpAddr::V4(Ipv4Addr::from(d))
                    };
                    let mut orig = Tuple::new(src, dst, proto);
                    match proto {
                        6 | 17 => orig = orig.with_ports(sp, dp),
                        1 => orig = orig.with_icmp(sp, (dp >> 8) as u8, dp as u8),
                        _ => {}
                    }
                    let ct = Conntrack {
                        reply: Some(orig.inverted()),
                        orig: Some(orig),
                        status: Some(0x18e),
                        timeout: Some(120),
                        mark,
                        zone,
                        tcp: tcp.filter(|_| proto == 6).map(|(st, ws, (f, m))| TcpInfo {
                            state: Some(st),
                            wscale_orig: Some(ws),
                            wscale_reply: None,
                            flags_orig: Some(TcpFlags { flags: f, mask: m }),
                            flags_reply: None,
                        }),
                        nat_src: nat.then(|| NatRange {
                            min_ip: Some(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))),
                            ..NatRange::default()
                        }),
                        synproxy: synproxy.then_some(Synproxy {
                            isn: 1,
                            its: 2,
                            tsoff: 3,
                        }),
                        labels,
                        ..Conntrack::default()
                    };
                    // As a peer sends it: NAT instead of a reply tuple.
                    match from_peer {
                        Some((snat, dnat)) => Conntrack {
                            reply: None,
                            nat_src: snat,
                            nat_dst: dnat,
                            ..ct
                        },
                        None => ct,
                    }
                },
            )
    }

    /// A tuple with ports.
    fn ported(src: &str, dst: &str, l4proto: u8, sport: u16, dport: u16) -> Tuple {
        Tuple::new(src.parse().expect("ip"), dst.parse().expect("ip"), l4proto)
            .with_ports(sport, dport)
    }

    /// One side of a peer's NAT: one address and one port, each optional
    /// (of either family: one that is not the flow's needs the full form).
    fn peer_nat_side() -> impl Strategy<Value = Option<NatRange>> {
        proptest::option::of((
            proptest::option::of(prop_oneof![
                4 => any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
                2 => any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            ]),
            proptest::option::of(any::<u16>()),
        ))
        .prop_map(|side| {
            side.map(|(ip, port)| NatRange {
                min_ip: ip,
                max_ip: ip,
                min_port: port,
                max_port: port,
            })
        })
    }

    proptest! {
        #[test]
        fn what_is_stored_comes_back(ct in flows()) {
            let stored = Stored::new(ct.clone());
            prop_assert_eq!(stored.get().into_owned(), ct.clone());
            let key = ct.key().expect("key");
            let other = Key::new(&key);
            // Equal flows give equal keys; a changed port gives another.
            prop_assert_eq!(&Key::new(&key), &other);
            let mut moved = key.clone();
            moved.orig.src_port = moved.orig.src_port.map(|p| p.wrapping_add(1));
            moved.orig.icmp_id = moved.orig.icmp_id.map(|p| p.wrapping_add(1));
            if moved != key {
                prop_assert_ne!(Key::new(&moved), Key::new(&key));
                prop_assert!(!stored.has_key(&Key::new(&moved)));
            }
            // The stored flow knows its key.
            prop_assert!(stored.has_key(&other));
        }

        #[test]
        fn a_compact_merge_is_the_full_merge(
            first in flows(),
            second in flows(),
            same_key in any::<bool>(),
            plain in any::<bool>(),
        ) {
            let (mut first, mut newer) = (first, second);
            if plain {
                // Without labels or NAT, most pairs merge compactly.
                for ct in [&mut first, &mut newer] {
                    ct.labels = None;
                    ct.nat_src = None;
                    ct.nat_dst = None;
                }
            }
            if same_key {
                // An update of the same flow, as the caches merge them.
                newer.orig = first.orig.clone();
                newer.zone = first.zone;
                if newer.reply.is_some() {
                    newer.reply = first.orig.as_ref().map(Tuple::inverted);
                }
                if newer.orig.as_ref().is_some_and(|t| t.l4proto != 6) {
                    newer.tcp = None;
                }
            }
            let mut full = first.clone();
            full.merge(&newer);
            let mut stored = Stored::new(first);
            let before = stored.clone();
            if stored.merge_compact(&newer) {
                prop_assert_eq!(stored.get().into_owned(), full);
            } else {
                prop_assert_eq!(stored, before);
            }
        }

        #[test]
        fn what_is_set_in_place_comes_back(first in flows(), second in flows()) {
            let mut stored = Stored::new(first);
            stored.set(second.clone());
            prop_assert_eq!(stored.get().into_owned(), second.clone());
            prop_assert!(stored.has_key(&Key::new(&second.key().expect("key"))));
        }
    }

    #[test]
    fn a_state_change_merges_in_the_compact_form() {
        let orig = ported("10.0.0.1", "10.0.0.2", 6, 1000, 80);
        let tcp = |state| TcpInfo {
            state: Some(state),
            ..TcpInfo::default()
        };
        let first = Conntrack {
            reply: Some(orig.inverted()),
            orig: Some(orig.clone()),
            status: Some(0x18e),
            timeout: Some(120),
            tcp: Some(tcp(3)),
            ..Conntrack::default()
        };
        let newer = Conntrack {
            orig: Some(orig),
            timeout: Some(432_000),
            tcp: Some(tcp(4)),
            ..Conntrack::default()
        };
        let mut stored = Stored::new(first.clone());
        assert!(stored.merge_compact(&newer));
        assert!(matches!(stored, Stored::Small(_)));
        let mut full = first;
        full.merge(&newer);
        assert_eq!(stored.get().into_owned(), full);
    }

    #[test]
    fn ipv6_flows_know_their_boxed_key() {
        let orig = ported("2001:db8::1", "2001:db8::2", 17, 5, 53);
        let ct = Conntrack {
            orig: Some(orig.clone()),
            reply: Some(orig.inverted()),
            zone: Some(4),
            ..Conntrack::default()
        };
        let stored = Stored::new(ct.clone());
        assert!(matches!(stored, Stored::Small6(_)));
        let key = Key::new(&ct.key().expect("key"));
        assert!(matches!(key, Key::Other { .. }));
        assert!(stored.has_key(&key));
        let other = Key::new(&FlowKey { orig, zone: 5 });
        assert!(!stored.has_key(&other));
    }

    #[test]
    fn a_plain_ipv6_flow_is_compact_and_so_is_its_peer_form_with_nat() {
        let orig = ported("2001:db8::1", "2001:db8:1::2", 6, 40000, 443);
        let ct = Conntrack {
            reply: Some(orig.inverted()),
            orig: Some(orig),
            status: Some(0x18e),
            timeout: Some(120),
            mark: Some(7),
            tcp: Some(TcpInfo {
                state: Some(3),
                ..TcpInfo::default()
            }),
            ..Conntrack::default()
        };
        let stored = Stored::new(ct.clone());
        assert!(matches!(stored, Stored::Small6(_)));
        assert_eq!(stored.get().into_owned(), ct);
        let natted = Conntrack {
            reply: None,
            nat_src: Some(NatRange {
                min_ip: Some("2001:db8:ff::1".parse().expect("ip")),
                max_ip: Some("2001:db8:ff::1".parse().expect("ip")),
                min_port: Some(1024),
                max_port: Some(1024),
            }),
            ..ct.clone()
        };
        let stored = Stored::new(natted.clone());
        assert!(matches!(stored, Stored::Small6(_)));
        assert_eq!(stored.get().into_owned(), natted);
        // Replaced in place, or by the full form when it no longer fits.
        let mut kept = Stored::new(ct.clone());
        kept.set(natted.clone());
        assert_eq!(kept.get().into_owned(), natted);
        // An IPv4 NAT address does not fit the IPv6 record.
        let mixed = Conntrack {
            nat_src: Some(NatRange {
                min_ip: Some("192.0.2.1".parse().expect("ip")),
                max_ip: Some("192.0.2.1".parse().expect("ip")),
                ..NatRange::default()
            }),
            ..natted
        };
        let stored = Stored::new(mixed.clone());
        assert!(matches!(stored, Stored::Full(_)));
        assert_eq!(stored.get().into_owned(), mixed);
    }

    #[test]
    fn labelled_flows_are_compact_of_either_family() {
        let labels = (0..16).collect::<Vec<u8>>();
        for (src, dst) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let orig =
                Tuple::new(src.parse().expect("ip"), dst.parse().expect("ip"), 6).with_ports(1, 2);
            let ct = Conntrack {
                reply: Some(orig.inverted()),
                orig: Some(orig),
                labels: Some(labels.clone()),
                ..Conntrack::default()
            };
            let stored = Stored::new(ct.clone());
            assert!(
                matches!(stored, Stored::Labelled(_) | Stored::Labelled6(_)),
                "{stored:?}"
            );
            assert_eq!(stored.get().into_owned(), ct);
            assert!(stored.has_key(&Key::new(&ct.key().expect("key"))));
            // A mask, or a bitmap of another size, takes the full form.
            for odd in [
                Conntrack {
                    labels_mask: Some(labels.clone()),
                    ..ct.clone()
                },
                Conntrack {
                    labels: Some(vec![1; 8]),
                    ..ct.clone()
                },
            ] {
                let stored = Stored::new(odd.clone());
                assert!(matches!(stored, Stored::Full(_)));
                assert_eq!(stored.get().into_owned(), odd);
            }
        }
        assert!(
            size_of::<Labelled<u32>>() <= 84,
            "{}",
            size_of::<Labelled<u32>>()
        );
    }

    #[test]
    fn a_plain_ipv4_flow_is_small() {
        let orig = ported("10.0.0.1", "10.0.0.2", 6, 1, 2);
        let ct = Conntrack {
            reply: Some(orig.inverted()),
            orig: Some(orig),
            ..Conntrack::default()
        };
        assert!(matches!(Stored::new(ct.clone()), Stored::Small(_)));
        // As received from a peer: no reply tuple.
        let from_peer = Conntrack { reply: None, ..ct };
        assert!(matches!(Stored::new(from_peer.clone()), Stored::Small(_)));
        // With NAT, as a peer sends it.
        let nat = |ip: [u8; 4], port| NatRange {
            min_ip: Some(IpAddr::from(ip)),
            max_ip: Some(IpAddr::from(ip)),
            min_port: port,
            max_port: port,
        };
        let natted = Conntrack {
            nat_src: Some(nat([192, 0, 2, 1], Some(40000))),
            nat_dst: Some(nat([10, 0, 0, 9], None)),
            ..from_peer
        };
        let stored = Stored::new(natted.clone());
        assert!(matches!(stored, Stored::Small(_)));
        assert_eq!(stored.get().into_owned(), natted);
        assert!(size_of::<Stored>() <= 72, "{}", size_of::<Stored>());
        assert!(size_of::<Small6>() <= 116, "{}", size_of::<Small6>());
        assert!(size_of::<Key>() <= 24, "{}", size_of::<Key>());
    }
}

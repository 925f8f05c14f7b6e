//! `CTA_*` attributes of a conntrack message to and from the flat model.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_model::{
    Conntrack, Counters, DccpInfo, NatRange, NestedAttr, RawAttr, SctpInfo, SeqAdj, Synproxy,
    TcpFlags, TcpInfo, Timestamp, Tuple, consts,
};

use crate::DecodeError;
use crate::nla::{Nla, NlaWriter, attributes};

// Top-level attributes (linux/netfilter/nfnetlink_conntrack.h).
pub const CTA_TUPLE_ORIG: u16 = 1;
pub const CTA_TUPLE_REPLY: u16 = 2;
pub const CTA_STATUS: u16 = 3;
pub const CTA_PROTOINFO: u16 = 4;
pub const CTA_HELP: u16 = 5;
pub const CTA_NAT_SRC: u16 = 6;
pub const CTA_TIMEOUT: u16 = 7;
pub const CTA_MARK: u16 = 8;
pub const CTA_COUNTERS_ORIG: u16 = 9;
pub const CTA_COUNTERS_REPLY: u16 = 10;
pub const CTA_USE: u16 = 11;
pub const CTA_ID: u16 = 12;
pub const CTA_NAT_DST: u16 = 13;
pub const CTA_TUPLE_MASTER: u16 = 14;
pub const CTA_SEQ_ADJ_ORIG: u16 = 15;
pub const CTA_SEQ_ADJ_REPLY: u16 = 16;
pub const CTA_SECMARK: u16 = 17;
pub const CTA_ZONE: u16 = 18;
pub const CTA_SECCTX: u16 = 19;
pub const CTA_TIMESTAMP: u16 = 20;
pub const CTA_MARK_MASK: u16 = 21;
pub const CTA_LABELS: u16 = 22;
pub const CTA_LABELS_MASK: u16 = 23;
pub const CTA_SYNPROXY: u16 = 24;
pub const CTA_STATUS_MASK: u16 = 26;

const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_TUPLE_ZONE: u16 = 3;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;
const CTA_PROTO_ICMPV6_ID: u16 = 7;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
const CTA_PROTO_ICMPV6_CODE: u16 = 9;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_DCCP: u16 = 2;
const CTA_PROTOINFO_SCTP: u16 = 3;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;
const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: u16 = 2;
const CTA_PROTOINFO_TCP_WSCALE_REPLY: u16 = 3;
const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: u16 = 4;
const CTA_PROTOINFO_TCP_FLAGS_REPLY: u16 = 5;
const CTA_PROTOINFO_DCCP_STATE: u16 = 1;
const CTA_PROTOINFO_DCCP_ROLE: u16 = 2;
const CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ: u16 = 3;
const CTA_PROTOINFO_SCTP_STATE: u16 = 1;
const CTA_PROTOINFO_SCTP_VTAG_ORIGINAL: u16 = 2;
const CTA_PROTOINFO_SCTP_VTAG_REPLY: u16 = 3;
const CTA_HELP_NAME: u16 = 1;
const CTA_NAT_V4_MINIP: u16 = 1;
const CTA_NAT_V4_MAXIP: u16 = 2;
const CTA_NAT_PROTO: u16 = 3;
const CTA_NAT_V6_MINIP: u16 = 4;
const CTA_NAT_V6_MAXIP: u16 = 5;
const CTA_PROTONAT_PORT_MIN: u16 = 1;
const CTA_PROTONAT_PORT_MAX: u16 = 2;
const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
const CTA_COUNTERS32_PACKETS: u16 = 3;
const CTA_COUNTERS32_BYTES: u16 = 4;
const CTA_SEQADJ_CORRECTION_POS: u16 = 1;
const CTA_SEQADJ_OFFSET_BEFORE: u16 = 2;
const CTA_SEQADJ_OFFSET_AFTER: u16 = 3;
const CTA_SECCTX_NAME: u16 = 1;
const CTA_TIMESTAMP_START: u16 = 1;
const CTA_TIMESTAMP_STOP: u16 = 2;
const CTA_SYNPROXY_ISN: u16 = 1;
const CTA_SYNPROXY_ITS: u16 = 2;
const CTA_SYNPROXY_TSOFF: u16 = 3;

/// Decodes the attributes of a conntrack message (after the nfgenmsg).
pub fn decode_conntrack(buf: &[u8]) -> Result<Conntrack, DecodeError> {
    let mut ct = Conntrack::default();
    let mut skipped = false;
    for nla in attributes(buf) {
        let nla = nla?;
        match nla.kind {
            CTA_TUPLE_ORIG => ct.orig = Some(tuple_noting(nla.payload, &mut skipped)?),
            CTA_TUPLE_REPLY => ct.reply = Some(tuple_noting(nla.payload, &mut skipped)?),
            CTA_TUPLE_MASTER => ct.master = Some(tuple_noting(nla.payload, &mut skipped)?),
            CTA_STATUS => ct.status = Some(nla.be32()?),
            CTA_PROTOINFO => decode_protoinfo(&mut ct, nla.payload, &mut skipped)?,
            CTA_HELP => {
                for inner in attributes(nla.payload) {
                    let inner = inner?;
                    if inner.kind == CTA_HELP_NAME {
                        ct.helper = Some(inner.string()?);
                    } else {
                        skipped = true;
                    }
                }
            }
            CTA_NAT_SRC => ct.nat_src = Some(decode_nat(nla.payload, &mut skipped)?),
            CTA_NAT_DST => ct.nat_dst = Some(decode_nat(nla.payload, &mut skipped)?),
            CTA_TIMEOUT => ct.timeout = Some(nla.be32()?),
            CTA_MARK => ct.mark = Some(nla.be32()?),
            CTA_MARK_MASK => ct.mark_mask = Some(nla.be32()?),
            CTA_COUNTERS_ORIG => {
                ct.counters_orig = Some(decode_counters(nla.payload, &mut skipped)?)
            }
            CTA_COUNTERS_REPLY => {
                ct.counters_reply = Some(decode_counters(nla.payload, &mut skipped)?)
            }
            CTA_USE => ct.use_count = Some(nla.be32()?),
            CTA_ID => ct.id = Some(nla.be32()?),
            CTA_SEQ_ADJ_ORIG => ct.seq_adj_orig = Some(decode_seq_adj(nla.payload, &mut skipped)?),
            CTA_SEQ_ADJ_REPLY => {
                ct.seq_adj_reply = Some(decode_seq_adj(nla.payload, &mut skipped)?)
            }
            CTA_SECMARK => ct.secmark = Some(nla.be32()?),
            CTA_ZONE => ct.zone = Some(nla.be16()?),
            CTA_SECCTX => {
                for inner in attributes(nla.payload) {
                    let inner = inner?;
                    if inner.kind == CTA_SECCTX_NAME {
                        ct.secctx = Some(inner.string()?);
                    } else {
                        skipped = true;
                    }
                }
            }
            CTA_TIMESTAMP => {
                let mut ts = Timestamp::default();
                for inner in attributes(nla.payload) {
                    let inner = inner?;
                    match inner.kind {
                        CTA_TIMESTAMP_START => ts.start = Some(inner.be64()?),
                        CTA_TIMESTAMP_STOP => ts.stop = Some(inner.be64()?),
                        _ => skipped = true,
                    }
                }
                ct.timestamp = Some(ts);
            }
            CTA_LABELS => ct.labels = Some(nla.payload.to_vec()),
            CTA_LABELS_MASK => ct.labels_mask = Some(nla.payload.to_vec()),
            CTA_SYNPROXY => {
                let mut sp = Synproxy::default();
                for inner in attributes(nla.payload) {
                    let inner = inner?;
                    match inner.kind {
                        CTA_SYNPROXY_ISN => sp.isn = inner.be32()?,
                        CTA_SYNPROXY_ITS => sp.its = inner.be32()?,
                        CTA_SYNPROXY_TSOFF => sp.tsoff = inner.be32()?,
                        _ => skipped = true,
                    }
                }
                ct.synproxy = Some(sp);
            }
            CTA_STATUS_MASK => ct.status_mask = Some(nla.be32()?),
            _ => ct.unknown.push(raw(&nla)),
        }
    }
    // Collecting what the nests hold that we do not read is a second walk
    // over every attribute; it is only needed when one was skipped.
    if skipped {
        unknown_in_nests(buf, &mut ct.unknown_nested, known_children)?;
    }
    Ok(ct)
}

/// The attributes the decoder understands inside each nest (by path);
/// None for a path that is not a nest we know.
const TUPLE: &[u16] = &[CTA_TUPLE_IP, CTA_TUPLE_PROTO, CTA_TUPLE_ZONE];
const IP: &[u16] = &[CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST];
const PROTO: &[u16] = &[
    CTA_PROTO_NUM,
    CTA_PROTO_SRC_PORT,
    CTA_PROTO_DST_PORT,
    CTA_PROTO_ICMP_ID,
    CTA_PROTO_ICMP_TYPE,
    CTA_PROTO_ICMP_CODE,
    CTA_PROTO_ICMPV6_ID,
    CTA_PROTO_ICMPV6_TYPE,
    CTA_PROTO_ICMPV6_CODE,
];

/// The same for the nests of an expectation message.
pub(crate) fn expect_known_children(path: &[u16]) -> Option<&'static [u16]> {
    use crate::expect::{CTA_EXPECT_MASK, CTA_EXPECT_MASTER, CTA_EXPECT_NAT, CTA_EXPECT_TUPLE};
    const NAT_TUPLE: u16 = 2;
    const NAT_DIR: u16 = 1;
    Some(match path {
        [CTA_EXPECT_MASTER | CTA_EXPECT_TUPLE | CTA_EXPECT_MASK] => TUPLE,
        [
            CTA_EXPECT_MASTER | CTA_EXPECT_TUPLE | CTA_EXPECT_MASK,
            CTA_TUPLE_IP,
        ] => IP,
        [
            CTA_EXPECT_MASTER | CTA_EXPECT_TUPLE | CTA_EXPECT_MASK,
            CTA_TUPLE_PROTO,
        ] => PROTO,
        [CTA_EXPECT_NAT] => &[NAT_DIR, NAT_TUPLE],
        [CTA_EXPECT_NAT, NAT_TUPLE] => TUPLE,
        [CTA_EXPECT_NAT, NAT_TUPLE, CTA_TUPLE_IP] => IP,
        [CTA_EXPECT_NAT, NAT_TUPLE, CTA_TUPLE_PROTO] => PROTO,
        _ => return None,
    })
}

fn known_children(path: &[u16]) -> Option<&'static [u16]> {
    const NAT: &[u16] = &[
        CTA_NAT_V4_MINIP,
        CTA_NAT_V4_MAXIP,
        CTA_NAT_PROTO,
        CTA_NAT_V6_MINIP,
        CTA_NAT_V6_MAXIP,
    ];
    Some(match path {
        [CTA_TUPLE_ORIG | CTA_TUPLE_REPLY | CTA_TUPLE_MASTER] => TUPLE,
        [
            CTA_TUPLE_ORIG | CTA_TUPLE_REPLY | CTA_TUPLE_MASTER,
            CTA_TUPLE_IP,
        ] => IP,
        [
            CTA_TUPLE_ORIG | CTA_TUPLE_REPLY | CTA_TUPLE_MASTER,
            CTA_TUPLE_PROTO,
        ] => PROTO,
        [CTA_PROTOINFO] => &[CTA_PROTOINFO_TCP, CTA_PROTOINFO_DCCP, CTA_PROTOINFO_SCTP],
        [CTA_PROTOINFO, CTA_PROTOINFO_TCP] => &[
            CTA_PROTOINFO_TCP_STATE,
            CTA_PROTOINFO_TCP_WSCALE_ORIGINAL,
            CTA_PROTOINFO_TCP_WSCALE_REPLY,
            CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
            CTA_PROTOINFO_TCP_FLAGS_REPLY,
        ],
        [CTA_PROTOINFO, CTA_PROTOINFO_DCCP] => &[
            CTA_PROTOINFO_DCCP_STATE,
            CTA_PROTOINFO_DCCP_ROLE,
            CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ,
        ],
        [CTA_PROTOINFO, CTA_PROTOINFO_SCTP] => &[
            CTA_PROTOINFO_SCTP_STATE,
            CTA_PROTOINFO_SCTP_VTAG_ORIGINAL,
            CTA_PROTOINFO_SCTP_VTAG_REPLY,
        ],
        [CTA_HELP] => &[CTA_HELP_NAME],
        [CTA_NAT_SRC | CTA_NAT_DST] => NAT,
        [CTA_NAT_SRC | CTA_NAT_DST, CTA_NAT_PROTO] => {
            &[CTA_PROTONAT_PORT_MIN, CTA_PROTONAT_PORT_MAX]
        }
        [CTA_COUNTERS_ORIG | CTA_COUNTERS_REPLY] => &[
            CTA_COUNTERS_PACKETS,
            CTA_COUNTERS_BYTES,
            CTA_COUNTERS32_PACKETS,
            CTA_COUNTERS32_BYTES,
        ],
        [CTA_SEQ_ADJ_ORIG | CTA_SEQ_ADJ_REPLY] => &[
            CTA_SEQADJ_CORRECTION_POS,
            CTA_SEQADJ_OFFSET_BEFORE,
            CTA_SEQADJ_OFFSET_AFTER,
        ],
        [CTA_SECCTX] => &[CTA_SECCTX_NAME],
        [CTA_TIMESTAMP] => &[CTA_TIMESTAMP_START, CTA_TIMESTAMP_STOP],
        [CTA_SYNPROXY] => &[CTA_SYNPROXY_ISN, CTA_SYNPROXY_ITS, CTA_SYNPROXY_TSOFF],
        _ => return None,
    })
}

/// Collects what the decoder skipped inside known nests, so that nothing
/// the kernel sent is lost on a round trip.
pub(crate) fn unknown_in_nests(
    buf: &[u8],
    out: &mut Vec<NestedAttr>,
    known_children: fn(&[u16]) -> Option<&'static [u16]>,
) -> Result<(), DecodeError> {
    // At the top level, unknown attributes are the decoder's business.
    unknown_in(buf, None, &mut NestPath::default(), out, known_children)
}

/// Where [`unknown_in`] is, on the stack: it runs for every kernel event,
/// and a Vec cost an allocation each time.
#[derive(Default)]
struct NestPath {
    kinds: [u16; NestPath::DEPTH],
    len: usize,
}

impl NestPath {
    /// Deeper than any nest we know (three levels).
    const DEPTH: usize = 6;

    fn get(&self) -> &[u16] {
        self.kinds.get(..self.len).unwrap_or_default()
    }
}

/// One level of [`unknown_in_nests`]; `known` lists what the decoder
/// reads at this level (None: everything is known here).
fn unknown_in(
    buf: &[u8],
    known: Option<&[u16]>,
    path: &mut NestPath,
    out: &mut Vec<NestedAttr>,
    known_children: fn(&[u16]) -> Option<&'static [u16]>,
) -> Result<(), DecodeError> {
    for nla in attributes(buf) {
        let nla = nla?;
        let Some(slot) = path.kinds.get_mut(path.len) else {
            // No nest we know is this deep.
            break;
        };
        *slot = nla.kind;
        path.len += 1;
        if let Some(children) = known_children(path.get()) {
            // A nest we know: look inside.
            unknown_in(nla.payload, Some(children), path, out, known_children)?;
        } else if known.is_some_and(|known| !known.contains(&nla.kind)) {
            out.push(NestedAttr {
                path: path.get()[..path.len - 1].to_vec(),
                attr: raw(&nla),
            });
        }
        path.len -= 1;
    }
    Ok(())
}

fn raw(nla: &Nla<'_>) -> RawAttr {
    RawAttr {
        kind: nla.kind,
        flags: nla.flags,
        payload: nla.payload.to_vec(),
    }
}

/// Decodes a `CTA_TUPLE_*` nest.
pub fn decode_tuple(buf: &[u8]) -> Result<Tuple, DecodeError> {
    tuple_noting(buf, &mut false)
}

/// [`decode_tuple`], setting `skipped` if it passes over an attribute it
/// does not read (here and in every decoder below: the sign that
/// [`unknown_in_nests`] has something to keep).
fn tuple_noting(buf: &[u8], skipped: &mut bool) -> Result<Tuple, DecodeError> {
    let mut src = None;
    let mut dst = None;
    let mut proto = None;
    let mut tuple_zone = None;
    let mut ports: (Option<u16>, Option<u16>) = (None, None);
    let mut icmp: (Option<u16>, Option<u8>, Option<u8>) = (None, None, None);
    for nla in attributes(buf) {
        let nla = nla?;
        match nla.kind {
            CTA_TUPLE_IP => {
                for ip in attributes(nla.payload) {
                    let ip = ip?;
                    match ip.kind {
                        CTA_IP_V4_SRC => src = Some(IpAddr::V4(Ipv4Addr::from(ip.fixed::<4>()?))),
                        CTA_IP_V4_DST => dst = Some(IpAddr::V4(Ipv4Addr::from(ip.fixed::<4>()?))),
                        CTA_IP_V6_SRC => {
                            src = Some(IpAddr::V6(Ipv6Addr::from(ip.fixed::<16>()?)));
                        }
                        CTA_IP_V6_DST => {
                            dst = Some(IpAddr::V6(Ipv6Addr::from(ip.fixed::<16>()?)));
                        }
                        _ => *skipped = true,
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for p in attributes(nla.payload) {
                    let p = p?;
                    match p.kind {
                        CTA_PROTO_NUM => proto = Some(p.u8()?),
                        CTA_PROTO_SRC_PORT => ports.0 = Some(p.be16()?),
                        CTA_PROTO_DST_PORT => ports.1 = Some(p.be16()?),
                        CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => icmp.0 = Some(p.be16()?),
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => icmp.1 = Some(p.u8()?),
                        CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => icmp.2 = Some(p.u8()?),
                        _ => *skipped = true,
                    }
                }
            }
            CTA_TUPLE_ZONE => tuple_zone = Some(nla.be16()?),
            _ => *skipped = true,
        }
    }
    let (Some(src), Some(dst)) = (src, dst) else {
        return Err(DecodeError::MissingAttribute("tuple address"));
    };
    let mut tuple = Tuple::new(src, dst, proto.unwrap_or(0));
    tuple.src_port = ports.0;
    tuple.dst_port = ports.1;
    tuple.icmp_id = icmp.0;
    tuple.icmp_type = icmp.1;
    tuple.icmp_code = icmp.2;
    tuple.zone = tuple_zone;
    Ok(tuple)
}

fn decode_protoinfo(ct: &mut Conntrack, buf: &[u8], skipped: &mut bool) -> Result<(), DecodeError> {
    for nla in attributes(buf) {
        let nla = nla?;
        match nla.kind {
            CTA_PROTOINFO_TCP => {
                let mut tcp = TcpInfo::default();
                for a in attributes(nla.payload) {
                    let a = a?;
                    match a.kind {
                        CTA_PROTOINFO_TCP_STATE => tcp.state = Some(a.u8()?),
                        CTA_PROTOINFO_TCP_WSCALE_ORIGINAL => tcp.wscale_orig = Some(a.u8()?),
                        CTA_PROTOINFO_TCP_WSCALE_REPLY => tcp.wscale_reply = Some(a.u8()?),
                        CTA_PROTOINFO_TCP_FLAGS_ORIGINAL => {
                            let [flags, mask] = a.fixed::<2>()?;
                            tcp.flags_orig = Some(TcpFlags { flags, mask });
                        }
                        CTA_PROTOINFO_TCP_FLAGS_REPLY => {
                            let [flags, mask] = a.fixed::<2>()?;
                            tcp.flags_reply = Some(TcpFlags { flags, mask });
                        }
                        _ => *skipped = true,
                    }
                }
                ct.tcp = Some(tcp);
            }
            CTA_PROTOINFO_SCTP => {
                let mut sctp = SctpInfo::default();
                for a in attributes(nla.payload) {
                    let a = a?;
                    match a.kind {
                        CTA_PROTOINFO_SCTP_STATE => sctp.state = Some(a.u8()?),
                        CTA_PROTOINFO_SCTP_VTAG_ORIGINAL => sctp.vtag_orig = Some(a.be32()?),
                        CTA_PROTOINFO_SCTP_VTAG_REPLY => sctp.vtag_reply = Some(a.be32()?),
                        _ => *skipped = true,
                    }
                }
                ct.sctp = Some(sctp);
            }
            CTA_PROTOINFO_DCCP => {
                let mut dccp = DccpInfo::default();
                for a in attributes(nla.payload) {
                    let a = a?;
                    match a.kind {
                        CTA_PROTOINFO_DCCP_STATE => dccp.state = Some(a.u8()?),
                        CTA_PROTOINFO_DCCP_ROLE => dccp.role = Some(a.u8()?),
                        CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ => dccp.handshake_seq = Some(a.be64()?),
                        _ => *skipped = true,
                    }
                }
                ct.dccp = Some(dccp);
            }
            _ => *skipped = true,
        }
    }
    Ok(())
}

fn decode_nat(buf: &[u8], skipped: &mut bool) -> Result<NatRange, DecodeError> {
    let mut nat = NatRange::default();
    for nla in attributes(buf) {
        let nla = nla?;
        match nla.kind {
            CTA_NAT_V4_MINIP => nat.min_ip = Some(IpAddr::V4(Ipv4Addr::from(nla.fixed::<4>()?))),
            CTA_NAT_V4_MAXIP => nat.max_ip = Some(IpAddr::V4(Ipv4Addr::from(nla.fixed::<4>()?))),
            CTA_NAT_V6_MINIP => {
                nat.min_ip = Some(IpAddr::V6(Ipv6Addr::from(nla.fixed::<16>()?)));
            }
            CTA_NAT_V6_MAXIP => {
                nat.max_ip = Some(IpAddr::V6(Ipv6Addr::from(nla.fixed::<16>()?)));
            }
            CTA_NAT_PROTO => {
                for p in attributes(nla.payload) {
                    let p = p?;
                    match p.kind {
                        CTA_PROTONAT_PORT_MIN => nat.min_port = Some(p.be16()?),
                        CTA_PROTONAT_PORT_MAX => nat.max_port = Some(p.be16()?),
                        _ => *skipped = true,
                    }
                }
            }
            _ => *skipped = true,
        }
    }
    Ok(nat)
}

fn decode_counters(buf: &[u8], skipped: &mut bool) -> Result<Counters, DecodeError> {
    let mut c = Counters::default();
    for nla in attributes(buf) {
        let nla = nla?;
        match nla.kind {
            CTA_COUNTERS_PACKETS => c.packets = nla.be64()?,
            CTA_COUNTERS_BYTES => c.bytes = nla.be64()?,
            CTA_COUNTERS32_PACKETS => c.packets = u64::from(nla.be32()?),
            CTA_COUNTERS32_BYTES => c.bytes = u64::from(nla.be32()?),
            _ => *skipped = true,
        }
    }
    Ok(c)
}

fn decode_seq_adj(buf: &[u8], skipped: &mut bool) -> Result<SeqAdj, DecodeError> {
    let mut s = SeqAdj::default();
    for nla in attributes(buf) {
        let nla = nla?;
        match nla.kind {
            CTA_SEQADJ_CORRECTION_POS => s.correction_pos = Some(nla.be32()?),
            CTA_SEQADJ_OFFSET_BEFORE => s.offset_before = Some(nla.be32()?),
            CTA_SEQADJ_OFFSET_AFTER => s.offset_after = Some(nla.be32()?),
            _ => *skipped = true,
        }
    }
    Ok(s)
}

/// Encodes every attribute present in `ct`, in the order a 6.x kernel
/// dumps them (observed: tuples, zone, status, mark, id, use, timeout,
/// protoinfo, synproxy), so that a decoded kernel message re-encodes to
/// the same bytes. Request-only attributes (NAT, masks) come last.
pub fn encode_conntrack(w: &mut NlaWriter<'_>, ct: &Conntrack) {
    w.with_extras(&ct.unknown_nested, |w| encode_known(w, ct));
}

fn encode_known(w: &mut NlaWriter<'_>, ct: &Conntrack) {
    if let Some(t) = &ct.orig {
        encode_tuple(w, CTA_TUPLE_ORIG, t);
    }
    if let Some(t) = &ct.reply {
        encode_tuple(w, CTA_TUPLE_REPLY, t);
    }
    if let Some(v) = ct.zone {
        w.be16(CTA_ZONE, v);
    }
    if let Some(v) = ct.status {
        w.be32(CTA_STATUS, v);
    }
    if let Some(v) = ct.mark {
        w.be32(CTA_MARK, v);
    }
    if let Some(name) = &ct.secctx {
        w.nested(CTA_SECCTX, |w| w.string(CTA_SECCTX_NAME, name));
    }
    if let Some(v) = ct.id {
        w.be32(CTA_ID, v);
    }
    if let Some(v) = ct.use_count {
        w.be32(CTA_USE, v);
    }
    if let Some(t) = &ct.master {
        encode_tuple(w, CTA_TUPLE_MASTER, t);
    }
    if let Some(s) = &ct.seq_adj_orig {
        encode_seq_adj(w, CTA_SEQ_ADJ_ORIG, s);
    }
    if let Some(s) = &ct.seq_adj_reply {
        encode_seq_adj(w, CTA_SEQ_ADJ_REPLY, s);
    }
    if let Some(v) = ct.timeout {
        w.be32(CTA_TIMEOUT, v);
    }
    if let Some(c) = &ct.counters_orig {
        encode_counters(w, CTA_COUNTERS_ORIG, c);
    }
    if let Some(c) = &ct.counters_reply {
        encode_counters(w, CTA_COUNTERS_REPLY, c);
    }
    if let Some(ts) = &ct.timestamp {
        w.nested(CTA_TIMESTAMP, |w| {
            if let Some(v) = ts.start {
                w.be64(CTA_TIMESTAMP_START, v);
            }
            if let Some(v) = ts.stop {
                w.be64(CTA_TIMESTAMP_STOP, v);
            }
        });
    }
    if ct.tcp.is_some() || ct.sctp.is_some() || ct.dccp.is_some() {
        w.nested(CTA_PROTOINFO, |w| encode_protoinfo(w, ct));
    }
    if let Some(name) = &ct.helper {
        w.nested(CTA_HELP, |w| w.string(CTA_HELP_NAME, name));
    }
    if let Some(v) = ct.secmark {
        w.be32(CTA_SECMARK, v);
    }
    if let Some(l) = &ct.labels {
        w.bytes(CTA_LABELS, l);
    }
    if let Some(sp) = &ct.synproxy {
        w.nested(CTA_SYNPROXY, |w| {
            w.be32(CTA_SYNPROXY_ISN, sp.isn);
            w.be32(CTA_SYNPROXY_ITS, sp.its);
            w.be32(CTA_SYNPROXY_TSOFF, sp.tsoff);
        });
    }
    if let Some(nat) = &ct.nat_src {
        encode_nat(w, CTA_NAT_SRC, nat);
    }
    if let Some(nat) = &ct.nat_dst {
        encode_nat(w, CTA_NAT_DST, nat);
    }
    if let Some(v) = ct.mark_mask {
        w.be32(CTA_MARK_MASK, v);
    }
    if let Some(l) = &ct.labels_mask {
        w.bytes(CTA_LABELS_MASK, l);
    }
    if let Some(v) = ct.status_mask {
        w.be32(CTA_STATUS_MASK, v);
    }
    for attr in &ct.unknown {
        w.bytes(attr.kind | attr.flags, &attr.payload);
    }
}

/// Encodes a tuple nest of type `kind`.
pub fn encode_tuple(w: &mut NlaWriter<'_>, kind: u16, t: &Tuple) {
    w.nested(kind, |w| {
        w.nested(CTA_TUPLE_IP, |w| match (t.src, t.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                w.bytes(CTA_IP_V4_SRC, &s.octets());
                w.bytes(CTA_IP_V4_DST, &d.octets());
            }
            (s, d) => {
                w.bytes(CTA_IP_V6_SRC, &v6(s).octets());
                w.bytes(CTA_IP_V6_DST, &v6(d).octets());
            }
        });
        w.nested(CTA_TUPLE_PROTO, |w| {
            w.u8(CTA_PROTO_NUM, t.l4proto);
            if let Some(p) = t.src_port {
                w.be16(CTA_PROTO_SRC_PORT, p);
            }
            if let Some(p) = t.dst_port {
                w.be16(CTA_PROTO_DST_PORT, p);
            }
            let v6 = t.l4proto == consts::IPPROTO_ICMPV6;
            if let Some(id) = t.icmp_id {
                w.be16(
                    if v6 {
                        CTA_PROTO_ICMPV6_ID
                    } else {
                        CTA_PROTO_ICMP_ID
                    },
                    id,
                );
            }
            if let Some(ty) = t.icmp_type {
                w.u8(
                    if v6 {
                        CTA_PROTO_ICMPV6_TYPE
                    } else {
                        CTA_PROTO_ICMP_TYPE
                    },
                    ty,
                );
            }
            if let Some(code) = t.icmp_code {
                w.u8(
                    if v6 {
                        CTA_PROTO_ICMPV6_CODE
                    } else {
                        CTA_PROTO_ICMP_CODE
                    },
                    code,
                );
            }
        });
        if let Some(z) = t.zone {
            w.be16(CTA_TUPLE_ZONE, z);
        }
    });
}

fn v6(addr: IpAddr) -> Ipv6Addr {
    match addr {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

fn encode_protoinfo(w: &mut NlaWriter<'_>, ct: &Conntrack) {
    if let Some(tcp) = &ct.tcp {
        w.nested(CTA_PROTOINFO_TCP, |w| {
            if let Some(v) = tcp.state {
                w.u8(CTA_PROTOINFO_TCP_STATE, v);
            }
            if let Some(v) = tcp.wscale_orig {
                w.u8(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, v);
            }
            if let Some(v) = tcp.wscale_reply {
                w.u8(CTA_PROTOINFO_TCP_WSCALE_REPLY, v);
            }
            if let Some(f) = tcp.flags_orig {
                w.bytes(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, &[f.flags, f.mask]);
            }
            if let Some(f) = tcp.flags_reply {
                w.bytes(CTA_PROTOINFO_TCP_FLAGS_REPLY, &[f.flags, f.mask]);
            }
        });
    }
    if let Some(sctp) = &ct.sctp {
        w.nested(CTA_PROTOINFO_SCTP, |w| {
            if let Some(v) = sctp.state {
                w.u8(CTA_PROTOINFO_SCTP_STATE, v);
            }
            if let Some(v) = sctp.vtag_orig {
                w.be32(CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, v);
            }
            if let Some(v) = sctp.vtag_reply {
                w.be32(CTA_PROTOINFO_SCTP_VTAG_REPLY, v);
            }
        });
    }
    if let Some(dccp) = &ct.dccp {
        w.nested(CTA_PROTOINFO_DCCP, |w| {
            if let Some(v) = dccp.state {
                w.u8(CTA_PROTOINFO_DCCP_STATE, v);
            }
            if let Some(v) = dccp.role {
                w.u8(CTA_PROTOINFO_DCCP_ROLE, v);
            }
            if let Some(v) = dccp.handshake_seq {
                w.be64(CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, v);
            }
        });
    }
}

fn encode_nat(w: &mut NlaWriter<'_>, kind: u16, nat: &NatRange) {
    w.nested(kind, |w| {
        for (ip, v4kind, v6kind) in [
            (nat.min_ip, CTA_NAT_V4_MINIP, CTA_NAT_V6_MINIP),
            (nat.max_ip, CTA_NAT_V4_MAXIP, CTA_NAT_V6_MAXIP),
        ] {
            match ip {
                Some(IpAddr::V4(a)) => w.bytes(v4kind, &a.octets()),
                Some(IpAddr::V6(a)) => w.bytes(v6kind, &a.octets()),
                None => {}
            }
        }
        if nat.min_port.is_some() || nat.max_port.is_some() {
            w.nested(CTA_NAT_PROTO, |w| {
                if let Some(p) = nat.min_port {
                    w.be16(CTA_PROTONAT_PORT_MIN, p);
                }
                if let Some(p) = nat.max_port {
                    w.be16(CTA_PROTONAT_PORT_MAX, p);
                }
            });
        }
    });
}

fn encode_counters(w: &mut NlaWriter<'_>, kind: u16, c: &Counters) {
    w.nested(kind, |w| {
        w.be64(CTA_COUNTERS_PACKETS, c.packets);
        w.be64(CTA_COUNTERS_BYTES, c.bytes);
    });
}

fn encode_seq_adj(w: &mut NlaWriter<'_>, kind: u16, s: &SeqAdj) {
    w.nested(kind, |w| {
        if let Some(v) = s.correction_pos {
            w.be32(CTA_SEQADJ_CORRECTION_POS, v);
        }
        if let Some(v) = s.offset_before {
            w.be32(CTA_SEQADJ_OFFSET_BEFORE, v);
        }
        if let Some(v) = s.offset_after {
            w.be32(CTA_SEQADJ_OFFSET_AFTER, v);
        }
    });
}

//! Conntrack state messages (types 0–2): `NTA_*` attributes to and from
//! the flat model (docs/wire-protocol.md §5.1–§5.6).

use std::net::IpAddr;

use conntrack_model::{
    Conntrack, DccpInfo, NatRange, SctpInfo, SeqAdj, Synproxy, TcpInfo, Tuple, consts,
};

use crate::header::{HEADER_LEN, MsgType};
use crate::tlv::{TlvWriter, attributes, be16, be32, ip4, ip6};

const NTA_IPV4: u16 = 0;
const NTA_IPV6: u16 = 1;
const NTA_L4PROTO: u16 = 2;
const NTA_PORT: u16 = 3;
const NTA_TCP_STATE: u16 = 4;
const NTA_STATUS: u16 = 5;
const NTA_TIMEOUT: u16 = 6;
const NTA_MARK: u16 = 7;
const NTA_MASTER_IPV4: u16 = 8;
const NTA_MASTER_IPV6: u16 = 9;
const NTA_MASTER_L4PROTO: u16 = 10;
const NTA_MASTER_PORT: u16 = 11;
const NTA_SNAT_IPV4: u16 = 12;
const NTA_DNAT_IPV4: u16 = 13;
const NTA_SPAT_PORT: u16 = 14;
const NTA_DPAT_PORT: u16 = 15;
const NTA_NAT_SEQ_ADJ: u16 = 16;
const NTA_SCTP_STATE: u16 = 17;
const NTA_SCTP_VTAG_ORIG: u16 = 18;
const NTA_SCTP_VTAG_REPL: u16 = 19;
const NTA_DCCP_STATE: u16 = 20;
const NTA_DCCP_ROLE: u16 = 21;
const NTA_ICMP_TYPE: u16 = 22;
const NTA_ICMP_CODE: u16 = 23;
const NTA_ICMP_ID: u16 = 24;
const NTA_TCP_WSCALE_ORIG: u16 = 25;
const NTA_TCP_WSCALE_REPL: u16 = 26;
const NTA_HELPER_NAME: u16 = 27;
const NTA_LABELS: u16 = 28;
const NTA_SNAT_IPV6: u16 = 29;
const NTA_DNAT_IPV6: u16 = 30;
const NTA_SYNPROXY: u16 = 31;
const NTA_ZONE: u16 = 32;

/// Longest helper name a 1.4.7 receiver accepts (nta_len ≤ 16).
pub const MAX_HELPER_NAME: usize = 11;

/// Why a state message's payload was rejected ("Malformed payload").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("attribute {0} has a bad length")]
    BadLength(u16),
    #[error("unknown attribute {0}")]
    UnknownAttribute(u16),
    #[error("attributes run past the message")]
    Truncated,
    #[error("no address attribute")]
    NoAddress,
}

/// Sender-side settings that change what is on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// `TCPWindowTracking on`: send the window scales.
    pub tcp_window_tracking: bool,
    /// `CommitTimeout` set: omit `NTA_TIMEOUT`.
    pub omit_timeout: bool,
    /// `ReplicateLabels off`: omit `NTA_LABELS`.
    pub omit_labels: bool,
}

/// Appends one conntrack state message (header included) to `out`, in the
/// 1.4.7 emission order (§5.2). Returns false (writing nothing) if the
/// flow has no original tuple.
pub fn encode_state(
    kind: MsgType,
    flags: u8,
    seq: u32,
    ct: &Conntrack,
    opts: EncodeOptions,
    out: &mut Vec<u8>,
) -> bool {
    let Some(orig) = &ct.orig else {
        return false;
    };
    crate::tlv::message(out, kind, flags, seq, |w| {
        w.addrs(NTA_IPV4, NTA_IPV6, orig);
        w.be32(NTA_STATUS, ct.status.unwrap_or(0));
        w.u8(NTA_L4PROTO, orig.l4proto);
        let ports = orig.src_port.zip(orig.dst_port);
        match orig.l4proto {
            consts::IPPROTO_TCP => {
                if let Some((s, d)) = ports {
                    w.ports(NTA_PORT, s, d);
                }
                if let Some(tcp) = ct.tcp.as_ref().filter(|t| t.state.is_some()) {
                    w.u8(NTA_TCP_STATE, tcp.state.unwrap_or(0));
                    if opts.tcp_window_tracking {
                        w.u8(NTA_TCP_WSCALE_ORIG, tcp.wscale_orig.unwrap_or(0));
                        w.u8(NTA_TCP_WSCALE_REPL, tcp.wscale_reply.unwrap_or(0));
                    }
                }
            }
            consts::IPPROTO_SCTP => {
                if let Some((s, d)) = ports {
                    w.ports(NTA_PORT, s, d);
                }
                if let Some(sctp) = ct.sctp.as_ref().filter(|s| s.state.is_some()) {
                    w.u8(NTA_SCTP_STATE, sctp.state.unwrap_or(0));
                    w.be32(NTA_SCTP_VTAG_ORIG, sctp.vtag_orig.unwrap_or(0));
                    w.be32(NTA_SCTP_VTAG_REPL, sctp.vtag_reply.unwrap_or(0));
                }
            }
            consts::IPPROTO_DCCP => {
                if let Some((s, d)) = ports {
                    w.ports(NTA_PORT, s, d);
                }
                if let Some(dccp) = ct.dccp.as_ref().filter(|d| d.state.is_some()) {
                    w.u8(NTA_DCCP_STATE, dccp.state.unwrap_or(0));
                    w.u8(NTA_DCCP_ROLE, dccp.role.unwrap_or(0));
                }
            }
            consts::IPPROTO_ICMP | consts::IPPROTO_ICMPV6 => {
                if let Some(t) = orig.icmp_type {
                    w.u8(NTA_ICMP_TYPE, t);
                    w.u8(NTA_ICMP_CODE, orig.icmp_code.unwrap_or(0));
                    // Little-endian, as x86 1.4.7 peers send it (§5.3).
                    w.attr(NTA_ICMP_ID, &orig.icmp_id.unwrap_or(0).to_le_bytes());
                }
            }
            consts::IPPROTO_UDP => {
                if let Some((s, d)) = ports {
                    w.ports(NTA_PORT, s, d);
                }
            }
            _ => {}
        }
        if !opts.omit_timeout
            && let Some(t) = ct.timeout
        {
            w.be32(NTA_TIMEOUT, t);
        }
        if let Some(m) = ct.mark {
            w.be32(NTA_MARK, m);
        }
        if let Some(master) = &ct.master {
            w.addrs(NTA_MASTER_IPV4, NTA_MASTER_IPV6, master);
            w.u8(NTA_MASTER_L4PROTO, master.l4proto);
            if let (Some(s), Some(d)) = (master.src_port, master.dst_port) {
                w.ports(NTA_MASTER_PORT, s, d);
            }
        }
        write_nat(w, ct, orig);
        if let (Some(o), Some(r)) = (ct.seq_adj_orig, ct.seq_adj_reply)
            && let [Some(a), Some(b), Some(c), Some(d), Some(e), Some(f)] = [
                o.correction_pos,
                o.offset_before,
                o.offset_after,
                r.correction_pos,
                r.offset_before,
                r.offset_after,
            ]
        {
            let mut p = Vec::with_capacity(24);
            for v in [a, b, c, d, e, f] {
                p.extend_from_slice(&v.to_be_bytes());
            }
            w.attr(NTA_NAT_SEQ_ADJ, &p);
        }
        // Longer names would make a 1.4.7 receiver drop the whole message.
        if let Some(h) = ct.helper.as_ref().filter(|h| h.len() <= MAX_HELPER_NAME) {
            w.string(NTA_HELPER_NAME, h);
        }
        if let Some(labels) = ct
            .labels
            .as_ref()
            .filter(|l| !opts.omit_labels && l.iter().any(|b| *b != 0))
        {
            w.attr(NTA_LABELS, labels);
        }
        if let Some(sp) = &ct.synproxy {
            let mut p = Vec::with_capacity(12);
            for v in [sp.its, sp.isn, sp.tsoff] {
                p.extend_from_slice(&v.to_be_bytes());
            }
            w.attr(NTA_SYNPROXY, &p);
        }
        if let Some(z) = ct.zone {
            w.attr(NTA_ZONE, &z.to_be_bytes());
        }
    });
    true
}

/// NAT as the 1.4.7 sender derives it from the reply tuple (§5.2 step 8).
fn write_nat(w: &mut TlvWriter<'_>, ct: &Conntrack, orig: &Tuple) {
    let Some(reply) = &ct.reply else {
        write_received_nat(w, ct);
        return;
    };
    let status_allows = |bit| ct.status.is_none_or(|s| s & bit != 0);
    let snat = status_allows(consts::status::SRC_NAT_DONE) && reply.dst != orig.src;
    let dnat = status_allows(consts::status::DST_NAT_DONE) && reply.src != orig.dst;
    match (orig.src, reply.dst, reply.src) {
        (IpAddr::V4(_), IpAddr::V4(to_s), IpAddr::V4(to_d)) => {
            if snat {
                w.attr(NTA_SNAT_IPV4, &to_s.octets());
            }
            if dnat {
                w.attr(NTA_DNAT_IPV4, &to_d.octets());
            }
        }
        (IpAddr::V6(_), IpAddr::V6(to_s), IpAddr::V6(to_d)) => {
            if snat {
                w.attr(NTA_SNAT_IPV6, &to_s.octets());
            }
            if dnat {
                w.attr(NTA_DNAT_IPV6, &to_d.octets());
            }
        }
        _ => {}
    }
    // Ports only where the tuple has ports (1.4.7 also compares the ICMP
    // fields and can send meaningless values; we do not).
    if let (Some(rd), Some(os)) = (reply.dst_port, orig.src_port)
        && status_allows(consts::status::SRC_NAT_DONE)
        && rd != os
    {
        w.attr(NTA_SPAT_PORT, &rd.to_le_bytes());
    }
    if let (Some(rs), Some(od)) = (reply.src_port, orig.dst_port)
        && status_allows(consts::status::DST_NAT_DONE)
        && rs != od
    {
        w.attr(NTA_DPAT_PORT, &rs.to_le_bytes());
    }
}

/// NAT of a flow that came from a peer (no reply tuple): as received.
fn write_received_nat(w: &mut TlvWriter<'_>, ct: &Conntrack) {
    let ip = |nat: &Option<NatRange>| nat.as_ref().and_then(|n| n.min_ip);
    let port = |nat: &Option<NatRange>| nat.as_ref().and_then(|n| n.min_port);
    for (addr, v4, v6) in [
        (ip(&ct.nat_src), NTA_SNAT_IPV4, NTA_SNAT_IPV6),
        (ip(&ct.nat_dst), NTA_DNAT_IPV4, NTA_DNAT_IPV6),
    ] {
        match addr {
            Some(IpAddr::V4(a)) => w.attr(v4, &a.octets()),
            Some(IpAddr::V6(a)) => w.attr(v6, &a.octets()),
            None => {}
        }
    }
    if let Some(p) = port(&ct.nat_src) {
        w.attr(NTA_SPAT_PORT, &p.to_le_bytes());
    }
    if let Some(p) = port(&ct.nat_dst) {
        w.attr(NTA_DPAT_PORT, &p.to_le_bytes());
    }
}

/// Decodes the attributes of a conntrack state message (`message` is the
/// whole message, header included), with the 1.4.7 receiver's exact
/// length checks.
pub fn decode_state(message: &[u8]) -> Result<Conntrack, PayloadError> {
    let body = message.get(HEADER_LEN..).ok_or(PayloadError::Truncated)?;
    let mut ct = Conntrack::default();
    let mut addrs: Option<(IpAddr, IpAddr)> = None;
    let mut proto = None;
    let mut ports = None;
    let mut icmp = (None, None, None);
    let mut master_addrs: Option<(IpAddr, IpAddr)> = None;
    let mut master_proto = None;
    let mut master_ports = None;
    let mut snat = NatRange::default();
    let mut dnat = NatRange::default();
    for attr in attributes(body) {
        let (id, len, p) = attr?;
        let exact = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(PayloadError::BadLength(id))
            }
        };
        match id {
            NTA_IPV4 | NTA_MASTER_IPV4 => {
                exact(12)?;
                let pair = (ip4(&p[..4]), ip4(&p[4..8]));
                if id == NTA_IPV4 {
                    addrs = Some(pair)
                } else {
                    master_addrs = Some(pair)
                }
            }
            NTA_IPV6 | NTA_MASTER_IPV6 => {
                exact(36)?;
                let pair = (ip6(&p[..16]), ip6(&p[16..32]));
                if id == NTA_IPV6 {
                    addrs = Some(pair)
                } else {
                    master_addrs = Some(pair)
                }
            }
            NTA_L4PROTO => {
                exact(5)?;
                proto = Some(p[0])
            }
            NTA_MASTER_L4PROTO => {
                exact(5)?;
                master_proto = Some(p[0])
            }
            NTA_PORT | NTA_MASTER_PORT => {
                exact(8)?;
                let pair = (be16(&p[..2]), be16(&p[2..4]));
                if id == NTA_PORT {
                    ports = Some(pair)
                } else {
                    master_ports = Some(pair)
                }
            }
            NTA_TCP_STATE => {
                exact(5)?;
                tcp(&mut ct).state = Some(p[0])
            }
            NTA_TCP_WSCALE_ORIG => {
                exact(5)?;
                tcp(&mut ct).wscale_orig = Some(p[0])
            }
            NTA_TCP_WSCALE_REPL => {
                exact(5)?;
                tcp(&mut ct).wscale_reply = Some(p[0])
            }
            NTA_STATUS => {
                exact(8)?;
                ct.status = Some(be32(p))
            }
            NTA_TIMEOUT => {
                exact(8)?;
                ct.timeout = Some(be32(p))
            }
            NTA_MARK => {
                exact(8)?;
                ct.mark = Some(be32(p))
            }
            NTA_SNAT_IPV4 => {
                exact(8)?;
                let a = ip4(p);
                snat.min_ip = Some(a);
                snat.max_ip = Some(a)
            }
            NTA_DNAT_IPV4 => {
                exact(8)?;
                let a = ip4(p);
                dnat.min_ip = Some(a);
                dnat.max_ip = Some(a)
            }
            NTA_SNAT_IPV6 => {
                exact(20)?;
                let a = ip6(p);
                snat.min_ip = Some(a);
                snat.max_ip = Some(a)
            }
            NTA_DNAT_IPV6 => {
                exact(20)?;
                let a = ip6(p);
                dnat.min_ip = Some(a);
                dnat.max_ip = Some(a)
            }
            NTA_SPAT_PORT => {
                exact(6)?;
                let v = u16::from_le_bytes([p[0], p[1]]);
                snat.min_port = Some(v);
                snat.max_port = Some(v)
            }
            NTA_DPAT_PORT => {
                exact(6)?;
                let v = u16::from_le_bytes([p[0], p[1]]);
                dnat.min_port = Some(v);
                dnat.max_port = Some(v)
            }
            NTA_NAT_SEQ_ADJ => {
                exact(28)?;
                let v = |i: usize| Some(be32(&p[4 * i..]));
                ct.seq_adj_orig = Some(SeqAdj {
                    correction_pos: v(0),
                    offset_before: v(1),
                    offset_after: v(2),
                });
                ct.seq_adj_reply = Some(SeqAdj {
                    correction_pos: v(3),
                    offset_before: v(4),
                    offset_after: v(5),
                });
            }
            NTA_SCTP_STATE => {
                exact(5)?;
                sctp(&mut ct).state = Some(p[0])
            }
            NTA_SCTP_VTAG_ORIG => {
                exact(8)?;
                sctp(&mut ct).vtag_orig = Some(be32(p))
            }
            NTA_SCTP_VTAG_REPL => {
                exact(8)?;
                sctp(&mut ct).vtag_reply = Some(be32(p))
            }
            NTA_DCCP_STATE => {
                exact(5)?;
                dccp(&mut ct).state = Some(p[0])
            }
            NTA_DCCP_ROLE => {
                exact(5)?;
                dccp(&mut ct).role = Some(p[0])
            }
            NTA_ICMP_TYPE => {
                exact(5)?;
                icmp.1 = Some(p[0])
            }
            NTA_ICMP_CODE => {
                exact(5)?;
                icmp.2 = Some(p[0])
            }
            NTA_ICMP_ID => {
                exact(6)?;
                icmp.0 = Some(u16::from_le_bytes([p[0], p[1]]))
            }
            NTA_HELPER_NAME => {
                if len > 4 + MAX_HELPER_NAME + 1 {
                    return Err(PayloadError::BadLength(id));
                }
                let end = p.iter().position(|b| *b == 0).unwrap_or(p.len());
                ct.helper = Some(String::from_utf8_lossy(&p[..end]).into_owned());
            }
            NTA_LABELS => {
                if len > 1028 {
                    return Err(PayloadError::BadLength(id));
                }
                // 1.4.7 ignores an empty or unaligned labels payload.
                if !p.is_empty() && p.len().is_multiple_of(4) {
                    ct.labels = Some(p.to_vec());
                }
            }
            NTA_SYNPROXY => {
                exact(16)?;
                ct.synproxy = Some(Synproxy {
                    its: be32(p),
                    isn: be32(&p[4..]),
                    tsoff: be32(&p[8..]),
                });
            }
            NTA_ZONE => {
                exact(6)?;
                ct.zone = Some(be16(p))
            }
            other => return Err(PayloadError::UnknownAttribute(other)),
        }
    }
    // 1.4.7 accepts address-less messages and later crashes on them; we refuse.
    let (src, dst) = addrs.ok_or(PayloadError::NoAddress)?;
    let mut orig = Tuple::new(src, dst, proto.unwrap_or(0));
    if let Some((s, d)) = ports {
        orig = orig.with_ports(s, d);
    }
    orig.icmp_id = icmp.0;
    orig.icmp_type = icmp.1;
    orig.icmp_code = icmp.2;
    ct.orig = Some(orig);
    if let Some((s, d)) = master_addrs {
        let mut m = Tuple::new(s, d, master_proto.unwrap_or(0));
        if let Some((a, b)) = master_ports {
            m = m.with_ports(a, b);
        }
        ct.master = Some(m);
    }
    if snat != NatRange::default() {
        ct.nat_src = Some(snat);
    }
    if dnat != NatRange::default() {
        ct.nat_dst = Some(dnat);
    }
    Ok(ct)
}

fn tcp(ct: &mut Conntrack) -> &mut TcpInfo {
    ct.tcp.get_or_insert_with(TcpInfo::default)
}
fn sctp(ct: &mut Conntrack) -> &mut SctpInfo {
    ct.sctp.get_or_insert_with(SctpInfo::default)
}
fn dccp(ct: &mut Conntrack) -> &mut DccpInfo {
    ct.dccp.get_or_insert_with(DccpInfo::default)
}

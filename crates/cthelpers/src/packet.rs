//! The IP and TCP/UDP headers of a queued packet (NFQUEUE hands over
//! the packet from its IP header on). Bounds-checked; never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ParseError;
use crate::kind::{IPPROTO_TCP, IPPROTO_UDP};

/// TCP flag bits of interest.
pub const TCP_SYN: u8 = 0x02;
pub const TCP_ACK: u8 = 0x10;

/// A parsed packet borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// 6 or 17.
    pub l4proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// TCP sequence number and flags (0 for UDP).
    pub tcp_seq: u32,
    pub tcp_flags: u8,
    /// Offset of the transport payload from the start of the packet.
    pub payload_offset: usize,
    pub payload: &'a [u8],
}

impl Packet<'_> {
    /// A TCP SYN without ACK: the first packet of a connection.
    pub fn is_tcp_syn(&self) -> bool {
        self.l4proto == IPPROTO_TCP && self.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
    }
}

/// IPv6 extension headers that are skipped to reach the transport.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DEST_OPTS: u8 = 60;

/// Parses a packet from its IP header on.
pub fn parse(bytes: &[u8]) -> Result<Packet<'_>, ParseError> {
    let version = bytes.first().ok_or(ParseError::ShortIpHeader)? >> 4;
    let (src, dst, l4proto, l4_start, end) = match version {
        4 => ipv4(bytes)?,
        6 => ipv6(bytes)?,
        _ => return Err(ParseError::NotIp),
    };
    let l4 = bytes
        .get(l4_start..end)
        .ok_or(ParseError::ShortTransportHeader)?;
    let port = |at: usize| -> Result<u16, ParseError> {
        l4.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(ParseError::ShortTransportHeader)
    };
    let sport = port(0)?;
    let dport = port(2)?;
    let (header_len, tcp_seq, tcp_flags) = match l4proto {
        IPPROTO_TCP => {
            let seq = l4
                .get(4..8)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(ParseError::ShortTransportHeader)?;
            let offset = l4.get(12).ok_or(ParseError::ShortTransportHeader)?;
            let flags = l4.get(13).ok_or(ParseError::ShortTransportHeader)?;
            let len = usize::from(offset >> 4) * 4;
            if len < 20 {
                return Err(ParseError::ShortTransportHeader);
            }
            (len, seq, *flags)
        }
        IPPROTO_UDP => (8, 0, 0),
        _ => return Err(ParseError::NotTcpOrUdp),
    };
    let payload = l4
        .get(header_len..)
        .ok_or(ParseError::ShortTransportHeader)?;
    Ok(Packet {
        src,
        dst,
        l4proto,
        sport,
        dport,
        tcp_seq,
        tcp_flags,
        payload_offset: l4_start + header_len,
        payload,
    })
}

type Network = (IpAddr, IpAddr, u8, usize, usize);

fn ipv4(bytes: &[u8]) -> Result<Network, ParseError> {
    let header = bytes.get(..20).ok_or(ParseError::ShortIpHeader)?;
    let header_len = usize::from(header[0] & 0x0f) * 4;
    if header_len < 20 || bytes.len() < header_len {
        return Err(ParseError::ShortIpHeader);
    }
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    // A truncated copy (copy range) is read as far as it goes.
    let end = total.clamp(header_len, bytes.len());
    let fragment_offset = u16::from_be_bytes([header[6], header[7]]) & 0x1fff;
    if fragment_offset != 0 {
        // Not the first fragment: no transport header here.
        return Err(ParseError::NotTcpOrUdp);
    }
    let src = Ipv4Addr::new(header[12], header[13], header[14], header[15]);
    let dst = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    Ok((src.into(), dst.into(), header[9], header_len, end))
}

fn ipv6(bytes: &[u8]) -> Result<Network, ParseError> {
    let header = bytes.get(..40).ok_or(ParseError::ShortIpHeader)?;
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let end = (40 + payload_len).min(bytes.len());
    let mut next = header[6];
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&header[at..at + 16]);
        Ipv6Addr::from(a)
    };
    let (src, dst) = (addr(8), addr(24));
    let mut at = 40;
    // A bounded walk over the extension headers.
    for _ in 0..8 {
        match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                let ext = bytes.get(at..at + 2).ok_or(ParseError::ShortIpHeader)?;
                next = ext[0];
                at += (usize::from(ext[1]) + 1) * 8;
            }
            IPV6_FRAGMENT => {
                let ext = bytes.get(at..at + 4).ok_or(ParseError::ShortIpHeader)?;
                if u16::from_be_bytes([ext[2], ext[3]]) & 0xfff8 != 0 {
                    return Err(ParseError::NotTcpOrUdp);
                }
                next = ext[0];
                at += 8;
            }
            _ => return Ok((src.into(), dst.into(), next, at, end.max(at))),
        }
    }
    Err(ParseError::NotTcpOrUdp)
}

/// Builders of test packets (also used by the fuzz bodies and benches).
pub mod build {
    use std::net::IpAddr;

    use crate::kind::{IPPROTO_TCP, IPPROTO_UDP};

    /// A UDP packet from `src:sport` to `dst:dport` carrying `payload`
    /// (checksums left zero: nothing here verifies them).
    pub fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::with_capacity(8 + payload.len());
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&dport.to_be_bytes());
        l4.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap_or(0).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        ip(src, dst, IPPROTO_UDP, &l4)
    }

    /// A TCP segment with the given sequence number and flags.
    pub fn tcp(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut l4 = Vec::with_capacity(20 + payload.len());
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&dport.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&[0, 0, 0, 0]);
        l4.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        l4.extend_from_slice(payload);
        ip(src, dst, IPPROTO_TCP, &l4)
    }

    fn ip(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + l4.len());
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = u16::try_from(20 + l4.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&[0x45, 0]);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&d.octets());
            }
            (s, d) => {
                let to6 = |a: IpAddr| match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                let len = u16::try_from(l4.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&[0x60, 0, 0, 0]);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&[proto, 64]);
                out.extend_from_slice(&to6(s).octets());
                out.extend_from_slice(&to6(d).octets());
            }
        }
        out.extend_from_slice(l4);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_udp_packet_and_its_payload() {
        let bytes = build::udp(
            "10.0.0.1".parse().expect("ip"),
            40000,
            "10.0.0.2".parse().expect("ip"),
            69,
            b"\x00\x01file\x00octet\x00",
        );
        let p = parse(&bytes).expect("parses");
        assert_eq!((p.sport, p.dport, p.l4proto), (40000, 69, IPPROTO_UDP));
        assert_eq!(p.payload, b"\x00\x01file\x00octet\x00");
    }

    #[test]
    fn reads_a_tcp_segment_over_ipv6() {
        let bytes = build::tcp(
            "2001:db8::1".parse().expect("ip"),
            40000,
            "2001:db8::2".parse().expect("ip"),
            21,
            7,
            TCP_SYN,
            b"",
        );
        let p = parse(&bytes).expect("parses");
        assert!(p.is_tcp_syn());
        assert_eq!(p.tcp_seq, 7);
        assert_eq!(p.dst, "2001:db8::2".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn refuses_truncated_and_foreign_packets() {
        assert_eq!(parse(&[]), Err(ParseError::ShortIpHeader));
        assert_eq!(parse(&[0x45; 10]), Err(ParseError::ShortIpHeader));
        assert_eq!(parse(&[0x20; 60]), Err(ParseError::NotIp));
        let mut icmp = build::udp(
            "10.0.0.1".parse().expect("ip"),
            1,
            "10.0.0.2".parse().expect("ip"),
            2,
            b"",
        );
        icmp[9] = 1;
        assert_eq!(parse(&icmp), Err(ParseError::NotTcpOrUdp));
        let bytes = build::tcp(
            "10.0.0.1".parse().expect("ip"),
            1,
            "10.0.0.2".parse().expect("ip"),
            2,
            0,
            0,
            b"",
        );
        assert_eq!(parse(&bytes[..30]), Err(ParseError::ShortTransportHeader));
    }
}

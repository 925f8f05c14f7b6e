//! The fuzz targets' bodies (`fuzz/`), here so that the ordinary tests
//! replay each corpus through the same code.
//!
//! Input format of the helper targets: a flow as a sequence of packets,
//! each `[flags][length: u16 big endian][payload]` (a last packet shorter
//! than its length takes what is left). Flags: bit 0, from the server;
//! bit 1, over TCP (for the helpers that serve both); bit 7, a TCP SYN.
//! Every packet also goes in whole as a raw IP packet, for hostile
//! headers. Beyond "no panic" each target checks: the verdict is ACCEPT,
//! every expectation names a flow that was fed as its master, with that
//! flow's address family and the helper's name, and the counters add up.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::engine::{AF_INET, AF_INET6, Engine, HelperSetup, Output};
use crate::kind::{HelperKind, IPPROTO_TCP, IPPROTO_UDP};
use crate::packet::build;

/// Flag bits of a packet in the input.
pub const FROM_SERVER: u8 = 0x01;
pub const OVER_TCP: u8 = 0x02;
pub const SYN: u8 = 0x80;

/// Encodes a flow in the input format (for seeds and tests).
pub fn encode_flow(packets: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (flags, payload) in packets {
        out.push(*flags);
        let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&payload[..usize::from(len)]);
    }
    out
}

/// Splits the input into (flags, payload) packets.
pub fn decode_flow(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((&flags, rest)) = data.split_first() {
        let len = match rest {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => 0,
        };
        let body = rest.get(2..).unwrap_or(&[]);
        let take = len.min(body.len());
        out.push((flags, &body[..take]));
        data = &body[take..];
    }
    out
}

/// The endpoints the targets use for a helper.
fn endpoints(kind: HelperKind) -> (IpAddr, IpAddr) {
    match kind {
        HelperKind::Ssdp => ([10, 0, 1, 2].into(), [239, 255, 255, 250].into()),
        HelperKind::Mdns => ([10, 0, 1, 2].into(), [224, 0, 0, 251].into()),
        HelperKind::Slp => ([10, 0, 1, 2].into(), [239, 255, 255, 253].into()),
        HelperKind::Dhcpv6 => (
            IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)),
            IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2)),
        ),
        _ => ([10, 0, 1, 2].into(), [10, 0, 2, 1].into()),
    }
}

/// Runs `kind` over the flow `data` encodes; returns the expectations
/// created, after checking the invariants.
pub fn helper_flow(kind: HelperKind, data: &[u8]) -> Vec<conntrack_model::Expect> {
    let flow = decode_flow(data);
    let wants_tcp = flow.first().is_some_and(|(f, _)| f & OVER_TCP != 0);
    let l4proto = if !kind.serves(IPPROTO_UDP) || (wants_tcp && kind.serves(IPPROTO_TCP)) {
        IPPROTO_TCP
    } else {
        IPPROTO_UDP
    };
    let (client, server) = endpoints(kind);
    let mut engine = Engine::new(vec![HelperSetup {
        kind,
        family: if client.is_ipv4() { AF_INET } else { AF_INET6 },
        l4proto,
        queue_num: 1,
        policy: kind.default_policy(),
    }]);
    let (cport, sport) = (40000, kind.server_port());
    let start = Instant::now();
    let mut seq = [1000u32, 5000u32];
    let mut count = 0u64;
    // Addresses of the flows fed: ours, and those of the raw packets.
    let mut seen = vec![client, server];
    for (i, (flags, payload)) in flow.iter().enumerate() {
        let from_server = flags & FROM_SERVER != 0;
        let (src, sp, dst, dp) = if from_server {
            (server, sport, client, cport)
        } else {
            (client, cport, server, sport)
        };
        let bytes = if l4proto == IPPROTO_TCP {
            let tcp_flags = if flags & SYN != 0 { 0x02 } else { 0x18 };
            let s = &mut seq[usize::from(from_server)];
            let bytes = build::tcp(src, sp, dst, dp, *s, tcp_flags, payload);
            *s = s.wrapping_add(u32::try_from(payload.len()).unwrap_or(0));
            bytes
        } else {
            build::udp(src, sp, dst, dp, payload)
        };
        let now = start + Duration::from_millis(u64::try_from(i).unwrap_or(0));
        let id = u32::try_from(i).unwrap_or(0);
        assert!(
            engine.handle_packet(now, 1, id, &bytes, None).accept,
            "a helper never drops"
        );
        assert!(engine.handle_packet(now, 1, id, payload, None).accept);
        if let Ok(raw) = crate::packet::parse(payload) {
            seen.extend([raw.src, raw.dst]);
        }
        count += 2;
        engine.handle_timeout(now);
    }
    let mut created = Vec::new();
    while let Some(out) = engine.poll_output() {
        if let Output::Create { expect, .. } = out {
            let master = expect.master.as_ref().expect("a master");
            let tuple = expect.tuple.as_ref().expect("a tuple");
            assert_eq!(master.family(), tuple.family(), "one address family");
            assert!(
                seen.contains(&master.src) && seen.contains(&master.dst),
                "the master is a flow that was fed"
            );
            assert_eq!(expect.helper.as_deref(), Some(kind.name()));
            created.push(expect);
        }
    }
    let (_, counters) = engine.counters().next().expect("one helper");
    assert_eq!(counters.packets, count);
    assert_eq!(counters.expectations, created.len() as u64);
    assert!(counters.parse_errors <= counters.packets);
    created
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_format_round_trips() {
        let data = encode_flow(&[
            (0, b"PORT 10,0,1,2,156,65\r\n"),
            (FROM_SERVER, b"200 ok\r\n"),
        ]);
        let got = decode_flow(&data);
        assert_eq!(
            got,
            vec![
                (0, &b"PORT 10,0,1,2,156,65\r\n"[..]),
                (1, &b"200 ok\r\n"[..])
            ]
        );
        assert_eq!(helper_flow(HelperKind::Ftp, &data).len(), 1);
        // A truncated last packet takes what is left.
        assert_eq!(decode_flow(&[0, 0, 9, b'a']), vec![(0, &b"a"[..])]);
        assert_eq!(decode_flow(&[0]), vec![(0, &b""[..])]);
    }
}

//! Real payloads, captured from real clients and servers in a namespace
//! by `scripts/capture-helper-payloads` (python's ftplib against
//! pyftpdlib, tftp-hpa, rpcbind), replayed through the helpers with the
//! addresses they were captured with: client 127.0.0.1 (::1), server
//! 127.0.0.2 (::1). The files (tests/captured/) also seed the fuzz
//! corpora; a new capture has other ports, and these values must follow.

use std::net::IpAddr;
use std::time::Instant;

use cthelpers::engine::{AF_INET, AF_INET6};
use cthelpers::fuzzing::{FROM_SERVER, OVER_TCP, SYN, decode_flow};
use cthelpers::kind::{IPPROTO_TCP, IPPROTO_UDP};
use cthelpers::packet::build;
use cthelpers::{Engine, HelperKind, HelperSetup, Output};

fn captured(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/captured/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (src or None, dst, protocol, port) of each expectation created.
fn replay(kind: HelperKind, file: &[u8], v6: bool) -> Vec<(Option<IpAddr>, IpAddr, u8, u16)> {
    let (client, server): (IpAddr, IpAddr) = if v6 {
        ("::1".parse().expect("ip"), "::1".parse().expect("ip"))
    } else {
        (
            "127.0.0.1".parse().expect("ip"),
            "127.0.0.2".parse().expect("ip"),
        )
    };
    let flow = decode_flow(file);
    let tcp = flow.first().is_some_and(|(f, _)| f & OVER_TCP != 0);
    let mut engine = Engine::new(vec![HelperSetup {
        kind,
        family: if v6 { AF_INET6 } else { AF_INET },
        l4proto: if tcp { IPPROTO_TCP } else { IPPROTO_UDP },
        queue_num: 1,
        policy: kind.default_policy(),
    }]);
    let mut seq = [100u32, 900u32];
    let now = Instant::now();
    for (i, (flags, payload)) in flow.iter().enumerate() {
        let from_server = flags & FROM_SERVER != 0;
        let (src, sp, dst, dp) = if from_server {
            (server, kind.server_port(), client, 40000)
        } else {
            (client, 40000, server, kind.server_port())
        };
        let bytes = if tcp {
            let s = &mut seq[usize::from(from_server)];
            let tcp_flags = if flags & SYN != 0 { 0x02 } else { 0x18 };
            let b = build::tcp(src, sp, dst, dp, *s, tcp_flags, payload);
            *s = s.wrapping_add(payload.len() as u32);
            b
        } else {
            build::udp(src, sp, dst, dp, payload)
        };
        assert!(engine.handle_packet(now, 1, i as u32, &bytes, None).accept);
    }
    let (_, c) = engine.counters().next().expect("helper");
    assert_eq!(c.parse_errors, 0, "real traffic parses: {c:?}");
    std::iter::from_fn(|| engine.poll_output())
        .filter_map(|o| match o {
            Output::Create { expect, .. } => {
                let t = expect.tuple.expect("tuple");
                let any = expect.mask.expect("mask").src.is_unspecified();
                Some((
                    (!any).then_some(t.src),
                    t.dst,
                    t.l4proto,
                    t.dst_port.expect("port"),
                ))
            }
            Output::Delete { .. } => None,
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn ftp_sessions_of_ftplib_and_pyftpdlib() {
    // "227 Entering passive mode (127,0,0,2,219,165)."
    let got = replay(HelperKind::Ftp, &captured("ftp-v4-tcp-0.bin"), false);
    assert_eq!(
        got,
        vec![(
            Some(ip("127.0.0.1")),
            ip("127.0.0.2"),
            IPPROTO_TCP,
            219 * 256 + 165
        )]
    );
    // "PORT 127,0,0,1,132,213"
    let got = replay(HelperKind::Ftp, &captured("ftp-v4-tcp-1.bin"), false);
    assert_eq!(
        got,
        vec![(
            Some(ip("127.0.0.2")),
            ip("127.0.0.1"),
            IPPROTO_TCP,
            132 * 256 + 213
        )]
    );
    // "229 Entering extended passive mode (|||48293|)." over IPv6.
    let epsv = replay(HelperKind::Ftp, &captured("ftp-v6-tcp-2.bin"), true);
    assert_eq!(epsv, vec![(Some(ip("::1")), ip("::1"), IPPROTO_TCP, 48293)]);
    // "EPRT |2|::1|33327|"
    let eprt = replay(HelperKind::Ftp, &captured("ftp-v6-tcp-3.bin"), true);
    assert_eq!(eprt, vec![(Some(ip("::1")), ip("::1"), IPPROTO_TCP, 33327)]);
}

#[test]
fn a_tftp_read_of_tftp_hpa() {
    let got = replay(HelperKind::Tftp, &captured("tftp-v4-udp-0.bin"), false);
    assert_eq!(
        got,
        vec![(Some(ip("127.0.0.2")), ip("127.0.0.1"), IPPROTO_UDP, 40000)]
    );
}

#[test]
fn getport_answered_by_rpcbind_over_udp_and_tcp() {
    // Program 100005 v3 registered on TCP 20049 and UDP 20048.
    let udp = replay(HelperKind::Rpc, &captured("rpc-v4-udp-0.bin"), false);
    assert_eq!(
        udp,
        vec![(Some(ip("127.0.0.1")), ip("127.0.0.2"), IPPROTO_TCP, 20049)]
    );
    let tcp = replay(HelperKind::Rpc, &captured("rpc-v4-tcp-1.bin"), false);
    assert_eq!(
        tcp,
        vec![(Some(ip("127.0.0.1")), ip("127.0.0.2"), IPPROTO_UDP, 20048)]
    );
}

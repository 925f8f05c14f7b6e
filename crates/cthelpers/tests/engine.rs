//! Each helper through the engine, on the packets of a whole exchange:
//! what it expects, what its policy does, and that bad input is counted
//! and accepted.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use conntrack_model::{Expect, Tuple};
use cthelpers::engine::{AF_INET, AF_INET6};
use cthelpers::kind::{IPPROTO_TCP, IPPROTO_UDP};
use cthelpers::packet::build;
use cthelpers::{Engine, HelperKind, HelperSetup, Output, Policy};
use proptest::prelude::*;

const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const SYN: u8 = 0x02;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn engine(kind: HelperKind, l4proto: u8) -> Engine {
    Engine::new(vec![HelperSetup {
        kind,
        family: AF_INET,
        l4proto,
        queue_num: 5,
        policy: kind.default_policy(),
    }])
}

/// A TCP conversation: client and server sequence numbers advance.
struct Tcp {
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    seq: [u32; 2],
    now: Instant,
}

impl Tcp {
    fn new(client: (IpAddr, u16), server: (IpAddr, u16)) -> Tcp {
        Tcp {
            client,
            server,
            seq: [100, 9000],
            now: Instant::now(),
        }
    }

    fn packet(&mut self, from_client: bool, flags: u8, data: &[u8]) -> Vec<u8> {
        let (a, b) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let seq = &mut self.seq[usize::from(!from_client)];
        let bytes = build::tcp(a.0, a.1, b.0, b.1, *seq, flags, data);
        *seq = seq.wrapping_add(u32::try_from(data.len()).expect("small"));
        bytes
    }

    /// Handshake then `exchange`; returns the expectations created.
    fn run(&mut self, engine: &mut Engine, exchange: &[(bool, &[u8])]) -> Vec<Expect> {
        let mut packets = vec![
            self.packet(true, SYN, b""),
            self.packet(false, SYN | ACK, b""),
            self.packet(true, ACK, b""),
        ];
        for (from_client, data) in exchange {
            packets.push(self.packet(*from_client, PSH_ACK, data));
        }
        for (id, p) in packets.iter().enumerate() {
            let v = engine.handle_packet(self.now, 5, id as u32, p, None);
            assert!(v.accept);
        }
        created(engine)
    }
}

fn created(engine: &mut Engine) -> Vec<Expect> {
    let mut out = Vec::new();
    while let Some(o) = engine.poll_output() {
        if let Output::Create { expect, .. } = o {
            out.push(expect);
        }
    }
    out
}

/// (src or None, dst, proto, dport) of an expectation, and its master.
fn summary(e: &Expect) -> (Option<IpAddr>, IpAddr, u8, u16) {
    let t = e.tuple.as_ref().expect("tuple");
    let m = e.mask.as_ref().expect("mask");
    let any_src = m.src.is_unspecified();
    assert_eq!(t.src_port, Some(0), "source port is a wildcard");
    assert_eq!(m.src_port, Some(0));
    assert_eq!(m.dst_port, Some(0xffff));
    (
        (!any_src).then_some(t.src),
        t.dst,
        t.l4proto,
        t.dst_port.expect("port"),
    )
}

fn master(e: &Expect) -> Tuple {
    e.master.clone().expect("master")
}

#[test]
fn ftp_active_and_passive_over_ipv4() {
    let mut e = engine(HelperKind::Ftp, IPPROTO_TCP);
    let client = (ip("10.0.1.2"), 40000);
    let server = (ip("10.0.2.1"), 21);
    let mut tcp = Tcp::new(client, server);
    let got = tcp.run(
        &mut e,
        &[
            (false, b"220 ready\r\n"),
            (true, b"PORT 10,0,1,2,156,65\r\n"),
            (false, b"200 PORT command successful\r\n"),
            (true, b"PASV\r\n"),
            (false, b"227 Entering Passive Mode (10,0,2,1,195,80).\r\n"),
        ],
    );
    assert_eq!(got.len(), 2);
    // Active: the server connects to the client's port 40001.
    assert_eq!(
        summary(&got[0]),
        (Some(server.0), client.0, IPPROTO_TCP, 40001)
    );
    // Passive: the client connects to the server's port 50000.
    assert_eq!(
        summary(&got[1]),
        (Some(client.0), server.0, IPPROTO_TCP, 50000)
    );
    for g in &got {
        assert_eq!(
            master(g),
            Tuple::new(client.0, server.0, IPPROTO_TCP).with_ports(40000, 21)
        );
        assert_eq!(g.helper.as_deref(), Some("ftp"));
        assert_eq!(g.timeout, Some(300));
    }
    // ExpectMax 1: the second replaced the first.
    let (_, c) = e.counters().next().expect("helper");
    assert_eq!(
        (c.expectations, c.evicted_by_policy, c.parse_errors),
        (2, 1, 0)
    );
}

#[test]
fn ftp_extended_commands_over_ipv6() {
    let mut e = engine(HelperKind::Ftp, IPPROTO_TCP);
    let client = (ip("2001:db8:1::2"), 40000);
    let server = (ip("2001:db8:2::1"), 21);
    let mut tcp = Tcp::new(client, server);
    let got = tcp.run(
        &mut e,
        &[
            (true, b"EPRT |2|2001:db8:1::2|40002|\r\n"),
            (false, b"200 EPRT command successful\r\n"),
            (true, b"EPSV\r\n"),
            (false, b"229 Entering Extended Passive Mode (|||50002|)\r\n"),
        ],
    );
    assert_eq!(
        summary(&got[0]),
        (Some(server.0), client.0, IPPROTO_TCP, 40002)
    );
    assert_eq!(
        summary(&got[1]),
        (Some(client.0), server.0, IPPROTO_TCP, 50002)
    );
}

#[test]
fn ftp_refuses_a_bounce_and_ignores_mid_line_segments() {
    let mut e = engine(HelperKind::Ftp, IPPROTO_TCP);
    let mut tcp = Tcp::new((ip("10.0.1.2"), 40000), (ip("10.0.2.1"), 21));
    // A PORT naming a third host; then a line split in two segments whose
    // second part looks like a command.
    let got = tcp.run(
        &mut e,
        &[
            (true, b"PORT 192,168,9,9,0,22\r\n"),
            (true, b"STOR x"),
            (true, b"PORT 10,0,1,2,1,1\r\n"),
        ],
    );
    assert!(got.is_empty(), "{got:?}");
    let (_, c) = e.counters().next().expect("helper");
    assert_eq!(c.refused_by_policy, 1);
}

#[test]
fn ftp_started_mid_connection_finds_client_and_server() {
    // No handshake seen (daemon restarted): the server port decides.
    let mut e = engine(HelperKind::Ftp, IPPROTO_TCP);
    let client = ip("10.0.1.2");
    let server = ip("10.0.2.1");
    let reply = build::tcp(
        server,
        21,
        client,
        40000,
        1,
        PSH_ACK,
        b"227 Entering Passive Mode (10,0,2,1,195,81)\r\n",
    );
    e.handle_packet(Instant::now(), 5, 1, &reply, None);
    let got = created(&mut e);
    assert_eq!(summary(&got[0]), (Some(client), server, IPPROTO_TCP, 50001));
    assert_eq!(master(&got[0]).src, client);
}

#[test]
fn tftp_read_request_expects_the_server_from_any_port() {
    let mut e = engine(HelperKind::Tftp, IPPROTO_UDP);
    let rrq = build::udp(
        ip("10.0.1.2"),
        40000,
        ip("10.0.2.1"),
        69,
        b"\x00\x01hello.txt\x00octet\x00",
    );
    e.handle_packet(Instant::now(), 5, 1, &rrq, None);
    let got = created(&mut e);
    assert_eq!(
        summary(&got[0]),
        (Some(ip("10.0.2.1")), ip("10.0.1.2"), IPPROTO_UDP, 40000)
    );
    let bad = build::udp(ip("10.0.1.2"), 40001, ip("10.0.2.1"), 69, b"\x00\x09");
    e.handle_packet(Instant::now(), 5, 2, &bad, None);
    let (_, c) = e.counters().next().expect("helper");
    assert_eq!(c.parse_errors, 1);
}

/// An RPC GETPORT call (portmap v2) for `program` over `transport`.
fn getport_call(xid: u32, program: u32, transport: u32) -> Vec<u8> {
    let mut w = Vec::new();
    for v in [
        xid, 0, 2, 100_000, 2, 3, 0, 0, 0, 0, program, 2, transport, 0,
    ] {
        w.extend_from_slice(&v.to_be_bytes());
    }
    w
}

fn getport_reply(xid: u32, port: u32) -> Vec<u8> {
    let mut w = Vec::new();
    for v in [xid, 1, 0, 0, 0, 0, port] {
        w.extend_from_slice(&v.to_be_bytes());
    }
    w
}

#[test]
fn rpc_getport_over_udp_and_tcp() {
    let client = ip("10.0.1.2");
    let server = ip("10.0.2.1");
    let mut e = engine(HelperKind::Rpc, IPPROTO_UDP);
    let now = Instant::now();
    e.handle_packet(
        now,
        5,
        1,
        &build::udp(client, 800, server, 111, &getport_call(7, 100_003, 6)),
        None,
    );
    e.handle_packet(
        now,
        5,
        2,
        &build::udp(server, 111, client, 800, &getport_reply(7, 2049)),
        None,
    );
    // A reply with another XID, and one for the portmapper's own port.
    e.handle_packet(
        now,
        5,
        3,
        &build::udp(client, 801, server, 111, &getport_call(8, 100_000, 17)),
        None,
    );
    e.handle_packet(
        now,
        5,
        4,
        &build::udp(server, 111, client, 801, &getport_reply(9, 4000)),
        None,
    );
    e.handle_packet(
        now,
        5,
        5,
        &build::udp(client, 802, server, 111, &getport_call(10, 100_000, 17)),
        None,
    );
    e.handle_packet(
        now,
        5,
        6,
        &build::udp(server, 111, client, 802, &getport_reply(10, 111)),
        None,
    );
    let got = created(&mut e);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(summary(&got[0]), (Some(client), server, IPPROTO_TCP, 2049));
    assert_eq!(got[0].flags, Some(1), "permanent");

    let mut e = engine(HelperKind::Rpc, IPPROTO_TCP);
    let mut tcp = Tcp::new((client, 900), (server, 111));
    let mut call = 0x8000_0038u32.to_be_bytes().to_vec();
    call.extend(getport_call(11, 100_005, 17));
    let mut reply = 0x8000_001cu32.to_be_bytes().to_vec();
    reply.extend(getport_reply(11, 20048));
    let got = tcp.run(&mut e, &[(true, &call), (false, &reply)]);
    assert_eq!(summary(&got[0]), (Some(client), server, IPPROTO_UDP, 20048));
}

#[test]
fn tns_redirect_in_the_packet_or_in_the_next_data() {
    let client = (ip("10.0.1.2"), 40000);
    let server = (ip("10.0.2.1"), 1521);
    let text = b"(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=10.0.2.9)(PORT=40123)))";
    let mut redirect = vec![0, 0, 0, 0, 5, 0, 0, 0];
    redirect.extend_from_slice(&(text.len() as u16).to_be_bytes());
    redirect.extend_from_slice(text);
    let mut e = engine(HelperKind::Tns, IPPROTO_TCP);
    let got = Tcp::new(client, server).run(&mut e, &[(true, b"connect"), (false, &redirect)]);
    assert_eq!(
        summary(&got[0]),
        (Some(client.0), ip("10.0.2.9"), IPPROTO_TCP, 40123)
    );

    let empty_redirect = [0, 0, 0, 0, 5, 0, 0, 0, 0, 0];
    let mut data = vec![0, 0, 0, 0, 6, 0, 0, 0];
    data.extend_from_slice(text);
    let mut e = engine(HelperKind::Tns, IPPROTO_TCP);
    let got = Tcp::new(client, server).run(
        &mut e,
        &[(false, &empty_redirect), (false, &data), (false, &data)],
    );
    assert_eq!(got.len(), 1, "only the DATA right after the redirect");
}

#[test]
fn amanda_connect_line_gives_three_expectations() {
    let mut e = engine(HelperKind::Amanda, IPPROTO_UDP);
    let server = ip("10.0.2.1");
    let client = ip("10.0.1.2");
    let now = Instant::now();
    e.handle_packet(
        now,
        5,
        1,
        &build::udp(
            server,
            850,
            client,
            10080,
            b"Amanda 2.6 REQ HANDLE 000 SEQ 1\nSERVICE noop\n",
        ),
        None,
    );
    e.handle_packet(
        now,
        5,
        2,
        &build::udp(
            client,
            10080,
            server,
            850,
            b"Amanda 2.6 REP HANDLE 000 SEQ 1\nCONNECT DATA 50001 MESG 50002 INDEX 50003\n",
        ),
        None,
    );
    let got = created(&mut e);
    let ports: Vec<_> = got.iter().map(summary).collect();
    assert_eq!(
        ports,
        vec![
            (Some(server), client, IPPROTO_TCP, 50001),
            (Some(server), client, IPPROTO_TCP, 50002),
            (Some(server), client, IPPROTO_TCP, 50003)
        ]
    );
}

#[test]
fn sane_start_reply_opens_the_data_port() {
    let mut e = engine(HelperKind::Sane, IPPROTO_TCP);
    let client = (ip("10.0.1.2"), 40000);
    let server = (ip("10.0.2.1"), 6566);
    let got = Tcp::new(client, server).run(
        &mut e,
        &[
            (true, &[0, 0, 0, 7, 0, 0, 0, 0]),
            (false, &[0, 0, 0, 0, 0, 0, 0x9c, 0x41, 0, 0, 0, 0]),
        ],
    );
    assert_eq!(
        summary(&got[0]),
        (Some(client.0), server.0, IPPROTO_TCP, 40001)
    );
}

#[test]
fn discovery_helpers_expect_unicast_answers_from_anyone() {
    let now = Instant::now();
    let querier = ip("10.0.1.2");
    let cases: [(HelperKind, &str, u16, &[u8], u16); 3] = [
        (
            HelperKind::Ssdp,
            "239.255.255.250",
            1900,
            b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n",
            40000,
        ),
        (
            HelperKind::Mdns,
            "224.0.0.251",
            5353,
            &[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
            40000,
        ),
        (
            HelperKind::Slp,
            "239.255.255.253",
            427,
            &[2, 1, 0, 0],
            40000,
        ),
    ];
    for (kind, group, port, payload, sport) in cases {
        let mut e = engine(kind, IPPROTO_UDP);
        e.handle_packet(
            now,
            5,
            1,
            &build::udp(querier, sport, ip(group), port, payload),
            None,
        );
        let got = created(&mut e);
        assert_eq!(
            summary(&got[0]),
            (None, querier, IPPROTO_UDP, sport),
            "{kind:?}"
        );
    }
    // DHCPv6 Solicit: the answer comes to port 546, within 120 s.
    let mut e = Engine::new(vec![HelperSetup {
        kind: HelperKind::Dhcpv6,
        family: AF_INET6,
        l4proto: IPPROTO_UDP,
        queue_num: 5,
        policy: HelperKind::Dhcpv6.default_policy(),
    }]);
    let client = ip("fe80::2");
    e.handle_packet(
        now,
        5,
        1,
        &build::udp(client, 546, ip("ff02::1:2"), 547, &[1, 0, 0, 1]),
        None,
    );
    let got = created(&mut e);
    assert_eq!(summary(&got[0]), (None, client, IPPROTO_UDP, 546));
    assert_eq!(got[0].timeout, Some(120));
    // An SSDP answer's LOCATION.
    let mut e = engine(HelperKind::Ssdp, IPPROTO_UDP);
    let answer = b"HTTP/1.1 200 OK\r\nLocation: http://10.0.2.7:49152/desc.xml\r\n\r\n";
    e.handle_packet(
        now,
        5,
        1,
        &build::udp(ip("10.0.2.7"), 1900, querier, 40000, answer),
        None,
    );
    let got = created(&mut e);
    assert_eq!(summary(&got[0]), (None, ip("10.0.2.7"), IPPROTO_TCP, 49152));
}

#[test]
fn expect_max_keeps_the_newest_and_expired_ones_do_not_count() {
    let mut e = Engine::new(vec![HelperSetup {
        kind: HelperKind::Amanda,
        family: AF_INET,
        l4proto: IPPROTO_UDP,
        queue_num: 5,
        policy: Policy {
            expect_max: 2,
            expect_timeout: 10,
        },
    }]);
    let (server, client) = (ip("10.0.2.1"), ip("10.0.1.2"));
    let start = Instant::now();
    e.handle_packet(
        start,
        5,
        1,
        &build::udp(server, 850, client, 10080, b"x"),
        None,
    );
    let reply = |port: u16| {
        build::udp(
            client,
            10080,
            server,
            850,
            format!("CONNECT DATA {port}\n").as_bytes(),
        )
    };
    for (i, port) in [50001, 50002, 50003].into_iter().enumerate() {
        e.handle_packet(start, 5, 2 + i as u32, &reply(port), None);
    }
    let mut deleted = Vec::new();
    while let Some(o) = e.poll_output() {
        if let Output::Delete { expect, .. } = o {
            deleted.push(summary(&expect).3);
        }
    }
    assert_eq!(deleted, vec![50001]);
    // Past the timeout, nothing is evicted for a new one.
    e.handle_packet(start + Duration::from_secs(11), 5, 9, &reply(50004), None);
    assert!(!std::iter::from_fn(|| e.poll_output()).any(|o| matches!(o, Output::Delete { .. })));
    let (_, c) = e.counters().next().expect("helper");
    assert_eq!((c.expectations, c.evicted_by_policy), (4, 1));
}

#[test]
fn a_queue_no_helper_serves_is_accepted_and_counted() {
    let mut e = engine(HelperKind::Ftp, IPPROTO_TCP);
    let v = e.handle_packet(Instant::now(), 6, 1, b"whatever", None);
    assert!(v.accept && v.helper.is_none());
    assert_eq!(e.unserved_packets, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any payload, for any helper, either direction: ACCEPT, no panic,
    /// and every packet is counted once.
    #[test]
    fn any_payload_is_accepted(kind in 0usize..10, payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let kind = HelperKind::ALL[kind];
        let l4 = if kind.serves(IPPROTO_UDP) { IPPROTO_UDP } else { IPPROTO_TCP };
        let mut e = engine(kind, l4);
        let now = Instant::now();
        for (i, p) in payloads.iter().enumerate() {
            let bytes = if l4 == IPPROTO_TCP {
                build::tcp(ip("10.0.1.2"), 40000, ip("10.0.2.1"), kind.server_port(), i as u32 * 1000, PSH_ACK, p)
            } else {
                build::udp(ip("10.0.1.2"), 40000, ip("10.0.2.1"), kind.server_port(), p)
            };
            prop_assert!(e.handle_packet(now, 5, i as u32, &bytes, None).accept);
            prop_assert!(e.handle_packet(now, 5, i as u32, p, None).accept);
        }
        let (_, c) = e.counters().next().expect("helper");
        prop_assert_eq!(c.packets, 2 * payloads.len() as u64);
    }

    /// FTP PORT announcements round-trip through the parser.
    #[test]
    fn ftp_port_round_trips(a in any::<[u8; 4]>(), port in 1u16..) {
        let line = format!("PORT {},{},{},{},{},{}", a[0], a[1], a[2], a[3], port >> 8, port & 0xff);
        let got = cthelpers::helpers::ftp::parse_line(cthelpers::flow::Direction::Original, line.as_bytes());
        prop_assert_eq!(got, Ok(Some(cthelpers::helpers::ftp::Announced { addr: Some(IpAddr::from(a)), port })));
    }
}

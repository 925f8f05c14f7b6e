//! encode → decode is the identity on the model; random bytes never panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_model::{Conntrack, NatRange, TcpFlags, TcpInfo, Tuple};
use ctnl::{Message, messages, request};
use proptest::prelude::*;

fn addr_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>())
            .prop_map(|(a, b)| (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into())),
        (any::<[u8; 16]>(), any::<[u8; 16]>())
            .prop_map(|(a, b)| (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into())),
    ]
}

fn tuple() -> impl Strategy<Value = Tuple> {
    (
        addr_pair(),
        any::<u8>(),
        proptest::option::of(any::<(u16, u16)>()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|((s, d), proto, ports, zone)| {
            let mut t = Tuple::new(s, d, proto);
            if let Some((a, b)) = ports {
                t = t.with_ports(a, b);
            }
            t.zone = zone;
            t
        })
}

fn conntrack() -> impl Strategy<Value = Conntrack> {
    (
        tuple(),
        proptest::option::of(tuple()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u16>()),
        proptest::option::of((0u8..10, any::<u8>(), any::<[u8; 2]>())),
        proptest::option::of("[a-z]{1,15}"),
        proptest::option::of(any::<([u8; 4], u16)>()),
    )
        .prop_map(
            |(orig, reply, status, mark, zone, tcp, helper, nat)| Conntrack {
                orig: Some(orig),
                reply,
                status,
                mark,
                zone,
                tcp: tcp.map(|(state, ws, f)| TcpInfo {
                    state: Some(state),
                    wscale_orig: Some(ws),
                    flags_orig: Some(TcpFlags {
                        flags: f[0],
                        mask: f[1],
                    }),
                    ..TcpInfo::default()
                }),
                helper,
                nat_src: nat.map(|(ip, port)| NatRange {
                    min_ip: Some(Ipv4Addr::from(ip).into()),
                    max_ip: Some(Ipv4Addr::from(ip).into()),
                    min_port: Some(port),
                    max_port: Some(port),
                }),
                ..Conntrack::default()
            },
        )
}

proptest! {
    #[test]
    fn update_request_round_trips(ct in conntrack()) {
        let mut buf = Vec::new();
        request::update(&mut buf, 9, &ct);
        let decoded: Vec<_> = messages(&buf).collect();
        prop_assert_eq!(decoded.len(), 1);
        match &decoded[0] {
            Ok(Message::Conntrack { ct: got, header, .. }) => {
                prop_assert_eq!(header.seq, 9);
                prop_assert_eq!(&**got, &ct);
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for m in messages(&bytes) {
            let _ = m;
        }
    }
}

/// Every file of the fuzz corpus decodes without panicking.
#[test]
fn fuzz_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/ctnl_decode");
    let entries = std::fs::read_dir(dir).expect("corpus directory");
    let mut n = 0;
    for entry in entries {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        for m in messages(&bytes) {
            let _ = m;
        }
        n += 1;
    }
    assert!(n > 0, "corpus is empty");
}

proptest! {
    #[test]
    fn expectation_round_trips(
        master in tuple(), t in tuple(), mask in tuple(),
        timeout in any::<u32>(), helper in proptest::option::of("[a-z]{1,15}"),
        flags in proptest::option::of(any::<u32>()), class in proptest::option::of(any::<u32>()),
    ) {
        let exp = conntrack_model::Expect {
            master: Some(master),
            tuple: Some(t),
            mask: Some(mask),
            timeout: Some(timeout),
            helper,
            flags,
            class,
            ..conntrack_model::Expect::default()
        };
        let mut buf = Vec::new();
        request::create_expect(&mut buf, 5, &exp);
        match messages(&buf).next() {
            Some(Ok(Message::Expect { exp: got, event, .. })) => {
                prop_assert_eq!(event, ctnl::CtEvent::New);
                prop_assert_eq!(&*got, &exp);
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}

/// Attributes the decoder does not know, inside known nests (a future
/// kernel's TCP info member, a padding attribute in the timestamps), are
/// kept with their place and written back there.
#[test]
fn unknown_nested_attributes_are_kept() {
    use conntrack_model::{NestedAttr, RawAttr, TcpInfo, Timestamp};
    let orig = Tuple::new(
        "10.0.0.1".parse().expect("ip"),
        "10.0.0.2".parse().expect("ip"),
        6,
    )
    .with_ports(1, 2);
    let ct = Conntrack {
        reply: Some(orig.inverted()),
        orig: Some(orig),
        tcp: Some(TcpInfo {
            state: Some(3),
            ..TcpInfo::default()
        }),
        timestamp: Some(Timestamp {
            start: Some(1),
            stop: None,
        }),
        unknown_nested: vec![
            NestedAttr {
                path: vec![4, 1],
                attr: RawAttr {
                    kind: 42,
                    flags: 0,
                    payload: vec![1, 2, 3, 4],
                },
            },
            NestedAttr {
                path: vec![20],
                attr: RawAttr {
                    kind: 3,
                    flags: 0,
                    payload: vec![0; 8],
                },
            },
            NestedAttr {
                path: vec![1, 2],
                attr: RawAttr {
                    kind: 77,
                    flags: 0,
                    payload: vec![9],
                },
            },
        ],
        ..Conntrack::default()
    };
    let mut buf = Vec::new();
    ctnl::conntrack::encode_conntrack(&mut ctnl::nla::NlaWriter::new(&mut buf), &ct);
    let mut back = ctnl::conntrack::decode_conntrack(&buf).expect("decodes");
    // They come back in message order.
    let key = |a: &NestedAttr| (a.path.clone(), a.attr.kind);
    back.unknown_nested.sort_by_key(key);
    let mut want = ct.clone();
    want.unknown_nested.sort_by_key(key);
    assert_eq!(back, want);
}

/// One attribute the decoder does not know, alone in any nest it reads:
/// the decoder looks for such attributes only after one of its nest
/// decoders says it skipped one, so each of them must say so.
#[test]
fn an_unknown_attribute_is_kept_in_every_known_nest() {
    use conntrack_model::{Counters, NestedAttr, RawAttr, SeqAdj, Synproxy, Timestamp};
    let orig = Tuple::new(
        "10.0.0.1".parse().expect("ip"),
        "10.0.0.2".parse().expect("ip"),
        6,
    )
    .with_ports(1, 2);
    let nat = |ip: &str| NatRange {
        min_ip: Some(ip.parse().expect("ip")),
        max_ip: Some(ip.parse().expect("ip")),
        min_port: Some(5),
        max_port: Some(6),
    };
    let seq_adj = SeqAdj {
        correction_pos: Some(1),
        offset_before: Some(2),
        offset_after: Some(3),
    };
    let ct = Conntrack {
        reply: Some(orig.inverted()),
        master: Some(orig.inverted()),
        orig: Some(orig),
        tcp: Some(TcpInfo {
            state: Some(3),
            ..TcpInfo::default()
        }),
        helper: Some("ftp".into()),
        nat_src: Some(nat("192.0.2.1")),
        nat_dst: Some(nat("192.0.2.2")),
        counters_orig: Some(Counters {
            packets: 1,
            bytes: 2,
        }),
        counters_reply: Some(Counters {
            packets: 3,
            bytes: 4,
        }),
        seq_adj_orig: Some(seq_adj),
        seq_adj_reply: Some(seq_adj),
        secctx: Some("ctx".into()),
        timestamp: Some(Timestamp {
            start: Some(1),
            stop: Some(2),
        }),
        synproxy: Some(Synproxy {
            isn: 1,
            its: 2,
            tsoff: 3,
        }),
        ..Conntrack::default()
    };
    // By CTA_* number: the tuples and their IP and PROTO nests, protoinfo
    // and its TCP nest, help, NAT and NAT's PROTO, counters, sequence
    // adjustments, security context, timestamp, synproxy.
    let paths: [&[u16]; 22] = [
        &[1],
        &[1, 1],
        &[1, 2],
        &[2],
        &[2, 1],
        &[2, 2],
        &[14],
        &[14, 1],
        &[14, 2],
        &[4],
        &[4, 1],
        &[5],
        &[6],
        &[6, 3],
        &[13],
        &[13, 3],
        &[9],
        &[10],
        &[15],
        &[16],
        &[19],
        &[20],
    ];
    for path in paths.iter().chain([&[24][..]].iter()) {
        let with = Conntrack {
            unknown_nested: vec![NestedAttr {
                path: path.to_vec(),
                attr: RawAttr {
                    kind: 200,
                    flags: 0,
                    payload: vec![7; 4],
                },
            }],
            ..ct.clone()
        };
        let mut buf = Vec::new();
        ctnl::conntrack::encode_conntrack(&mut ctnl::nla::NlaWriter::new(&mut buf), &with);
        let back = ctnl::conntrack::decode_conntrack(&buf).expect("decodes");
        assert_eq!(back.unknown_nested, with.unknown_nested, "in {path:?}");
    }
}

/// The same for an expectation's nests.
#[test]
fn unknown_nested_expectation_attributes_are_kept() {
    use conntrack_model::{Expect, NestedAttr, RawAttr};
    let t = Tuple::new(
        "10.0.0.1".parse().expect("ip"),
        "10.0.0.2".parse().expect("ip"),
        6,
    )
    .with_ports(0, 2121);
    let exp = Expect {
        master: Some(t.clone()),
        tuple: Some(t.clone()),
        mask: Some(t),
        timeout: Some(300),
        unknown_nested: vec![NestedAttr {
            path: vec![2, 2],
            attr: RawAttr {
                kind: 99,
                flags: 0,
                payload: vec![5, 6],
            },
        }],
        ..Expect::default()
    };
    let mut buf = Vec::new();
    ctnl::expect::encode_expect(&mut ctnl::nla::NlaWriter::new(&mut buf), &exp);
    assert_eq!(ctnl::expect::decode_expect(&buf).expect("decodes"), exp);
}

//! Conntrack state messages against the spec's worked examples and
//! captures of conntrackd 1.4.7 (docs/wire-protocol.md §12).

use conntrack_model::{Conntrack, NatRange, Synproxy, TcpInfo, Tuple, consts};
use proptest::prelude::*;
use syncproto::ct::{EncodeOptions, PayloadError, decode_state, encode_state};
use syncproto::{MsgType, flags, frames};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().expect("ip")
}

/// The sender's view of a flow: the kernel's original and reply tuples.
fn kernel_flow(orig: Tuple, reply: Tuple, status: u32) -> Conntrack {
    Conntrack {
        orig: Some(orig),
        reply: Some(reply),
        status: Some(status),
        ..Conntrack::default()
    }
}

#[test]
fn example_a_encodes_and_decodes() {
    let bytes = hex(
        "10 00 00 44 00 00 00 64 00 0c 00 00 0a 00 00 01 0a 00 00 02 00 08 00 05 00 00 00 0e 00 05 00 02 06 00 00 00 00 08 00 03 c7 38 00 16 00 05 00 04 03 00 00 00 00 08 00 06 00 06 97 80 00 08 00 07 00 00 00 2a",
    );
    let orig = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), 6).with_ports(51000, 22);
    let mut ct = kernel_flow(orig.clone(), orig.inverted(), 0x0e);
    ct.timeout = Some(432000);
    ct.mark = Some(42);
    ct.tcp = Some(TcpInfo {
        state: Some(3),
        ..TcpInfo::default()
    });
    let mut out = Vec::new();
    assert!(encode_state(
        MsgType::CtNew,
        0,
        100,
        &ct,
        EncodeOptions::default(),
        &mut out
    ));
    assert_eq!(out, bytes);

    let decoded = decode_state(&bytes).expect("decodes");
    assert_eq!(decoded.orig, Some(orig));
    assert_eq!(
        (decoded.status, decoded.timeout, decoded.mark),
        (Some(0x0e), Some(432000), Some(42))
    );
    assert_eq!(decoded.tcp_state(), Some(3));
    assert_eq!(decoded.reply, None, "the reply tuple is never replicated");
}

#[test]
fn example_b_snat_window_scale_zone_hello() {
    let bytes = hex(
        "11 20 00 64 65 e8 a3 f1 00 0c 00 00 0a 00 00 01 0a 00 00 02 00 08 00 05 00 00 01 9e 00 05 00 02 06 00 00 00 00 08 00 03 c7 38 00 16 00 05 00 04 03 00 00 00 00 05 00 19 07 00 00 00 00 05 00 1a 09 00 00 00 00 08 00 07 00 00 00 2a 00 08 00 0c cb 00 71 05 00 06 00 0e 40 9c 00 00 00 06 00 20 00 03 00 00",
    );
    let orig = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), 6).with_ports(51000, 22);
    let reply = Tuple::new(ip("10.0.0.2"), ip("203.0.113.5"), 6).with_ports(22, 40000);
    let mut ct = kernel_flow(orig, reply, 0x19e);
    ct.mark = Some(42);
    ct.timeout = Some(100);
    ct.zone = Some(3);
    ct.tcp = Some(TcpInfo {
        state: Some(3),
        wscale_orig: Some(7),
        wscale_reply: Some(9),
        ..TcpInfo::default()
    });
    let opts = EncodeOptions {
        tcp_window_tracking: true,
        omit_timeout: true,
        omit_labels: false,
    };
    let mut out = Vec::new();
    encode_state(
        MsgType::CtUpdate,
        flags::HELLO,
        0x65e8_a3f1,
        &ct,
        opts,
        &mut out,
    );
    assert_eq!(out, bytes);
    let d = decode_state(&bytes).expect("decodes");
    assert_eq!(
        d.nat_src,
        Some(NatRange {
            min_ip: Some(ip("203.0.113.5")),
            max_ip: Some(ip("203.0.113.5")),
            min_port: Some(40000),
            max_port: Some(40000)
        })
    );
    assert_eq!(d.zone, Some(3));
    assert_eq!(d.timeout, None);
}

#[test]
fn captured_new_with_synproxy_and_captured_dnat() {
    let capture1 = hex(
        "10 00 00 54 6b 06 24 14 00 0c 00 00 c0 a8 0a 01 c0 a8 14 02 00 08 00 05 00 00 00 0e 00 05 00 02 06 00 00 00 00 08 00 03 9c 40 00 50 00 05 00 04 03 00 00 00 00 08 00 06 00 00 00 78 00 08 00 07 00 00 00 07 00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00",
    );
    let orig = Tuple::new(ip("192.168.10.1"), ip("192.168.20.2"), 6).with_ports(40000, 80);
    let mut ct = kernel_flow(orig.clone(), orig.inverted(), 0x0e);
    ct.timeout = Some(120);
    ct.mark = Some(7);
    ct.tcp = Some(TcpInfo {
        state: Some(3),
        ..TcpInfo::default()
    });
    ct.synproxy = Some(Synproxy::default());
    let mut out = Vec::new();
    encode_state(
        MsgType::CtNew,
        0,
        0x6b06_2414,
        &ct,
        EncodeOptions::default(),
        &mut out,
    );
    assert_eq!(out, capture1);

    let dnat = hex(
        "10 00 00 64 6b 06 24 16 00 0c 00 00 0a 01 01 01 0a 02 02 02 00 08 00 05 00 00 01 aa 00 05 00 02 06 00 00 00 00 08 00 03 03 e8 00 50 00 05 00 04 03 00 00 00 00 08 00 06 00 00 00 64 00 08 00 07 00 00 00 00 00 08 00 0d 0a 03 03 03 00 06 00 0f 90 1f 00 00 00 10 00 1f 00 00 00 00 00 00 00 00 00 00 00 00",
    );
    let orig = Tuple::new(ip("10.1.1.1"), ip("10.2.2.2"), 6).with_ports(1000, 80);
    let reply = Tuple::new(ip("10.3.3.3"), ip("10.1.1.1"), 6).with_ports(8080, 1000);
    let mut ct = kernel_flow(orig, reply, 0x1aa);
    ct.timeout = Some(100);
    ct.mark = Some(0);
    ct.tcp = Some(TcpInfo {
        state: Some(3),
        ..TcpInfo::default()
    });
    ct.synproxy = Some(Synproxy::default());
    let mut out = Vec::new();
    encode_state(
        MsgType::CtNew,
        0,
        0x6b06_2416,
        &ct,
        EncodeOptions::default(),
        &mut out,
    );
    assert_eq!(out, dnat);
    let d = decode_state(&dnat).expect("decodes");
    assert_eq!(
        d.nat_dst.and_then(|n| n.min_port),
        Some(8080),
        "DPAT is little-endian on the wire"
    );
}

#[test]
fn receiver_rejects_what_1_4_7_rejects() {
    let base = hex("10 00 00 14 00 00 00 01 00 0c 00 00 0a 00 00 01 0a 00 00 02");
    assert!(decode_state(&base).is_ok());
    // IPv4 attribute with nta_len 9.
    let mut bad = base.clone();
    bad[9] = 9;
    assert_eq!(decode_state(&bad), Err(PayloadError::BadLength(0)));
    // Unknown attribute id 33.
    let mut unknown = base.clone();
    unknown.extend_from_slice(&hex("00 08 00 21 00 00 00 00"));
    assert_eq!(
        decode_state(&unknown),
        Err(PayloadError::UnknownAttribute(33))
    );
    // nta_len 2 (with more than 4 bytes left, so it is read), and nta_len
    // past the end.
    let mut short = base.clone();
    short.extend_from_slice(&hex("00 02 00 05 00 00 00 00"));
    assert!(decode_state(&short).is_err());
    let mut long = base.clone();
    long.extend_from_slice(&hex("00 40 00 05 00 00 00 00"));
    assert!(decode_state(&long).is_err());
    // A 12-character helper name is too long for 1.4.7.
    let mut helper = base.clone();
    helper.extend_from_slice(&hex(
        "00 11 00 1b 61 62 63 64 65 66 67 68 69 6a 6b 6c 00 00 00 00",
    ));
    assert_eq!(decode_state(&helper), Err(PayloadError::BadLength(27)));
    // Up to 4 bytes at the end inside `len` are ignored, as by 1.4.7's
    // `while left > 4` (docs/wire-protocol.md §6); 5 are an attribute.
    for tail in ["00 00 00 00", "00 02 00 05", "ff"] {
        let mut padded = base.clone();
        padded.extend_from_slice(&hex(tail));
        let len = u16::try_from(padded.len()).expect("short");
        padded[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(decode_state(&padded).is_ok(), "{tail} inside len");
    }
    let mut five = base.clone();
    five.extend_from_slice(&hex("00 02 00 05 00"));
    five[3] = 25;
    assert!(
        decode_state(&five).is_err(),
        "5 bytes are read as an attribute"
    );
    // No address at all (1.4.7 accepts it and crashes later).
    assert_eq!(
        decode_state(&hex("10 00 00 08 00 00 00 01")),
        Err(PayloadError::NoAddress)
    );
}

fn flow() -> impl Strategy<Value = Conntrack> {
    (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        prop::sample::select(vec![6u8, 17, 1, 132, 33, 47]),
        any::<(u16, u16)>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(0u8..10),
        proptest::option::of(any::<u16>()),
        proptest::option::of("[a-z]{1,11}"),
    )
        .prop_map(
            |(s, d, proto, (sp, dp), timeout, mark, state, zone, helper)| {
                let mut orig = Tuple::new(
                    std::net::Ipv4Addr::from(s).into(),
                    std::net::Ipv4Addr::from(d).into(),
                    proto,
                );
                if consts::is_icmp(proto) {
                    orig = orig.with_icmp(sp, 8, 0);
                } else if matches!(proto, 6 | 17 | 132 | 33) {
                    orig = orig.with_ports(sp, dp);
                }
                Conntrack {
                    reply: Some(orig.inverted()),
                    orig: Some(orig),
                    status: Some(0x0e),
                    timeout,
                    mark,
                    zone,
                    helper,
                    tcp: if proto == 6 {
                        state.map(|s| TcpInfo {
                            state: Some(s),
                            ..TcpInfo::default()
                        })
                    } else {
                        None
                    },
                    ..Conntrack::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn encode_then_decode_keeps_what_is_replicated(ct in flow(), seq in any::<u32>()) {
        let mut out = Vec::new();
        prop_assert!(encode_state(MsgType::CtUpdate, 0, seq, &ct, EncodeOptions::default(), &mut out));
        let framed = frames(&out).next().expect("one").expect("valid");
        prop_assert_eq!(framed.header.seq, seq);
        prop_assert!(framed.header.is_data());
        let d = decode_state(framed.bytes).expect("decodes");
        prop_assert_eq!(&d.orig, &ct.orig);
        prop_assert_eq!(d.status, ct.status);
        prop_assert_eq!(d.timeout, ct.timeout);
        prop_assert_eq!(d.mark, ct.mark);
        prop_assert_eq!(d.zone, ct.zone);
        prop_assert_eq!(&d.helper, &ct.helper);
        prop_assert_eq!(d.tcp_state(), ct.tcp_state());
        prop_assert_eq!(d.nat_src, None);
    }

    #[test]
    fn random_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_state(&bytes);
    }
}

#[test]
fn captured_ftp_expectation() {
    let bytes = hex(
        "13 00 00 7c 6b 06 24 df 00 0c 00 00 0a 58 00 01 0a 58 00 01 00 05 00 02 06 00 00 00 00 08 00 03 9c 55 00 15 00 0c 00 04 0a 58 00 01 0a 58 00 01 00 05 00 06 06 00 00 00 00 08 00 07 00 00 27 10 00 0c 00 08 ff ff ff ff ff ff ff ff 00 05 00 0a 06 00 00 00 00 08 00 0b 00 00 ff ff 00 08 00 0c 00 00 01 2c 00 08 00 0d 00 00 00 00 00 08 00 0e 00 00 00 00 00 08 00 13 66 74 70 00",
    );
    let framed = frames(&bytes).next().expect("one").expect("valid");
    assert_eq!(framed.header.kind, MsgType::ExpNew);
    let exp = syncproto::exp::decode_expect(framed.bytes).expect("decodes");
    let t = |s: &str, d: &str, sp: u16, dp: u16| Tuple::new(ip(s), ip(d), 6).with_ports(sp, dp);
    let expected = conntrack_model::Expect {
        master: Some(t("10.88.0.1", "10.88.0.1", 40021, 21)),
        tuple: Some(t("10.88.0.1", "10.88.0.1", 0, 10000)),
        mask: Some(t("255.255.255.255", "255.255.255.255", 0, 0xffff)),
        timeout: Some(300),
        flags: Some(0),
        class: Some(0),
        helper: Some("ftp".into()),
        ..conntrack_model::Expect::default()
    };
    assert_eq!(exp, expected);
    let mut out = Vec::new();
    assert!(syncproto::exp::encode_expect(
        MsgType::ExpNew,
        0,
        0x6b06_24df,
        &expected,
        EncodeOptions::default(),
        &mut out
    ));
    assert_eq!(out, bytes);
    // Unknown expectation attribute 21 rejects the message.
    let mut bad = bytes.clone();
    bad.extend_from_slice(&hex("00 08 00 15 00 00 00 00"));
    let len = bad.len() as u16;
    bad[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        syncproto::exp::decode_expect(&bad),
        Err(PayloadError::UnknownAttribute(21))
    );
}

/// `ReplicateLabels off`: the labels attribute is left out, the rest of
/// the message is the same.
#[test]
fn labels_are_sent_unless_omitted() {
    let orig = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), 6).with_ports(51000, 22);
    let mut ct = kernel_flow(orig.clone(), orig.inverted(), 0x0e);
    ct.labels = Some(vec![0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let encode = |opts| {
        let mut out = Vec::new();
        assert!(encode_state(MsgType::CtNew, 0, 1, &ct, opts, &mut out));
        out
    };
    let with = encode(EncodeOptions::default());
    let without = encode(EncodeOptions {
        omit_labels: true,
        ..EncodeOptions::default()
    });
    assert_eq!(decode_state(&with).expect("decodes").labels, ct.labels);
    let decoded = decode_state(&without).expect("decodes");
    assert_eq!(decoded.labels, None);
    assert_eq!(decoded.orig, Some(orig));
    // 4-byte attribute header plus 16 bytes of labels.
    assert_eq!(with.len() - without.len(), 20);
}

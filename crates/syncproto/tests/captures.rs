//! The control messages captured from (or constructed for and accepted by)
//! conntrackd 1.4.7, docs/wire-protocol.md §3 and §7.

use proptest::prelude::*;
use syncproto::{Control, FrameError, frames};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

fn decode_one(bytes: &[u8]) -> (syncproto::Header, Option<Control>) {
    let mut it = frames(bytes);
    let framed = it.next().expect("one message").expect("valid frame");
    assert!(it.next().is_none());
    (framed.header, Control::decode(&framed.header, framed.bytes))
}

#[test]
fn captured_alive_with_hello() {
    let bytes = hex("1a 30 00 08 6b 06 23 c9");
    let (h, c) = decode_one(&bytes);
    assert_eq!(c, Some(Control::Alive));
    assert!(h.is_hello());
    assert_eq!(h.seq, 0x6b06_23c9);
    let mut out = Vec::new();
    Control::Alive.encode(0x6b06_23c9, syncproto::flags::HELLO, &mut out);
    assert_eq!(out, bytes);
}

#[test]
fn captured_resync() {
    let bytes = hex("1a 02 00 10 6b 06 24 33 00 00 00 00 00 00 00 00");
    assert_eq!(decode_one(&bytes).1, Some(Control::Resync));
    let mut out = Vec::new();
    Control::Resync.encode(0x6b06_2433, 0, &mut out);
    assert_eq!(out, bytes);
}

#[test]
fn captured_ack_and_nack_in_one_datagram() {
    let bytes = hex(
        "1a 28 00 10 6b 06 27 67 00 00 03 e9 00 00 03 e9 1a 24 00 10 6b 06 27 68 00 00 03 ea 00 00 03 ec",
    );
    let got: Vec<_> = frames(&bytes)
        .map(|f| f.expect("frame"))
        .map(|f| Control::decode(&f.header, f.bytes))
        .collect();
    assert_eq!(
        got,
        vec![
            Some(Control::Ack {
                from: 1001,
                to: 1001
            }),
            Some(Control::Nack {
                from: 1002,
                to: 1004
            })
        ]
    );
}

#[test]
fn constructed_examples_encode_exactly() {
    for (control, seq, text) in [
        (
            Control::Ack {
                from: 0x1122_3300,
                to: 0x1122_332b,
            },
            0x65e8_a3f2,
            "1a 08 00 10 65 e8 a3 f2 11 22 33 00 11 22 33 2b",
        ),
        (
            Control::Nack {
                from: 0x1122_332c,
                to: 0x1122_332e,
            },
            0x65e8_a3f3,
            "1a 04 00 10 65 e8 a3 f3 11 22 33 2c 11 22 33 2e",
        ),
        (Control::Alive, 0x65e8_a3f4, "1a 10 00 08 65 e8 a3 f4"),
        (
            Control::Resync,
            0x65e8_a3f5,
            "1a 02 00 10 65 e8 a3 f5 00 00 00 00 00 00 00 00",
        ),
    ] {
        let mut out = Vec::new();
        control.encode(seq, 0, &mut out);
        assert_eq!(out, hex(text));
        assert_eq!(decode_one(&out).1, Some(control));
    }
}

#[test]
fn injected_malformed_datagrams_are_classified_like_1_4_7() {
    let err = |bytes: Vec<u8>| frames(&bytes).find_map(|f| f.err());
    assert_eq!(
        err(hex("20 00 00 08 00 00 00 01")),
        Some(FrameError::BadVersion)
    );
    assert_eq!(
        err(hex("10 00 00 00 00 00 00 01")),
        Some(FrameError::BadSize)
    );
    assert_eq!(err(hex("10 00 00")), Some(FrameError::Truncated));
    assert_eq!(
        err(hex("10 00 00 40 00 00 00 01")),
        Some(FrameError::BadSize)
    );
    assert_eq!(
        err(hex("1a 08 00 08 00 00 00 01")),
        Some(FrameError::Truncated)
    );
    // A valid message followed by 5 stray bytes: accepted, then truncated.
    let mut bytes = hex("1a 10 00 08 00 00 00 01");
    bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
    let all: Vec<_> = frames(&bytes).collect();
    assert!(all[0].is_ok());
    assert_eq!(all[1], Err(FrameError::Truncated));
    // ACK with `to` before `from` is not a valid control message.
    let (_, c) = decode_one(&hex("1a 08 00 10 00 00 00 01 00 00 00 09 00 00 00 02"));
    assert_eq!(c, None);
    // Data with a stray flag is not data; control with only 0x01 is nothing.
    let (h, _) = decode_one(&hex("10 01 00 08 00 00 00 01"));
    assert!(!h.is_data());
    let (h, c) = decode_one(&hex("1a 01 00 08 00 00 00 01"));
    assert!(!h.is_data() && c.is_none());
}

proptest! {
    #[test]
    fn random_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for f in frames(&bytes).flatten() {
            let _ = Control::decode(&f.header, f.bytes);
        }
    }

    #[test]
    fn control_round_trip(from in any::<u32>(), span in 0u32..1000, seq in any::<u32>(), which in 0u8..4) {
        let c = match which {
            0 => Control::Alive,
            1 => Control::Ack { from, to: from.wrapping_add(span) },
            2 => Control::Nack { from, to: from.wrapping_add(span) },
            _ => Control::Resync,
        };
        let mut out = Vec::new();
        c.encode(seq, 0, &mut out);
        let f = frames(&out).next().expect("frame").expect("valid");
        prop_assert_eq!(f.header.seq, seq);
        prop_assert_eq!(Control::decode(&f.header, f.bytes), Some(c));
    }
}

/// Every file of the fuzz corpus is framed without panicking.
#[test]
fn fuzz_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/sync_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("corpus directory") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        for f in frames(&bytes).flatten() {
            if f.header.is_data() {
                let _ = syncproto::ct::decode_state(f.bytes);
                let _ = syncproto::exp::decode_expect(f.bytes);
            }
            let _ = Control::decode(&f.header, f.bytes);
        }
        n += 1;
    }
    assert!(n > 0, "corpus is empty");
}

//! Byte-annotated fixtures.
//!
//! The queued packet was captured from a real kernel (Linux 6.18) with
//! `ip netns exec NS cargo run -p nfq --example capture -- 5 1` after
//! `iptables-legacy -A OUTPUT -p udp --dport 69 -j NFQUEUE --queue-num 5`
//! and a TFTP read request sent over lo from 127.0.0.1:40000.
//!
//! The helper stubs are the requests conntrackd 1.4.7 (Debian 12) sent at
//! start-up with `Helper { Setup on|off  Type ftp inet tcp { QueueNum 5
//! QueueLen 10240 Policy ftp { ExpectMax 1 ExpectTimeout 300 } } }`,
//! recorded with `strace -x -e sendto`, and the kernel's answer (no
//! cthelper subsystem here: EINVAL).

use nfq::cthelper::{self, HelperStub, StubPolicy};
use nfq::frame::frames;
use nfq::queue::{self, CopyMode, QueueParams};

#[rustfmt::skip]
const QUEUED_TFTP_READ: &[u8] = &[
    0x5a, 0x00, 0x00, 0x00,             // nlmsg_len 90
    0x00, 0x03,                         // type: subsys QUEUE (3) << 8 | NFQNL_MSG_PACKET (0)
    0x00, 0x00,                         // flags
    0x00, 0x00, 0x00, 0x00,             // seq 0
    0x00, 0x00, 0x00, 0x00,             // port id 0 (the kernel)
    0x02, 0x00, 0x00, 0x05,             // nfgenmsg: AF_INET, version 0, res_id 5 (queue, big endian)
    0x0b, 0x00, 0x01, 0x00,             // NFQA_PACKET_HDR, 11 bytes
      0x00, 0x00, 0x00, 0x01,           //   packet_id 1
      0x08, 0x00,                       //   hw_protocol 0x0800 (IPv4)
      0x03, 0x00,                       //   hook 3 (LOCAL_OUT), pad
    0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, // NFQA_IFINDEX_OUTDEV 1 (lo)
    0x32, 0x00, 0x0a, 0x00,             // NFQA_PAYLOAD, 46 bytes of packet
      0x45, 0x00, 0x00, 0x2e, 0x1e, 0x15, 0x40, 0x00, 0x40, 0x11, 0x1e, 0xa8, // IPv4, 46 bytes, UDP
      0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, // 127.0.0.1 -> 127.0.0.1
      0x9c, 0x40, 0x00, 0x45, 0x00, 0x1a, 0xe0, 0xee, // UDP 40000 -> 69, length 26
      0x00, 0x01, b'h', b'e', b'l', b'l', b'o', b'.', b't', b'x', b't', 0x00, // RRQ "hello.txt"
      b'o', b'c', b't', b'e', b't', 0x00, // "octet"
      0x00, 0x00,                       //   pad
];

#[test]
fn a_queued_packet_decodes() {
    let frame = frames(QUEUED_TFTP_READ)
        .next()
        .expect("one")
        .expect("frame");
    let packet = queue::decode_packet(&frame).expect("packet");
    assert_eq!(packet.queue, 5);
    assert_eq!(packet.family, 2);
    assert_eq!(packet.packet_id, 1);
    assert_eq!(packet.hw_protocol, 0x0800);
    assert_eq!(packet.hook, 3);
    assert_eq!(packet.outdev, Some(1));
    assert_eq!(packet.payload.len(), 46);
    assert_eq!(&packet.payload[28..30], &[0, 1], "TFTP RRQ");
    assert_eq!(packet.ct, None, "no NETLINK_GLUE_CT on that kernel");
}

#[test]
fn the_packet_parses_for_the_helpers() {
    let frame = frames(QUEUED_TFTP_READ)
        .next()
        .expect("one")
        .expect("frame");
    let packet = queue::decode_packet(&frame).expect("packet");
    let mut engine = cthelpers_engine();
    let verdict = engine.handle_packet(
        std::time::Instant::now(),
        packet.queue,
        packet.packet_id,
        packet.payload,
        None,
    );
    assert!(verdict.accept);
    assert!(matches!(
        engine.poll_output(),
        Some(cthelpers::Output::Create { .. })
    ));
}

fn cthelpers_engine() -> cthelpers::Engine {
    cthelpers::Engine::new(vec![cthelpers::HelperSetup {
        kind: cthelpers::HelperKind::Tftp,
        family: 2,
        l4proto: 17,
        queue_num: 5,
        policy: cthelpers::HelperKind::Tftp.default_policy(),
    }])
}

#[rustfmt::skip]
const VERDICT_ACCEPT_1: &[u8] = &[
    0x20, 0x00, 0x00, 0x00,             // nlmsg_len 32
    0x01, 0x03,                         // QUEUE << 8 | NFQNL_MSG_VERDICT
    0x01, 0x00,                         // NLM_F_REQUEST
    0x07, 0x00, 0x00, 0x00,             // seq 7
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05,             // AF_UNSPEC, v0, queue 5
    0x0c, 0x00, 0x02, 0x00,             // NFQA_VERDICT_HDR
      0x00, 0x00, 0x00, 0x01,           //   NF_ACCEPT
      0x00, 0x00, 0x00, 0x01,           //   packet id 1
];

#[test]
fn verdict_bytes() {
    let mut buf = Vec::new();
    queue::verdict(&mut buf, 7, 5, 1, queue::NF_ACCEPT);
    assert_eq!(buf, VERDICT_ACCEPT_1);
    let mut batch = Vec::new();
    queue::verdict_batch(&mut batch, 7, 5, 1, queue::NF_ACCEPT);
    assert_eq!(batch[4], 3, "NFQNL_MSG_VERDICT_BATCH");
    assert_eq!(batch[16..], VERDICT_ACCEPT_1[16..]);
}

#[rustfmt::skip]
const BIND_AND_PARAMS: &[u8] = &[
    0x1c, 0x00, 0x00, 0x00, 0x02, 0x03, 0x05, 0x00, // len 28, QUEUE << 8 | CONFIG, REQUEST|ACK
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 1
    0x00, 0x00, 0x00, 0x05,             // queue 5
    0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, // NFQA_CFG_CMD: BIND, pad, pf 0
    0x38, 0x00, 0x00, 0x00, 0x02, 0x03, 0x05, 0x00, // len 56, CONFIG
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 2
    0x00, 0x00, 0x00, 0x05,
    0x09, 0x00, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, // PARAMS: range 0xffff, COPY_PACKET (+pad)
    0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x28, 0x00, // QUEUE_MAXLEN 10240
    0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, // MASK: FAIL_OPEN
    0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, // FLAGS: FAIL_OPEN
];

#[test]
fn queue_configuration_bytes() {
    let mut buf = Vec::new();
    queue::config_command(&mut buf, 1, 5, queue::Command::Bind, 0);
    let params = QueueParams {
        copy_mode: CopyMode::Packet,
        copy_range: 0xffff,
        max_len: Some(10240),
        flags: queue::flags::FAIL_OPEN,
        mask: queue::flags::FAIL_OPEN,
    };
    queue::config_params(&mut buf, 2, 5, &params);
    assert_eq!(buf, BIND_AND_PARAMS);
}

/// `Setup on`: the stub is created with room for the ftp helper's data.
#[rustfmt::skip]
const C_147_SETUP_ON: &[u8] = &[
    0x70, 0x00, 0x00, 0x00,             // nlmsg_len 112
    0x00, 0x09,                         // CTHELPER (9) << 8 | NFNL_MSG_CTHELPER_NEW
    0x05, 0x04,                         // REQUEST | ACK | CREATE
    0x00, 0x25, 0x15, 0x6b,             // seq (1.4.7: the time)
    0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,             // AF_UNSPEC, v0, res_id 0
    0x08, 0x00, 0x01, 0x00, b'f', b't', b'p', 0x00, // NFCTH_NAME "ftp"
    0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x05, // NFCTH_QUEUE_NUM 5
    0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x18, // NFCTH_PRIV_DATA_LEN 24
    0x14, 0x00, 0x02, 0x80,             // NFCTH_TUPLE (nested)
      0x06, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, // L3PROTONUM 2 (AF_INET, be16)
      0x05, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // L4PROTONUM 6 (TCP)
    0x28, 0x00, 0x04, 0x80,             // NFCTH_POLICY (nested)
      0x1c, 0x00, 0x02, 0x80,           //   NFCTH_POLICY_SET1 (nested)
        0x08, 0x00, 0x01, 0x00, b'f', b't', b'p', 0x00, // NAME "ftp"
        0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // EXPECT_MAX 1
        0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x2c, // EXPECT_TIMEOUT 300
      0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, //   NFCTH_POLICY_SET_NUM 1
    0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, // NFCTH_STATUS ENABLED
];

fn ftp_stub(priv_data_len: Option<u32>) -> HelperStub {
    HelperStub {
        name: "ftp".into(),
        l3num: 2,
        l4num: 6,
        queue_num: Some(5),
        policies: vec![StubPolicy {
            name: "ftp".into(),
            expect_max: 1,
            expect_timeout: 300,
        }],
        priv_data_len,
        status: Some(cthelper::STATUS_ENABLED),
    }
}

#[test]
fn helper_stub_bytes_are_those_of_1_4_7() {
    let seq = u32::from_ne_bytes([0x00, 0x25, 0x15, 0x6b]);
    let mut buf = Vec::new();
    cthelper::new_stub(&mut buf, seq, &ftp_stub(Some(24)));
    assert_eq!(buf, C_147_SETUP_ON);
    let frame = frames(C_147_SETUP_ON).next().expect("one").expect("frame");
    assert_eq!(cthelper::decode_stub(&frame), Ok(ftp_stub(Some(24))));
    // `Setup off`: the same request without NFCTH_PRIV_DATA_LEN (1.4.7
    // sent it with an uninitialised pad byte, 0x55, in the tuple).
    let mut off = Vec::new();
    cthelper::new_stub(&mut off, seq, &ftp_stub(None));
    assert_eq!(off.len(), 104);
    assert_eq!(off[20..36], C_147_SETUP_ON[20..36]);
    assert_eq!(off[36..], C_147_SETUP_ON[44..]);
}

/// The kernel's answer on a kernel without the cthelper subsystem.
#[rustfmt::skip]
const EINVAL_ANSWER_HEAD: &[u8] = &[
    0x84, 0x00, 0x00, 0x00,             // nlmsg_len 132
    0x02, 0x00, 0x00, 0x00,             // NLMSG_ERROR, flags 0
    0x00, 0x25, 0x15, 0x6b,             // seq of the request
    0xdc, 0x3a, 0x00, 0x00,             // port id
    0xea, 0xff, 0xff, 0xff,             // error -22 (EINVAL)
];

#[test]
fn an_einval_answer_reads_as_einval() {
    let mut answer = EINVAL_ANSWER_HEAD.to_vec();
    answer.extend_from_slice(C_147_SETUP_ON);
    let frame = frames(&answer).next().expect("one").expect("frame");
    assert_eq!(frame.errno(), Some(22));
}

/// The `nfq_decode` corpus, replayed through the target's body.
#[test]
fn the_fuzz_corpus_replays() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/nfq_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("corpus") {
        nfq::fuzz_decode(&std::fs::read(entry.expect("entry").path()).expect("read"));
        n += 1;
    }
    assert!(n >= 2);
}

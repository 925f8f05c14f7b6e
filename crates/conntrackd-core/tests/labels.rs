//! `Options { ReplicateLabels off }`: connlabels are neither sent nor taken
//! from what peers send, so they never reach the kernel by a commit or an
//! injection (replicated labels crash kernels running nDPI).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use conntrack_model::consts::{IPPROTO_TCP, status, tcp_state};
use conntrack_model::{Conntrack, TcpInfo, Tuple};
use conntrackd_core::local::{EventKind, Origin};
use conntrackd_core::sync::{Inject, Protocol, SyncCore, SyncEvent, SyncSettings};

const LABELS: [u8; 16] = [0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn labelled_flow() -> Conntrack {
    let orig = Tuple::new(
        "10.0.0.1".parse().expect("ip"),
        "192.168.1.1".parse().expect("ip"),
        IPPROTO_TCP,
    )
    .with_ports(40000, 80);
    Conntrack {
        reply: Some(orig.inverted()),
        orig: Some(orig),
        status: Some(status::ASSURED | status::SEEN_REPLY | status::CONFIRMED),
        timeout: Some(300),
        tcp: Some(TcpInfo {
            state: Some(tcp_state::ESTABLISHED),
            ..TcpInfo::default()
        }),
        labels: Some(LABELS.to_vec()),
        ..Conntrack::default()
    }
}

fn core(now: Instant, replicate_labels: bool, disable_external_cache: bool) -> SyncCore {
    SyncCore::new(
        now,
        SyncSettings {
            disable_external_cache,
            hash_limit: 1024,
            replicate_labels,
            ..SyncSettings::basic(Protocol::Notrack)
        },
    )
}

/// The datagrams `sender` sends for one labelled flow.
fn sent_by(sender: &mut SyncCore, now: Instant) -> Vec<Vec<u8>> {
    sender.handle_kernel_event(now, EventKind::New, labelled_flow(), Origin::NotMe);
    let mut out = Vec::new();
    while let Some(tx) = sender.poll_transmit(now + Duration::from_millis(10)) {
        out.push(tx.bytes);
    }
    assert!(!out.is_empty(), "nothing sent");
    out
}

/// Labels of the flow `receiver` keeps, or injects, after `datagrams`.
fn received_labels(
    receiver: &mut SyncCore,
    now: Instant,
    datagrams: &[Vec<u8>],
) -> Option<Vec<u8>> {
    let from = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    for d in datagrams {
        receiver.handle_datagram(now, 0, from, d);
    }
    if receiver.settings().disable_external_cache {
        while let Some(event) = receiver.poll_event() {
            if let SyncEvent::Inject(Inject::CtNew(ct)) = event {
                return ct.labels.clone();
            }
        }
        panic!("no injection");
    }
    let entry = receiver
        .external()
        .iter_live()
        .next()
        .expect("external flow");
    entry.ct().labels.clone()
}

#[test]
fn labels_are_replicated_by_default() {
    let now = Instant::now();
    let sent = sent_by(&mut core(now, true, false), now);
    for bypass in [false, true] {
        let got = received_labels(&mut core(now, true, bypass), now, &sent);
        assert_eq!(got, Some(LABELS.to_vec()), "bypass {bypass}");
    }
}

#[test]
fn a_sender_with_replicate_labels_off_leaves_them_out() {
    let now = Instant::now();
    let sent = sent_by(&mut core(now, false, false), now);
    assert_eq!(
        received_labels(&mut core(now, true, false), now, &sent),
        None
    );
}

/// Off on the receiving side is enough: labels a peer (1.4.7, say) sends
/// are not kept for a commit, nor injected.
#[test]
fn a_receiver_with_replicate_labels_off_drops_them() {
    let now = Instant::now();
    let sent = sent_by(&mut core(now, true, false), now);
    for bypass in [false, true] {
        let got = received_labels(&mut core(now, false, bypass), now, &sent);
        assert_eq!(got, None, "bypass {bypass}");
    }
}

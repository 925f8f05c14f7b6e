//! Whole cores with `Authentication`, joined by the simulated link: what
//! an attacker on the link can and cannot do (docs/authentication.md).

use super::*;

const KEY: &[u8] = b"a shared secret key, long enough";

/// `n` nodes with the same key, every one verified by the others.
fn keyed(protocol: Protocol, n: usize, impair: Impair) -> Sim {
    let mut sim = Sim::new(protocol, n, impair);
    for i in 0..n {
        sim.with_key(i, KEY, protocol);
    }
    sim.run(1);
    sim
}

fn refused(core: &SyncCore, why: auth::Refusal) -> u64 {
    core.auth_counters().map_or(0, |c| c.refused(why))
}

#[test]
fn authenticated_peers_converge_over_a_lossy_link_in_every_mode() {
    for protocol in [ftfw(), alarm(), Protocol::Notrack] {
        let impair = if protocol == Protocol::Notrack {
            CLEAN
        } else {
            Impair {
                loss: 100,
                duplicate: 50,
                jitter_ms: 20,
            }
        };
        let mut sim = keyed(protocol, 2, impair);
        churn(&mut sim, 0, 1, 500);
        sim.run(if protocol == alarm() { 20 } else { 10 });
        assert_same(
            &view(&sim.nodes[1].external),
            &view(&sim.nodes[0].local.cache),
            &format!("{protocol:?}"),
        );
        if impair.duplicate > 0 {
            // Duplicated datagrams are replays: refused, the state unharmed.
            assert!(refused(&sim.nodes[1], auth::Refusal::Replayed) > 0);
        }
    }
}

#[test]
fn a_forged_plain_message_is_refused() {
    let mut sim = keyed(ftfw(), 2, CLEAN);
    let before = sim.nodes[1].external.len();
    let mut forged = Vec::new();
    assert!(syncproto::ct::encode_state(
        MsgType::CtNew,
        0,
        1,
        &flow(999_999),
        EncodeOptions::default(),
        &mut forged
    ));
    let from = sim.addrs[0];
    assert!(!sim.nodes[1].handle_datagram(sim.now, 0, from, &forged));
    assert_eq!(sim.nodes[1].external.len(), before);
    assert_eq!(refused(&sim.nodes[1], auth::Refusal::NotEnvelope), 1);
}

#[test]
fn a_peer_with_another_key_is_not_heard() {
    let mut sim = Sim::new(ftfw(), 2, CLEAN);
    sim.with_key(0, b"the right key, long enough", ftfw());
    sim.with_key(1, b"another key, also long enough", ftfw());
    sim.run(1);
    churn(&mut sim, 0, 1, 50);
    sim.run(3);
    assert!(sim.nodes[1].external.is_empty());
    assert!(refused(&sim.nodes[1], auth::Refusal::UnknownKey) > 0);
    assert_eq!(sim.nodes[1].counters.malformed, 0);
}

/// Every envelope node 0 sent, replayed to node 1 from 64 other addresses
/// (the replay window was kept per address, so each new address accepted
/// them all again): refused, and no peer is made of them.
#[test]
fn captured_envelopes_replayed_from_other_addresses_are_refused() {
    let mut sim = keyed(ftfw(), 2, CLEAN);
    sim.capture = true;
    for i in 1..=20 {
        sim.event(0, EventKind::New, flow(i));
    }
    sim.run(2);
    // What created them; then they are deleted.
    let captured: Vec<Vec<u8>> = sim.captured_from(0);
    for i in 1..=20 {
        sim.event(0, EventKind::Destroy, flow(i));
    }
    sim.run(2);
    assert!(sim.nodes[1].external.is_empty());
    let peers = sim.nodes[1].peers.len();
    for spoofed in 0..64u32 {
        let from = IpAddr::V4(Ipv4Addr::from(0x0a4d_0100 + spoofed));
        for bytes in &captured {
            assert!(!sim.nodes[1].handle_datagram(sim.now, 0, from, bytes));
        }
    }
    sim.run(1);
    assert!(sim.nodes[1].external.is_empty(), "replayed flows came back");
    assert_eq!(sim.nodes[1].peers.len(), peers, "replays made peers");
    assert!(refused(&sim.nodes[1], auth::Refusal::Replayed) >= 64 * captured.len() as u64 / 2);
}

/// Node 0's own first envelope (carrying its FTFW HELLO) sent back to it
/// with node 1's address: refused as reflected. Before, it moved node 0's
/// replay window for node 1 ahead (refusing node 1's real envelopes), and
/// the HELLO made node 0 take node 1 for restarted and sweep its flows.
#[test]
fn a_reflected_envelope_is_refused_and_changes_nothing() {
    let mut sim = Sim::new(ftfw(), 2, CLEAN);
    sim.capture = true;
    sim.with_key(0, KEY, ftfw());
    sim.with_key(1, KEY, ftfw());
    sim.run(1);
    for i in 1..=30 {
        sim.event(1, EventKind::New, flow(i));
    }
    sim.run(3);
    assert_eq!(sim.nodes[0].external.len(), 30);
    let own: Vec<Vec<u8>> = sim.captured_from(0);
    // The first ones carry node 0's handshake and its FTFW HELLO.
    let from = sim.addrs[1];
    for bytes in &own {
        assert!(!sim.nodes[0].handle_datagram(sim.now, 0, from, bytes));
    }
    assert_eq!(
        refused(&sim.nodes[0], auth::Refusal::Reflected),
        own.len() as u64
    );
    // Node 1's flows stay (no sweep), and what it sends next is heard.
    sim.run(15);
    assert_eq!(sim.nodes[0].external.len(), 30);
    sim.event(1, EventKind::New, flow(31));
    sim.run(2);
    assert_eq!(sim.nodes[0].external.len(), 31);
}

/// Flows node 0 announced and then deleted are captured; node 1 restarts
/// and gets the replays before anything else. It must end with node 0's
/// state, not with the deleted flows (a restarted receiver accepted all
/// captured history again).
#[test]
fn after_a_receiver_restart_captured_envelopes_are_refused() {
    for protocol in [ftfw(), Protocol::Notrack, alarm()] {
        let mut sim = keyed(protocol, 2, CLEAN);
        sim.capture = true;
        for i in 1..=40 {
            sim.event(0, EventKind::New, flow(i));
        }
        sim.run(3);
        let captured: Vec<Vec<u8>> = sim.captured_from(0);
        for i in 1..=20 {
            sim.event(0, EventKind::Destroy, flow(i));
        }
        sim.run(3);
        sim.restart(1, protocol);
        let from = sim.addrs[0];
        for bytes in &captured {
            sim.nodes[1].handle_datagram(sim.now, 0, from, bytes);
        }
        sim.run(if protocol == alarm() { 25 } else { 5 });
        assert_same(
            &view(&sim.nodes[1].external),
            &view(&sim.nodes[0].local.cache),
            &format!("{protocol:?}"),
        );
        let n1 = &sim.nodes[1];
        assert!(
            refused(n1, auth::Refusal::Stale) + refused(n1, auth::Refusal::Replayed) > 0,
            "{protocol:?}"
        );
    }
}

/// A node restarts (with a new session; its wall clock, whatever it says,
/// plays no part): the others verify it within a round trip, what it
/// sends at once is kept, and its stale flows are swept as without
/// authentication.
#[test]
fn a_restarted_sender_is_heard_at_once_and_its_stale_flows_swept() {
    for protocol in [ftfw(), Protocol::Notrack] {
        let mut sim = keyed(protocol, 2, CLEAN);
        for i in 1..=50 {
            sim.event(0, EventKind::New, flow(i));
        }
        sim.run(3);
        assert_eq!(sim.nodes[1].external.len(), 50);
        sim.restart(0, protocol);
        // Back up, it finds 40 of its flows in its kernel, and a new one
        // comes at once.
        for i in 1..=40 {
            sim.event(0, EventKind::New, flow(i));
        }
        sim.event(0, EventKind::New, flow(1000));
        sim.run(1);
        assert!(
            view(&sim.nodes[1].external)
                .iter()
                .any(|f| f.0 == flow(1000).key().expect("key")),
            "{protocol:?}: the new flow is not there within a second"
        );
        sim.run(14);
        if protocol == ftfw() {
            // The sweep runs for FTFW peers seen to restart.
            assert_same(
                &view(&sim.nodes[1].external),
                &view(&sim.nodes[0].local.cache),
                &format!("{protocol:?}"),
            );
        }
        assert_eq!(sim.nodes[1].peers.len(), 1, "{protocol:?}: one peer, moved");
    }
}

/// NOTRACK never resends: what a restarted node sends before the
/// handshake verified it is held and delivered, not lost.
#[test]
fn notrack_loses_nothing_across_the_handshake() {
    let mut sim = keyed(Protocol::Notrack, 2, CLEAN);
    sim.restart(0, Protocol::Notrack);
    sim.restart(1, Protocol::Notrack);
    for i in 1..=300 {
        sim.event(0, EventKind::New, flow(i));
    }
    sim.run(3);
    assert_eq!(sim.nodes[1].external.len(), 300);
}

/// 64 spoofed senders replay captured envelopes every second while the
/// real peer restarts: it is verified and heard again (the replays made
/// peers of their own, and a peer silent for 5 s was locked out).
#[test]
fn replaying_spoofers_cannot_lock_out_a_restarting_peer() {
    let mut sim = keyed(ftfw(), 2, CLEAN);
    sim.capture = true;
    for i in 1..=10 {
        sim.event(0, EventKind::New, flow(i));
    }
    sim.run(2);
    let captured: Vec<Vec<u8>> = sim.captured_from(0);
    let replay = |sim: &mut Sim| {
        for spoofed in 0..64u32 {
            let from = IpAddr::V4(Ipv4Addr::from(0x0a4d_0200 + spoofed));
            for bytes in &captured {
                sim.nodes[1].handle_datagram(sim.now, 0, from, bytes);
            }
        }
    };
    sim.silenced = Some(0);
    for _ in 0..7 {
        replay(&mut sim);
        sim.run(1);
    }
    sim.silenced = None;
    sim.restart(0, ftfw());
    for i in 1..=10 {
        sim.event(0, EventKind::New, flow(i));
    }
    sim.event(0, EventKind::New, flow(77));
    for _ in 0..5 {
        replay(&mut sim);
        sim.run(1);
    }
    assert!(
        view(&sim.nodes[1].external)
            .iter()
            .any(|f| f.0 == flow(77).key().expect("key")),
        "the restarted peer was not heard"
    );
    assert!(sim.nodes[1].peers.len() <= 2);
}

/// Three nodes on one group: each verifies both others, and a node's
/// answer to one peer's challenge verifies nobody else.
#[test]
fn three_authenticated_nodes_hold_every_other_nodes_flows() {
    let mut sim = keyed(ftfw(), 3, CLEAN);
    for node in 0..3 {
        for i in 1..=20 {
            sim.event(node, EventKind::New, flow(node as u32 * 1000 + i));
        }
    }
    sim.run(3);
    for node in 0..3 {
        assert_eq!(sim.nodes[node].external.len(), 40, "node {node}");
        assert_eq!(
            sim.nodes[node].auth().map(auth::Auth::verified_sessions),
            Some(2)
        );
    }
}

/// A TCP channel between two authenticated cores: what one sends, laid end
/// to end as a stream and cut at any byte offset (each cut tears one
/// envelope and glues the others into runs for the splitter), reaches the
/// other whole, with no refusal.
#[test]
fn a_stream_of_envelopes_cut_anywhere_replicates_everything() {
    let stream_of = |sim: &mut Sim| {
        for i in 1..=40 {
            sim.event(0, EventKind::New, flow(i));
        }
        let mut stream = Vec::new();
        while let Some(tx) = sim.nodes[0].poll_transmit(sim.now) {
            stream.extend_from_slice(&tx.bytes);
        }
        stream
    };
    let len = stream_of(&mut keyed(ftfw(), 2, CLEAN)).len();
    assert!(len > 1000, "{len} bytes");
    for cut in (1..len).step_by(5) {
        let mut sim = keyed(ftfw(), 2, CLEAN);
        let stream = stream_of(&mut sim);
        let cut = cut.min(stream.len() - 1);
        let mut splitter = syncproto::stream::StreamSplitter::new();
        for part in [&stream[..cut], &stream[cut..]] {
            if let Some(run) = splitter.push(part).messages {
                let from = sim.addrs[0];
                sim.nodes[1].handle_datagram(sim.now, 0, from, &run);
            }
        }
        assert_eq!(sim.nodes[1].external.len(), 40, "cut at {cut}");
        let refusals = sim.nodes[1].auth_counters().map(|c| c.refused_total());
        assert_eq!(refusals, Some(0), "cut at {cut}");
    }
}

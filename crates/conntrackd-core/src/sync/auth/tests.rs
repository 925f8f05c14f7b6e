//! The authentication layer alone: two or three nodes' [`Auth`] passing
//! envelopes by hand, in virtual time.

use super::*;

const KEY: &[u8] = b"a shared secret of 32 bytes here";

fn config(session: u64, key: &[u8]) -> AuthConfig {
    AuthConfig {
        keys: KeyRing::new(Key::new(key).expect("key"), Vec::new()),
        encrypt: false,
        require_encryption: false,
        session,
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 77, 0, last])
}

/// A node: its layer and its address.
struct Node {
    auth: Auth,
    addr: IpAddr,
}

impl Node {
    fn new(now: Instant, session: u64, last: u8) -> Node {
        Node::with_key(now, session, last, KEY)
    }

    fn with_key(now: Instant, session: u64, last: u8, key: &[u8]) -> Node {
        Node {
            auth: Auth::new(now, config(session, key)),
            addr: ip(last),
        }
    }

    /// Drops the hello every node sends when it starts.
    fn quiet(mut self) -> Node {
        self.auth.poll_outgoing();
        self
    }

    /// Opens `bytes` from `from`; returns the payloads delivered and
    /// whether something was authentic.
    fn receive(&mut self, now: Instant, from: IpAddr, bytes: &[u8]) -> (Vec<Vec<u8>>, bool) {
        let mut out = Vec::new();
        let authentic = self.auth.open(now, 0, from, bytes, &mut out);
        let payloads = out
            .into_iter()
            .filter_map(|d| match d {
                Delivery::Payload { bytes, .. } => Some(bytes),
                Delivery::Verified { .. } => None,
            })
            .collect();
        (payloads, authentic)
    }

    fn refused(&self, why: Refusal) -> u64 {
        self.auth.counters().refused(why)
    }
}

/// Passes handshakes between `a` and `b` until neither has one to send;
/// returns the payloads each got meanwhile.
fn settle(now: Instant, a: &mut Node, b: &mut Node) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let mut quiet = true;
        while let Some(hs) = a.auth.poll_outgoing() {
            quiet = false;
            got_b.extend(b.receive(now, a.addr, &hs.bytes).0);
        }
        while let Some(hs) = b.auth.poll_outgoing() {
            quiet = false;
            got_a.extend(a.receive(now, b.addr, &hs.bytes).0);
        }
        if quiet {
            return (got_a, got_b);
        }
    }
    panic!("the handshake never ends");
}

fn verified_pair(now: Instant) -> (Node, Node) {
    let mut a = Node::new(now, 0xaaaa, 1);
    let mut b = Node::new(now, 0xbbbb, 2);
    settle(now, &mut a, &mut b);
    assert_eq!(a.auth.verified_sessions(), 1);
    assert_eq!(b.auth.verified_sessions(), 1);
    (a, b)
}

#[test]
fn two_nodes_verify_each_other_and_then_exchange_data_once() {
    let now = Instant::now();
    let (mut a, mut b) = verified_pair(now);
    let sealed = a.auth.seal_data(now, b"flows");
    assert_eq!(
        b.receive(now, a.addr, &sealed),
        (vec![b"flows".to_vec()], true)
    );
    // The same envelope again, from anywhere: a replay.
    for from in [a.addr, ip(99), ip(2)] {
        assert_eq!(b.receive(now, from, &sealed), (vec![], false));
    }
    assert_eq!(b.refused(Refusal::Replayed), 3);
    // Once settled, nothing more is exchanged.
    assert!(a.auth.poll_outgoing().is_none() && b.auth.poll_outgoing().is_none());
}

#[test]
fn the_handshake_survives_the_loss_of_any_one_message() {
    for lost in 0..4 {
        let now = Instant::now();
        let mut a = Node::new(now, 0xaaaa, 1);
        let mut b = Node::new(now, 0xbbbb, 2);
        // Drop b's start-up hello: a only learns of b from its data.
        b.auth.poll_outgoing();
        let mut sent = 0;
        let mut t = now;
        for _ in 0..40 {
            t += Duration::from_millis(100);
            let data = a.auth.seal_data(t, b"from a");
            b.receive(t, a.addr, &data);
            let data = b.auth.seal_data(t, b"from b");
            a.receive(t, b.addr, &data);
            while let Some(hs) = a.auth.poll_outgoing() {
                sent += 1;
                if sent != lost + 1 {
                    b.receive(t, a.addr, &hs.bytes);
                }
            }
            while let Some(hs) = b.auth.poll_outgoing() {
                sent += 1;
                if sent != lost + 1 {
                    a.receive(t, b.addr, &hs.bytes);
                }
            }
        }
        assert_eq!(a.auth.verified_sessions(), 1, "lost message {lost}");
        assert_eq!(b.auth.verified_sessions(), 1, "lost message {lost}");
    }
}

#[test]
fn our_own_envelopes_are_refused_from_any_address() {
    let now = Instant::now();
    let (mut a, b) = verified_pair(now);
    let own = a.auth.seal_data(now, b"mine");
    assert_eq!(a.receive(now, b.addr, &own), (vec![], false));
    let mut hello = Auth::new(now, config(0xaaaa, KEY));
    let own_hello = hello.poll_outgoing().expect("hello").bytes;
    assert_eq!(a.receive(now, b.addr, &own_hello), (vec![], false));
    assert_eq!(a.refused(Refusal::Reflected), 2);
    assert!(a.auth.poll_outgoing().is_none(), "no answer to ourselves");
}

#[test]
fn a_restarted_receiver_refuses_what_was_captured_before() {
    let start = Instant::now();
    let (mut a, mut b) = verified_pair(start);
    let captured: Vec<Vec<u8>> = (0..100)
        .map(|i| a.auth.seal_data(start, format!("flow {i}").as_bytes()))
        .collect();
    for c in &captured {
        b.receive(start, a.addr, c);
    }
    // b restarts 5 s later; the attacker replays everything first.
    let later = start + Duration::from_secs(5);
    let mut b = Node::new(later, 0xb2b2, 2);
    for c in &captured {
        assert_eq!(b.receive(later, a.addr, c).0, Vec::<Vec<u8>>::new());
    }
    // The real a answers b's challenges: a is verified, the captures are not.
    let (_, got) = settle(later, &mut a, &mut b);
    assert!(got.is_empty(), "captured envelopes delivered: {got:?}");
    assert_eq!(b.auth.verified_sessions(), 1);
    assert_eq!(b.refused(Refusal::Stale), 100);
    // Replayed again now that a is verified: refused.
    for c in &captured {
        assert_eq!(b.receive(later, a.addr, c).0, Vec::<Vec<u8>>::new());
    }
    assert_eq!(b.refused(Refusal::Replayed), 100);
    // And what a sends now is taken.
    let fresh = a.auth.seal_data(later, b"now");
    assert_eq!(b.receive(later, a.addr, &fresh).0, vec![b"now".to_vec()]);
}

#[test]
fn a_restarted_sender_is_verified_again_and_its_first_envelopes_kept() {
    let start = Instant::now();
    let (a, mut b) = verified_pair(start);
    // Sealed, and withheld by an attacker.
    let old_session_data = {
        let mut a = a;
        a.auth.seal_data(start, b"before the restart")
    };
    // a restarts (its wall clock may be anywhere: no wall clock is used).
    let later = start + Duration::from_secs(30);
    let mut a = Node::new(later, 0xa2a2, 1);
    // Its first envelopes arrive before the handshake did.
    let first = a.auth.seal_data(later, b"resync please");
    assert_eq!(b.receive(later, a.addr, &first), (vec![], false));
    assert_eq!(b.auth.held_now(), 1);
    let (_, got) = settle(later + Duration::from_millis(1), &mut a, &mut b);
    assert_eq!(
        got,
        vec![b"resync please".to_vec()],
        "held envelope delivered"
    );
    // The old session was forgotten when the new one came from its
    // address: what it sealed is not delivered now.
    assert_eq!(b.auth.verified_sessions(), 1);
    assert_eq!(
        b.receive(later, a.addr, &old_session_data).0,
        Vec::<Vec<u8>>::new()
    );
    let (_, got) = settle(later + Duration::from_millis(200), &mut a, &mut b);
    assert!(got.is_empty());
}

#[test]
fn a_captured_echo_cannot_verify_a_session_after_its_challenge_expired() {
    let start = Instant::now();
    let mut a = Node::new(start, 0xaaaa, 1);
    let mut b = Node::new(start, 0xbbbb, 2).quiet();
    // a's hello reaches b; b's answer (echoing a's challenge) is captured.
    let hello = a.auth.poll_outgoing().expect("hello").bytes;
    b.receive(start, a.addr, &hello);
    let answer = b.auth.poll_outgoing().expect("answer").bytes;
    b.auth.poll_outgoing();
    // Played to a after the challenge's lifetime: b is not verified.
    let late = start + CHALLENGE_TTL + Duration::from_secs(1);
    a.receive(late, b.addr, &answer);
    assert_eq!(a.auth.verified_sessions(), 0);
    // In time, it is.
    let mut a = Node::new(start, 0xaaaa, 1);
    a.auth.poll_outgoing();
    a.receive(start + Duration::from_secs(1), b.addr, &answer);
    assert_eq!(a.auth.verified_sessions(), 1);
}

#[test]
fn another_nodes_challenge_does_not_verify_us() {
    let now = Instant::now();
    let mut a = Node::new(now, 0xaaaa, 1);
    let mut b = Node::new(now, 0xbbbb, 2).quiet();
    let mut c = Node::new(now, 0xcccc, 3).quiet();
    // b answers a's hello; c receives that answer (multicast).
    let hello = a.auth.poll_outgoing().expect("hello").bytes;
    b.receive(now, a.addr, &hello);
    let answer = b.auth.poll_outgoing().expect("answer").bytes;
    c.receive(now, b.addr, &answer);
    assert_eq!(
        c.auth.verified_sessions(),
        0,
        "b echoed a's challenge, not c's"
    );
    a.receive(now, b.addr, &answer);
    assert_eq!(a.auth.verified_sessions(), 1);
}

#[test]
fn wrong_keys_plain_datagrams_and_tampering_are_refused() {
    let now = Instant::now();
    let (mut a, mut b) = verified_pair(now);
    let mut stranger = Auth::new(now, config(0x5555, b"another key, long enough"));
    let forged = stranger.seal_data(now, b"x");
    assert_eq!(b.receive(now, a.addr, &forged), (vec![], false));
    assert_eq!(b.refused(Refusal::UnknownKey), 1);
    assert_eq!(
        b.receive(now, a.addr, &[0x10, 0, 0, 8, 0, 0, 0, 1]),
        (vec![], false)
    );
    assert_eq!(b.refused(Refusal::NotEnvelope), 1);
    let mut bad = a.auth.seal_data(now, b"payload");
    bad[envelope::HEADER_LEN] ^= 1;
    assert_eq!(b.receive(now, a.addr, &bad), (vec![], false));
    assert_eq!(b.refused(Refusal::BadTag), 1);
}

#[test]
fn keys_rotate_without_a_flag_day() {
    let now = Instant::now();
    let old: &[u8] = b"the old key, long enough";
    let new: &[u8] = b"the new key, long enough";
    let ring = |send: &[u8], accept: Option<&[u8]>| {
        KeyRing::new(
            Key::new(send).expect("key"),
            accept
                .map(|k| Key::new(k).expect("key"))
                .into_iter()
                .collect(),
        )
    };
    let mut a = Node::with_key(now, 0xaaaa, 1, old);
    let mut b = Node::with_key(now, 0xbbbb, 2, old);
    settle(now, &mut a, &mut b);
    assert_eq!(b.auth.verified_sessions(), 1);
    // Step 1: both accept the new key. Step 2: a sends with it first.
    a.auth.set_keys(ring(old, Some(new)), false, false);
    b.auth.set_keys(ring(old, Some(new)), false, false);
    a.auth.set_keys(ring(new, Some(old)), false, false);
    let sealed = a.auth.seal_data(now, b"with the new key");
    assert_eq!(
        b.receive(now, a.addr, &sealed).0,
        vec![b"with the new key".to_vec()]
    );
    let sealed = b.auth.seal_data(now, b"with the old key");
    assert_eq!(
        a.receive(now, b.addr, &sealed).0,
        vec![b"with the old key".to_vec()]
    );
    // Step 3: the old key is dropped everywhere; what it seals is refused.
    b.auth.set_keys(ring(new, None), false, false);
    let mut old_only = Auth::new(now, config(0x0101, old));
    let sealed = old_only.seal_data(now, b"x");
    b.receive(now, a.addr, &sealed);
    assert_eq!(b.refused(Refusal::UnknownKey), 1);
}

#[test]
fn required_encryption_refuses_plain_envelopes() {
    let now = Instant::now();
    let (mut a, mut b) = verified_pair(now);
    b.auth.set_keys(
        KeyRing::new(Key::new(KEY).expect("key"), Vec::new()),
        true,
        true,
    );
    let plain = a.auth.seal_data(now, b"in the clear");
    assert_eq!(b.receive(now, a.addr, &plain), (vec![], false));
    assert_eq!(b.refused(Refusal::Unencrypted), 1);
    a.auth.set_keys(
        KeyRing::new(Key::new(KEY).expect("key"), Vec::new()),
        true,
        false,
    );
    let secret = a.auth.seal_data(now, b"hidden");
    assert!(!secret.windows(6).any(|w| w == b"hidden"));
    assert_eq!(b.receive(now, a.addr, &secret).0, vec![b"hidden".to_vec()]);
}

#[test]
fn replayed_handshakes_get_at_most_one_answer_each() {
    let now = Instant::now();
    let mut b = Node::new(now, 0xbbbb, 2).quiet();
    let hellos: Vec<Vec<u8>> = (0..100u64)
        .map(|s| {
            let mut dead = Auth::new(now, config(0x1_0000 + s, KEY));
            dead.poll_outgoing().expect("hello").bytes
        })
        .collect();
    // The same one a hundred times: one answer.
    for _ in 0..100 {
        b.receive(now, ip(9), &hellos[0]);
    }
    let count = |b: &mut Node| std::iter::from_fn(|| b.auth.poll_outgoing()).count();
    assert_eq!(count(&mut b), 1);
    // A hundred dead sessions: no more answers than handshakes received,
    // and nobody is verified.
    for h in &hellos {
        b.receive(now, ip(9), h);
    }
    assert!(count(&mut b) <= hellos.len());
    assert_eq!(b.auth.verified_sessions(), 0);
}

#[test]
fn held_envelopes_are_bounded() {
    let now = Instant::now();
    let mut b = Node::new(now, 0xbbbb, 2);
    let mut senders: Vec<Auth> = (0..8u64)
        .map(|s| Auth::new(now, config(0x2_0000 + s, KEY)))
        .collect();
    for round in 0..400 {
        for s in &mut senders {
            let sealed = s.seal_data(now, &[round as u8; 1000]);
            b.receive(now, ip(7), &sealed);
        }
    }
    assert!(b.auth.held_now() <= MAX_HELD_SESSIONS * MAX_HELD);
    assert!(b.auth.held_bytes <= MAX_HELD_BYTES);
    let c = b.auth.counters();
    assert_eq!(c.held, 8 * 400);
    assert_eq!(
        c.refused(Refusal::Unverified) + b.auth.held_now() as u64,
        8 * 400,
        "every held envelope is either still held or counted"
    );
}

#[test]
fn a_full_session_table_forgets_the_quietest_and_voids_its_echoes() {
    let start = Instant::now();
    let mut b = Node::new(start, 0xbbbb, 2).quiet();
    let mut t = start;
    // Each from its own address (one address holds one session).
    let mut peers: Vec<Node> = (0..=MAX_SESSIONS as u64)
        .map(|s| Node::new(start, 0x3_0000 + s, 3 + s as u8))
        .collect();
    for peer in &mut peers {
        t += Duration::from_millis(1);
        settle(t, peer, &mut b);
    }
    assert_eq!(b.auth.verified_sessions(), MAX_SESSIONS);
    // The first peer was forgotten; its data is held again, not taken.
    let sealed = peers[0].auth.seal_data(t, b"x");
    assert_eq!(b.receive(t, peers[0].addr, &sealed), (vec![], false));
    assert_eq!(b.auth.held_now(), 1);
}

proptest::proptest! {
    /// A TCP stream of envelopes, torn and glued at any offsets by the
    /// stream splitter, opens every envelope once, in order, with no
    /// refusal (they were refused whole when several came in one run).
    #[test]
    fn envelopes_in_a_stream_open_whatever_the_cuts(
        sizes in proptest::collection::vec(0usize..300, 1..12),
        cuts in proptest::collection::vec(1usize..200, 0..30),
        encrypt in proptest::bool::ANY,
    ) {
        let now = Instant::now();
        let (mut a, mut b) = verified_pair(now);
        a.auth.set_keys(KeyRing::new(Key::new(KEY).expect("key"), Vec::new()), encrypt, false);
        let payloads: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| vec![i as u8; *n])
            .collect();
        let stream: Vec<u8> = payloads
            .iter()
            .flat_map(|p| a.auth.seal_data(now, p))
            .collect();
        let mut splitter = syncproto::stream::StreamSplitter::new();
        let mut got = Vec::new();
        let mut at = 0usize;
        for cut in cuts.iter().copied().chain(std::iter::once(usize::MAX)) {
            let end = at.saturating_add(cut).min(stream.len());
            let split = splitter.push(&stream[at..end]);
            proptest::prop_assert!(!split.garbage);
            if let Some(run) = split.messages {
                got.extend(b.receive(now, a.addr, &run).0);
            }
            at = end;
            if at == stream.len() {
                break;
            }
        }
        proptest::prop_assert_eq!(got, payloads);
        proptest::prop_assert_eq!(b.auth.counters().refused_total(), 0);
    }
}

#[test]
fn envelopes_split_at_every_byte_offset_open_once() {
    let now = Instant::now();
    let (mut a, _) = verified_pair(now);
    let mut len = None;
    for cut in 1.. {
        // A fresh receiver, verified by the same sender, for each offset.
        let mut b = Node::new(now, 0xbbbb + cut as u64, 2);
        settle(now, &mut a, &mut b);
        let stream: Vec<u8> = (0..3u8)
            .flat_map(|i| a.auth.seal_data(now, &[i; 40]))
            .collect();
        let total = *len.get_or_insert(stream.len());
        if cut >= total {
            break;
        }
        let mut splitter = syncproto::stream::StreamSplitter::new();
        let mut got = Vec::new();
        for part in [&stream[..cut], &stream[cut..]] {
            if let Some(run) = splitter.push(part).messages {
                got.extend(b.receive(now, a.addr, &run).0);
            }
        }
        assert_eq!(
            got,
            vec![vec![0; 40], vec![1; 40], vec![2; 40]],
            "cut at {cut}"
        );
        assert_eq!(b.auth.counters().refused_total(), 0, "cut at {cut}");
    }
}

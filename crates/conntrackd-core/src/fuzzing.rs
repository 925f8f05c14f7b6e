//! The fuzz targets' bodies (`fuzz/`), here so that the ordinary tests
//! replay each target's corpus through exactly the same code. Each one
//! checks what must hold for any input, beyond "no panic".

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::sync::auth::envelope::{self, Handshake, Header, Kind};
use crate::sync::auth::{Auth, AuthConfig, Delivery, Key, KeyRing, MAX_SESSIONS};
use crate::sync::{Protocol, SyncCore, SyncSettings};

const KEY: &[u8] = b"the fuzzing key, long enough";

fn ring() -> KeyRing {
    match Key::new(KEY) {
        Some(key) => KeyRing::new(key, Vec::new()),
        None => unreachable!("the fuzzing key is long enough"),
    }
}

fn peer(i: u8) -> IpAddr {
    IpAddr::from([10, 77, 0, i])
}

fn be64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    for (to, from) in b.iter_mut().zip(bytes) {
        *to = *from;
    }
    u64::from_be_bytes(b)
}

/// `auth_open`: chunks (split at 0xFF) are opened by one node's
/// authentication layer. A chunk starting with an even byte is taken as
/// it is; with an odd byte, the rest is sealed first with the right key
/// and header fields taken from the chunk (so the checks behind the tag
/// are reached); with byte 0x03, as a handshake answering our last
/// challenge (so sessions get verified and held envelopes delivered).
/// Whatever comes in: tables stay bounded, and what is delivered is a
/// body that was sealed.
pub fn auth_open(data: &[u8]) {
    let start = Instant::now();
    let mut node = Auth::new(
        start,
        AuthConfig {
            keys: ring(),
            encrypt: false,
            require_encryption: data.first().is_some_and(|b| b & 0x80 != 0),
            session: 1,
        },
    );
    let key = match Key::new(KEY) {
        Some(key) => key,
        None => return,
    };
    let mut last_challenge = 0;
    let mut sealed_bodies = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut now = start;
    for chunk in data.split(|b| *b == 0xff) {
        now += Duration::from_millis(chunk.len() as u64 * 7);
        let bytes = match chunk {
            [mode, fields @ ..] if mode & 1 == 1 => {
                let (head, body) = fields.split_at(fields.len().min(17));
                let kind = if *mode == 0x03 {
                    Kind::Handshake
                } else if mode & 2 == 0 {
                    Kind::Data
                } else {
                    Kind::Handshake
                };
                let body = if *mode == 0x03 {
                    Handshake {
                        challenge: be64(body),
                        echo: last_challenge,
                    }
                    .encode()
                    .to_vec()
                } else {
                    body.to_vec()
                };
                let header = Header {
                    kind,
                    encrypted: mode & 4 != 0,
                    key_id: key.id(),
                    session: be64(head.get(..8).unwrap_or_default()) % 8,
                    counter: be64(head.get(8..16).unwrap_or_default()) % 1024,
                    clock: u64::from(head.get(16).copied().unwrap_or(0)) * 100,
                };
                sealed_bodies.insert(body.clone());
                key.seal(&header, &body)
            }
            _ => chunk.to_vec(),
        };
        let from = peer(chunk.get(1).copied().unwrap_or(0) % 4);
        node.open(now, 0, from, &bytes, &mut out);
        for delivery in out.drain(..) {
            if let Delivery::Payload { bytes, .. } = delivery {
                assert!(
                    sealed_bodies.contains(&bytes),
                    "delivered what was never sealed"
                );
            }
        }
        while let Some(hs) = node.poll_outgoing() {
            if let Ok(h) = envelope::parse_header(&hs.bytes)
                && let Ok(body) = key.open(&h, &hs.bytes)
                && let Some(hs) = Handshake::decode(&body)
            {
                last_challenge = hs.challenge;
            }
        }
        assert!(node.verified_sessions() <= MAX_SESSIONS);
        assert!(node.held_now() <= 4 * 256);
    }
}

fn settings(protocol: Protocol, auth: Option<AuthConfig>) -> SyncSettings {
    SyncSettings {
        hash_limit: 1024,
        auth,
        ..SyncSettings::basic(protocol)
    }
}

fn protocols() -> [Protocol; 3] {
    [
        Protocol::Ftfw {
            ack_window: 4,
            resend_queue_size: 16,
        },
        Protocol::Alarm {
            refresh: Duration::from_secs(5),
            cache_timeout: Duration::from_secs(15),
        },
        Protocol::Notrack,
    ]
}

/// `sync_core`: whole datagrams into a core in each mode, without
/// authentication (from one address) and with it (from three verified
/// peers, whose envelopes carry the chunks, and from a fourth that only
/// sends raw bytes). Never a panic, and garbage never makes a node send
/// data: only control messages and handshakes.
pub fn sync_core(data: &[u8]) {
    let start = Instant::now();
    for protocol in protocols() {
        let mut core = SyncCore::new(start, settings(protocol, None));
        for chunk in data.split(|b| *b == 0xff) {
            core.handle_datagram(start, 0, peer(1), chunk);
        }
        drain(&mut core, start + Duration::from_secs(2));
        assert!(core.external.len() <= 1024);
        authenticated_core(protocol, data);
    }
}

fn drain(core: &mut SyncCore, now: Instant) {
    core.handle_timeout(now);
    while core.poll_transmit(now).is_some() {}
    while core.poll_event().is_some() {}
}

fn authenticated_core(protocol: Protocol, data: &[u8]) {
    let start = Instant::now();
    let config = |session| AuthConfig {
        keys: ring(),
        encrypt: session % 2 == 0,
        require_encryption: false,
        session,
    };
    let mut core = SyncCore::new(start, settings(protocol, Some(config(100))));
    let mut peers: Vec<Auth> = (0..3).map(|i| Auth::new(start, config(200 + i))).collect();
    // Handshakes both ways until quiet: the core verifies its peers.
    let mut out = Vec::new();
    for _ in 0..6 {
        for (i, p) in peers.iter_mut().enumerate() {
            while let Some(hs) = p.poll_outgoing() {
                core.handle_datagram(start, 0, peer(i as u8 + 1), &hs.bytes);
            }
        }
        while let Some(tx) = core.poll_transmit(start) {
            for p in &mut peers {
                p.open(start, 0, peer(100), &tx.bytes, &mut out);
            }
        }
    }
    assert_eq!(
        core.auth().map(Auth::verified_sessions),
        Some(3),
        "a clean handshake verifies every peer"
    );
    let mut now = start;
    for chunk in data.split(|b| *b == 0xff) {
        now += Duration::from_millis(10);
        let who = chunk.first().copied().unwrap_or(0) % 4;
        let body = chunk.get(1..).unwrap_or_default();
        let bytes = match peers.get_mut(usize::from(who)) {
            Some(p) => p.seal_data(now, body),
            None => body.to_vec(),
        };
        core.handle_datagram(now, 0, peer(who + 1), &bytes);
        while core.poll_transmit(now).is_some() {}
    }
    drain(&mut core, now + Duration::from_secs(2));
    assert!(core.auth().is_some_and(|a| a.verified_sessions() <= 3));
}

/// `metrics_request`: the metrics endpoint's request parser on any bytes;
/// whatever it answers, a head without the request line's exact shape is
/// a bad request.
pub fn metrics_request(data: &[u8]) {
    let asked = crate::http::parse_request(data);
    let _ = crate::http::head_complete(data);
    if !data.starts_with(b"GET ") && !data.starts_with(b"HEAD ") {
        assert!(!matches!(asked, crate::http::Asked::Metrics { .. }));
    }
}

/// `control_request`: the control socket's request parser on any bytes:
/// only four bytes of a code in the table (1.4.7's and ours), alone or
/// with the JSON flag, are a request, and it names that code.
pub fn control_request(data: &[u8]) {
    use crate::request::{JSON_FLAG, Request, parse_request};
    if let Ok(asked) = parse_request(data) {
        assert_eq!(data.len(), 4);
        let code = i32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
        assert_eq!(asked.code(), code);
        assert_eq!(Request::from_code(code & !JSON_FLAG), Some(asked.request));
        assert_eq!(asked.json, code & JSON_FLAG != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_request_corpus_replays() {
        replay("control_request", control_request);
    }

    /// Replays a fuzz target's corpus through its body.
    fn replay(name: &str, body: fn(&[u8])) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(name);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus dir").flatten() {
            body(&std::fs::read(entry.path()).expect("read"));
            n += 1;
        }
        assert!(n > 0, "{name}: empty corpus");
    }

    #[test]
    fn the_auth_open_corpus_replays() {
        replay("auth_open", auth_open);
    }

    #[test]
    fn the_sync_core_corpus_replays() {
        replay("sync_core", sync_core);
    }

    #[test]
    fn the_metrics_request_corpus_replays() {
        replay("metrics_request", metrics_request);
    }
}

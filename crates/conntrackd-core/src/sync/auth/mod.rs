//! Authenticated sync (`Sync { Authentication { … } }`, off by default;
//! docs/authentication.md has the format and the threat model).
//!
//! Every datagram (every batch on a TCP stream) travels in an envelope
//! ([`envelope`]) that names the sender's *session*: 64 random bits drawn
//! from the OS when the daemon starts. Replay state is kept per session,
//! never per address, and our own session coming back is refused.
//!
//! A session is believed only once a handshake showed that its sender
//! holds the key *now*: it must echo a challenge of ours, which binds our
//! session and the time we issued it. Until then its envelopes are held
//! (bounded); when the echo arrives, those sealed shortly before it are
//! delivered and older ones are refused as stale. So a captured envelope is
//! refused after either side restarted: the receiver's new challenges
//! cannot have been echoed before, and the sender's old session is never
//! verified again. No wall clock is involved, so a sender whose clock was
//! set back is verified like any other (within a round trip).

mod counters;
pub mod envelope;
mod window;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use counters::{AuthCounters, Refusal};
use envelope::{Handshake, Header, Kind, OpenError};
pub use envelope::{Key, KeyRing, MIN_KEY_LEN, OVERHEAD};
use window::Window;

use crate::FastMap;

/// How authentication is set up. Not `Clone`: a session is sealed by one
/// [`Auth`] only, or counters (and nonces) would repeat.
#[derive(Debug)]
pub struct AuthConfig {
    pub keys: KeyRing,
    /// Seal with encryption (ChaCha20-Poly1305).
    pub encrypt: bool,
    /// Refuse envelopes that are not encrypted.
    pub require_encryption: bool,
    /// Our session: random per start, from the OS random generator.
    pub session: u64,
}

/// Sessions verified at once; the one heard longest ago makes room.
pub const MAX_SESSIONS: usize = 64;
/// Sessions whose envelopes are held while they are not verified.
const MAX_HELD_SESSIONS: usize = 4;
/// Envelopes held per unverified session, and bytes held in all.
const MAX_HELD: usize = 256;
const MAX_HELD_BYTES: usize = 4 << 20;
/// A held envelope is delivered if it was sealed at most this long before
/// the handshake that verified its session.
const FRESH: Duration = Duration::from_secs(2);
/// A challenge of ours can be echoed this long after we issued it.
const CHALLENGE_TTL: Duration = Duration::from_secs(10);
/// Unprompted handshakes (asking unknown senders to prove themselves) go
/// out at most this often.
const HELLO_INTERVAL: Duration = Duration::from_millis(500);
/// One answer per sender session in this time. No budget beyond that: an
/// answer is one small datagram for one received, to our own peers, and a
/// budget that replayed handshakes of dead sessions could use up would let
/// them keep a real peer from being verified.
const ANSWER_INTERVAL: Duration = Duration::from_millis(100);
const ANSWERED_MEMORY: usize = 16;

/// What opening produced, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A handshake verified `session`, heard from `from`.
    Verified { session: u64, from: IpAddr },
    /// The sync messages of an accepted envelope.
    Payload {
        session: u64,
        from: IpAddr,
        bytes: Vec<u8>,
    },
}

/// A handshake envelope to send: on `channel`, or the active one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub channel: Option<usize>,
    pub bytes: Vec<u8>,
}

/// A verified session.
#[derive(Debug, Clone, Copy)]
struct Session {
    window: Window,
    heard: Instant,
    /// Where it was heard from last.
    addr: IpAddr,
}

/// An envelope of a session not verified yet.
#[derive(Debug)]
struct Held {
    counter: u64,
    clock: u64,
    from: IpAddr,
    body: Vec<u8>,
}

#[derive(Debug)]
struct HeldSession {
    session: u64,
    envelopes: VecDeque<Held>,
}

/// The authentication layer of one node.
#[derive(Debug)]
pub struct Auth {
    keys: KeyRing,
    encrypt: bool,
    require_encryption: bool,
    session: u64,
    /// Our session clock's origin.
    started: Instant,
    next_counter: u64,
    /// Challenges issued before this (session clock, ms) are void: set when
    /// a verified session is forgotten, so that a captured echo cannot
    /// bring it back.
    void_before: u64,
    sessions: FastMap<u64, Session>,
    held: VecDeque<HeldSession>,
    held_bytes: usize,
    /// Sender sessions answered lately, and when.
    answered: VecDeque<(u64, Instant)>,
    last_hello: Option<Instant>,
    out: VecDeque<Outgoing>,
    counters: AuthCounters,
}

impl Auth {
    /// Starts our session at `now`, with a handshake announcing it.
    pub fn new(now: Instant, config: AuthConfig) -> Auth {
        let mut auth = Auth {
            keys: config.keys,
            encrypt: config.encrypt,
            require_encryption: config.require_encryption,
            session: config.session,
            started: now,
            next_counter: 1,
            void_before: 0,
            sessions: FastMap::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            answered: VecDeque::new(),
            last_hello: None,
            out: VecDeque::new(),
            counters: AuthCounters::default(),
        };
        auth.hello(now, None);
        auth
    }

    pub fn counters(&self) -> &AuthCounters {
        &self.counters
    }

    /// Our session id.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Sessions verified now.
    pub fn verified_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Envelopes held for a handshake now.
    pub fn held_now(&self) -> usize {
        self.held.iter().map(|s| s.envelopes.len()).sum()
    }

    /// Encrypting what we send.
    pub fn encrypts(&self) -> bool {
        self.encrypt
    }

    /// New keys (SIGHUP); the session and its counter go on.
    pub fn set_keys(&mut self, keys: KeyRing, encrypt: bool, require_encryption: bool) {
        self.keys = keys;
        self.encrypt = encrypt;
        self.require_encryption = require_encryption;
    }

    /// Milliseconds since our session started.
    fn clock(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    fn seal(&mut self, now: Instant, kind: Kind, body: &[u8]) -> Vec<u8> {
        let header = Header {
            kind,
            encrypted: self.encrypt,
            key_id: self.keys.sending().id(),
            session: self.session,
            counter: self.next_counter,
            clock: self.clock(now),
        };
        self.next_counter += 1;
        self.keys.sending().seal(&header, body)
    }

    /// Wraps a batch of sync messages.
    pub fn seal_data(&mut self, now: Instant, payload: &[u8]) -> Vec<u8> {
        self.seal(now, Kind::Data, payload)
    }

    /// The next handshake to send.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// Our challenge at `now`: the time we issue it, and a tag that binds
    /// it to our session (another node's challenge is not ours).
    fn challenge(&self, now: Instant) -> u64 {
        let ms = self.clock(now) + 1;
        (ms << 24) | self.challenge_tag(ms)
    }

    fn challenge_tag(&self, ms: u64) -> u64 {
        let mut h = Sha256::new();
        h.update(b"conntrackd-rs challenge");
        h.update(self.session.to_be_bytes());
        h.update(ms.to_be_bytes());
        let digest = h.finalize();
        u64::from(u32::from_be_bytes([0, digest[0], digest[1], digest[2]]))
    }

    /// True if `echo` is a challenge we issued within CHALLENGE_TTL and
    /// that no forgotten session could have answered.
    fn is_our_challenge(&self, echo: u64, now: Instant) -> bool {
        let ms = echo >> 24;
        let age = self.clock(now) + 1;
        ms != 0
            && ms <= age
            && age - ms <= CHALLENGE_TTL.as_millis() as u64
            && ms > self.void_before
            && echo & 0xff_ffff == self.challenge_tag(ms)
    }

    fn handshake(&mut self, now: Instant, channel: Option<usize>, echo: u64) {
        let body = Handshake {
            challenge: self.challenge(now),
            echo,
        }
        .encode();
        let bytes = self.seal(now, Kind::Handshake, &body);
        self.counters.handshakes_sent += 1;
        self.out.push_back(Outgoing { channel, bytes });
    }

    /// An unprompted handshake: whoever we do not know yet answers it.
    fn hello(&mut self, now: Instant, channel: Option<usize>) {
        if self
            .last_hello
            .is_some_and(|at| now.saturating_duration_since(at) < HELLO_INTERVAL)
        {
            return;
        }
        self.last_hello = Some(now);
        self.handshake(now, channel, 0);
    }

    /// May we answer `session` now (once per ANSWER_INTERVAL)?
    fn may_answer(&mut self, now: Instant, session: u64) -> bool {
        if self
            .answered
            .iter()
            .any(|&(s, at)| s == session && now.saturating_duration_since(at) < ANSWER_INTERVAL)
        {
            return false;
        }
        self.answered.retain(|&(s, _)| s != session);
        if self.answered.len() >= ANSWERED_MEMORY {
            self.answered.pop_front();
        }
        self.answered.push_back((session, now));
        true
    }

    /// Opens every envelope of `bytes` (a datagram, or a run of whole
    /// envelopes cut from a TCP stream). Returns true if one was accepted
    /// from a verified session or verified one.
    pub fn open(
        &mut self,
        now: Instant,
        channel: usize,
        from: IpAddr,
        bytes: &[u8],
        out: &mut Vec<Delivery>,
    ) -> bool {
        let mut rest = bytes;
        let mut authentic = false;
        while !rest.is_empty() {
            let Some(len) = envelope::envelope_len(rest).filter(|&l| l > 0 && l <= rest.len())
            else {
                self.counters.refuse(Refusal::NotEnvelope, 1);
                break;
            };
            let (one, tail) = rest.split_at(len);
            rest = tail;
            authentic |= self.open_one(now, channel, from, one, out);
        }
        authentic
    }

    fn open_one(
        &mut self,
        now: Instant,
        channel: usize,
        from: IpAddr,
        bytes: &[u8],
        out: &mut Vec<Delivery>,
    ) -> bool {
        let opened = envelope::parse_header(bytes).and_then(|header| {
            if self.require_encryption && !header.encrypted {
                return Err(OpenError::Unencrypted);
            }
            let key = self.keys.find(header.key_id).ok_or(OpenError::UnknownKey)?;
            Ok((header, key.open(&header, bytes)?))
        });
        let (header, body) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let why = match e {
                    OpenError::NotEnvelope => Refusal::NotEnvelope,
                    OpenError::UnknownKey => Refusal::UnknownKey,
                    OpenError::Unencrypted => Refusal::Unencrypted,
                    OpenError::BadTag => Refusal::BadTag,
                };
                self.counters.refuse(why, 1);
                return false;
            }
        };
        if header.session == self.session {
            self.counters.refuse(Refusal::Reflected, 1);
            return false;
        }
        match header.kind {
            Kind::Data => self.data(now, channel, from, header, body, out),
            Kind::Handshake => match Handshake::decode(&body) {
                Some(hs) => self.handshake_received(now, channel, from, header, hs, out),
                None => {
                    self.counters.refuse(Refusal::NotEnvelope, 1);
                    false
                }
            },
        }
    }

    fn data(
        &mut self,
        now: Instant,
        channel: usize,
        from: IpAddr,
        header: Header,
        body: Vec<u8>,
        out: &mut Vec<Delivery>,
    ) -> bool {
        if let Some(session) = self.sessions.get_mut(&header.session) {
            if !session.window.accept(header.counter) {
                self.counters.refuse(Refusal::Replayed, 1);
                return false;
            }
            session.heard = now;
            session.addr = from;
            out.push(Delivery::Payload {
                session: header.session,
                from,
                bytes: body,
            });
            return true;
        }
        self.hold(header, from, body);
        self.hello(now, Some(channel));
        false
    }

    fn handshake_received(
        &mut self,
        now: Instant,
        channel: usize,
        from: IpAddr,
        header: Header,
        hs: Handshake,
        out: &mut Vec<Delivery>,
    ) -> bool {
        let known = match self.sessions.get_mut(&header.session) {
            Some(session) => {
                if !session.window.accept(header.counter) {
                    self.counters.refuse(Refusal::Replayed, 1);
                    return false;
                }
                session.heard = now;
                session.addr = from;
                true
            }
            None => false,
        };
        let verified = !known && self.is_our_challenge(hs.echo, now);
        if verified {
            self.verify(now, from, header, out);
        }
        // An unprompted handshake is always answered; an answer only while
        // its sender was unknown to us (then it waits for our echo too).
        // Once both sides know each other, the exchange ends.
        if hs.challenge != 0 && (hs.echo == 0 || !known) && self.may_answer(now, header.session) {
            self.handshake(now, Some(channel), hs.challenge);
        }
        known || verified
    }

    /// `header` echoed our challenge: its session is live now. Its held
    /// envelopes sealed shortly before are delivered, older ones refused.
    ///
    /// A session verified before from the same address was, most likely,
    /// the same node before it restarted: it is forgotten, so that what it
    /// sealed and we never received cannot be delivered now. (Were it
    /// alive after all, its next envelopes are held and a handshake
    /// verifies it again.)
    fn verify(&mut self, now: Instant, from: IpAddr, header: Header, out: &mut Vec<Delivery>) {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| s.addr != from);
        if self.sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.heard)
                .map(|(id, _)| *id)
        {
            self.sessions.remove(&oldest);
        }
        if self.sessions.len() < before {
            // Echoes of challenges issued so far could verify a forgotten
            // session again.
            self.void_before = self.clock(now) + 1;
        }
        // What it sealed before this handshake cannot be told from old
        // captures, except what we held: that came while we listened.
        let mut window = Window::closed_below(header.counter);
        self.counters.verified += 1;
        out.push(Delivery::Verified {
            session: header.session,
            from,
        });
        let mut held = self.take_held(header.session);
        held.sort_by_key(|h| h.counter);
        let mut last = None;
        for h in held {
            let age = Duration::from_millis(header.clock.saturating_sub(h.clock));
            let verdict = if h.counter >= header.counter {
                window
                    .accept(h.counter)
                    .then_some(())
                    .ok_or(Refusal::Replayed)
            } else if last == Some(h.counter) {
                Err(Refusal::Replayed)
            } else if age > FRESH {
                Err(Refusal::Stale)
            } else {
                Ok(())
            };
            last = Some(h.counter);
            match verdict {
                Ok(()) => out.push(Delivery::Payload {
                    session: header.session,
                    from: h.from,
                    bytes: h.body,
                }),
                Err(why) => self.counters.refuse(why, 1),
            }
        }
        self.sessions.insert(
            header.session,
            Session {
                window,
                heard: now,
                addr: from,
            },
        );
    }

    fn hold(&mut self, header: Header, from: IpAddr, body: Vec<u8>) {
        let size = body.len();
        if !self.held.iter().any(|s| s.session == header.session) {
            if self.held.len() >= MAX_HELD_SESSIONS {
                self.drop_oldest_held_session();
            }
            self.held.push_back(HeldSession {
                session: header.session,
                envelopes: VecDeque::new(),
            });
        }
        while self.held_bytes + size > MAX_HELD_BYTES && !self.held.is_empty() {
            self.drop_oldest_held_session();
        }
        let Some(entry) = self.held.iter_mut().find(|s| s.session == header.session) else {
            self.counters.refuse(Refusal::Unverified, 1);
            return;
        };
        if entry.envelopes.len() >= MAX_HELD
            && let Some(dropped) = entry.envelopes.pop_front()
        {
            self.held_bytes -= dropped.body.len();
            self.counters.refuse(Refusal::Unverified, 1);
        }
        entry.envelopes.push_back(Held {
            counter: header.counter,
            clock: header.clock,
            from,
            body,
        });
        self.held_bytes += size;
        self.counters.held += 1;
    }

    fn drop_oldest_held_session(&mut self) {
        if let Some(dropped) = self.held.pop_front() {
            let bytes: usize = dropped.envelopes.iter().map(|h| h.body.len()).sum();
            self.held_bytes -= bytes;
            self.counters
                .refuse(Refusal::Unverified, dropped.envelopes.len() as u64);
        }
    }

    fn take_held(&mut self, session: u64) -> Vec<Held> {
        let Some(at) = self.held.iter().position(|s| s.session == session) else {
            return Vec::new();
        };
        let Some(entry) = self.held.remove(at) else {
            return Vec::new();
        };
        let held: Vec<Held> = entry.envelopes.into();
        self.held_bytes -= held.iter().map(|h| h.body.len()).sum::<usize>();
        held
    }
}

#[cfg(test)]
mod tests;

//! Authenticated sync (`Sync { Authentication { KeyFile … } }`), off by
//! default. Every datagram (or TCP batch) is wrapped in an envelope that
//! carries a 64-bit counter and an HMAC-SHA256 over everything before it:
//!
//! ```text
//!  0      1      2..4          4..8       8..16        16..16+n   last 32
//!  0xA5   0x00   total length  reserved   counter      the usual  HMAC-SHA256
//!                (BE, bytes)   (zero)     (BE)         messages   (key, bytes 0..16+n)
//! ```
//!
//! With `Encrypt on`, byte 1 is 0x01, bytes 4..8 carry a random sender id
//! chosen at start-up, the messages are encrypted with ChaCha20-Poly1305
//! (key: SHA-256 of "conntrackd-encrypt" and the key file; nonce: sender id
//! and counter; bytes 0..16 as associated data) and the last 16 bytes are
//! the AEAD tag instead of the HMAC.
//!
//! Byte 0 has version nibble 10, so a 1.4.7 peer drops an envelope as
//! "wrong protocol version", and bytes 2..4 hold the total length like a
//! sync header, so TCP streams split it as one message. The counter starts
//! at the sender's wall-clock time in nanoseconds (it grows across
//! restarts) and increases by one per envelope; a receiver accepts each
//! counter at most once per sender, within a 64-entry window below the
//! highest seen (reordering tolerated, replays refused).

use std::borrow::Cow;
use std::net::IpAddr;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::FastMap;

/// First byte of an envelope.
pub const MAGIC: u8 = 0xA5;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;
/// The HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// What an envelope adds to a batch (at most).
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The AEAD tag of an encrypted envelope.
const AEAD_TAG_LEN: usize = 16;
/// Byte 1 of an encrypted envelope.
const ENCRYPTED: u8 = 0x01;
/// Shortest key accepted.
pub const MIN_KEY_LEN: usize = 16;

const WINDOW: u64 = 64;

/// Why an envelope was refused ("Auth failures").
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("not an authenticated datagram")]
    NotEnvelope,
    #[error("bad message authentication code")]
    BadMac,
    #[error("replayed or too old")]
    Replayed,
}

/// Replay state of one sender.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    highest: u64,
    /// Bit i set: counter `highest - i` was seen.
    seen: u64,
}

impl Window {
    /// Accepts `counter` once.
    fn accept(&mut self, counter: u64) -> bool {
        if counter > self.highest {
            let shift = counter - self.highest;
            self.seen = if shift >= WINDOW {
                1
            } else {
                (self.seen << shift) | 1
            };
            self.highest = counter;
            return true;
        }
        let age = self.highest - counter;
        if age >= WINDOW || self.seen & (1 << age) != 0 {
            return false;
        }
        self.seen |= 1 << age;
        true
    }
}

/// Seals outgoing batches and opens incoming ones.
#[derive(Clone)]
pub struct Authenticator {
    /// Keyed once; cloned per datagram.
    keyed: Hmac<Sha256>,
    cipher: ChaCha20Poly1305,
    /// Encrypt what we send (we accept both forms).
    encrypt: bool,
    /// Our part of the nonce.
    sender_id: [u8; 4],
    next: u64,
    peers: FastMap<IpAddr, Window>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Authenticator")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `first_counter` must exceed anything sent before with this key
    /// (the wall clock in nanoseconds does). None for a key shorter than
    /// [`MIN_KEY_LEN`].
    pub fn new(key: &[u8], first_counter: u64) -> Option<Authenticator> {
        if key.len() < MIN_KEY_LEN {
            return None;
        }
        let mut derive = Sha256::new();
        derive.update(b"conntrackd-encrypt");
        derive.update(key);
        let cipher = ChaCha20Poly1305::new_from_slice(&derive.finalize()).ok()?;
        Some(Authenticator {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?,
            cipher,
            encrypt: false,
            sender_id: [0; 4],
            next: first_counter,
            peers: FastMap::default(),
        })
    }

    /// Also encrypts what we send. `sender_id` must be random per start.
    pub fn with_encryption(mut self, sender_id: [u8; 4]) -> Authenticator {
        self.encrypt = true;
        self.sender_id = sender_id;
        self
    }

    fn nonce(id: &[u8], counter: &[u8]) -> Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(id);
        n[4..].copy_from_slice(counter);
        Nonce::from(n)
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.keyed.clone()
    }

    /// Wraps a batch of sync messages.
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        if self.encrypt {
            return self.seal_encrypted(payload);
        }
        let total = HEADER_LEN + payload.len() + TAG_LEN;
        let mut out = Vec::with_capacity(total);
        out.push(MAGIC);
        out.push(0);
        out.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.next.to_be_bytes());
        self.next = self.next.wrapping_add(1);
        out.extend_from_slice(payload);
        let mut mac = self.mac();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    fn seal_encrypted(&mut self, payload: &[u8]) -> Vec<u8> {
        let total = HEADER_LEN + payload.len() + AEAD_TAG_LEN;
        let mut out = Vec::with_capacity(total);
        out.push(MAGIC);
        out.push(ENCRYPTED);
        out.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&self.sender_id);
        out.extend_from_slice(&self.next.to_be_bytes());
        self.next = self.next.wrapping_add(1);
        let nonce = Self::nonce(&out[4..8], &out[8..16]);
        let mut body = payload.to_vec();
        match self
            .cipher
            .encrypt_in_place_detached(&nonce, &out[..HEADER_LEN], &mut body)
        {
            Ok(tag) => {
                out.extend_from_slice(&body);
                out.extend_from_slice(&tag);
            }
            // Only for payloads beyond 256 GiB; never with datagrams.
            Err(_) => out.clear(),
        }
        out
    }

    /// Checks an envelope from `from` and returns its payload.
    pub fn open<'a>(&mut self, from: IpAddr, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, AuthError> {
        if bytes.len() >= HEADER_LEN + AEAD_TAG_LEN && bytes[0] == MAGIC && bytes[1] == ENCRYPTED {
            return self.open_encrypted(from, bytes).map(Cow::Owned);
        }
        if bytes.len() < OVERHEAD || bytes[0] != MAGIC {
            return Err(AuthError::NotEnvelope);
        }
        let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if total != bytes.len() {
            return Err(AuthError::NotEnvelope);
        }
        let (signed, tag) = bytes.split_at(total - TAG_LEN);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| AuthError::BadMac)?;
        self.check_replay(from, signed)?;
        Ok(Cow::Borrowed(&signed[HEADER_LEN..]))
    }

    /// Accepts the counter in bytes 8..16 of an authenticated header once
    /// per sender.
    fn check_replay(&mut self, from: IpAddr, header: &[u8]) -> Result<(), AuthError> {
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&header[8..16]);
        let fresh = self
            .peers
            .entry(from)
            .or_default()
            .accept(u64::from_be_bytes(counter));
        if fresh {
            Ok(())
        } else {
            Err(AuthError::Replayed)
        }
    }

    fn open_encrypted(&mut self, from: IpAddr, bytes: &[u8]) -> Result<Vec<u8>, AuthError> {
        let total = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if total != bytes.len() {
            return Err(AuthError::NotEnvelope);
        }
        let (head, rest) = bytes.split_at(HEADER_LEN);
        let (cipher_text, tag) = rest.split_at(rest.len() - AEAD_TAG_LEN);
        let nonce = Self::nonce(&head[4..8], &head[8..16]);
        let mut body = cipher_text.to_vec();
        self.cipher
            .decrypt_in_place_detached(&nonce, head, &mut body, Tag::from_slice(tag))
            .map_err(|_| AuthError::BadMac)?;
        self.check_replay(from, head)?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> IpAddr {
        "10.77.0.1".parse().expect("ip")
    }

    #[test]
    fn sealed_batches_open_once() {
        let mut a = Authenticator::new(b"0123456789abcdef", 1000).expect("key");
        let mut b = Authenticator::new(b"0123456789abcdef", 5).expect("key");
        let one = a.seal(b"hello");
        let two = a.seal(b"world");
        assert_eq!(one.len(), 5 + OVERHEAD);
        // Reordered: both accepted, each once.
        assert_eq!(b.open(peer(), &two).as_deref(), Ok(&b"world"[..]));
        assert_eq!(b.open(peer(), &one).as_deref(), Ok(&b"hello"[..]));
        assert_eq!(b.open(peer(), &one).as_deref(), Err(&AuthError::Replayed));
        // Another sender has its own window.
        let other: IpAddr = "10.77.0.2".parse().expect("ip");
        assert_eq!(b.open(other, &one).as_deref(), Ok(&b"hello"[..]));
    }

    #[test]
    fn tampering_and_wrong_keys_are_refused() {
        let mut a = Authenticator::new(b"0123456789abcdef", 1).expect("key");
        let mut b = Authenticator::new(b"0123456789abcdef", 1).expect("key");
        let mut sealed = a.seal(b"payload");
        sealed[HEADER_LEN] ^= 1;
        assert_eq!(b.open(peer(), &sealed).as_deref(), Err(&AuthError::BadMac));
        let mut wrong = Authenticator::new(b"fedcba9876543210", 1).expect("key");
        let forged = wrong.seal(b"payload");
        assert_eq!(b.open(peer(), &forged).as_deref(), Err(&AuthError::BadMac));
        // A plain 1.4.7 datagram is not an envelope.
        assert_eq!(
            b.open(peer(), &[0x10, 0, 0, 8, 0, 0, 0, 1]).as_deref(),
            Err(&AuthError::NotEnvelope)
        );
    }

    #[test]
    fn encrypted_batches_hide_the_payload_and_open_once() {
        let key = b"0123456789abcdef0123";
        let mut a = Authenticator::new(key, 7)
            .expect("key")
            .with_encryption([1, 2, 3, 4]);
        let mut b = Authenticator::new(key, 1).expect("key");
        let sealed = a.seal(b"secret flow data");
        assert_eq!(sealed.len(), HEADER_LEN + 16 + AEAD_TAG_LEN);
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "plaintext visible"
        );
        assert_eq!(
            b.open(peer(), &sealed).as_deref(),
            Ok(&b"secret flow data"[..])
        );
        assert_eq!(
            b.open(peer(), &sealed).as_deref(),
            Err(&AuthError::Replayed)
        );
        let mut tampered = a.seal(b"secret flow data");
        tampered[HEADER_LEN] ^= 1;
        assert_eq!(
            b.open(peer(), &tampered).as_deref(),
            Err(&AuthError::BadMac)
        );
        // The header is authenticated too (the counter cannot be rewritten).
        let mut moved = a.seal(b"x");
        moved[15] ^= 1;
        assert_eq!(b.open(peer(), &moved).as_deref(), Err(&AuthError::BadMac));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Authenticator::new(b"short", 1).is_none());
    }

    #[test]
    fn the_window_refuses_old_counters() {
        let mut w = Window::default();
        assert!(w.accept(100));
        assert!(w.accept(200));
        assert!(!w.accept(100), "more than 64 behind");
        assert!(w.accept(150));
        assert!(!w.accept(150));
        assert!(w.accept(201));
    }
}

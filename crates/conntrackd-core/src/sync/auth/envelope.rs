//! The envelope around authenticated sync traffic (docs/authentication.md,
//! "Format"): its header, and sealing and opening with one key. No state:
//! replay windows and sessions live in [`super::Auth`].
//!
//! ```text
//!  0     0xA5          magic (version nibble 10: 1.4.7 drops it)
//!  1     0x20 | flags  format 2; bit 3 encrypted; bits 0..2 kind
//!  2..4  total length  big-endian, whole envelope (TCP streams split on it)
//!  4..8  key id        which key sealed it
//!  8..16 session       the sender's session, random per start
//! 16..24 counter       per session, from 1, +1 per envelope
//! 24..32 clock         milliseconds since the session started
//! 32..   body          sync messages, or a handshake
//!  last  tag           HMAC-SHA256 (32 bytes) or Poly1305 (16 bytes)
//! ```

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// First byte of an envelope.
pub const MAGIC: u8 = 0xA5;
/// The format in byte 1's high nibble.
const FORMAT: u8 = 0x20;
const FORMAT_MASK: u8 = 0xF0;
const ENCRYPTED: u8 = 0x08;
const KIND_MASK: u8 = 0x07;
/// Bytes before the body.
pub const HEADER_LEN: usize = 32;
/// The HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;
/// The Poly1305 tag of an encrypted envelope.
pub const AEAD_TAG_LEN: usize = 16;
/// What an envelope adds to a batch, at most.
pub const OVERHEAD: usize = HEADER_LEN + MAC_LEN;
/// Shortest key accepted.
pub const MIN_KEY_LEN: usize = 16;
/// The body of a handshake: our challenge and the one we answer.
pub const HANDSHAKE_LEN: usize = 16;

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sync messages as 1.4.7 would send them.
    Data,
    /// A challenge, and maybe the answer to the receiver's (see
    /// [`Handshake`]).
    Handshake,
}

impl Kind {
    fn bits(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Handshake => 1,
        }
    }

    fn from_bits(bits: u8) -> Option<Kind> {
        match bits {
            0 => Some(Kind::Data),
            1 => Some(Kind::Handshake),
            _ => None,
        }
    }
}

/// The authenticated header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub encrypted: bool,
    pub key_id: [u8; 4],
    pub session: u64,
    pub counter: u64,
    /// Milliseconds since the sender's session started (its monotonic
    /// clock, never the wall clock).
    pub clock: u64,
}

/// The body of a [`Kind::Handshake`] envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The sender's current challenge: whoever echoes it proves that it
    /// holds the key now.
    pub challenge: u64,
    /// The receiver's challenge being answered; 0 when none.
    pub echo: u64,
}

impl Handshake {
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0; HANDSHAKE_LEN];
        out[..8].copy_from_slice(&self.challenge.to_be_bytes());
        out[8..].copy_from_slice(&self.echo.to_be_bytes());
        out
    }

    pub fn decode(body: &[u8]) -> Option<Handshake> {
        if body.len() != HANDSHAKE_LEN {
            return None;
        }
        Some(Handshake {
            challenge: be64(body.get(..8)?),
            echo: be64(body.get(8..)?),
        })
    }
}

fn be64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    u64::from_be_bytes(b)
}

/// Why an envelope could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("not an authenticated envelope")]
    NotEnvelope,
    #[error("sealed with a key we do not have")]
    UnknownKey,
    #[error("not encrypted, and encryption is required")]
    Unencrypted,
    #[error("bad authentication tag")]
    BadTag,
}

/// The length of the envelope that starts `bytes`, from its header; None
/// if `bytes` does not start like one. The length may exceed `bytes` (a
/// stream's torn tail).
pub fn envelope_len(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [MAGIC, format, hi, lo, ..] if format & FORMAT_MASK == FORMAT => {
            Some(usize::from(u16::from_be_bytes([*hi, *lo])))
        }
        _ => None,
    }
}

/// Reads the header of one whole envelope (`bytes` is exactly it).
pub fn parse_header(bytes: &[u8]) -> Result<Header, OpenError> {
    let total = envelope_len(bytes).ok_or(OpenError::NotEnvelope)?;
    let flags = bytes.get(1).copied().ok_or(OpenError::NotEnvelope)?;
    let encrypted = flags & ENCRYPTED != 0;
    let tag = if encrypted { AEAD_TAG_LEN } else { MAC_LEN };
    if total != bytes.len() || total < HEADER_LEN + tag {
        return Err(OpenError::NotEnvelope);
    }
    let kind = Kind::from_bits(flags & KIND_MASK).ok_or(OpenError::NotEnvelope)?;
    let field = |at: usize| bytes.get(at..at + 8).map(be64).unwrap_or(0);
    let mut key_id = [0; 4];
    key_id.copy_from_slice(bytes.get(4..8).ok_or(OpenError::NotEnvelope)?);
    Ok(Header {
        kind,
        encrypted,
        key_id,
        session: field(8),
        counter: field(16),
        clock: field(24),
    })
}

/// One key: its id, its HMAC state and its cipher.
pub struct Key {
    id: [u8; 4],
    mac: Hmac<Sha256>,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// None for a key shorter than [`MIN_KEY_LEN`].
    pub fn new(secret: &[u8]) -> Option<Key> {
        if secret.len() < MIN_KEY_LEN {
            return None;
        }
        let derive = |label: &[u8]| {
            let mut h = Sha256::new();
            h.update(label);
            h.update(secret);
            h.finalize()
        };
        let mut id = [0; 4];
        id.copy_from_slice(derive(b"conntrackd-rs key id").get(..4)?);
        Some(Key {
            id,
            mac: <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?,
            cipher: XChaCha20Poly1305::new_from_slice(&derive(b"conntrackd-rs encrypt")).ok()?,
        })
    }

    /// The first 4 bytes of a hash of the key; shown in logs to tell keys
    /// apart without revealing them.
    pub fn id(&self) -> [u8; 4] {
        self.id
    }

    /// Seals `body` into an envelope. The caller guarantees that
    /// (`session`, `counter`) is never used twice with this key.
    pub fn seal(&self, header: &Header, body: &[u8]) -> Vec<u8> {
        let tag = if header.encrypted {
            AEAD_TAG_LEN
        } else {
            MAC_LEN
        };
        let total = HEADER_LEN + body.len() + tag;
        let mut out = Vec::with_capacity(total);
        out.push(MAGIC);
        out.push(FORMAT | header.kind.bits() | if header.encrypted { ENCRYPTED } else { 0 });
        // Bodies are batches, far below 64 KiB.
        out.extend_from_slice(&u16::try_from(total).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&header.session.to_be_bytes());
        out.extend_from_slice(&header.counter.to_be_bytes());
        out.extend_from_slice(&header.clock.to_be_bytes());
        if header.encrypted {
            let nonce = nonce(header.session, header.counter);
            let mut sealed = body.to_vec();
            match self
                .cipher
                .encrypt_in_place_detached(&nonce, &out, &mut sealed)
            {
                Ok(tag) => {
                    out.extend_from_slice(&sealed);
                    out.extend_from_slice(&tag);
                }
                // Only for bodies beyond 256 GiB.
                Err(_) => out.clear(),
            }
        } else {
            out.extend_from_slice(body);
            let mut mac = self.mac.clone();
            mac.update(&out);
            out.extend_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// Checks the tag of a whole envelope whose header is `header` and
    /// returns its body (decrypted if need be). The tag is checked in
    /// constant time before the body is looked at.
    pub fn open(&self, header: &Header, bytes: &[u8]) -> Result<Vec<u8>, OpenError> {
        if header.encrypted {
            let (head, rest) = bytes.split_at(HEADER_LEN.min(bytes.len()));
            let cut = rest.len().saturating_sub(AEAD_TAG_LEN);
            let (sealed, tag) = rest.split_at(cut);
            let mut body = sealed.to_vec();
            self.cipher
                .decrypt_in_place_detached(
                    &nonce(header.session, header.counter),
                    head,
                    &mut body,
                    Tag::from_slice(tag),
                )
                .map_err(|_| OpenError::BadTag)?;
            Ok(body)
        } else {
            let (signed, tag) = bytes.split_at(bytes.len().saturating_sub(MAC_LEN));
            let mut mac = self.mac.clone();
            mac.update(signed);
            mac.verify_slice(tag).map_err(|_| OpenError::BadTag)?;
            Ok(signed.get(HEADER_LEN..).unwrap_or_default().to_vec())
        }
    }
}

/// XChaCha20's 24-byte nonce: session, counter, zeros. Unique per key as
/// long as sessions are (64 random bits per start) and counters never
/// repeat within a session.
fn nonce(session: u64, counter: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(&session.to_be_bytes());
    n[8..16].copy_from_slice(&counter.to_be_bytes());
    XNonce::from(n)
}

/// The key we seal with and the ones we also accept (during a rotation).
#[derive(Debug)]
pub struct KeyRing {
    send: Key,
    accept: Vec<Key>,
}

impl KeyRing {
    pub fn new(send: Key, accept: Vec<Key>) -> KeyRing {
        KeyRing { send, accept }
    }

    pub fn sending(&self) -> &Key {
        &self.send
    }

    /// The keys accepted besides the sending one.
    pub fn accepted(&self) -> &[Key] {
        &self.accept
    }

    /// The key with this id, if we have it.
    pub fn find(&self, id: [u8; 4]) -> Option<&Key> {
        std::iter::once(&self.send)
            .chain(&self.accept)
            .find(|k| k.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: Kind, encrypted: bool) -> Header {
        Header {
            kind,
            encrypted,
            key_id: [0; 4],
            session: 0x1122_3344_5566_7788,
            counter: 9,
            clock: 1234,
        }
    }

    #[test]
    fn sealed_envelopes_open_with_their_header() {
        let key = Key::new(b"0123456789abcdef").expect("key");
        for encrypted in [false, true] {
            let h = header(Kind::Data, encrypted);
            let sealed = key.seal(&h, b"some sync messages");
            assert_eq!(envelope_len(&sealed), Some(sealed.len()));
            let parsed = parse_header(&sealed).expect("header");
            assert_eq!(
                parsed,
                Header {
                    key_id: key.id(),
                    ..h
                }
            );
            assert_eq!(
                key.open(&parsed, &sealed).as_deref(),
                Ok(&b"some sync messages"[..])
            );
            if encrypted {
                assert!(
                    !sealed.windows(4).any(|w| w == b"sync"),
                    "plaintext visible"
                );
            }
        }
    }

    #[test]
    fn every_bit_is_covered_by_the_tag() {
        let key = Key::new(b"0123456789abcdef").expect("key");
        for encrypted in [false, true] {
            let sealed = key.seal(&header(Kind::Handshake, encrypted), &[7; HANDSHAKE_LEN]);
            for byte in 4..sealed.len() {
                let mut bad = sealed.clone();
                bad[byte] ^= 0x40;
                let opened = parse_header(&bad).and_then(|h| key.open(&h, &bad));
                assert!(opened.is_err(), "byte {byte} (encrypted {encrypted})");
            }
        }
    }

    #[test]
    fn another_key_cannot_open_or_forge() {
        let a = Key::new(b"0123456789abcdef").expect("key");
        let b = Key::new(b"fedcba9876543210").expect("key");
        assert_ne!(a.id(), b.id());
        let sealed = a.seal(&header(Kind::Data, false), b"x");
        let h = parse_header(&sealed).expect("header");
        assert_eq!(b.open(&h, &sealed), Err(OpenError::BadTag));
        let ring = KeyRing::new(b, vec![Key::new(b"0123456789abcdef").expect("key")]);
        assert!(
            ring.find(h.key_id)
                .is_some_and(|k| k.open(&h, &sealed).is_ok())
        );
    }

    #[test]
    fn short_keys_and_plain_datagrams_are_refused() {
        assert!(Key::new(b"short").is_none());
        // A 1.4.7 message is not an envelope, nor is the old format 1.
        assert_eq!(
            parse_header(&[0x10, 0, 0, 8, 0, 0, 0, 1]),
            Err(OpenError::NotEnvelope)
        );
        let mut old = vec![MAGIC, 0x00, 0, 60];
        old.resize(60, 0);
        assert_eq!(parse_header(&old), Err(OpenError::NotEnvelope));
        assert_eq!(envelope_len(&[MAGIC, FORMAT]), None);
    }

    #[test]
    fn handshakes_round_trip() {
        let h = Handshake {
            challenge: 5,
            echo: u64::MAX,
        };
        assert_eq!(Handshake::decode(&h.encode()), Some(h));
        assert_eq!(Handshake::decode(&[0; 15]), None);
    }
}

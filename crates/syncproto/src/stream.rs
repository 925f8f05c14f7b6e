//! Reassembly of sync messages from a TCP byte stream (docs/wire-protocol.md §1,
//! §7, §10.3).
//!
//! A TCP channel carries sync messages laid end to end; a message may be
//! split across `recv()` calls.  Every message starts with the 8-byte header
//! whose bytes 2..4 are the big-endian total length (header included).  The
//! splitter keeps a partial tail for the next read and hands out the run of
//! whole messages completed by each chunk.  Authenticated envelopes
//! (docs/authentication.md) keep their total length in the same bytes, so a
//! run may also be several whole envelopes; the receiver opens each one.

/// Size of the sync message header.
pub const HEADER_LEN: usize = 8;

/// What one chunk of the stream produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// The whole messages completed by this chunk, concatenated (at least
    /// one message when `Some`).
    pub messages: Option<Vec<u8>>,
    /// A header announced a length of 0 or below 8: the stream cannot be
    /// resynchronised.  The splitter has discarded everything after the last
    /// whole message; the connection should be reset.
    pub garbage: bool,
}

/// Splits a byte stream into whole sync messages.
#[derive(Debug, Clone, Default)]
pub struct StreamSplitter {
    pending: Vec<u8>,
}

impl StreamSplitter {
    /// A splitter with nothing pending.
    pub fn new() -> StreamSplitter {
        StreamSplitter::default()
    }

    /// Feeds the next chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) -> Split {
        self.pending.extend_from_slice(chunk);
        let mut whole = 0usize;
        let mut garbage = false;
        while let Some(rest) = self.pending.get(whole..) {
            let (Some(&hi), Some(&lo)) = (rest.get(2), rest.get(3)) else {
                break;
            };
            if rest.len() < HEADER_LEN {
                break;
            }
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len < HEADER_LEN {
                garbage = true;
                break;
            }
            if len > rest.len() {
                break;
            }
            whole += len;
        }
        let messages = if whole > 0 {
            Some(self.pending.drain(..whole).collect())
        } else {
            None
        };
        if garbage {
            self.pending.clear();
        }
        Split { messages, garbage }
    }

    /// Bytes of an incomplete message kept for the next chunk.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Forgets any partial message (the connection went away).
    pub fn reset(&mut self) {
        self.pending.clear();
    }
}

/// The `stream_split` fuzz target's body: `data`, cut into chunks at each
/// 0xFF, pushed through a splitter. What comes out are whole messages, in
/// order, that together with what is pending make up the stream so far;
/// nothing is invented or lost until garbage ends the stream.
#[doc(hidden)]
pub fn fuzz_split(data: &[u8]) {
    let mut splitter = StreamSplitter::new();
    let mut stream = Vec::new();
    let mut out = Vec::new();
    for chunk in data.split(|b| *b == 0xff) {
        stream.extend_from_slice(chunk);
        let split = splitter.push(chunk);
        if let Some(run) = &split.messages {
            let mut rest = &run[..];
            while let [_, _, hi, lo, ..] = rest {
                let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                assert!(
                    len >= HEADER_LEN && len <= rest.len(),
                    "a torn message came out"
                );
                rest = &rest[len..];
            }
            assert!(rest.is_empty(), "a torn message came out");
            out.extend_from_slice(run);
        }
        if split.garbage {
            return;
        }
        assert_eq!(out.len() + splitter.pending(), stream.len());
        assert_eq!(out[..], stream[..out.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of `len` bytes (len >= 8) whose payload bytes are `fill`.
    fn msg(len: u16, fill: u8) -> Vec<u8> {
        let mut m = vec![0x10, 0x00];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, u8::try_from(len % 251).unwrap_or(0)]);
        m.resize(usize::from(len), fill);
        m
    }

    #[test]
    fn whole_messages_come_out_as_one_run() {
        let mut s = StreamSplitter::new();
        let mut chunk = msg(12, 1);
        chunk.extend(msg(8, 2));
        chunk.extend(msg(100, 3));
        let out = s.push(&chunk);
        assert_eq!(out.messages.as_deref(), Some(&chunk[..]));
        assert!(!out.garbage);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn header_split_across_chunks() {
        let mut s = StreamSplitter::new();
        let m = msg(20, 7);
        for cut in 1..HEADER_LEN {
            let first = s.push(&m[..cut]);
            assert_eq!(first, Split::default(), "cut at {cut}");
            assert_eq!(s.pending(), cut);
            let second = s.push(&m[cut..]);
            assert_eq!(second.messages.as_deref(), Some(&m[..]), "cut at {cut}");
            assert_eq!(s.pending(), 0);
        }
    }

    #[test]
    fn body_split_across_chunks_and_tail_kept() {
        let mut s = StreamSplitter::new();
        let a = msg(40, 1);
        let b = msg(60, 2);
        let mut stream = a.clone();
        stream.extend(&b);
        // First chunk: all of a and part of b's body.
        let out = s.push(&stream[..70]);
        assert_eq!(out.messages.as_deref(), Some(&a[..]));
        assert_eq!(s.pending(), 30);
        // Nothing completes with a few more bytes.
        assert_eq!(s.push(&stream[70..90]), Split::default());
        let out = s.push(&stream[90..]);
        assert_eq!(out.messages.as_deref(), Some(&b[..]));
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn byte_by_byte_reassembles_everything() {
        let mut s = StreamSplitter::new();
        let mut stream = Vec::new();
        for (i, len) in [8u16, 16, 84, 108, 1452].into_iter().enumerate() {
            stream.extend(msg(len, u8::try_from(i).unwrap_or(0)));
        }
        let mut got = Vec::new();
        let mut runs = 0;
        for b in &stream {
            let out = s.push(std::slice::from_ref(b));
            assert!(!out.garbage);
            if let Some(m) = out.messages {
                runs += 1;
                got.extend(m);
            }
        }
        assert_eq!(got, stream);
        assert_eq!(runs, 5);
    }

    #[test]
    fn len_zero_is_garbage_but_earlier_messages_survive() {
        let mut s = StreamSplitter::new();
        let good = msg(16, 1);
        let mut chunk = good.clone();
        chunk.extend([0x10, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9]);
        let out = s.push(&chunk);
        assert!(out.garbage);
        assert_eq!(out.messages.as_deref(), Some(&good[..]));
        assert_eq!(s.pending(), 0, "garbage is discarded");
        // The splitter is usable again (after the connection is replaced).
        let next = msg(8, 0);
        assert_eq!(s.push(&next).messages.as_deref(), Some(&next[..]));
    }

    #[test]
    fn len_below_header_is_garbage() {
        let mut s = StreamSplitter::new();
        let out = s.push(&[0x10, 0, 0, 7, 0, 0, 0, 0, 0, 0]);
        assert!(out.garbage);
        assert_eq!(out.messages, None);
        // Split header whose length turns out to be 4.
        let mut s = StreamSplitter::new();
        assert_eq!(s.push(&[0x10, 0, 0]), Split::default());
        let out = s.push(&[4, 0, 0, 0, 0]);
        assert!(out.garbage);
    }

    #[test]
    fn fuzz_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stream_split");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("corpus dir").flatten() {
            fuzz_split(&std::fs::read(entry.path()).expect("read"));
            n += 1;
        }
        assert!(n > 0, "empty corpus");
    }

    #[test]
    fn reset_forgets_partial() {
        let mut s = StreamSplitter::new();
        let m = msg(32, 5);
        s.push(&m[..10]);
        s.reset();
        assert_eq!(s.pending(), 0);
        assert_eq!(s.push(&m).messages.as_deref(), Some(&m[..]));
    }
}

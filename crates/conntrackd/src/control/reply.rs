//! Writing replies without ever waiting for a client in the main loop.
//!
//! A reply is first written with non-blocking writes; a short one (`-s`,
//! an empty `-c` reply) is then complete and its connection closed at
//! once, as before. What does not fit in the socket buffer is handed to a
//! task of its own, which writes it as the client reads. That task gives
//! up when the client has read nothing for `UNIX { ReplyTimeout }`
//! seconds (`replies abandoned`): progress, however slow, keeps a reply
//! going, so a reader that pauses (`| (sleep 8; wc -l)`, a pager) still
//! gets all of it, and a stopped one gives its slot back.

use std::rc::Rc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::client_slots::Slot;
use crate::logger;
use crate::runtime_stats::{ControlCounters, bump};

/// The rest of a reply after its first part, produced as the client reads
/// (a dump rendered chunk by chunk).
pub trait ReplySource {
    /// The next part; None at the end. An empty part is not the end.
    async fn next_part(&mut self) -> Option<String>;
}

/// A reply with nothing after its first part.
#[derive(Debug)]
pub struct NoMore;

impl ReplySource for NoMore {
    async fn next_part(&mut self) -> Option<String> {
        None
    }
}

/// How a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Complete,
    /// The client closed its end or the connection failed.
    ClientGone,
    /// The client read nothing for the whole patience.
    Abandoned,
}

/// Sends replies for the main loop.
#[derive(Debug, Clone)]
pub struct Replies {
    patience: Duration,
    counters: Rc<ControlCounters>,
}

impl Replies {
    /// `patience`: how long a client may read nothing before its reply
    /// is abandoned.
    pub fn new(patience: Duration, counters: Rc<ControlCounters>) -> Replies {
        Replies { patience, counters }
    }

    /// Sends `first`, then whatever `rest` produces, and closes the
    /// connection. Returns at once: what cannot be written without
    /// waiting is written by a task of its own.
    pub fn send(
        &self,
        stream: UnixStream,
        slot: Slot,
        first: String,
        rest: Option<impl ReplySource + 'static>,
    ) {
        let written = match write_now(&stream, first.as_bytes()) {
            Ok(n) => n,
            // The client is gone; dropping the stream closes our end.
            Err(_) => return,
        };
        if written == first.len() && rest.is_none() {
            return;
        }
        let patience = self.patience;
        let counters = Rc::clone(&self.counters);
        tokio::task::spawn_local(async move {
            let delivery = match rest {
                Some(rest) => deliver(stream, first, written, rest, patience).await,
                None => deliver(stream, first, written, NoMore, patience).await,
            };
            if delivery == Delivery::Abandoned {
                bump(&counters.replies_abandoned);
                logger::warning(&format!(
                    "abandoned a control reply: the client read nothing for {} s",
                    patience.as_secs()
                ));
            }
            drop(slot);
        });
    }
}

/// Writes what the socket takes without waiting; how many bytes that was.
fn write_now(stream: &UnixStream, bytes: &[u8]) -> std::io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.try_write(&bytes[written..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Writes `part` from `offset` on, then each part of `rest`, giving up
/// when no byte could be written for `patience`. The connection closes
/// when this returns.
pub async fn deliver(
    mut stream: UnixStream,
    mut part: String,
    mut offset: usize,
    mut rest: impl ReplySource,
    patience: Duration,
) -> Delivery {
    loop {
        while let Some(unwritten) = part.as_bytes().get(offset..).filter(|b| !b.is_empty()) {
            match tokio::time::timeout(patience, stream.write(unwritten)).await {
                Ok(Ok(0) | Err(_)) => return Delivery::ClientGone,
                Ok(Ok(n)) => offset += n,
                Err(_) => return Delivery::Abandoned,
            }
        }
        match rest.next_part().await {
            Some(next) => {
                part = next;
                offset = 0;
            }
            None => return Delivery::Complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// `count` parts of `size` bytes each.
    struct Parts {
        count: usize,
        size: usize,
    }

    impl ReplySource for Parts {
        async fn next_part(&mut self) -> Option<String> {
            if self.count == 0 {
                return None;
            }
            self.count -= 1;
            Some("x".repeat(self.size))
        }
    }

    fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().expect("socket pair")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_that_pauses_within_the_patience_gets_everything() {
        let (daemon, mut client) = pair();
        let writer = tokio::spawn(deliver(
            daemon,
            "head\n".to_string(),
            0,
            Parts {
                count: 64,
                size: 64 * 1024,
            },
            Duration::from_millis(500),
        ));
        // Pauses shorter than the patience, while the buffers are full.
        let mut received = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let n = client.read(&mut buf).await.expect("read");
            received.extend_from_slice(&buf[..n]);
        }
        client.read_to_end(&mut received).await.expect("read");
        assert_eq!(writer.await.expect("writer"), Delivery::Complete);
        assert_eq!(received.len(), 5 + 64 * 64 * 1024);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_reader_that_reads_nothing_is_abandoned() {
        let (daemon, _client) = pair();
        let delivery = deliver(
            daemon,
            String::new(),
            0,
            Parts {
                count: 1000,
                size: 64 * 1024,
            },
            Duration::from_millis(100),
        )
        .await;
        assert_eq!(delivery, Delivery::Abandoned);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_client_that_goes_away_ends_the_reply() {
        let (daemon, client) = pair();
        drop(client);
        let delivery = deliver(
            daemon,
            "text".to_string(),
            0,
            NoMore,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(delivery, Delivery::ClientGone);
    }
}

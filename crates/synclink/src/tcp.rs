//! TCP channel (docs/wire-protocol.md §8, §10.3; docs/sync-modes.md §14).
//!
//! Each node has two connections with its peer: its own client connection
//! to the peer's server (used only to send) and the peer's client
//! connection to our server (used only to receive).
//!
//! The server takes connections from the configured peer address only. A
//! connection that arrives while another works is a candidate: it is read
//! like the working one, and replaces it once what it sent proved
//! authentic ([`Tcp::vouch`]). So whoever merely reaches the port cannot
//! cut the peer off (1.4.7 replaces the connection at every accept).

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use conntrackd_config::Channel;
use tokio::net::{TcpListener, TcpStream};

use crate::queue::ErrorQueue;
use crate::sock::{self, err};
use crate::stream::StreamSplitter;
use crate::{LinkCounters, LinkError, RECV_BUFFER, RECV_LIMIT, Received};

/// Candidate connections kept at once; a newer one pushes out the oldest.
const MAX_CANDIDATES: usize = 2;

/// `connect()` is retried at most this often while disconnected.
pub(crate) const RETRY: Duration = Duration::from_secs(1);

enum Client {
    /// No socket: never connected, or the last connection/attempt failed.
    Idle,
    /// Non-blocking `connect()` in progress.
    Connecting(TcpStream),
    Connected(TcpStream),
}

/// The peer's client connection to our server.
struct Accepted {
    id: u64,
    conn: TcpStream,
    peer: SocketAddr,
    splitter: StreamSplitter,
}

pub(crate) struct Tcp {
    listener: TcpListener,
    /// What `readable` accepted, for `recv` to install.
    incoming: Mutex<Incoming>,
    /// The working connection from the peer.
    accepted: Option<Accepted>,
    /// Connections accepted while one worked, oldest first.
    candidates: VecDeque<Accepted>,
    next_id: u64,
    client: Client,
    dest: SocketAddr,
    snd_buf: Option<u32>,
    checksum: bool,
    /// Batches not handed to the kernel yet, oldest first.
    queue: ErrorQueue,
    /// The batch being written and how much of it the kernel took; the rest
    /// goes before anything else.
    inflight: Option<(Vec<u8>, usize)>,
    last_attempt: Option<Instant>,
    buf: Vec<u8>,
}

#[derive(Default)]
struct Incoming {
    conn: Option<(TcpStream, SocketAddr)>,
    /// Failed `accept()` calls.
    errors: u64,
}

enum Flush {
    /// Everything written, or the socket is full.
    Done,
    /// The connection broke.
    Broken,
}

impl Tcp {
    pub(crate) fn open(
        channel: &Channel,
        address: IpAddr,
        error_queue_length: usize,
        ifindex: u32,
        now: Instant,
    ) -> Result<Tcp, LinkError> {
        let dest_ip = crate::destination(channel, address)?;
        let server = sock::tcp(address)?;
        server
            .set_reuse_address(true)
            .map_err(err("SO_REUSEADDR"))?;
        server.set_keepalive(true).map_err(err("SO_KEEPALIVE"))?;
        sock::set_rcvbuf(&server, channel.rcv_buf)?;
        server
            .bind(&sock::sockaddr(address, channel.port, ifindex).into())
            .map_err(err("bind (TCP server)"))?;
        server.listen(1).map_err(err("listen"))?;
        server.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        let listener =
            TcpListener::from_std(server.into()).map_err(err("register with the tokio reactor"))?;
        let mut tcp = Tcp {
            listener,
            incoming: Mutex::new(Incoming::default()),
            accepted: None,
            candidates: VecDeque::new(),
            next_id: 0,
            client: Client::Idle,
            dest: sock::sockaddr(dest_ip, channel.port, ifindex),
            snd_buf: channel.snd_buf,
            checksum: channel.checksum,
            queue: ErrorQueue::new(error_queue_length),
            inflight: None,
            last_attempt: None,
            buf: vec![0; RECV_BUFFER],
        };
        tcp.connect(now)?;
        Ok(tcp)
    }

    /// Starts a non-blocking `connect()`.  Errors making or registering the
    /// socket are returned; a refused or failed connect just leaves the
    /// client idle.
    fn connect(&mut self, now: Instant) -> Result<(), LinkError> {
        self.last_attempt = Some(now);
        self.client = Client::Idle;
        let s = sock::tcp(self.dest.ip())?;
        sock::set_checksum(&s, self.checksum)?;
        sock::set_sndbuf(&s, self.snd_buf)?;
        s.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        let connected = match s.connect(&self.dest.into()) {
            Ok(()) => true,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => false,
            Err(_) => return Ok(()),
        };
        let fd = TcpStream::from_std(s.into()).map_err(err("register with the tokio reactor"))?;
        self.client = if connected {
            Client::Connected(fd)
        } else {
            Client::Connecting(fd)
        };
        Ok(())
    }

    /// Moves a finished non-blocking connect to Connected or Idle.
    fn check_connecting(&mut self) {
        let Client::Connecting(fd) = &self.client else {
            return;
        };
        let s = fd;
        let done = match s.take_error() {
            Ok(Some(_)) | Err(_) => Some(false),
            Ok(None) => match s.peer_addr() {
                Ok(_) => Some(true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
                Err(_) => Some(false),
            },
        };
        match done {
            None => {}
            Some(false) => self.client = Client::Idle,
            Some(true) => {
                if let Client::Connecting(fd) = std::mem::replace(&mut self.client, Client::Idle) {
                    self.client = Client::Connected(fd);
                }
            }
        }
    }

    pub(crate) fn wants_more(&self) -> bool {
        let waiting = self.queue.len() + usize::from(self.inflight.is_some());
        waiting < self.queue.max().max(1)
    }

    fn has_pending(&self) -> bool {
        self.inflight.is_some() || !self.queue.is_empty()
    }

    fn retry_due(&self, now: Instant) -> bool {
        self.last_attempt
            .is_none_or(|t| now.saturating_duration_since(t) >= RETRY)
    }

    /// Writes queued batches, in order, until done or the socket is full.
    fn flush(&mut self, counters: &mut LinkCounters) -> Flush {
        loop {
            if self.inflight.is_none() {
                self.inflight = self.queue.pop_front().map(|b| (b, 0));
            }
            let Some((batch, off)) = &mut self.inflight else {
                return Flush::Done;
            };
            let Client::Connected(conn) = &self.client else {
                return Flush::Done;
            };
            let rest = batch.get(*off..).unwrap_or_default();
            if rest.is_empty() {
                self.inflight = None;
                continue;
            }
            match conn.try_write(rest) {
                Ok(n) if n > 0 => {
                    counters.bytes_sent += n as u64;
                    counters.pkts_sent += 1;
                    *off += n;
                    if *off >= batch.len() {
                        self.inflight = None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flush::Done,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(_) | Err(_) => {
                    // EPIPE, ECONNRESET, ...: the client socket is
                    // recreated.  A partly written batch is sent again
                    // whole on the next connection (the peer discards the
                    // partial message with the broken connection).
                    counters.send_errors += 1;
                    self.client = Client::Idle;
                    if let Some((batch, _)) = self.inflight.take() {
                        self.queue.push_front(batch);
                    }
                    return Flush::Broken;
                }
            }
        }
    }

    /// Advances the client: completes a connect, reconnects when allowed,
    /// writes the queue.
    fn progress(&mut self, now: Instant, counters: &mut LinkCounters) {
        for _ in 0..2 {
            self.check_connecting();
            if matches!(self.client, Client::Idle) && self.has_pending() && self.retry_due(now) {
                // A failure to even make a socket leaves the client idle;
                // it is retried a second later like a refused connect.
                let _ = self.connect(now);
                self.check_connecting();
            }
            if !matches!(self.client, Client::Connected(_)) {
                return;
            }
            match self.flush(counters) {
                Flush::Done => return,
                Flush::Broken => {}
            }
        }
    }

    pub(crate) fn send(&mut self, now: Instant, batch: &[u8], counters: &mut LinkCounters) {
        if batch.is_empty() {
            return;
        }
        // Make room first: older batches leave before this one is queued.
        self.progress(now, counters);
        self.queue.push_back(batch.to_vec());
        if matches!(self.client, Client::Connected(_)) {
            if let Flush::Broken = self.flush(counters) {
                self.progress(now, counters);
            }
        } else {
            self.progress(now, counters);
        }
        if self.has_pending() {
            // Not (completely) handed to the kernel: it is in the error
            // queue.
            counters.send_errors += 1;
        }
    }

    pub(crate) async fn readable(&self) {
        {
            let incoming = self.incoming();
            if incoming.conn.is_some() || incoming.errors > 0 {
                return;
            }
        }
        // Accepting here (and stashing the connection within the same
        // poll) keeps this cancel-safe: the listener has no readiness wait
        // that does not accept.
        let accept = std::future::poll_fn(|cx| match self.listener.poll_accept(cx) {
            Poll::Ready(Ok((conn, peer))) => {
                self.incoming().conn = Some((conn, unmap(peer)));
                Poll::Ready(())
            }
            Poll::Ready(Err(_)) => {
                self.incoming().errors += 1;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        });
        let conn = std::future::poll_fn(|cx| {
            let ready = self
                .accepted
                .iter()
                .chain(&self.candidates)
                .any(|a| a.conn.poll_read_ready(cx).is_ready());
            if ready {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let client = async {
            match &self.client {
                Client::Connecting(fd) => {
                    let _ = fd.writable().await;
                }
                Client::Connected(fd) if self.has_pending() => {
                    let _ = fd.writable().await;
                }
                Client::Idle if self.has_pending() => {
                    let at = self
                        .last_attempt
                        .map_or_else(Instant::now, |t| t.checked_add(RETRY).unwrap_or(t));
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                }
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = accept => {}
            () = conn => {}
            () = client => {}
        }
    }

    /// Reads every accepted connection until it runs dry; a connection
    /// that closed or sent garbage is dropped, and the working one's place
    /// goes to the oldest candidate.
    fn read_accepted(&mut self, out: &mut Vec<Received>, counters: &mut LinkCounters) {
        if let Some(acc) = self.accepted.as_mut()
            && read_connection(acc, &mut self.buf, out, counters)
        {
            self.accepted = self.candidates.pop_front();
        }
        let buf = &mut self.buf;
        self.candidates
            .retain_mut(|acc| !read_connection(acc, buf, out, counters));
    }

    fn incoming(&self) -> MutexGuard<'_, Incoming> {
        self.incoming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Installs the connection accepted by `readable`: the working one if
    /// there is none, else a candidate. One from another address than the
    /// peer's is closed.
    fn accept(&mut self, counters: &mut LinkCounters) -> bool {
        let (taken, errors) = {
            let mut incoming = self.incoming();
            (incoming.conn.take(), std::mem::take(&mut incoming.errors))
        };
        counters.recv_errors += errors;
        let Some((conn, peer)) = taken else {
            return false;
        };
        if peer.ip() != unmap(self.dest).ip() {
            counters.foreign_connections += 1;
            return false;
        }
        self.next_id += 1;
        let acc = Accepted {
            id: self.next_id,
            conn,
            peer,
            splitter: StreamSplitter::new(),
        };
        if self.accepted.is_none() {
            self.accepted = Some(acc);
        } else {
            if self.candidates.len() >= MAX_CANDIDATES {
                self.candidates.pop_front();
            }
            self.candidates.push_back(acc);
        }
        true
    }

    /// What `connection` sent was authentic: a candidate takes the working
    /// connection's place.
    pub(crate) fn vouch(&mut self, connection: u64) {
        if let Some(at) = self.candidates.iter().position(|a| a.id == connection) {
            self.accepted = self.candidates.remove(at);
        }
    }

    pub(crate) fn recv(&mut self, out: &mut Vec<Received>, counters: &mut LinkCounters) {
        // Drain the current connections before installing a new one.
        self.read_accepted(out, counters);
        if self.accept(counters) {
            self.read_accepted(out, counters);
        }
        self.progress(Instant::now(), counters);
    }

    pub(crate) fn state(&self) -> (bool, bool) {
        (
            self.accepted.is_some(),
            matches!(self.client, Client::Connected(_)),
        )
    }

    pub(crate) fn error_queue(&self) -> (usize, usize, u64) {
        (
            self.queue.len() + usize::from(self.inflight.is_some()),
            self.queue.max(),
            self.queue.dropped(),
        )
    }
}

/// Reads one accepted connection until it runs dry (or RECV_LIMIT reads);
/// returns true if it is to be closed (end of stream, error, garbage).
fn read_connection(
    acc: &mut Accepted,
    buf: &mut [u8],
    out: &mut Vec<Received>,
    counters: &mut LinkCounters,
) -> bool {
    for _ in 0..RECV_LIMIT {
        match acc.conn.try_read(buf) {
            // The peer closed its client connection.
            Ok(0) => return true,
            Ok(n) => {
                counters.bytes_recv += n as u64;
                counters.pkts_recv += 1;
                let split = acc.splitter.push(buf.get(..n).unwrap_or_default());
                if let Some(bytes) = split.messages {
                    out.push(Received {
                        bytes,
                        from: acc.peer,
                        connection: Some(acc.id),
                    });
                }
                if split.garbage {
                    counters.recv_errors += 1;
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                counters.recv_errors += 1;
                return true;
            }
        }
    }
    false
}

/// `::ffff:a.b.c.d` as seen by a dual-stack socket, reported as IPv4.
fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

//! A `NETLINK_NETFILTER` socket (safe code over rustix; raw options via
//! the `oscalls` crate).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use conntrack_model::Conntrack;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::message::{Message, messages, request};

/// Why a receive returned no data.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The kernel dropped events because our buffer was full (ENOBUFS).
    #[error("netlink receive buffer overrun")]
    Overrun,
    #[error("no data available")]
    WouldBlock,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Room for the datagrams of one [`CtSocket::recv_batch`]: an event is one
/// datagram, so reading many per system call saves a call per event.
/// Other netlink sockets (NFQUEUE) use it with larger slots.
#[derive(Debug)]
pub struct RecvBatch {
    buf: Vec<u8>,
    got: Vec<oscalls::Received>,
    count: usize,
    /// Bytes a datagram may take.
    slot: usize,
}

/// Bytes a datagram may take in a batch. A conntrack event is well under
/// 1 KiB; one that does not fit is reported as truncated, not cut silently.
const BATCH_SLOT: usize = 4096;
/// Datagrams per batch: enough to make the call's cost vanish per event.
const BATCH_SLOTS: usize = 32;

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::with_slots(BATCH_SLOT, BATCH_SLOTS)
    }
}

impl RecvBatch {
    /// Room for `slots` datagrams of up to `slot` bytes each.
    pub fn with_slots(slot: usize, slots: usize) -> RecvBatch {
        RecvBatch {
            buf: vec![0; slot * slots],
            got: vec![oscalls::Received::default(); slots],
            count: 0,
            slot,
        }
    }

    /// Receives the datagrams queued on `fd` now (up to a batch), without
    /// waiting.
    pub fn recv_from(&mut self, fd: BorrowedFd<'_>) -> Result<usize, RecvError> {
        self.count = 0;
        match oscalls::recv_many(fd, &mut self.buf, self.slot, &mut self.got) {
            Ok(n) => {
                self.count = n;
                Ok(n)
            }
            Err(e) => Err(match e.raw_os_error() {
                Some(code) if code == rustix::io::Errno::NOBUFS.raw_os_error() => {
                    RecvError::Overrun
                }
                Some(code) if code == rustix::io::Errno::AGAIN.raw_os_error() => {
                    RecvError::WouldBlock
                }
                _ => RecvError::Io(e),
            }),
        }
    }

    /// The datagrams of the last receive, in order; `None` for one that
    /// was truncated.
    pub fn datagrams(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.got[..self.count]
            .iter()
            .zip(self.buf.chunks_exact(self.slot))
            .map(|(r, chunk)| (!r.truncated).then(|| &chunk[..r.len]))
    }
}

/// A ctnetlink socket.
#[derive(Debug)]
pub struct CtSocket {
    fd: OwnedFd,
    port_id: u32,
    seq: u32,
}

/// `NLM_F_ACK`.
const NLM_F_ACK: u16 = 0x4;

/// Receive buffer of request sockets.
const REQUEST_RCVBUF: usize = 4 << 20;
/// How long a request socket waits for the kernel's answer.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl CtSocket {
    /// Opens a socket bound to the given event groups (`groups::*`, 0 for
    /// none). Non-blocking when `nonblocking`.
    pub fn open(event_groups: u32, nonblocking: bool) -> io::Result<CtSocket> {
        let flags = if nonblocking {
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK
        } else {
            SocketFlags::CLOEXEC
        };
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            flags,
            Some(netlink::NETFILTER),
        )?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, event_groups))?;
        let local = rustix::net::getsockname(&fd)?;
        let port_id = SocketAddrNetlink::try_from(local)
            .map(|a| a.pid())
            .map_err(|_| io::Error::other("netlink socket has no netlink address"))?;
        if !nonblocking {
            // Request sockets: room for the ACKs of a whole batch (a lost
            // ACK would otherwise leave us waiting), and never wait forever.
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, REQUEST_RCVBUF);
            rustix::net::sockopt::set_socket_timeout(
                &fd,
                rustix::net::sockopt::Timeout::Recv,
                Some(REQUEST_TIMEOUT),
            )?;
        }
        Ok(CtSocket {
            fd,
            port_id,
            seq: 1,
        })
    }

    /// The port id the kernel assigned; events caused by this socket carry it.
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// Sets the receive buffer, ignoring rmem_max (`SO_RCVBUFFORCE`), and
    /// returns the effective size.
    pub fn set_recv_buffer_force(&self, bytes: usize) -> io::Result<usize> {
        rustix::net::sockopt::set_socket_recv_buffer_size_force(&self.fd, bytes / 2)?;
        self.recv_buffer()
    }

    /// The effective receive buffer size.
    pub fn recv_buffer(&self) -> io::Result<usize> {
        Ok(rustix::net::sockopt::socket_recv_buffer_size(&self.fd)?)
    }

    /// `NetlinkEventsReliable on`.
    pub fn set_reliable(&self) -> io::Result<()> {
        oscalls::set_int(
            self.fd.as_fd(),
            oscalls::SOL_NETLINK,
            oscalls::NETLINK_BROADCAST_SEND_ERROR,
            1,
        )?;
        oscalls::set_int(
            self.fd.as_fd(),
            oscalls::SOL_NETLINK,
            oscalls::NETLINK_NO_ENOBUFS,
            1,
        )
    }

    /// Next sequence number for a request.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends prepared request bytes to the kernel.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let kernel = SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&self.fd, bytes, SendFlags::empty(), &kernel)?;
        Ok(())
    }

    /// Receives one datagram into `buf` (which is resized to fit it).
    pub fn recv(&self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_with(buf, RecvFlags::empty())
    }

    /// Receives the datagrams queued now (up to a batch) with one system
    /// call, without waiting.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> Result<usize, RecvError> {
        batch.recv_from(self.fd.as_fd())
    }

    fn recv_with(&self, buf: &mut Vec<u8>, flags: RecvFlags) -> Result<usize, RecvError> {
        // Into the spare capacity: no zeroing of 64 KiB per datagram.
        buf.clear();
        buf.reserve(1 << 16);
        match rustix::net::recv(&self.fd, rustix::buffer::spare_capacity(buf), flags) {
            Ok((n, _)) => Ok(n),
            Err(rustix::io::Errno::NOBUFS) => Err(RecvError::Overrun),
            Err(rustix::io::Errno::AGAIN) => Err(RecvError::WouldBlock),
            Err(e) => Err(RecvError::Io(e.into())),
        }
    }

    /// Dumps the conntrack table (blocking socket).
    pub fn dump_conntrack(&mut self) -> io::Result<Vec<Conntrack>> {
        let mut out = Vec::new();
        self.dump_conntrack_each(|ct| out.push(ct))?;
        Ok(out)
    }

    /// Dumps the conntrack table, handing each entry to `each` as it is
    /// decoded: a large table is never held decoded in memory at once.
    pub fn dump_conntrack_each(&mut self, mut each: impl FnMut(Conntrack)) -> io::Result<()> {
        self.dump(request::dump, |m| {
            if let Message::Conntrack { ct, .. } = m {
                each(*ct);
            }
        })
    }

    /// Dumps the expectation table (blocking socket).
    pub fn dump_expect(&mut self) -> io::Result<Vec<conntrack_model::Expect>> {
        let mut out = Vec::new();
        self.dump(request::dump_expect, |m| {
            if let Message::Expect { exp, .. } = m {
                out.push(*exp);
            }
        })?;
        Ok(out)
    }

    /// Sends a dump request and hands each reply to `take` until
    /// NLMSG_DONE. Entries the codec cannot decode are skipped.
    fn dump(
        &mut self,
        build: fn(&mut Vec<u8>, u32, u8),
        mut take: impl FnMut(Message),
    ) -> io::Result<()> {
        let seq = self.next_seq();
        let mut req = Vec::new();
        build(&mut req, seq, 0);
        self.send(&req)?;
        let mut buf = Vec::with_capacity(1 << 16);
        loop {
            match self.recv(&mut buf) {
                Ok(_) => {}
                Err(RecvError::Io(e)) => return Err(e),
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
            for msg in messages(&buf).flatten() {
                match msg {
                    Message::Done { header } if header.seq == seq => return Ok(()),
                    Message::Error { errno, .. } if errno != 0 => {
                        return Err(io::Error::from_raw_os_error(errno));
                    }
                    Message::Conntrack { header, .. } | Message::Expect { header, .. }
                        if header.seq != seq => {}
                    other => take(other),
                }
            }
        }
    }

    /// Joins or leaves one event group (`groups::*`, a single bit). While
    /// nobody listens to a group the kernel does not build its events,
    /// which makes bulk writes about twice as fast.
    pub fn set_event_group(&self, group: u32, joined: bool) -> io::Result<()> {
        if !group.is_power_of_two() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let number = i32::try_from(group.trailing_zeros() + 1).unwrap_or(i32::MAX);
        let option = if joined {
            oscalls::NETLINK_ADD_MEMBERSHIP
        } else {
            oscalls::NETLINK_DROP_MEMBERSHIP
        };
        oscalls::set_int(self.fd.as_fd(), oscalls::SOL_NETLINK, option, number)
    }

    /// Sends a batch of requests (each built with its own seq and the ACK
    /// flag) and returns the result of each in order, sending as many per
    /// datagram as fit in `max_datagram` bytes. `T` is whatever `build`
    /// makes a request from (a flow, or an operation on one).
    pub fn apply_batch<T>(
        &mut self,
        requests: &[T],
        build: impl Fn(&mut Vec<u8>, u32, &T),
    ) -> io::Result<Vec<Result<(), i32>>> {
        const MAX_DATAGRAM: usize = 32 * 1024;
        let mut results: Vec<Result<(), i32>> = vec![Err(libc_etimedout()); requests.len()];
        let mut start = 0;
        let mut buf = Vec::with_capacity(MAX_DATAGRAM + 4096);
        let mut rx = Vec::with_capacity(1 << 16);
        while start < requests.len() {
            buf.clear();
            let first_seq = self.seq.wrapping_add(1);
            let mut end = start;
            while end < requests.len() && buf.len() < MAX_DATAGRAM {
                let seq = self.next_seq();
                build(&mut buf, seq, &requests[end]);
                end += 1;
            }
            self.send(&buf)?;
            let mut pending = end - start;
            while pending > 0 {
                match self.recv(&mut rx) {
                    Ok(_) => {}
                    Err(RecvError::Io(e)) => return Err(e),
                    // ACKs were dropped: the ones still missing stay
                    // ETIMEDOUT once the socket times out.
                    Err(RecvError::Overrun) => continue,
                    Err(RecvError::WouldBlock) => break,
                }
                for msg in messages(&rx).flatten() {
                    if let Message::Error { header, errno } = msg {
                        let index = header.seq.wrapping_sub(first_seq) as usize;
                        if index < end - start {
                            results[start + index] = if errno == 0 { Ok(()) } else { Err(errno) };
                            pending -= 1;
                        }
                    }
                }
            }
            start = end;
        }
        Ok(results)
    }

    /// Like [`CtSocket::apply_batch`], but pipelined: requests go out
    /// without the ACK flag (the kernel answers only failures), errors are
    /// collected while sending, and only the last request is acknowledged,
    /// as a barrier. About twice as fast for large batches. If an answer
    /// may have been lost (receive buffer overrun), returns `Ok(None)` and
    /// the caller should fall back to [`CtSocket::apply_batch`].
    pub fn apply_pipelined(
        &mut self,
        requests: &[Conntrack],
        build: impl Fn(&mut Vec<u8>, u32, &Conntrack),
    ) -> io::Result<Option<Vec<Result<(), i32>>>> {
        const MAX_DATAGRAM: usize = 32 * 1024;
        let mut results: Vec<Result<(), i32>> = vec![Ok(()); requests.len()];
        let Some(last) = requests.len().checked_sub(1) else {
            return Ok(Some(results));
        };
        let first_seq = self.seq.wrapping_add(1);
        let mut buf = Vec::with_capacity(MAX_DATAGRAM + 4096);
        let mut rx = Vec::with_capacity(1 << 16);
        let mut lost = false;
        let mut done = false;
        let note = |rx: &[u8], results: &mut Vec<Result<(), i32>>, done: &mut bool| {
            for msg in messages(rx).flatten() {
                if let Message::Error { header, errno } = msg {
                    let index = header.seq.wrapping_sub(first_seq) as usize;
                    if let Some(slot) = results.get_mut(index) {
                        if errno != 0 {
                            *slot = Err(errno);
                        }
                        *done |= index == last;
                    }
                }
            }
        };
        let mut index = 0;
        while index < requests.len() {
            buf.clear();
            while index < requests.len() && buf.len() < MAX_DATAGRAM {
                let start = buf.len();
                let seq = self.next_seq();
                build(&mut buf, seq, &requests[index]);
                if index != last {
                    // nlmsg_flags, native endian, at bytes 6..8.
                    if let Some(flags) = buf.get_mut(start + 6..start + 8) {
                        let value = u16::from_ne_bytes([flags[0], flags[1]]) & !NLM_F_ACK;
                        flags.copy_from_slice(&value.to_ne_bytes());
                    }
                }
                index += 1;
            }
            self.send(&buf)?;
            loop {
                match self.recv_with(&mut rx, RecvFlags::DONTWAIT) {
                    Ok(_) => note(&rx, &mut results, &mut done),
                    Err(RecvError::Overrun) => lost = true,
                    Err(RecvError::WouldBlock) => break,
                    Err(RecvError::Io(e)) => return Err(e),
                }
            }
        }
        while !done {
            match self.recv(&mut rx) {
                Ok(_) => note(&rx, &mut results, &mut done),
                Err(RecvError::Overrun) => lost = true,
                Err(RecvError::WouldBlock) => return Ok(None),
                Err(RecvError::Io(e)) => return Err(e),
            }
        }
        Ok((!lost).then_some(results))
    }

    /// Sends one request and waits for its ACK.
    pub fn request_ack(
        &mut self,
        build: impl Fn(&mut Vec<u8>, u32),
    ) -> io::Result<Result<(), i32>> {
        let mut results = self.apply_batch(&[()], |buf, seq, _| build(buf, seq))?;
        Ok(results.pop().unwrap_or(Err(libc_etimedout())))
    }
}

fn libc_etimedout() -> i32 {
    110
}

impl AsFd for CtSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for CtSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

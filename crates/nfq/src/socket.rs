//! A `NETLINK_NETFILTER` socket for NFQUEUE and cthelper requests (safe
//! code over rustix; batched receives through ctnl's `RecvBatch`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::frame::frames;
use crate::queue::{self, Command, QueueParams};

/// Bytes a datagram may take in a batch: a whole copied packet (copy
/// range 0xffff) and its attributes.
const BATCH_SLOT: usize = 65_536 + 1024;
/// Datagrams per batch.
const BATCH_SLOTS: usize = 16;
/// How long a request waits for the kernel's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Room for the datagrams of one [`QueueSocket::recv_batch`]: ctnetlink's
/// batch with slots large enough for a copied packet
/// ([`QueueSocket::batch`]).
pub type QueueBatch = ctnl::RecvBatch;

/// Why a receive returned nothing (the same as for any netlink socket).
pub use ctnl::RecvError;

/// A socket bound to NFQUEUE queues, also used for cthelper requests.
#[derive(Debug)]
pub struct QueueSocket {
    fd: OwnedFd,
    port_id: u32,
    seq: u32,
}

impl AsFd for QueueSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for QueueSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl QueueSocket {
    /// Opens a socket (blocking until [`QueueSocket::set_nonblocking`]).
    pub fn open() -> io::Result<QueueSocket> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::NETFILTER),
        )?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        let local = rustix::net::getsockname(&fd)?;
        let port_id = SocketAddrNetlink::try_from(local)
            .map(|a| a.pid())
            .map_err(|_| io::Error::other("netlink socket has no netlink address"))?;
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(REQUEST_TIMEOUT),
        )?;
        Ok(QueueSocket {
            fd,
            port_id,
            seq: 0,
        })
    }

    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one acknowledged request and waits for its answer: `Ok(Ok)`
    /// for an ACK, `Ok(Err(errno))` for a refusal. Packets that arrive
    /// meanwhile (a queue bound a moment ago) are accepted at once.
    pub fn request(
        &mut self,
        build: impl FnOnce(&mut Vec<u8>, u32),
    ) -> io::Result<Result<(), i32>> {
        let seq = self.next_seq();
        let mut req = Vec::with_capacity(256);
        build(&mut req, seq);
        self.send(&req)?;
        let mut buf = vec![0u8; BATCH_SLOT];
        loop {
            let (n, _) = rustix::net::recv(&self.fd, &mut buf, RecvFlags::empty())?;
            let mut accepts = Vec::new();
            for frame in frames(&buf[..n]).flatten() {
                if let Some(errno) = frame.errno().filter(|_| frame.seq == seq) {
                    return Ok(if errno == 0 { Ok(()) } else { Err(errno) });
                }
                if let Ok(p) = queue::decode_packet(&frame) {
                    let s = self.next_seq();
                    queue::verdict(&mut accepts, s, p.queue, p.packet_id, queue::NF_ACCEPT);
                }
            }
            if !accepts.is_empty() {
                self.send(&accepts)?;
            }
        }
    }

    /// Binds `queue` and sets its parameters; the kernel's answer to the
    /// first refused step.
    pub fn bind_queue(&mut self, queue: u16, params: &QueueParams) -> io::Result<Result<(), i32>> {
        // 1.4.7 sends PF_UNBIND and PF_BIND first: no-ops since Linux
        // 3.8, not sent here.
        let bound = self.request(|b, s| queue::config_command(b, s, queue, Command::Bind, 0))?;
        if bound.is_err() {
            return Ok(bound);
        }
        self.request(|b, s| queue::config_params(b, s, queue, params))
    }

    /// Unbinds `queue` (the kernel also does when the socket closes).
    pub fn unbind_queue(&mut self, queue: u16) -> io::Result<Result<(), i32>> {
        self.request(|b, s| queue::config_command(b, s, queue, Command::Unbind, 0))
    }

    /// From now on, receives do not wait.
    pub fn set_nonblocking(&self) -> io::Result<()> {
        rustix::io::ioctl_fionbio(&self.fd, true)?;
        // Undeliverable packets are the queue's to count (fail-open), not
        // errors on our socket.
        oscalls::set_int(
            self.fd.as_fd(),
            oscalls::SOL_NETLINK,
            oscalls::NETLINK_NO_ENOBUFS,
            1,
        )
    }

    /// Sets the receive buffer past rmem_max; returns the effective size.
    pub fn set_recv_buffer_force(&self, bytes: usize) -> io::Result<usize> {
        rustix::net::sockopt::set_socket_recv_buffer_size_force(&self.fd, bytes / 2)?;
        Ok(rustix::net::sockopt::socket_recv_buffer_size(&self.fd)?)
    }

    /// Sends prepared bytes (verdicts) to the kernel.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let kernel = SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&self.fd, bytes, SendFlags::empty(), &kernel)?;
        Ok(())
    }

    /// The sequence number for the next message built by the caller.
    pub fn take_seq(&mut self) -> u32 {
        self.next_seq()
    }

    /// Room for a batch of this socket's datagrams.
    pub fn batch() -> QueueBatch {
        QueueBatch::with_slots(BATCH_SLOT, BATCH_SLOTS)
    }

    /// Receives the datagrams queued now (up to a batch), without waiting.
    pub fn recv_batch(&self, batch: &mut QueueBatch) -> Result<usize, RecvError> {
        batch.recv_from(self.fd.as_fd())
    }
}

/// The kernel's counters of one queue, from
/// `/proc/net/netfilter/nfnetlink_queue` (of the caller's namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounters {
    pub queue: u16,
    pub port_id: u32,
    /// Packets waiting for a verdict.
    pub waiting: u32,
    /// Dropped because the queue was full (not counted with fail-open,
    /// where they are accepted unseen).
    pub queue_dropped: u64,
    /// Not delivered to the socket (its buffer full).
    pub user_dropped: u64,
}

/// Parses `/proc/net/netfilter/nfnetlink_queue`.
pub fn parse_proc_counters(text: &str) -> Vec<QueueCounters> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(QueueCounters {
                queue: f.first()?.parse().ok()?,
                port_id: f.get(1)?.parse().ok()?,
                waiting: f.get(2)?.parse().ok()?,
                queue_dropped: f.get(5)?.parse().ok()?,
                user_dropped: f.get(6)?.parse().ok()?,
            })
        })
        .collect()
}

/// Reads the kernel's counters of every bound queue.
pub fn read_proc_counters() -> io::Result<Vec<QueueCounters>> {
    let text = std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue")?;
    Ok(parse_proc_counters(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_counters_line() {
        let got = parse_proc_counters("    5  12345     2 2 65535     7     9   100  1\n");
        assert_eq!(
            got,
            vec![QueueCounters {
                queue: 5,
                port_id: 12345,
                waiting: 2,
                queue_dropped: 7,
                user_dropped: 9
            }]
        );
    }
}

//! The sockets of conntrackd's sync channels ("dedicated links"):
//! Multicast, UDP and TCP over IPv4 or IPv6 (docs/wire-protocol.md §1, §8–§10;
//! docs/sync-modes.md §13, §14).
//!
//! A [`Link`] is one open channel, as the configuration describes it
//! ([`conntrackd_config::Channel`]).  It sends already built batches of sync
//! messages and receives datagrams (or, for TCP, runs of whole messages cut
//! out of the byte stream).  It knows nothing about the message contents
//! beyond the 8-byte header's length field used to split the TCP stream.
//!
//! All sockets are non-blocking and registered with the tokio reactor of
//! the runtime [`Link::open`] is called in; that runtime must have IO and
//! time enabled (`enable_all`).
//!
//! Not implemented: filtering received datagrams by the interface they
//! arrived on (`IP_PKTINFO`).  conntrackd 1.4.7 does not filter either — any
//! datagram reaching the bound port is parsed (docs/wire-protocol.md §1).

mod dgram;
mod netdev;
pub mod queue;
mod sock;
mod tcp;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use conntrackd_config::{Channel, ChannelKind, DEFAULT_EVENT_ITERATION_LIMIT};

pub use queue::ErrorQueue;
pub use syncproto::stream::{self, Split, StreamSplitter};

/// Largest datagram (or stream chunk) read at once.
pub(crate) const RECV_BUFFER: usize = 65536;
/// Datagrams (or stream chunks, or accepts) read per socket by one
/// [`Link::recv`] call: conntrackd's default `EventIterationLimit` (see
/// [`Link::set_recv_limit`]). When more is waiting, [`Link::readable`]
/// returns at once.
pub(crate) const RECV_LIMIT: usize = DEFAULT_EVENT_ITERATION_LIMIT as usize;

/// Why a channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{what}: {source}")]
    Socket {
        what: &'static str,
        source: io::Error,
    },
    #[error("invalid channel: {0}")]
    InvalidSpec(&'static str),
    #[error("Link::open must be called inside a tokio runtime")]
    NoRuntime,
}

/// What one receive produced: a datagram, or a run of whole messages cut
/// from a TCP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
    /// TCP: the accepted connection it came from. One that arrived while
    /// another was working replaces it only once [`Link::vouch`] says that
    /// what it sent was authentic.
    pub connection: Option<u64>,
}

/// Traffic counters of a channel (`conntrackd -s`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub bytes_sent: u64,
    /// Datagrams sent; TCP: successful `send()` calls.
    pub pkts_sent: u64,
    pub bytes_recv: u64,
    /// Datagrams received; TCP: successful `recv()` calls.
    pub pkts_recv: u64,
    /// Datagrams the kernel refused; TCP: batches that went to the error
    /// queue (not connected, socket full or broken) plus failed writes.
    pub send_errors: u64,
    /// Failed receives (`EAGAIN` excluded); TCP: also garbage streams.
    pub recv_errors: u64,
    /// TCP: connections refused because they did not come from the
    /// configured peer address.
    pub foreign_connections: u64,
}

/// State of a channel's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// Not `IFF_UP`.
    Down,
    /// Up but not `IFF_RUNNING`.
    NoCarrier,
    Running,
}

enum Kind {
    Dgram(dgram::Dgram),
    Tcp(Box<tcp::Tcp>),
}

/// One open sync channel.
pub struct Link {
    channel: Channel,
    batch_size: usize,
    /// Datagrams read per [`Link::recv`] (Multicast and UDP).
    recv_limit: usize,
    counters: LinkCounters,
    kind: Kind,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("channel", &self.channel)
            .field("batch_size", &self.batch_size)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The peer address of a UDP/TCP channel, of the same family as `address`.
pub(crate) fn destination(channel: &Channel, address: IpAddr) -> Result<IpAddr, LinkError> {
    let dest = channel.destination.ok_or(LinkError::InvalidSpec(
        "UDP/TCP channel without destination address",
    ))?;
    if dest.is_ipv4() != address.is_ipv4() {
        return Err(LinkError::InvalidSpec(
            "address and destination address of different families",
        ));
    }
    Ok(dest)
}

/// Bytes of IP + transport header subtracted from the MTU (docs/wire-protocol.md
/// §8): 28 for Multicast and UDP (also over IPv6, as 1.4.7), 40 for TCP.
pub fn header_overhead(kind: ChannelKind) -> usize {
    match kind {
        ChannelKind::Multicast | ChannelKind::Udp => 28,
        ChannelKind::Tcp => 40,
    }
}

impl Link {
    /// Opens the sockets of `channel`; a TCP channel keeps up to
    /// `error_queue_length` batches that could not be written
    /// (`ErrorQueueLength`, one setting for all TCP channels).  Must be
    /// called inside a tokio runtime with IO and time enabled.
    pub fn open(channel: &Channel, error_queue_length: usize) -> Result<Link, LinkError> {
        tokio::runtime::Handle::try_current().map_err(|_| LinkError::NoRuntime)?;
        // Multicast: the group. UDP/TCP: the local address, which the
        // configuration resolves to the wildcard address when not written.
        let address = channel
            .address
            .ok_or(LinkError::InvalidSpec("channel without address"))?;
        let info = channel.interface.as_deref().and_then(netdev::lookup);
        let ifindex = info.map_or(0, |i| i.index);
        let mtu = info
            .and_then(|i| i.mtu)
            .and_then(|m| usize::try_from(m).ok())
            .unwrap_or(1500);
        let batch_size = mtu.saturating_sub(header_overhead(channel.kind));
        let kind = match channel.kind {
            ChannelKind::Multicast => {
                Kind::Dgram(dgram::Dgram::open_multicast(channel, address, ifindex)?)
            }
            ChannelKind::Udp => Kind::Dgram(dgram::Dgram::open_udp(channel, address, ifindex)?),
            ChannelKind::Tcp => Kind::Tcp(Box::new(tcp::Tcp::open(
                channel,
                address,
                error_queue_length,
                ifindex,
                Instant::now(),
            )?)),
        };
        Ok(Link {
            channel: channel.clone(),
            batch_size,
            recv_limit: RECV_LIMIT,
            counters: LinkCounters::default(),
            kind,
        })
    }

    /// Datagrams a Multicast or UDP channel reads per [`Link::recv`]
    /// (`EventIterationLimit`, at least 1; 100 unless set). TCP channels
    /// read up to 100 stream chunks, whatever is set.
    pub fn set_recv_limit(&mut self, datagrams: usize) {
        self.recv_limit = datagrams.max(1);
    }

    /// The configuration this channel was opened with.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Batch buffer size: MTU of the interface (1500 if unknown) minus 28
    /// (Multicast/UDP) or 40 (TCP).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sends one batch.  Multicast: to group:port; UDP: to
    /// destination:port.  TCP: written on the client connection after any
    /// queued batches; whatever cannot be written now (not connected,
    /// socket full, connection broken) waits in the error queue (bounded by
    /// `error_queue_length`, oldest dropped; a partly written batch keeps
    /// its unwritten rest at the head).  While disconnected, `connect()` is
    /// retried at most once per second.  Never blocks.
    pub fn send(&mut self, now: Instant, datagram: &[u8]) {
        match &mut self.kind {
            Kind::Dgram(d) => d.send(datagram, &mut self.counters),
            Kind::Tcp(t) => t.send(now, datagram, &mut self.counters),
        }
    }

    /// May another batch be sent now without dropping one? Datagram
    /// channels: always. TCP: while fewer batches wait than
    /// `ErrorQueueLength` (at least one may), so that a slow or absent peer
    /// holds the sender back instead of making its queue drop batches.
    pub fn wants_more(&self) -> bool {
        match &self.kind {
            Kind::Dgram(_) => true,
            Kind::Tcp(t) => t.wants_more(),
        }
    }

    /// Waits until something may be received, or (TCP) a connection can be
    /// accepted, a connect completed, queued batches written or a connect
    /// retried.  Cancel-safe.  Follow it with [`Link::recv`].
    pub async fn readable(&self) {
        match &self.kind {
            Kind::Dgram(d) => d.readable().await,
            Kind::Tcp(t) => t.readable().await,
        }
    }

    /// Non-blocking receive of what is available, appended to `out`.
    /// UDP/Multicast: one item per datagram.  TCP: one item per run of
    /// whole messages; also accepts connections from the configured peer
    /// address (others are closed and counted) and advances the client
    /// connection.
    pub fn recv(&mut self, out: &mut Vec<Received>) {
        match &mut self.kind {
            Kind::Dgram(d) => d.recv(out, &mut self.counters, self.recv_limit),
            Kind::Tcp(t) => t.recv(out, &mut self.counters),
        }
    }

    /// TCP: what `connection` sent was authentic. A connection accepted
    /// while another one worked replaces it now (a connection that merely
    /// reaches the port never displaces a working one). No-op otherwise.
    pub fn vouch(&mut self, connection: u64) {
        if let Kind::Tcp(t) = &mut self.kind {
            t.vouch(connection);
        }
    }

    /// Traffic counters.
    pub fn counters(&self) -> LinkCounters {
        self.counters
    }

    /// TCP: (an accepted peer connection exists, our client connection is
    /// established).  `None` for UDP and Multicast.
    pub fn tcp_state(&self) -> Option<(bool, bool)> {
        match &self.kind {
            Kind::Dgram(_) => None,
            Kind::Tcp(t) => Some(t.state()),
        }
    }

    /// State of the interface now; an unknown (or unset) interface counts
    /// as running.
    pub fn link_state(&self) -> LinkState {
        let Some(info) = self.channel.interface.as_deref().and_then(netdev::lookup) else {
            return LinkState::Running;
        };
        let up = libc::IFF_UP as u32;
        let running = libc::IFF_RUNNING as u32;
        if info.flags & up == 0 {
            LinkState::Down
        } else if info.flags & running == 0 {
            LinkState::NoCarrier
        } else {
            LinkState::Running
        }
    }

    /// TCP error queue: (batches not yet written, including a partly
    /// written one; bound; batches dropped because it was full).  Always
    /// (0, 0, 0) for UDP and Multicast.
    pub fn error_queue(&self) -> (usize, usize, u64) {
        match &self.kind {
            Kind::Dgram(_) => (0, 0, 0),
            Kind::Tcp(t) => t.error_queue(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERROR_QUEUE_LENGTH: usize = conntrackd_config::DEFAULT_ERROR_QUEUE_LENGTH as usize;

    fn spec(kind: ChannelKind) -> Channel {
        Channel {
            address: Some("127.0.0.1".parse().expect("ip")),
            destination: Some("127.0.0.1".parse().expect("ip")),
            interface: Some("lo".into()),
            ..Channel::new(kind, 0..0, 0)
        }
    }

    #[test]
    fn open_outside_a_runtime_is_an_error() {
        assert!(matches!(
            Link::open(&spec(ChannelKind::Udp), ERROR_QUEUE_LENGTH),
            Err(LinkError::NoRuntime)
        ));
    }

    #[test]
    fn bad_specs_are_rejected() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut s = spec(ChannelKind::Udp);
            s.destination = None;
            assert!(matches!(
                Link::open(&s, ERROR_QUEUE_LENGTH),
                Err(LinkError::InvalidSpec(_))
            ));
            s.destination = Some("::1".parse().expect("ip"));
            assert!(matches!(
                Link::open(&s, ERROR_QUEUE_LENGTH),
                Err(LinkError::InvalidSpec(_))
            ));
            let mut m = spec(ChannelKind::Multicast);
            m.destination = None;
            assert!(matches!(
                Link::open(&m, ERROR_QUEUE_LENGTH),
                Err(LinkError::InvalidSpec(_))
            ));
        });
    }

    #[test]
    fn link_and_its_readable_future_are_send() {
        fn send<T: Send>(_: &T) {}
        fn assert_send_type<T: Send>() {}
        assert_send_type::<Link>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut s = spec(ChannelKind::Tcp);
            s.destination = Some("127.0.0.2".parse().expect("ip"));
            let link = Link::open(&s, ERROR_QUEUE_LENGTH).expect("open");
            let fut = link.readable();
            send(&fut);
        });
    }

    #[test]
    fn overheads() {
        assert_eq!(header_overhead(ChannelKind::Multicast), 28);
        assert_eq!(header_overhead(ChannelKind::Udp), 28);
        assert_eq!(header_overhead(ChannelKind::Tcp), 40);
    }
}

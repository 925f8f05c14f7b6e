//! The sockets of one sync channel (wire-protocol.md §8–§10, sync-modes.md
//! §13–§14): multicast, UDP or TCP, IPv4 or IPv6.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use conntrackd_config::{Channel, ChannelKind};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const SO_NO_CHECK: i32 = 11;
const SO_SNDBUFFORCE: i32 = 32;
const SO_RCVBUFFORCE: i32 = 33;
/// Datagrams (or stream reads) handled per readiness event, as 1.4.7.
const RECV_BURST: usize = 100;
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// `-s` counters of a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub pkts_sent: u64,
    pub pkts_recv: u64,
    pub errors_sent: u64,
    pub errors_recv: u64,
}

/// State of the channel's interface (`-s link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Down,
    NoCarrier,
    Running,
}

impl LinkState {
    pub fn label(self) -> &'static str {
        match self {
            LinkState::Down => "DOWN",
            LinkState::NoCarrier => "NO-CARRIER",
            LinkState::Running => "RUNNING",
        }
    }
}

/// What woke a channel up.
#[derive(Debug)]
pub enum LinkReady {
    Readable,
    Accepted(TcpStream),
}

#[derive(Debug)]
enum Sockets {
    Datagram {
        rx: UdpSocket,
        /// Plain non-blocking socket: tokio's readiness-gated send would
        /// refuse to send before the runtime first polled it.
        tx: std::net::UdpSocket,
        dest: SocketAddr,
    },
    Tcp(Box<TcpLink>),
}

#[derive(Debug)]
struct TcpLink {
    listener: TcpListener,
    /// The peer's client connection, from which we receive.
    server: Option<TcpStream>,
    partial: Vec<u8>,
    /// Our connection to the peer's server, on which we send.
    client: Option<TcpStream>,
    dest: SocketAddr,
    local: IpAddr,
    last_connect: Option<Instant>,
    /// Batches that could not be sent yet (ErrorQueueLength).
    errorq: VecDeque<Vec<u8>>,
    errorq_max: usize,
    errorq_dropped: u64,
}

/// One open channel.
#[derive(Debug)]
pub struct Link {
    pub kind: ChannelKind,
    pub interface: Option<String>,
    batch_size: usize,
    sockets: Sockets,
    pub counters: LinkCounters,
}

fn sysfs(interface: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn ifindex(interface: Option<&str>) -> u32 {
    interface
        .and_then(|i| sysfs(i, "ifindex"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn buffers(socket: &Socket, channel: &Channel) -> io::Result<()> {
    let force = |name: i32, fallback: i32, size: u32| -> io::Result<()> {
        let value = i32::try_from(size).unwrap_or(i32::MAX);
        match oscalls::set_int(socket.as_fd(), libc::SOL_SOCKET, name, value) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOPROTOOPT)) => {
                oscalls::set_int(socket.as_fd(), libc::SOL_SOCKET, fallback, value)
            }
            Err(e) => Err(e),
        }
    };
    if let Some(size) = channel.rcv_buf {
        force(SO_RCVBUFFORCE, libc::SO_RCVBUF, size)?;
    }
    if let Some(size) = channel.snd_buf {
        force(SO_SNDBUFFORCE, libc::SO_SNDBUF, size)?;
    }
    Ok(())
}

fn udp_socket(addr: &IpAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn socket_addr(addr: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match addr {
        IpAddr::V6(a) if a.is_unicast_link_local() || a.is_multicast() => {
            SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope))
        }
        other => SocketAddr::new(other, port),
    }
}

/// Only datagrams that arrived on the dedicated interface are read.
fn bind_to_interface(socket: &Socket, interface: Option<&str>) {
    if let Some(name) = interface
        && let Err(e) = socket.bind_device(Some(name.as_bytes()))
    {
        crate::logger::warning(&format!("can't bind to device `{name}': {e}"));
    }
}

impl Link {
    pub fn open(channel: &Channel, error_queue_length: usize) -> io::Result<Link> {
        let interface = channel.interface.clone();
        let mtu: usize = interface
            .as_deref()
            .and_then(|i| sysfs(i, "mtu"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(1500);
        let scope = ifindex(interface.as_deref());
        let addr = channel
            .address
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let sockets = match channel.kind {
            ChannelKind::Multicast => open_multicast(channel, addr, scope)?,
            ChannelKind::Udp => open_udp(channel, addr, scope)?,
            ChannelKind::Tcp => open_tcp(channel, addr, scope, error_queue_length)?,
        };
        let header = if channel.kind == ChannelKind::Tcp {
            40
        } else {
            28
        };
        Ok(Link {
            kind: channel.kind,
            interface,
            batch_size: mtu.saturating_sub(header).max(256),
            sockets,
            counters: LinkCounters::default(),
        })
    }

    /// Largest batch for this channel (MTU minus IP and UDP/TCP headers).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The interface's state, from sysfs: administratively up, and with
    /// carrier (an unknown interface counts as running).
    pub fn state(&self) -> LinkState {
        let Some(interface) = self.interface.as_deref() else {
            return LinkState::Running;
        };
        let Some(flags) = sysfs(interface, "flags")
            .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
        else {
            return LinkState::Running;
        };
        if flags & libc::IFF_UP as u32 == 0 {
            LinkState::Down
        } else if sysfs(interface, "carrier").as_deref() != Some("1") {
            LinkState::NoCarrier
        } else {
            LinkState::Running
        }
    }

    /// TCP: (a peer is connected to our server, our client is connected).
    pub fn tcp_state(&self) -> Option<(bool, bool)> {
        match &self.sockets {
            Sockets::Tcp(t) => Some((
                t.server.is_some(),
                t.client.as_ref().is_some_and(|c| c.peer_addr().is_ok()),
            )),
            Sockets::Datagram { .. } => None,
        }
    }

    /// TCP error queue: (length, maximum, dropped batches).
    pub fn error_queue(&self) -> (usize, usize, u64) {
        match &self.sockets {
            Sockets::Tcp(t) => (t.errorq.len(), t.errorq_max, t.errorq_dropped),
            Sockets::Datagram { .. } => (0, 0, 0),
        }
    }

    /// Sends one batch. Never blocks: a TCP batch that cannot go now waits
    /// in the error queue.
    pub fn send(&mut self, now: Instant, batch: &[u8]) {
        match &mut self.sockets {
            Sockets::Datagram { tx, dest, .. } => match tx.send_to(batch, *dest) {
                Ok(n) => {
                    self.counters.bytes_sent += n as u64;
                    self.counters.pkts_sent += 1;
                }
                Err(_) => self.counters.errors_sent += 1,
            },
            Sockets::Tcp(t) => {
                t.queue(batch.to_vec());
                t.flush(now, &mut self.counters);
            }
        }
    }

    /// Periodic work: TCP reconnects and error-queue retries.
    pub fn tick(&mut self, now: Instant) {
        if let Sockets::Tcp(t) = &mut self.sockets {
            t.flush(now, &mut self.counters);
        }
    }

    /// Resolves when something can be read or accepted. Cancel-safe.
    pub async fn ready(&self) -> LinkReady {
        match &self.sockets {
            Sockets::Datagram { rx, .. } => {
                let _ = rx.readable().await;
                LinkReady::Readable
            }
            Sockets::Tcp(t) => {
                let server = async {
                    match &t.server {
                        Some(s) => {
                            let _ = s.readable().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    accepted = t.listener.accept() => match accepted {
                        Ok((stream, _)) => LinkReady::Accepted(stream),
                        Err(_) => LinkReady::Readable,
                    },
                    _ = server => LinkReady::Readable,
                }
            }
        }
    }

    /// Reads what is available: whole messages, each run with its sender.
    pub fn receive(&mut self, ready: LinkReady, out: &mut Vec<(Vec<u8>, IpAddr)>) {
        let mut buf = vec![0u8; 65536];
        match &mut self.sockets {
            Sockets::Datagram { rx, .. } => {
                for _ in 0..RECV_BURST {
                    match rx.try_recv_from(&mut buf) {
                        Ok((n, from)) => {
                            self.counters.bytes_recv += n as u64;
                            self.counters.pkts_recv += 1;
                            out.push((buf[..n].to_vec(), canonical(from.ip())));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            self.counters.errors_recv += 1;
                            break;
                        }
                    }
                }
            }
            Sockets::Tcp(t) => {
                if let LinkReady::Accepted(stream) = ready {
                    // A new connection replaces the previous one.
                    t.server = Some(stream);
                    t.partial.clear();
                }
                t.receive(&mut buf, &mut self.counters, out);
            }
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The sending UDP socket: buffers and `Checksum` (SO_NO_CHECK).
fn send_socket(dest: &IpAddr, channel: &Channel) -> io::Result<Socket> {
    let tx = udp_socket(dest)?;
    buffers(&tx, channel)?;
    oscalls::set_int(
        tx.as_fd(),
        libc::SOL_SOCKET,
        SO_NO_CHECK,
        i32::from(!channel.checksum),
    )?;
    Ok(tx)
}

fn open_multicast(channel: &Channel, group: IpAddr, scope: u32) -> io::Result<Sockets> {
    let port = channel.port;
    let rx = udp_socket(&group)?;
    rx.set_reuse_address(true)?;
    buffers(&rx, channel)?;
    let tx = send_socket(&group, channel)?;
    match group {
        IpAddr::V4(g) => {
            let iface = channel.ipv4_interface.unwrap_or(Ipv4Addr::UNSPECIFIED);
            rx.bind(&SockAddr::from(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port,
            )))?;
            rx.join_multicast_v4(&g, &iface)?;
            tx.set_multicast_loop_v4(false)?;
            tx.set_multicast_if_v4(&iface)?;
        }
        IpAddr::V6(g) => {
            rx.bind(&SockAddr::from(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                port,
            )))?;
            rx.join_multicast_v6(&g, scope)?;
            tx.set_multicast_loop_v6(false)?;
            tx.set_multicast_if_v6(scope)?;
        }
    }
    bind_to_interface(&rx, channel.interface.as_deref());
    Ok(Sockets::Datagram {
        rx: UdpSocket::from_std(rx.into())?,
        tx: tx.into(),
        dest: socket_addr(group, port, scope),
    })
}

fn open_udp(channel: &Channel, local: IpAddr, scope: u32) -> io::Result<Sockets> {
    let dest = channel
        .destination
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no destination address"))?;
    let rx = udp_socket(&local)?;
    rx.set_reuse_address(true)?;
    buffers(&rx, channel)?;
    rx.bind(&SockAddr::from(socket_addr(local, channel.port, scope)))?;
    bind_to_interface(&rx, channel.interface.as_deref());
    let tx = send_socket(&dest, channel)?;
    Ok(Sockets::Datagram {
        rx: UdpSocket::from_std(rx.into())?,
        tx: tx.into(),
        dest: socket_addr(dest, channel.port, scope),
    })
}

fn open_tcp(
    channel: &Channel,
    local: IpAddr,
    scope: u32,
    error_queue_length: usize,
) -> io::Result<Sockets> {
    let dest = channel
        .destination
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no destination address"))?;
    let domain = if local.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let server = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    server.set_reuse_address(true)?;
    server.set_keepalive(true)?;
    buffers(&server, channel)?;
    server.bind(&SockAddr::from(socket_addr(local, channel.port, scope)))?;
    server.listen(1)?;
    server.set_nonblocking(true)?;
    let mut link = Box::new(TcpLink {
        listener: TcpListener::from_std(server.into())?,
        server: None,
        partial: Vec::new(),
        client: None,
        dest: socket_addr(dest, channel.port, scope),
        local,
        last_connect: None,
        errorq: VecDeque::new(),
        errorq_max: error_queue_length.max(1),
        errorq_dropped: 0,
    });
    link.connect(Instant::now());
    Ok(Sockets::Tcp(link))
}

impl TcpLink {
    fn queue(&mut self, batch: Vec<u8>) {
        while self.errorq.len() >= self.errorq_max {
            self.errorq.pop_front();
            self.errorq_dropped += 1;
        }
        self.errorq.push_back(batch);
    }

    fn connect(&mut self, now: Instant) {
        if self
            .last_connect
            .is_some_and(|t| now.saturating_duration_since(t) < RECONNECT_INTERVAL)
        {
            return;
        }
        self.last_connect = Some(now);
        let domain = if self.dest.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let Ok(socket) = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)) else {
            return;
        };
        let _ = socket.set_nonblocking(true);
        let _ = socket.set_keepalive(true);
        let _ = socket.bind(&SockAddr::from(SocketAddr::new(self.local, 0)));
        match socket.connect(&SockAddr::from(self.dest)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(_) => return,
        }
        let std_stream: std::net::TcpStream = socket.into();
        self.client = TcpStream::from_std(std_stream).ok();
    }

    /// Sends queued batches in order; keeps the unsent rest.
    /// Keeps the client connection up (like 1.4.7, it connects at start
    /// and then at most once a second) and sends queued batches in order.
    fn flush(&mut self, now: Instant, counters: &mut LinkCounters) {
        if self
            .client
            .as_ref()
            .is_some_and(|c| matches!(c.take_error(), Ok(Some(_))))
        {
            self.client = None;
        }
        if self.client.is_none() {
            self.connect(now);
        }
        let connected = self.client.as_ref().is_some_and(|c| c.peer_addr().is_ok());
        if !connected {
            // A connect that has hung for a while is abandoned and retried.
            if self
                .last_connect
                .is_some_and(|t| now.saturating_duration_since(t) >= RECONNECT_INTERVAL * 3)
            {
                self.client = None;
            }
            return;
        }
        let Some(client) = self.client.as_ref() else {
            return;
        };
        while let Some(front) = self.errorq.front_mut() {
            if front.is_empty() {
                self.errorq.pop_front();
                continue;
            }
            match client.try_write(front) {
                Ok(n) if n == front.len() => {
                    counters.bytes_sent += n as u64;
                    counters.pkts_sent += 1;
                    self.errorq.pop_front();
                }
                Ok(n) => {
                    counters.bytes_sent += n as u64;
                    counters.pkts_sent += 1;
                    front.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    counters.errors_sent += 1;
                    self.client = None;
                    self.connect(now);
                    break;
                }
            }
        }
    }

    fn receive(
        &mut self,
        buf: &mut [u8],
        counters: &mut LinkCounters,
        out: &mut Vec<(Vec<u8>, IpAddr)>,
    ) {
        let Some(server) = self.server.as_ref() else {
            return;
        };
        let peer = server
            .peer_addr()
            .map(|a| canonical(a.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut closed = false;
        for _ in 0..RECV_BURST {
            match server.try_read(buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    counters.bytes_recv += n as u64;
                    counters.pkts_recv += 1;
                    self.partial.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    counters.errors_recv += 1;
                    closed = true;
                    break;
                }
            }
        }
        match split_stream(&mut self.partial) {
            Ok(Some(whole)) => out.push((whole, peer)),
            Ok(None) => {}
            Err(()) => {
                // Garbage on the stream: resynchronising is impossible.
                counters.errors_recv += 1;
                self.partial.clear();
                closed = true;
            }
        }
        if closed {
            self.server = None;
            self.partial.clear();
        }
    }
}

/// Takes the whole messages off the front of a TCP byte stream, leaving a
/// partial tail. Err if a header's length is impossible.
fn split_stream(stream: &mut Vec<u8>) -> Result<Option<Vec<u8>>, ()> {
    let mut at = 0;
    while stream.len() - at >= 8 {
        let len = usize::from(u16::from_be_bytes([stream[at + 2], stream[at + 3]]));
        if len < 8 {
            return Err(());
        }
        if stream.len() - at < len {
            break;
        }
        at += len;
    }
    if at == 0 {
        return Ok(None);
    }
    let rest = stream.split_off(at);
    Ok(Some(std::mem::replace(stream, rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_splitting_keeps_partial_tails() {
        let msg = |n: u8| {
            let mut m = vec![0x1a, 0x10, 0, 8, 0, 0, 0, n];
            m.truncate(8);
            m
        };
        let mut s = Vec::new();
        s.extend(msg(1));
        s.extend(msg(2));
        s.extend(&msg(3)[..5]);
        let whole = split_stream(&mut s).expect("valid");
        assert_eq!(whole.map(|w| w.len()), Some(16));
        assert_eq!(s.len(), 5);
        assert_eq!(split_stream(&mut s), Ok(None));
        s.extend(&msg(3)[5..]);
        assert_eq!(
            split_stream(&mut s).expect("valid").map(|w| w.len()),
            Some(8)
        );
        assert!(s.is_empty());
        let mut garbage = vec![0x10, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(split_stream(&mut garbage), Err(()));
    }

    #[test]
    fn error_queue_is_bounded() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            let mut t = TcpLink {
                listener: TcpListener::from_std(listener).expect("listener"),
                server: None,
                partial: Vec::new(),
                client: None,
                dest: "127.0.0.1:9".parse().expect("addr"),
                local: "127.0.0.1".parse().expect("ip"),
                last_connect: Some(Instant::now()),
                errorq: VecDeque::new(),
                errorq_max: 2,
                errorq_dropped: 0,
            };
            for i in 0..5u8 {
                t.queue(vec![i]);
            }
            assert_eq!(t.errorq.len(), 2);
            assert_eq!(t.errorq_dropped, 3);
            assert_eq!(t.errorq.front(), Some(&vec![3]));
        });
    }
}

//! Socket construction shared by the three transports (docs/wire-protocol.md §9,
//! §10).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;

use socket2::{Domain, Protocol, Socket, Type};

use crate::LinkError;

pub(crate) fn err(what: &'static str) -> impl FnOnce(io::Error) -> LinkError {
    move |source| LinkError::Socket { what, source }
}

pub(crate) fn domain(ip: IpAddr) -> Domain {
    match ip {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    }
}

pub(crate) fn udp(ip: IpAddr) -> Result<Socket, LinkError> {
    Socket::new(domain(ip), Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket(SOCK_DGRAM)"))
}

pub(crate) fn tcp(ip: IpAddr) -> Result<Socket, LinkError> {
    Socket::new(domain(ip), Type::STREAM, Some(Protocol::TCP)).map_err(err("socket(SOCK_STREAM)"))
}

/// Whether an IPv6 address needs a scope id (link-local unicast, or a
/// multicast group of interface- or link-local scope).
fn needs_scope(ip: &Ipv6Addr) -> bool {
    if ip.is_unicast_link_local() {
        return true;
    }
    ip.is_multicast() && matches!(ip.segments()[0] & 0x000f, 1 | 2)
}

/// `ip:port`, with scope id `ifindex` where IPv6 needs one.
pub(crate) fn sockaddr(ip: IpAddr, port: u16, ifindex: u32) -> SocketAddr {
    match ip {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V4(v4), port),
        IpAddr::V6(v6) => {
            let scope = if needs_scope(&v6) { ifindex } else { 0 };
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
        }
    }
}

/// `SO_RCVBUFFORCE` (or `SO_SNDBUFFORCE`), falling back to `SO_RCVBUF`
/// (`SO_SNDBUF`) when the forced variant is refused with `EPERM` or
/// `ENOPROTOOPT`; other errors fail.
fn set_buf(sock: &Socket, size: u32, send: bool) -> Result<(), LinkError> {
    let (force, what) = if send {
        (libc::SO_SNDBUFFORCE, "SO_SNDBUFFORCE")
    } else {
        (libc::SO_RCVBUFFORCE, "SO_RCVBUFFORCE")
    };
    let value = i32::try_from(size)
        .map_err(|_| LinkError::InvalidSpec("socket buffer size above 2^31-1"))?;
    match oscalls::set_int(sock.as_fd(), libc::SOL_SOCKET, force, value) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOPROTOOPT)) => {
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if send {
                sock.set_send_buffer_size(size).map_err(err("SO_SNDBUF"))
            } else {
                sock.set_recv_buffer_size(size).map_err(err("SO_RCVBUF"))
            }
        }
        Err(source) => Err(LinkError::Socket { what, source }),
    }
}

/// The receive buffer of a datagram channel without `RcvSocketBuffer`
/// (why: see the constant's own documentation).
pub(crate) const DATAGRAM_RCVBUF: u32 = conntrackd_config::DEFAULT_DATAGRAM_RCVBUF;

/// `RcvSocketBuffer` of a datagram channel: as configured, or else raised
/// to [`DATAGRAM_RCVBUF`] unless the system default is larger already.
pub(crate) fn set_datagram_rcvbuf(sock: &Socket, size: Option<u32>) -> Result<(), LinkError> {
    let size = match size {
        Some(size) => size,
        None => {
            let current = sock.recv_buffer_size().map_err(err("SO_RCVBUF"))?;
            if current >= DATAGRAM_RCVBUF as usize {
                return Ok(());
            }
            DATAGRAM_RCVBUF
        }
    };
    set_buf(sock, size, false)
}

pub(crate) fn set_rcvbuf(sock: &Socket, size: Option<u32>) -> Result<(), LinkError> {
    match size {
        Some(size) => set_buf(sock, size, false),
        None => Ok(()),
    }
}

pub(crate) fn set_sndbuf(sock: &Socket, size: Option<u32>) -> Result<(), LinkError> {
    match size {
        Some(size) => set_buf(sock, size, true),
        None => Ok(()),
    }
}

/// `Checksum on|off`: `SO_NO_CHECK = 0|1` on the sending socket.
pub(crate) fn set_checksum(sock: &Socket, checksum: bool) -> Result<(), LinkError> {
    oscalls::set_int(
        sock.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_NO_CHECK,
        i32::from(!checksum),
    )
    .map_err(err("SO_NO_CHECK"))
}

/// Receives only what arrived on the dedicated interface (SO_BINDTODEVICE),
/// so datagrams for the same group or port on other links are ignored. An
/// interface that does not exist (yet) leaves the socket unbound, as 1.4.7
/// never binds.
pub(crate) fn bind_to_interface(socket: &Socket, interface: Option<&str>) -> Result<(), LinkError> {
    let Some(name) = interface else {
        return Ok(());
    };
    match socket.bind_device(Some(name.as_bytes())) {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        other => other.map_err(|source| LinkError::Socket {
            what: "SO_BINDTODEVICE",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_channels_get_a_roomy_receive_buffer_unless_configured() {
        let fresh = || udp("127.0.0.1".parse().expect("ip")).expect("socket");
        let sock = fresh();
        let before = sock.recv_buffer_size().expect("SO_RCVBUF");
        set_datagram_rcvbuf(&sock, None).expect("default buffer");
        let after = sock.recv_buffer_size().expect("SO_RCVBUF");
        // Only root may go beyond net.core.rmem_max (SO_RCVBUFFORCE).
        if is_root() {
            assert!(after >= DATAGRAM_RCVBUF as usize, "{after}");
        } else {
            assert!(after >= before, "{before} -> {after}");
        }
        // A configured size is taken as it is (the kernel doubles it).
        let sock = fresh();
        set_datagram_rcvbuf(&sock, Some(65536)).expect("configured buffer");
        assert_eq!(sock.recv_buffer_size().expect("SO_RCVBUF"), 2 * 65536);
    }

    /// `/proc/self` belongs to the effective user.
    fn is_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    #[test]
    fn scope_ids_only_where_needed() {
        let ll: IpAddr = "fe80::1".parse().expect("ip");
        let global: IpAddr = "fd00::1".parse().expect("ip");
        let mc_link: IpAddr = "ff12::50".parse().expect("ip");
        let mc_global: IpAddr = "ff1e::50".parse().expect("ip");
        let v4: IpAddr = "10.0.0.1".parse().expect("ip");
        let scope = |a: SocketAddr| match a {
            SocketAddr::V6(a) => a.scope_id(),
            SocketAddr::V4(_) => 0,
        };
        assert_eq!(scope(sockaddr(ll, 1, 7)), 7);
        assert_eq!(scope(sockaddr(mc_link, 1, 7)), 7);
        assert_eq!(scope(sockaddr(global, 1, 7)), 0);
        assert_eq!(scope(sockaddr(mc_global, 1, 7)), 0);
        assert_eq!(sockaddr(v4, 3780, 7).to_string(), "10.0.0.1:3780");
    }

    #[test]
    fn buffers_and_checksum_can_be_set() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let s = udp(ip).expect("socket");
        set_rcvbuf(&s, Some(262_144)).expect("rcvbuf");
        set_sndbuf(&s, Some(262_144)).expect("sndbuf");
        set_checksum(&s, false).expect("no check");
        set_checksum(&s, true).expect("check");
        assert!(s.recv_buffer_size().expect("get") >= 262_144);
        assert!(matches!(
            set_rcvbuf(&s, Some(u32::MAX)),
            Err(LinkError::InvalidSpec(_))
        ));
    }
}

//! Multicast and UDP channels (docs/wire-protocol.md §10.1, §10.2).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use crate::sock::{self, err};
use conntrackd_config::Channel;

use crate::{LinkCounters, LinkError, RECV_BUFFER, Received};

pub(crate) struct Dgram {
    rx: tokio::net::UdpSocket,
    tx: UdpSocket,
    dest: SocketAddr,
    buf: Vec<u8>,
}

impl Dgram {
    pub(crate) fn open_multicast(
        channel: &Channel,
        group: IpAddr,
        ifindex: u32,
    ) -> Result<Dgram, LinkError> {
        if !group.is_multicast() {
            return Err(LinkError::InvalidSpec(
                "multicast address is not a multicast group",
            ));
        }
        if channel.destination.is_some() {
            return Err(LinkError::InvalidSpec(
                "a multicast channel has no destination",
            ));
        }
        let iface4 = channel.ipv4_interface.unwrap_or(Ipv4Addr::UNSPECIFIED);

        let rx = sock::udp(group)?;
        rx.set_reuse_address(true).map_err(err("SO_REUSEADDR"))?;
        sock::set_datagram_rcvbuf(&rx, channel.rcv_buf)?;
        // Bound to the group, as 1.4.9 does (netfilter bugzilla 1819): a
        // wildcard bind also took unicast datagrams to the port, and
        // datagrams of other groups joined on the host.
        rx.bind(&sock::sockaddr(group, channel.port, ifindex).into())
            .map_err(err("bind (multicast receive socket)"))?;
        match group {
            IpAddr::V4(g) => rx
                .join_multicast_v4(&g, &iface4)
                .map_err(err("IP_ADD_MEMBERSHIP"))?,
            IpAddr::V6(g) => rx
                .join_multicast_v6(&g, ifindex)
                .map_err(err("IPV6_JOIN_GROUP"))?,
        }
        sock::bind_to_interface(&rx, channel.interface.as_deref())?;
        rx.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;

        let tx = sock::udp(group)?;
        sock::set_checksum(&tx, channel.checksum)?;
        sock::set_sndbuf(&tx, channel.snd_buf)?;
        match group {
            IpAddr::V4(_) => {
                tx.set_multicast_loop_v4(false)
                    .map_err(err("IP_MULTICAST_LOOP"))?;
                tx.set_multicast_if_v4(&iface4)
                    .map_err(err("IP_MULTICAST_IF"))?;
            }
            IpAddr::V6(_) => {
                tx.set_multicast_loop_v6(false)
                    .map_err(err("IPV6_MULTICAST_LOOP"))?;
                tx.set_multicast_if_v6(ifindex)
                    .map_err(err("IPV6_MULTICAST_IF"))?;
            }
        }
        tx.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        Dgram::finish(
            rx.into(),
            tx.into(),
            sock::sockaddr(group, channel.port, ifindex),
        )
    }

    pub(crate) fn open_udp(
        channel: &Channel,
        address: IpAddr,
        ifindex: u32,
    ) -> Result<Dgram, LinkError> {
        let dest = crate::destination(channel, address)?;
        let rx = sock::udp(address)?;
        rx.set_reuse_address(true).map_err(err("SO_REUSEADDR"))?;
        sock::set_datagram_rcvbuf(&rx, channel.rcv_buf)?;
        rx.bind(&sock::sockaddr(address, channel.port, ifindex).into())
            .map_err(err("bind (UDP receive socket)"))?;
        sock::bind_to_interface(&rx, channel.interface.as_deref())?;
        rx.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;

        let tx = sock::udp(dest)?;
        sock::set_checksum(&tx, channel.checksum)?;
        sock::set_sndbuf(&tx, channel.snd_buf)?;
        tx.set_nonblocking(true).map_err(err("O_NONBLOCK"))?;
        Dgram::finish(
            rx.into(),
            tx.into(),
            sock::sockaddr(dest, channel.port, ifindex),
        )
    }

    fn finish(rx: UdpSocket, tx: UdpSocket, dest: SocketAddr) -> Result<Dgram, LinkError> {
        Ok(Dgram {
            rx: tokio::net::UdpSocket::from_std(rx)
                .map_err(err("register with the tokio reactor"))?,
            tx,
            dest,
            buf: vec![0; RECV_BUFFER],
        })
    }

    pub(crate) fn send(&mut self, datagram: &[u8], counters: &mut LinkCounters) {
        loop {
            match self.tx.send_to(datagram, self.dest) {
                Ok(n) => {
                    counters.bytes_sent += n as u64;
                    counters.pkts_sent += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => counters.send_errors += 1,
            }
            return;
        }
    }

    pub(crate) async fn readable(&self) {
        // `recv` clears the readiness when the socket runs dry.
        let _ = self.rx.readable().await;
    }

    pub(crate) fn recv(
        &mut self,
        out: &mut Vec<Received>,
        counters: &mut LinkCounters,
        limit: usize,
    ) {
        let buf = &mut self.buf;
        for _ in 0..limit {
            match self.rx.try_recv_from(buf.as_mut_slice()) {
                Ok((n, from)) => {
                    counters.bytes_recv += n as u64;
                    counters.pkts_recv += 1;
                    if let Some(data) = buf.get(..n) {
                        out.push(Received {
                            bytes: data.to_vec(),
                            from,
                            connection: None,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => counters.recv_errors += 1,
            }
        }
    }
}

//! Channels on 127.0.0.1 (no privileges needed): a link whose destination is
//! itself, TCP stream framing, garbage, back-pressure and the error queue.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Socket, Type};
use std::time::{Duration, Instant};

use conntrackd_config::{Channel, ChannelKind, DEFAULT_ERROR_QUEUE_LENGTH};
use synclink::{Link, Received};

const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind((LO, 0))
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// A TCP connection to 127.0.0.1:`port` from `from` (the peer's address
/// as the link is configured with it).
fn connect_from(from: &str, port: u16) -> std::net::TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: IpAddr = from.parse().expect("ip");
    s.bind(&SocketAddr::new(local, 0).into()).expect("bind");
    s.connect(&SocketAddr::new(LO, port).into())
        .expect("connect");
    s.into()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind((LO, 0))
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// A channel on 127.0.0.1 whose destination is itself.
fn spec(kind: ChannelKind, port: u16) -> Channel {
    Channel {
        address: Some(LO),
        destination: Some(LO),
        interface: Some("lo".into()),
        port,
        ..Channel::new(kind, 0..0, 0)
    }
}

/// `ErrorQueueLength` unless a test says otherwise.
const ERROR_QUEUE_LENGTH: usize = DEFAULT_ERROR_QUEUE_LENGTH as usize;

/// One sync message of `len` bytes (>= 8) with sequence number `seq`.
fn message(seq: u32, len: u16) -> Vec<u8> {
    let mut m = vec![0x10, 0x00];
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    let fill = seq.to_be_bytes()[3];
    m.resize(usize::from(len), fill);
    m
}

/// A batch of `n` messages of `len` bytes, numbered from `first`.
fn batch(first: u32, n: u32, len: u16) -> Vec<u8> {
    (first..first + n).flat_map(|s| message(s, len)).collect()
}

/// Sequence numbers of the messages in a stream; panics on bad framing.
fn seqs(stream: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        assert!(rest.len() >= 8, "truncated header");
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        assert!(len >= 8 && len <= rest.len(), "bad length {len}");
        let seq = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let fill = seq.to_be_bytes()[3];
        assert!(rest[8..len].iter().all(|&b| b == fill), "corrupt body");
        out.push(seq);
        rest = &rest[len..];
    }
    out
}

/// Waits (readable + recv) until `done` holds, for at most `limit`.
async fn pump(
    links: &mut [&mut Link],
    got: &mut [Vec<Received>],
    limit: Duration,
    mut done: impl FnMut(&[&mut Link], &[Vec<Received>]) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        for (link, out) in links.iter_mut().zip(got.iter_mut()) {
            link.recv(out);
        }
        if done(links, got) {
            return true;
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        let wait = left.min(Duration::from_millis(50));
        let any = async {
            match links {
                [a] => a.readable().await,
                [a, b, ..] => {
                    tokio::select! {
                        () = a.readable() => {}
                        () = b.readable() => {}
                    }
                }
                [] => std::future::pending().await,
            }
        };
        let _ = tokio::time::timeout(wait, any).await;
    }
}

fn concat(items: &[Received]) -> Vec<u8> {
    items.iter().flat_map(|r| r.bytes.iter().copied()).collect()
}

/// `EventIterationLimit`: at most that many datagrams per `recv`; the
/// rest waits for the next call.
#[test]
fn udp_recv_stops_at_the_configured_limit() {
    runtime().block_on(async {
        let port = free_udp_port();
        let mut link = Link::open(&spec(ChannelKind::Udp, port), ERROR_QUEUE_LENGTH).expect("open");
        link.set_recv_limit(2);
        let now = Instant::now();
        for seq in 1..=5 {
            link.send(now, &message(seq, 16));
        }
        let mut got = vec![Vec::new()];
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(2),
                |_, g| !g[0].is_empty()
            )
            .await
        );
        assert_eq!(got[0].len(), 2, "one recv reads two datagrams");
        let mut rest = Vec::new();
        link.recv(&mut rest);
        assert_eq!(rest.len(), 2);
        rest.clear();
        link.recv(&mut rest);
        assert_eq!(rest.len(), 1);
    });
}

#[test]
fn udp_to_itself_delivers_each_datagram() {
    runtime().block_on(async {
        let port = free_udp_port();
        let mut link = Link::open(&spec(ChannelKind::Udp, port), ERROR_QUEUE_LENGTH).expect("open");
        assert_eq!(link.tcp_state(), None);
        assert_eq!(link.error_queue(), (0, 0, 0));
        // lo's MTU is 65536.
        assert_eq!(link.batch_size(), 65536 - 28);
        let batches = [batch(1, 3, 84), batch(4, 1, 8), batch(5, 10, 100)];
        let now = Instant::now();
        for b in &batches {
            link.send(now, b);
        }
        let mut got = vec![Vec::new()];
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |_, g| g[0].len() >= 3
            )
            .await
        );
        let datagrams: Vec<_> = got[0].iter().map(|r| r.bytes.clone()).collect();
        assert_eq!(datagrams, batches);
        assert!(got[0].iter().all(|r| r.from.ip() == LO));
        let c = link.counters();
        let total: usize = batches.iter().map(Vec::len).sum();
        assert_eq!((c.pkts_sent, c.bytes_sent), (3, total as u64));
        assert_eq!((c.pkts_recv, c.bytes_recv), (3, total as u64));
        assert_eq!((c.send_errors, c.recv_errors), (0, 0));
    });
}

#[test]
fn tcp_to_itself_reassembles_the_stream() {
    runtime().block_on(async {
        let port = free_tcp_port();
        let mut link = Link::open(&spec(ChannelKind::Tcp, port), ERROR_QUEUE_LENGTH).expect("open");
        assert_eq!(link.batch_size(), 65536 - 40);
        let batches = [batch(1, 3, 84), batch(4, 1, 8), batch(5, 10, 100)];
        let expected: Vec<u8> = batches.concat();
        // Keep sending until connected: the first batches may wait in the
        // error queue for the connect to finish; they must still come first.
        let now = Instant::now();
        for b in &batches {
            link.send(now, b);
        }
        let mut got = vec![Vec::new()];
        let want = expected.len();
        let ok = pump(
            &mut [&mut link],
            &mut got,
            Duration::from_secs(5),
            |l, g| concat(&g[0]).len() >= want && l[0].error_queue().0 == 0,
        )
        .await;
        assert!(ok, "got {} of {want} bytes", concat(&got[0]).len());
        assert_eq!(concat(&got[0]), expected);
        assert_eq!(link.tcp_state(), Some((true, true)));
        assert_eq!(link.error_queue(), (0, 128, 0));
        assert!(got[0].iter().all(|r| r.from.ip() == LO));
        let c = link.counters();
        assert_eq!(c.bytes_sent, want as u64);
        assert_eq!(c.bytes_recv, want as u64);
        assert_eq!(c.recv_errors, 0);
    });
}

#[test]
fn tcp_back_pressure_keeps_whole_batches_in_order() {
    runtime().block_on(async {
        let port = free_tcp_port();
        let s = spec(ChannelKind::Tcp, port);
        let mut link = Link::open(&s, 100_000).expect("open");
        let mut got = vec![Vec::new()];
        // Connect first.
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |l, _| l[0].tcp_state() == Some((true, true))
            )
            .await
        );
        // ~12 MB without reading: far more than the socket buffers hold,
        // so writes are partial and then refused.
        let n_batches = 8000u32;
        let per = 13u32;
        let now = Instant::now();
        let mut max_queued = 0;
        for i in 0..n_batches {
            link.send(now, &batch(i * per, per, 116));
            max_queued = max_queued.max(link.error_queue().0);
        }
        assert!(max_queued > 100, "the socket never filled ({max_queued})");
        let total = (n_batches * per) as usize * 116;
        let ok = pump(
            &mut [&mut link],
            &mut got,
            Duration::from_secs(30),
            |l, g| {
                g[0].iter().map(|r| r.bytes.len()).sum::<usize>() >= total
                    && l[0].error_queue().0 == 0
            },
        )
        .await;
        let stream = concat(&got[0]);
        assert!(ok, "got {} of {total} bytes", stream.len());
        let numbers = seqs(&stream);
        assert_eq!(numbers.len(), (n_batches * per) as usize);
        assert!(numbers.iter().enumerate().all(|(i, &s)| s == i as u32));
        assert_eq!(link.error_queue().2, 0);
        // Every item holds whole messages only (checked by `seqs` per item).
        for item in got[0].iter().map(|r| &r.bytes) {
            seqs(item);
        }
    });
}

#[test]
fn tcp_error_queue_is_bounded_while_the_peer_is_away() {
    runtime().block_on(async {
        let port = free_tcp_port();
        let mut s = spec(ChannelKind::Tcp, port);
        // Nobody listens on the destination port.
        s.destination = Some("127.0.0.2".parse().expect("ip"));
        let mut link = Link::open(&s, 4).expect("open");
        let now = Instant::now();
        for i in 0..10 {
            link.send(now, &batch(i, 1, 16));
        }
        assert_eq!(link.error_queue(), (4, 4, 6));
        assert_eq!(link.tcp_state(), Some((false, false)));
        assert_eq!(link.counters().send_errors, 10);
        assert_eq!(link.counters().bytes_sent, 0);
    });
}

#[test]
fn tcp_garbage_resets_the_accepted_connection() {
    runtime().block_on(async {
        let port = free_tcp_port();
        let mut s = spec(ChannelKind::Tcp, port);
        s.destination = Some("127.0.0.2".parse().expect("ip"));
        let mut link = Link::open(&s, ERROR_QUEUE_LENGTH).expect("open");
        let mut peer = connect_from("127.0.0.2", port);
        let good = batch(1, 2, 20);
        let mut bytes = good.clone();
        // Split the next message's header across two writes.
        bytes.extend_from_slice(&message(3, 12)[..5]);
        peer.write_all(&bytes).expect("write");
        let mut got = vec![Vec::new()];
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |_, g| !g[0].is_empty()
            )
            .await
        );
        assert_eq!(got[0][0].bytes, good);
        assert_eq!(link.tcp_state(), Some((true, false)));
        peer.write_all(&message(3, 12)[5..]).expect("write");
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |_, g| g[0].len() >= 2
            )
            .await
        );
        assert_eq!(got[0][1].bytes, message(3, 12));
        // A zero length: garbage.
        peer.write_all(&[0x10, 0, 0, 0, 0, 0, 0, 4]).expect("write");
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |l, _| l[0].counters().recv_errors == 1
            )
            .await
        );
        assert_eq!(link.tcp_state(), Some((false, false)));
        assert_eq!(got[0].len(), 2);
        // The connection was closed by the link.
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let r = peer.read(&mut buf);
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    });
}

/// A second connection from the peer's address is read, but replaces the
/// working one only once the receiver vouches for what it sent; one from
/// another address is closed at once and counted.
#[test]
fn tcp_a_new_connection_replaces_the_old_one_only_once_vouched_for() {
    runtime().block_on(async {
        let port = free_tcp_port();
        let mut s = spec(ChannelKind::Tcp, port);
        s.destination = Some("127.0.0.2".parse().expect("ip"));
        let mut link = Link::open(&s, ERROR_QUEUE_LENGTH).expect("open");
        let mut first = connect_from("127.0.0.2", port);
        first.write_all(&message(1, 8)).expect("write");
        let mut got = vec![Vec::new()];
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |_, g| g[0].len() == 1
            )
            .await
        );
        // From an address that is not the peer's: refused.
        let mut foreign = connect_from("127.0.0.3", port);
        let _ = foreign.write_all(&message(9, 8));
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |l, _| l[0].counters().foreign_connections == 1
            )
            .await
        );
        let mut second = connect_from("127.0.0.2", port);
        second.write_all(&message(2, 8)).expect("write");
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |_, g| g[0].len() == 2
            )
            .await
        );
        assert_eq!(got[0][1].bytes, message(2, 8));
        assert!(got[0].iter().all(|r| r.bytes != message(9, 8)));
        // Not vouched for: the first still works.
        first.write_all(&message(3, 8)).expect("write");
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |_, g| g[0].len() == 3
            )
            .await
        );
        assert_eq!(got[0][2].bytes, message(3, 8));
        assert_ne!(got[0][2].connection, got[0][1].connection);
        // Vouched for: it replaces the first, which is closed.
        link.vouch(got[0][1].connection.expect("a TCP connection"));
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        let r = first.read(&mut buf);
        assert!(
            matches!(r, Ok(0) | Err(_)),
            "old connection still open: {r:?}"
        );
        second.write_all(&message(4, 8)).expect("write");
        assert!(
            pump(
                &mut [&mut link],
                &mut got,
                Duration::from_secs(5),
                |_, g| g[0].len() == 4
            )
            .await
        );
        assert_eq!(link.tcp_state(), Some((true, false)));
    });
}

#[test]
fn tcp_client_reconnects_after_the_peer_restarts() {
    runtime().block_on(async {
        // Server and client share the port number, so each node gets its
        // own loopback address.
        let port = free_tcp_port();
        let a_ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let b_ip: IpAddr = "127.0.0.2".parse().expect("ip");
        let mk = |me: IpAddr, peer: IpAddr| Channel {
            address: Some(me),
            destination: Some(peer),
            ..spec(ChannelKind::Tcp, port)
        };
        let mut a = Link::open(&mk(a_ip, b_ip), ERROR_QUEUE_LENGTH).expect("open a");
        let mut b = Link::open(&mk(b_ip, a_ip), ERROR_QUEUE_LENGTH).expect("open b");
        let mut got = vec![Vec::new(), Vec::new()];
        a.send(Instant::now(), &batch(1, 1, 16));
        assert!(
            pump(
                &mut [&mut a, &mut b],
                &mut got,
                Duration::from_secs(5),
                |_, g| { concat(&g[1]) == batch(1, 1, 16) }
            )
            .await
        );
        // B goes away and comes back.
        drop(b);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut b = Link::open(&mk(b_ip, a_ip), ERROR_QUEUE_LENGTH).expect("reopen b");
        let mut got = vec![Vec::new(), Vec::new()];
        // A's old connection is dead: the first writes may vanish or fail;
        // keep sending until something reaches the new B.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seq = 10;
        while Instant::now() < deadline && got[1].is_empty() {
            a.send(Instant::now(), &batch(seq, 1, 16));
            seq += 1;
            pump(
                &mut [&mut a, &mut b],
                &mut got,
                Duration::from_millis(300),
                |_, g| !g[1].is_empty(),
            )
            .await;
        }
        assert!(!got[1].is_empty(), "A never reconnected");
        // Whatever arrived is whole messages in increasing order.
        let s = seqs(&concat(&got[1]));
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{s:?}");
        assert!(a.counters().send_errors > 0);
        assert_eq!(a.tcp_state().map(|s| s.1), Some(true));
    });
}

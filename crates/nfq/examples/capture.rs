//! Prints the datagrams the kernel queues (as hex, one per line) and
//! accepts their packets: how the fixtures in tests/fixtures.rs were
//! captured. `ip netns exec NS cargo run -p nfq --example capture -- QUEUE COUNT`
//! after `iptables-legacy -A OUTPUT … -j NFQUEUE --queue-num QUEUE`.

use nfq::QueueSocket;
use nfq::frame::frames;
use nfq::queue::{self, CopyMode, QueueParams};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let queue_num: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut socket = QueueSocket::open()?;
    let params = QueueParams {
        copy_mode: CopyMode::Packet,
        copy_range: 0xffff,
        max_len: Some(1024),
        flags: queue::flags::FAIL_OPEN,
        mask: queue::flags::FAIL_OPEN,
    };
    if let Err(errno) = socket.bind_queue(queue_num, &params)? {
        return Err(std::io::Error::from_raw_os_error(errno));
    }
    println!("bound");
    let mut buf = vec![0u8; 1 << 17];
    let mut seen = 0;
    while seen < count {
        let n = rustix::net::recv(&socket, &mut buf, rustix::net::RecvFlags::empty())?.0;
        let hex: String = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
        println!("{hex}");
        for frame in frames(&buf[..n]).flatten() {
            if let Ok(p) = queue::decode_packet(&frame) {
                let mut v = Vec::new();
                let seq = socket.take_seq();
                queue::verdict(&mut v, seq, p.queue, p.packet_id, queue::NF_ACCEPT);
                socket.send(&v)?;
                seen += 1;
            }
        }
    }
    Ok(())
}

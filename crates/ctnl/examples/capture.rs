//! Prints the raw bytes of a conntrack table dump, for fixtures:
//! `ip netns exec NS cargo run -p ctnl --example capture`.
use ctnl::{CtSocket, request};

fn main() -> std::io::Result<()> {
    let mut socket = CtSocket::open(0, false)?;
    let seq = socket.next_seq();
    let mut req = Vec::new();
    request::dump(&mut req, seq, 0);
    socket.send(&req)?;
    let mut buf = Vec::with_capacity(1 << 16);
    loop {
        socket
            .recv(&mut buf)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        for chunk in buf.chunks(16) {
            let hex: Vec<String> = chunk.iter().map(|b| format!("0x{b:02x}")).collect();
            println!("{},", hex.join(", "));
        }
        println!("--");
        if buf.len() <= 20 {
            return Ok(());
        }
    }
}

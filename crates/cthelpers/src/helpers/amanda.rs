//! Amanda backup (UDP 10080): the server asks a client's amandad over
//! UDP, and the client's reply names, on its `CONNECT` line, the ports
//! of its `DATA`, `MESG` and `INDEX` streams, to which the server then
//! connects over TCP. Only the reply direction is read, as the kernel's
//! helper does; each port announced gives one expectation from the
//! server to the client.

use super::{Findings, Inspection};
use crate::expectation::ExpectationRequest;
use crate::flow::{Direction, FlowView};
use crate::kind::{IPPROTO_TCP, IPPROTO_UDP};
use crate::packet::Packet;
use crate::text::port;

const STREAMS: [&[u8]; 3] = [b"DATA ", b"MESG ", b"INDEX "];

pub fn inspect(flow: &FlowView, packet: &Packet<'_>) -> Inspection {
    if packet.l4proto != IPPROTO_UDP || flow.dir != Direction::Reply {
        return Ok(Findings::default());
    }
    let ports = connect_ports(packet.payload)?;
    let mut findings = Findings::default();
    for port in ports.into_iter().flatten() {
        findings.expectations.push(ExpectationRequest::new(
            Some(flow.orig.src),
            flow.orig.dst,
            IPPROTO_TCP,
            port,
        ));
    }
    Ok(findings)
}

/// The DATA, MESG and INDEX ports of the `CONNECT` line, if any.
pub fn connect_ports(payload: &[u8]) -> Result<[Option<u16>; 3], &'static str> {
    let Some(connect) = find(payload, b"CONNECT ") else {
        return Ok([None; 3]);
    };
    let rest = &payload[connect + b"CONNECT ".len()..];
    let line = rest.split(|b| *b == b'\n').next().unwrap_or(rest);
    let mut ports = [None; 3];
    for (slot, name) in ports.iter_mut().zip(STREAMS) {
        if let Some(at) = find(line, name) {
            let (value, _) =
                port(&line[at + name.len()..]).ok_or("Amanda CONNECT port malformed")?;
            *slot = Some(value);
        }
    }
    Ok(ports)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_connect_line() {
        let reply = b"Amanda 2.6 REP HANDLE 000-0 SEQ 1\nCONNECT DATA 50001 MESG 50002 INDEX 50003\nOPTIONS features=1;\n";
        assert_eq!(
            connect_ports(reply),
            Ok([Some(50001), Some(50002), Some(50003)])
        );
        assert_eq!(connect_ports(b"no connect here"), Ok([None; 3]));
        assert!(connect_ports(b"CONNECT DATA x").is_err());
        assert!(connect_ports(b"CONNECT DATA 70000").is_err());
    }
}

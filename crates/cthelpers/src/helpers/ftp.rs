//! FTP (RFC 959, RFC 2428): the client's `PORT` and `EPRT` commands and
//! the server's `227` (PASV) and `229` (EPSV) replies announce the data
//! connection. Commands are read at the start of lines only: the state
//! kept per direction is the sequence number that follows the last
//! newline, and a segment that does not start there is not parsed (as
//! the kernel's helper does, so that a command split over segments or a
//! word inside a file name is never taken for one).
//!
//! The expected connection goes to the address and port announced, from
//! the other side's address. An announced address other than the
//! sender's own is refused (the FTP bounce: a client making the firewall
//! open a hole towards a third host), as the kernel refuses it.

use std::net::{IpAddr, Ipv4Addr};

use super::{Findings, Inspection};
use crate::expectation::ExpectationRequest;
use crate::flow::{Direction, FlowView};
use crate::kind::IPPROTO_TCP;
use crate::packet::Packet;
use crate::text::{decimal, lines, port, starts_with_ignore_case};

/// Per-flow state: where the next line starts, per direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FtpState {
    next_line: [Option<u32>; 2],
}

/// An announced endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announced {
    /// None: "the address of this connection" (EPSV).
    pub addr: Option<IpAddr>,
    pub port: u16,
}

pub fn inspect(flow: &FlowView, packet: &Packet<'_>, state: &mut FtpState) -> Inspection {
    if packet.l4proto != IPPROTO_TCP || packet.payload.is_empty() {
        return Ok(Findings::default());
    }
    let index = usize::from(flow.dir == Direction::Reply);
    let at_line_start = state.next_line[index].is_none_or(|seq| seq == packet.tcp_seq);
    if packet.payload.ends_with(b"\n") {
        let len = u32::try_from(packet.payload.len()).unwrap_or(u32::MAX);
        state.next_line[index] = Some(packet.tcp_seq.wrapping_add(len));
    }
    if !at_line_start {
        return Ok(Findings::default());
    }
    let mut findings = Findings::default();
    for line in lines(packet.payload) {
        let Some(announced) = parse_line(flow.dir, line)? else {
            continue;
        };
        let sender = packet.src;
        let addr = announced.addr.unwrap_or(sender);
        if addr != sender {
            findings.refused += 1;
            continue;
        }
        // Towards the sender, from the other side, both as seen in the
        // direction of the expected connection.
        let towards = flow.tuple(flow.other());
        findings.expectations.push(ExpectationRequest::new(
            Some(towards.src),
            towards.dst,
            IPPROTO_TCP,
            announced.port,
        ));
    }
    Ok(findings)
}

/// The endpoint a line announces, if it is one of the four; an error if
/// it is one of them but malformed.
pub fn parse_line(dir: Direction, line: &[u8]) -> Result<Option<Announced>, &'static str> {
    match dir {
        Direction::Original if starts_with_ignore_case(line, b"PORT ") => {
            rfc959_numbers(&line[5..]).map(Some).ok_or("malformed PORT")
        }
        Direction::Original if starts_with_ignore_case(line, b"EPRT ") => {
            eprt(&line[5..]).map(Some).ok_or("malformed EPRT")
        }
        Direction::Reply if line.starts_with(b"227 ") => {
            // "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)": the numbers
            // start at the first digit after the code.
            let text = &line[4..];
            let first = text
                .iter()
                .position(u8::is_ascii_digit)
                .ok_or("227 without address")?;
            rfc959_numbers(&text[first..])
                .map(Some)
                .ok_or("malformed 227")
        }
        Direction::Reply if line.starts_with(b"229 ") => {
            epsv(&line[4..]).map(Some).ok_or("malformed 229")
        }
        _ => Ok(None),
    }
}

/// `h1,h2,h3,h4,p1,p2`.
fn rfc959_numbers(s: &[u8]) -> Option<Announced> {
    let s = s.trim_ascii_start();
    let mut numbers = [0u8; 6];
    let mut at = 0;
    for (i, slot) in numbers.iter_mut().enumerate() {
        let (value, used) = decimal(s.get(at..)?, 255)?;
        *slot = u8::try_from(value).ok()?;
        at += used;
        if i < 5 {
            (s.get(at) == Some(&b',')).then_some(())?;
            at += 1;
        }
    }
    let port = u16::from_be_bytes([numbers[4], numbers[5]]);
    (port != 0).then_some(Announced {
        addr: Some(IpAddr::V4(Ipv4Addr::new(
            numbers[0], numbers[1], numbers[2], numbers[3],
        ))),
        port,
    })
}

/// `EPRT |1|132.235.1.2|6275|` (RFC 2428); `|` may be any printable
/// ASCII character other than a digit.
fn eprt(s: &[u8]) -> Option<Announced> {
    let s = s.trim_ascii_start();
    let delim = *s.first()?;
    if !(33..=126).contains(&delim) || delim.is_ascii_digit() {
        return None;
    }
    let mut fields = s[1..].split(|b| *b == delim);
    let family = fields.next()?;
    let addr = std::str::from_utf8(fields.next()?).ok()?;
    let (port, used) = port(fields.next()?)?;
    let _ = used;
    let addr: IpAddr = match family {
        b"1" => IpAddr::V4(addr.parse().ok()?),
        b"2" => IpAddr::V6(addr.parse().ok()?),
        _ => return None,
    };
    Some(Announced {
        addr: Some(addr),
        port,
    })
}

/// `229 Entering Extended Passive Mode (|||6446|)`.
fn epsv(s: &[u8]) -> Option<Announced> {
    let open = s.iter().position(|b| *b == b'(')?;
    let rest = s.get(open + 1..)?;
    let delim = *rest.first()?;
    if rest.get(1) != Some(&delim) || rest.get(2) != Some(&delim) {
        return None;
    }
    let (port, used) = port(rest.get(3..)?)?;
    (rest.get(3 + used) == Some(&delim)).then_some(Announced { addr: None, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_announcements() {
        let port = parse_line(Direction::Original, b"PORT 10,0,1,2,156,64").expect("ok");
        assert_eq!(
            port,
            Some(Announced {
                addr: Some("10.0.1.2".parse().expect("ip")),
                port: 40000
            })
        );
        let eprt = parse_line(Direction::Original, b"EPRT |2|2001:db8::2|40001|").expect("ok");
        assert_eq!(
            eprt.and_then(|a| a.addr),
            Some("2001:db8::2".parse().expect("ip"))
        );
        let pasv = parse_line(
            Direction::Reply,
            b"227 Entering Passive Mode (10,0,2,1,195,80).",
        )
        .expect("ok");
        assert_eq!(pasv.map(|a| a.port), Some(50000));
        let epsv = parse_line(
            Direction::Reply,
            b"229 Entering Extended Passive Mode (|||50001|)",
        )
        .expect("ok");
        assert_eq!(
            epsv,
            Some(Announced {
                addr: None,
                port: 50001
            })
        );
    }

    #[test]
    fn other_lines_and_wrong_directions_are_not_announcements() {
        assert_eq!(parse_line(Direction::Original, b"USER anonymous"), Ok(None));
        assert_eq!(parse_line(Direction::Reply, b"PORT 1,2,3,4,5,6"), Ok(None));
        assert_eq!(
            parse_line(Direction::Original, b"227 (1,2,3,4,5,6)"),
            Ok(None)
        );
    }

    #[test]
    fn malformed_announcements_are_errors() {
        for line in [
            &b"PORT 10,0,1,2,156"[..],
            b"PORT 300,0,1,2,1,1",
            b"PORT 10,0,1,2,0,0",
            b"EPRT |3|1.2.3.4|5|",
            b"EPRT |1|1.2.3|5|",
            b"EPRT 1|1.2.3.4|5|",
        ] {
            assert!(parse_line(Direction::Original, line).is_err(), "{line:?}");
        }
        for line in [&b"227 no numbers"[..], b"229 (|||0|)", b"229 (||6446|)"] {
            assert!(parse_line(Direction::Reply, line).is_err(), "{line:?}");
        }
    }
}

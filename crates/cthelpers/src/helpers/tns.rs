//! Oracle TNS (TCP 1521): a server that hands a client over to another
//! listener sends a REDIRECT packet whose text carries
//! `(ADDRESS=(PROTOCOL=tcp)(HOST=a.b.c.d)(PORT=n))`; when the REDIRECT
//! carries no data, the text comes in the very next DATA packet. The
//! expected connection is from the client to that host and port. Only
//! the server's direction is read, once the connection is established;
//! the host must be an IPv4 address, as in 1.4.7. `HOST=` and `PORT=`
//! are matched in any case.
//!
//! State per flow: whether the next DATA packet carries a redirect.

use std::net::{IpAddr, Ipv4Addr};

use super::{Findings, Inspection};
use crate::expectation::ExpectationRequest;
use crate::flow::{Direction, FlowView};
use crate::kind::IPPROTO_TCP;
use crate::packet::Packet;
use crate::text::{decimal, find_ignore_case, port};

const TNS_HEADER: usize = 8;
const TYPE_REDIRECT: u8 = 5;
const TYPE_DATA: u8 = 6;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TnsState {
    redirect_follows: bool,
}

pub fn inspect(flow: &FlowView, packet: &Packet<'_>, state: &mut TnsState) -> Inspection {
    let data = packet.payload;
    if packet.l4proto != IPPROTO_TCP
        || !flow.established
        || flow.dir != Direction::Reply
        || data.is_empty()
    {
        return Ok(Findings::default());
    }
    let header = data.get(..TNS_HEADER).ok_or("TNS header truncated")?;
    let text = match header[4] {
        TYPE_REDIRECT => {
            state.redirect_follows = false;
            let length = data
                .get(TNS_HEADER..TNS_HEADER + 2)
                .ok_or("TNS redirect truncated")?;
            if u16::from_be_bytes([length[0], length[1]]) == 0 {
                state.redirect_follows = true;
                return Ok(Findings::default());
            }
            &data[TNS_HEADER + 2..]
        }
        TYPE_DATA if std::mem::take(&mut state.redirect_follows) => &data[TNS_HEADER..],
        _ => {
            state.redirect_follows = false;
            return Ok(Findings::default());
        }
    };
    let (host, port) = redirect_address(text)?;
    Ok(Findings::one(ExpectationRequest::new(
        Some(flow.orig.src),
        IpAddr::V4(host),
        IPPROTO_TCP,
        port,
    )))
}

/// HOST and PORT of the redirect text.
pub fn redirect_address(text: &[u8]) -> Result<(Ipv4Addr, u16), &'static str> {
    let open = text
        .iter()
        .position(|b| *b == b'(')
        .ok_or("TNS redirect without address")?;
    let after_open = &text[open + 1..];
    let host_at = find_ignore_case(after_open, b"HOST=").ok_or("TNS redirect without HOST=")?;
    let host_text = &after_open[host_at + 5..];
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (i, octet) in octets.iter_mut().enumerate() {
        let (value, used) = decimal(host_text.get(at..).unwrap_or(&[]), 255)
            .ok_or("TNS HOST is not an IPv4 address")?;
        *octet = u8::try_from(value).map_err(|_| "TNS HOST octet above 255")?;
        at += used;
        let expected = if i < 3 { b'.' } else { b')' };
        if host_text.get(at) != Some(&expected) {
            return Err("TNS HOST is not an IPv4 address");
        }
        at += 1;
    }
    let rest = &host_text[at..];
    let port_at = find_ignore_case(rest, b"PORT=").ok_or("TNS redirect without PORT=")?;
    let (port, used) = port(&rest[port_at + 5..]).ok_or("TNS PORT is not a port")?;
    if rest.get(port_at + 5 + used) != Some(&b')') {
        return Err("TNS PORT is not closed");
    }
    Ok((Ipv4Addr::from(octets), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_and_port_of_a_redirect() {
        let text = b"(DESCRIPTION=(ADDRESS=(PROTOCOL=tcp)(HOST=10.0.2.1)(PORT=40123)))";
        assert_eq!(
            redirect_address(text),
            Ok((Ipv4Addr::new(10, 0, 2, 1), 40123))
        );
        assert!(redirect_address(b"(ADDRESS=(HOST=db.example)(PORT=1))").is_err());
        assert!(redirect_address(b"(ADDRESS=(HOST=1.2.3.4)(PORT=0))").is_err());
        assert!(redirect_address(b"no parenthesis").is_err());
    }
}

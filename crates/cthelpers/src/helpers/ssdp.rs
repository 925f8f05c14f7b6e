//! SSDP / UPnP (UDP and TCP 1900). Three steps, as 1.4.7's helper:
//! - an `M-SEARCH` to 239.255.255.250 (ff02::c, ff05::c) is answered by
//!   unicast to the searcher: expected UDP from anyone to its port;
//! - an answer's `LOCATION: http://ADDR[:PORT]/…` header is where the
//!   searcher will fetch the description: expected TCP from anyone to
//!   that address and port (80 if none);
//! - over TCP, a `SUBSCRIBE` whose `CALLBACK: <http://ADDR:PORT/…>`
//!   names the subscriber itself lets the device send `NOTIFY` back:
//!   expected TCP from the device to the subscriber on that port.
//!
//! Header names are matched in any case. With no conntrack attached, a
//! UDP packet is an answer when it carries a `LOCATION` header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::multicast::{is_group, replies_to_sender};
use super::{Findings, Inspection};
use crate::expectation::{EXPECT_PERMANENT, ExpectationRequest};
use crate::flow::{Direction, FlowView};
use crate::kind::{IPPROTO_TCP, IPPROTO_UDP};
use crate::packet::Packet;
use crate::text::{lines, port, starts_with_ignore_case};

const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
const GROUPS_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xc),
    Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 0, 0xc),
];

pub fn inspect(flow: &FlowView, packet: &Packet<'_>) -> Inspection {
    let data = packet.payload;
    match packet.l4proto {
        IPPROTO_UDP if is_group(packet.dst, &[GROUP_V4], &GROUPS_V6) => {
            if data.starts_with(b"M-SEARCH") {
                Ok(Findings::one(replies_to_sender(packet, packet.sport)))
            } else {
                Ok(Findings::default())
            }
        }
        IPPROTO_UDP => {
            let Some(location) = header(data, b"LOCATION:") else {
                return Ok(Findings::default());
            };
            let (addr, port) = http_url(location, packet.dst)?;
            let mut request = ExpectationRequest::new(None, addr, IPPROTO_TCP, port);
            request.flags = EXPECT_PERMANENT;
            Ok(Findings::one(request))
        }
        IPPROTO_TCP if flow.established && flow.dir == Direction::Original => {
            if !data.starts_with(b"SUBSCRIBE ") {
                return Ok(Findings::default());
            }
            let Some(callback) = header(data, b"CALLBACK:") else {
                return Err("SUBSCRIBE without CALLBACK");
            };
            let callback = callback.strip_prefix(b"<").ok_or("CALLBACK without <")?;
            let (addr, port) = http_url(callback, packet.dst)?;
            if addr != packet.src {
                // A callback to another host: not opened.
                return Ok(Findings::refused());
            }
            Ok(Findings::one(ExpectationRequest::new(
                Some(flow.reply.src),
                addr,
                IPPROTO_TCP,
                port,
            )))
        }
        _ => Ok(Findings::default()),
    }
}

/// The value of the first header called `name` (which includes its
/// colon), leading blanks removed.
fn header<'a>(data: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    lines(data)
        .find(|line| starts_with_ignore_case(line, name))
        .map(|line| line[name.len()..].trim_ascii_start())
}

/// `http://1.2.3.4:5000/…` or `http://[2001:db8::1]:5000/…`; the family
/// must be that of `same_family_as`.
fn http_url(url: &[u8], same_family_as: IpAddr) -> Result<(IpAddr, u16), &'static str> {
    if !starts_with_ignore_case(url, b"http://") {
        return Err("URL is not http://");
    }
    let rest = &url[7..];
    let (addr, after): (IpAddr, &[u8]) = if let Some(v6) = rest.strip_prefix(b"[") {
        let end = v6
            .iter()
            .position(|b| *b == b']')
            .ok_or("IPv6 URL host not closed")?;
        let text = std::str::from_utf8(&v6[..end]).map_err(|_| "URL host not text")?;
        (
            IpAddr::V6(text.parse().map_err(|_| "URL host not IPv6")?),
            &v6[end + 1..],
        )
    } else {
        let end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'.'))
            .unwrap_or(rest.len());
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| "URL host not text")?;
        (
            IpAddr::V4(text.parse().map_err(|_| "URL host not IPv4")?),
            &rest[end..],
        )
    };
    if addr.is_ipv4() != same_family_as.is_ipv4() {
        return Err("URL host of the other address family");
    }
    let port = match after.strip_prefix(b":") {
        Some(digits) => port(digits).ok_or("URL port malformed")?.0,
        None => 80,
    };
    Ok((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_both_families() {
        let v4: IpAddr = "10.0.0.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!(
            http_url(b"http://10.0.0.7:49152/desc.xml", v4),
            Ok(("10.0.0.7".parse().expect("ip"), 49152))
        );
        assert_eq!(
            http_url(b"http://10.0.0.7/desc.xml", v4),
            Ok(("10.0.0.7".parse().expect("ip"), 80))
        );
        assert_eq!(
            http_url(b"HTTP://[2001:db8::7]:8080/", v6),
            Ok(("2001:db8::7".parse().expect("ip"), 8080))
        );
        assert!(http_url(b"http://[2001:db8::7]:8080/", v4).is_err());
        assert!(http_url(b"ftp://10.0.0.7/", v4).is_err());
        assert!(http_url(b"http://10.0.0.7:0/", v4).is_err());
    }
}

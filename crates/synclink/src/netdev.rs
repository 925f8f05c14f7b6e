//! Interface index, MTU and flags of a named interface.
//!
//! Asked over rtnetlink (`RTM_GETLINK` by `IFLA_IFNAME`): unlike
//! `/sys/class/net`, which shows the network namespace sysfs was mounted
//! in, a netlink socket answers for the namespace of the calling thread.
//! `/sys/class/net/IF/{ifindex,mtu,flags}` is only the fallback when no
//! netlink socket can be made.

use std::io::{Read, Write};

use socket2::{Domain, Protocol, Socket, Type};

/// What the kernel says about one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IfInfo {
    pub(crate) index: u32,
    pub(crate) mtu: Option<u32>,
    pub(crate) flags: u32,
}

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const RTA_HDRLEN: usize = 4;
/// `IFNAMSIZ` including the terminating NUL.
const IFNAMSIZ: usize = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Looks the interface up; `None` if it does not exist (or cannot be asked).
pub(crate) fn lookup(name: &str) -> Option<IfInfo> {
    if name.is_empty() || name.len() >= IFNAMSIZ || name.as_bytes().contains(&0) {
        return None;
    }
    match Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(libc::NETLINK_ROUTE)),
    ) {
        Ok(sock) => ask_netlink(&sock, name),
        Err(_) => from_sysfs(name),
    }
}

/// The `RTM_GETLINK` request for `name`.
fn request(name: &str) -> Vec<u8> {
    let attr_len = RTA_HDRLEN + name.len() + 1;
    let total = NLMSG_HDRLEN + IFINFOMSG_LEN + align4(attr_len);
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&u32::try_from(total).unwrap_or(0).to_ne_bytes());
    m.extend_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    m.extend_from_slice(
        &u16::try_from(libc::NLM_F_REQUEST)
            .unwrap_or(1)
            .to_ne_bytes(),
    );
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
    // struct ifinfomsg: family, pad, type, index, flags, change.
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&0i32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&u16::try_from(attr_len).unwrap_or(0).to_ne_bytes());
    m.extend_from_slice(&libc::IFLA_IFNAME.to_ne_bytes());
    m.extend_from_slice(name.as_bytes());
    m.resize(total, 0);
    m
}

fn ask_netlink(sock: &Socket, name: &str) -> Option<IfInfo> {
    // The kernel processes the request in `send` and queues the answer
    // before returning, so a non-blocking read finds it.
    sock.set_nonblocking(true).ok()?;
    let req = request(name);
    let mut s = sock;
    if s.write(&req).ok()? != req.len() {
        return None;
    }
    let mut buf = vec![0u8; 65536];
    let n = s.read(&mut buf).ok()?;
    parse_reply(buf.get(..n)?)
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses the answer to [`request`]: the first `RTM_NEWLINK` message, or
/// `None` on `NLMSG_ERROR` (no such device) or anything malformed.
fn parse_reply(buf: &[u8]) -> Option<IfInfo> {
    let mut off = 0usize;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = usize::try_from(ne_u32(buf, off)?).ok()?;
        let ty = ne_u16(buf, off + 4)?;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return None;
        }
        let msg = buf.get(off..off + len)?;
        if ty == libc::RTM_NEWLINK {
            return parse_link(msg);
        }
        if i32::from(ty) == libc::NLMSG_ERROR || i32::from(ty) == libc::NLMSG_DONE {
            return None;
        }
        off += align4(len);
    }
    None
}

fn parse_link(msg: &[u8]) -> Option<IfInfo> {
    let ifi = NLMSG_HDRLEN;
    let index = u32::try_from(i32::from_ne_bytes(
        msg.get(ifi + 4..ifi + 8)?.try_into().ok()?,
    ))
    .ok()?;
    let flags = ne_u32(msg, ifi + 8)?;
    let mut mtu = None;
    let mut off = ifi + IFINFOMSG_LEN;
    while off + RTA_HDRLEN <= msg.len() {
        let len = usize::from(ne_u16(msg, off)?);
        let ty = ne_u16(msg, off + 2)?;
        if len < RTA_HDRLEN || off + len > msg.len() {
            break;
        }
        if ty == libc::IFLA_MTU && len >= RTA_HDRLEN + 4 {
            mtu = ne_u32(msg, off + RTA_HDRLEN);
        }
        off += align4(len);
    }
    Some(IfInfo { index, mtu, flags })
}

fn from_sysfs(name: &str) -> Option<IfInfo> {
    let read = |what: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{what}"))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let index = read("ifindex")?.parse().ok()?;
    let mtu = read("mtu").and_then(|s| s.parse().ok());
    let flags = read("flags")
        .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    Some(IfInfo { index, mtu, flags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_with_its_mtu() {
        let lo = lookup("lo").expect("lo exists");
        assert!(lo.index > 0);
        assert_eq!(
            lo.flags & libc::IFF_LOOPBACK as u32,
            libc::IFF_LOOPBACK as u32
        );
        assert!(lo.mtu.is_some_and(|m| m >= 1500), "{lo:?}");
    }

    #[test]
    fn unknown_and_invalid_names_are_none() {
        assert_eq!(lookup("nosuchif0zz"), None);
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("averyveryverylongname"), None);
        assert_eq!(lookup("a\0b"), None);
    }

    #[test]
    fn request_layout() {
        let r = request("eth0");
        assert_eq!(r.len(), 16 + 16 + 12);
        assert_eq!(ne_u32(&r, 0), Some(44));
        assert_eq!(ne_u16(&r, 4), Some(libc::RTM_GETLINK));
        assert_eq!(ne_u16(&r, 32), Some(9));
        assert_eq!(ne_u16(&r, 34), Some(libc::IFLA_IFNAME));
        assert_eq!(&r[36..41], b"eth0\0");
    }

    #[test]
    fn garbage_replies_are_none() {
        assert_eq!(parse_reply(&[]), None);
        assert_eq!(parse_reply(&[0xff; 40]), None);
        let mut short = vec![0u8; 20];
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(parse_reply(&short), None);
    }
}

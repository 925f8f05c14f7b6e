//! The few system calls that neither rustix nor socket2 expose: the socket
//! options `SO_NO_CHECK` (conntrackd's `Checksum off`),
//! `NETLINK_NO_ENOBUFS`/`NETLINK_BROADCAST_SEND_ERROR` (reliable events) and
//! `SO_ATTACH_FILTER` (kernel-space event filtering),
//! `sched_setscheduler` (the `Scheduler` clause), and `recvmmsg` (many
//! kernel events per system call).
//!
//! This is the only crate of the project allowed to use `unsafe`; every
//! function here is a thin, checked wrapper around one call.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub use libc::{SO_NO_CHECK, SOL_SOCKET};

/// `SOL_NETLINK`, the level of netlink-specific socket options.
pub const SOL_NETLINK: i32 = 270;
/// `NETLINK_BROADCAST_SEND_ERROR`.
pub const NETLINK_BROADCAST_SEND_ERROR: i32 = 4;
/// `NETLINK_NO_ENOBUFS`.
pub const NETLINK_NO_ENOBUFS: i32 = 5;
/// `NETLINK_ADD_MEMBERSHIP` / `NETLINK_DROP_MEMBERSHIP`: join or leave a
/// multicast group by number.
pub const NETLINK_ADD_MEMBERSHIP: i32 = 1;
pub const NETLINK_DROP_MEMBERSHIP: i32 = 2;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Sets an integer socket option.
pub fn set_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, a live c_int on the stack.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Attaches a classic BPF program to the socket (`SO_ATTACH_FILTER`).
pub fn attach_filter(fd: BorrowedFd<'_>, program: &[SockFilter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel copies the program and never writes through this pointer.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `SockFilter` is `repr(C)` with the layout of `struct sock_filter`;
    // `prog` points at `program`, which outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Real-time scheduling policies of the `Scheduler` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedPolicy {
    RoundRobin,
    Fifo,
}

/// Sets this process's scheduling policy and priority.
pub fn set_scheduler(policy: SchedPolicy, priority: i32) -> io::Result<()> {
    let policy = match policy {
        SchedPolicy::RoundRobin => libc::SCHED_RR,
        SchedPolicy::Fifo => libc::SCHED_FIFO,
    };
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0
    // is the calling process.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the calling thread under the normal time-sharing policy (Linux
/// schedules threads, and a new thread inherits the real-time policy of
/// the one that started it): for background work of a real-time daemon,
/// which must not take a core from the rest of the system.
pub fn set_thread_time_sharing() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0
    // is the calling thread.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes glibc's malloc serve every allocation of at least `bytes` with its
/// own mapping. Large tables then grow by remapping instead of copying, and
/// their memory goes back to the system when freed; without a fixed
/// threshold glibc raises it after each large free and later big vectors
/// grow inside the heap, leaving copies behind. Returns false if the C
/// library refused (or is not glibc).
pub fn set_mmap_threshold(bytes: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let Ok(bytes) = i32::try_from(bytes) else {
            return false;
        };
        // SAFETY: mallopt only changes allocator parameters; no pointers.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, bytes) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = bytes;
        false
    }
}

/// Most datagrams one [`recv_many`] call takes.
pub const RECV_MANY_MAX: usize = 64;

/// One datagram of a [`recv_many`] call: its length, and whether it was cut
/// short because it did not fit its slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    pub len: usize,
    pub truncated: bool,
}

/// Receives up to `out.len()` (at most [`RECV_MANY_MAX`]) datagrams with one
/// `recvmmsg`, datagram `i` into `buf[i * slot..(i + 1) * slot]`, without
/// waiting (`MSG_DONTWAIT`). Returns how many arrived; errors as `recv`
/// gives them (`WouldBlock` when none is queued). An error met after some
/// datagrams is kept by the kernel for the next call.
pub fn recv_many(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    slot: usize,
    out: &mut [Received],
) -> io::Result<usize> {
    if slot == 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let count = out.len().min(RECV_MANY_MAX).min(buf.len() / slot);
    if count == 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: all-zero iovec and mmsghdr are valid (null pointers, zero lengths).
    let mut iov: [libc::iovec; RECV_MANY_MAX] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; RECV_MANY_MAX] = unsafe { std::mem::zeroed() };
    for (i, chunk) in buf.chunks_exact_mut(slot).take(count).enumerate() {
        iov[i].iov_base = chunk.as_mut_ptr().cast();
        iov[i].iov_len = slot;
        hdrs[i].msg_hdr.msg_iov = &mut iov[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: each of the first `count` headers points at one iovec, which
    // describes a disjoint, writable `slot`-byte part of `buf`; all outlive
    // the call. No address or control buffers are passed.
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            count as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = usize::try_from(rc).unwrap_or(0).min(count);
    for (o, h) in out.iter_mut().zip(&hdrs[..got]) {
        *o = Received {
            len: (h.msg_len as usize).min(slot),
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        };
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn no_check_can_be_set_on_udp() {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        set_int(sock.as_fd(), SOL_SOCKET, SO_NO_CHECK, 1).expect("SO_NO_CHECK");
    }

    #[test]
    fn accept_all_filter_attaches() {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        // BPF_RET | BPF_K, accept 0xffff bytes.
        let prog = [SockFilter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0xffff,
        }];
        attach_filter(sock.as_fd(), &prog).expect("attach");
    }

    #[test]
    fn recv_many_takes_queued_datagrams_in_one_call() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let to = rx.local_addr().expect("addr");
        let mut buf = vec![0u8; 4 * 16];
        let mut out = [Received::default(); 4];
        let empty = recv_many(rx.as_fd(), &mut buf, 16, &mut out).expect_err("nothing queued");
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        tx.send_to(b"one", to).expect("send");
        tx.send_to(&[7u8; 40], to).expect("send");
        tx.send_to(b"three", to).expect("send");
        let mut got = 0;
        // Loopback delivery is immediate, but be patient with a busy host.
        for _ in 0..100 {
            match recv_many(rx.as_fd(), &mut buf[got * 16..], 16, &mut out[got..]) {
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv_many: {e}"),
            }
            if got == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(got, 3);
        assert_eq!(&buf[..3], b"one");
        assert_eq!(
            out[0],
            Received {
                len: 3,
                truncated: false
            }
        );
        assert_eq!(
            out[1],
            Received {
                len: 16,
                truncated: true
            }
        );
        assert_eq!(&buf[32..37], b"three");
        assert!(recv_many(rx.as_fd(), &mut buf, 0, &mut out).is_err());
    }

    #[test]
    fn out_of_range_priority_is_an_error() {
        // Priorities above 99 are invalid for every real-time policy.
        assert!(set_scheduler(SchedPolicy::RoundRobin, 1000).is_err());
    }

    #[test]
    fn bad_level_is_an_error_not_a_crash() {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        assert!(set_int(sock.as_fd(), 9999, 1, 1).is_err());
    }
}

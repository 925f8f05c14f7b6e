//! What the running kernel offers the helpers. The nfnetlink_cthelper
//! subsystem (CONFIG_NF_CT_NETLINK_HELPER) is what makes a helper stub,
//! hence user-space helpers, possible at all: without it the kernel
//! answers any cthelper request with EINVAL, as 1.4.7 reports at
//! start-up ("trying to configure cthelper `ftp': Invalid argument").

use nfq::QueueSocket;
use nfq::cthelper;
use nfq::frame::{NLMSG_DONE, frames};

/// The kernel option behind the cthelper subsystem.
pub const CTHELPER_OPTION: &str = "CONFIG_NF_CT_NETLINK_HELPER";
/// The kernel option that attaches conntracks to queued packets.
pub const GLUE_OPTION: &str = "CONFIG_NETFILTER_NETLINK_GLUE_CT";

/// The answer of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSupport {
    /// The subsystem answered a dump.
    Present,
    /// EINVAL: no such subsystem.
    Absent,
}

/// Asks the kernel of the caller's network namespace for its helper
/// stubs; needs CAP_NET_ADMIN.
pub fn probe_cthelper() -> std::io::Result<KernelSupport> {
    let mut socket = QueueSocket::open()?;
    let seq = socket.take_seq();
    let mut request = Vec::new();
    cthelper::dump_stubs(&mut request, seq);
    socket.send(&request)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (n, _) = rustix::net::recv(&socket, &mut buf, rustix::net::RecvFlags::empty())?;
        for frame in frames(&buf[..n]).flatten() {
            if frame.seq != seq {
                continue;
            }
            if frame.kind == NLMSG_DONE {
                return Ok(KernelSupport::Present);
            }
            match frame.errno() {
                Some(0) => return Ok(KernelSupport::Present),
                Some(22) => return Ok(KernelSupport::Absent),
                Some(errno) => return Err(std::io::Error::from_raw_os_error(errno)),
                None => {}
            }
        }
    }
}

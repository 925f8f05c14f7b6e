//! sd_notify(3) without libsystemd: datagrams to `$NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to the service manager, if we were started by one.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: String,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`; None when not running under systemd.
    pub fn from_env() -> Option<Notifier> {
        let addr = std::env::var("NOTIFY_SOCKET").ok()?;
        if addr.is_empty() {
            return None;
        }
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notifier { socket, addr })
    }

    /// Sends one state string such as `READY=1`.
    pub fn notify(&self, state: &str) -> std::io::Result<()> {
        if let Some(name) = self.addr.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            self.socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            self.socket.send_to(state.as_bytes(), &self.addr)?;
        }
        Ok(())
    }
}

/// Half of `$WATCHDOG_USEC`, the interval at which `WATCHDOG=1` is due,
/// if the watchdog is enabled for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_listening_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier {
            socket: UnixDatagram::unbound().expect("socket"),
            addr: path.display().to_string(),
        };
        notifier.notify("READY=1").expect("send");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");
    }
}

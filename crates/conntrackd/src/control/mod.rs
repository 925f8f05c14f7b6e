//! The UNIX control socket: one 4-byte native-endian request code per
//! connection, a plain-text reply streamed until the daemon closes the
//! connection (docs/control-and-cli.md §3).
//!
//! No client can hold up the daemon: requests are read by one task per
//! client ([`accept`]), at most `UNIX { MaxClients }` clients are served
//! at once (`crate::client_slots`), and replies are written by their own
//! tasks with a deadline ([`reply`]); the main loop only computes them.

pub mod accept;
pub mod reply;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use conntrackd_core::request::Asked;
use tokio::net::{UnixListener, UnixStream};

use crate::client_slots::Slot;

/// Creates the control socket at `path`, replacing a leftover file, with
/// owner-only permissions.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// A well-formed request, for the main loop. The connection closes when
/// `stream` is dropped; the slot is given back when `slot` is.
#[derive(Debug)]
pub struct ControlRequest {
    pub asked: Asked,
    pub stream: UnixStream,
    pub slot: Slot,
}

/// Why the client could not deliver its request.
#[derive(Debug, thiserror::Error)]
#[error("can't connect: is conntrackd running? appropriate permissions?")]
pub struct ConnectError;

/// Client side: sends `asked` to the daemon at `path` and copies the reply
/// to `out` until the daemon closes the connection.
pub fn send_request(path: &Path, asked: Asked, out: &mut dyn Write) -> Result<(), ConnectError> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|_| ConnectError)?;
    stream
        .write_all(&asked.to_bytes())
        .map_err(|_| ConnectError)?;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A reset after a complete reply (e.g. `-k`) is not an error.
            Err(_) => break,
        }
    }
    let _ = out.flush();
    Ok(())
}

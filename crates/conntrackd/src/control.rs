//! The UNIX control socket: one 4-byte native-endian request code per
//! connection, a plain-text reply streamed until the daemon closes the
//! connection (control-and-cli.md §3).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// How long a connected client may take to send its request before the
/// daemon gives up on it (the C daemon would block forever).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

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

/// What the accept task hands to the daemon's main loop.
#[derive(Debug)]
pub enum ControlEvent {
    /// A well-formed request; the reply is written to `stream`, and the
    /// connection closes when `stream` is dropped.
    Request { code: i32, stream: UnixStream },
    /// A client connected but sent no complete request in time.
    ReadFailed,
    /// A code 1.4.7 does not define (1.4.7 ignores these silently).
    UnknownRequest,
    /// A client that is neither root nor the daemon's own user was turned
    /// away (the socket is 0600, so only a loosened mode lets one in).
    Refused { uid: u32 },
}

/// May this peer drive the daemon? Root and the daemon's own user only.
fn allowed(stream: &UnixStream) -> Result<(), u32> {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == 0 || cred.uid() == rustix::process::geteuid().as_raw() => Ok(()),
        Ok(cred) => Err(cred.uid()),
        Err(_) => Err(u32::MAX),
    }
}

/// Accepts clients forever, reading each one's request concurrently so a
/// slow or silent client never stalls the daemon.
pub async fn accept_loop(listener: UnixListener, events: mpsc::Sender<ControlEvent>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let events = events.clone();
        if let Err(uid) = allowed(&stream) {
            let _ = events.send(ControlEvent::Refused { uid }).await;
            continue;
        }
        tokio::task::spawn_local(async move {
            // An unknown request's connection stays open until it is
            // counted, so a client's next request cannot overtake it.
            let (event, hold) = match read_request(stream).await {
                Some((bytes, stream)) => match conntrackd_core::request::parse_request(&bytes) {
                    Ok(code) => (ControlEvent::Request { code, stream }, None),
                    Err(_) => (ControlEvent::UnknownRequest, Some(stream)),
                },
                None => (ControlEvent::ReadFailed, None),
            };
            let _ = events.send(event).await;
            drop(hold);
        });
    }
}

async fn read_request(mut stream: UnixStream) -> Option<([u8; 4], UnixStream)> {
    let mut code = [0u8; 4];
    match tokio::time::timeout(REQUEST_TIMEOUT, stream.read_exact(&mut code)).await {
        Ok(Ok(_)) => Some((code, stream)),
        _ => None,
    }
}

/// Why the client could not deliver its request.
#[derive(Debug, thiserror::Error)]
#[error("can't connect: is conntrackd running? appropriate permissions?")]
pub struct ConnectError;

/// Client side: sends `code` to the daemon at `path` and copies the reply to
/// `out` until the daemon closes the connection.
pub fn send_request(path: &Path, code: i32, out: &mut dyn Write) -> Result<(), ConnectError> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|_| ConnectError)?;
    stream
        .write_all(&code.to_ne_bytes())
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

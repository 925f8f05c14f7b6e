//! Accepting control clients and reading their requests, each in a task
//! of its own, so that a slow or silent client never stalls the daemon.

use std::rc::Rc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::ControlRequest;
use crate::accept_backoff::AcceptBackoff;
use crate::client_slots::{ClientSlots, Slot};
use crate::logger;
use crate::runtime_stats::{ControlCounters, bump};

/// How long a connected client may take to send its request before the
/// daemon gives up on it (the C daemon would block forever).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// May this peer drive the daemon? Root and the daemon's own user only.
fn allowed(stream: &UnixStream) -> Result<(), u32> {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == 0 || cred.uid() == rustix::process::geteuid().as_raw() => Ok(()),
        Ok(cred) => Err(cred.uid()),
        Err(_) => Err(u32::MAX),
    }
}

/// Accepts clients forever and hands their requests to the main loop.
pub async fn accept_loop(
    listener: UnixListener,
    requests: mpsc::Sender<ControlRequest>,
    slots: ClientSlots,
    counters: Rc<ControlCounters>,
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff.succeeded();
                stream
            }
            Err(e) => {
                bump(&counters.accept_errors);
                if !backoff.failing() {
                    logger::warning(&format!(
                        "control socket: accept failed: {e}; retrying with back-off"
                    ));
                }
                tokio::time::sleep(backoff.failed()).await;
                continue;
            }
        };
        if let Err(uid) = allowed(&stream) {
            logger::warning(&format!(
                "refused a control request from uid {uid}: only root may drive conntrackd"
            ));
            continue;
        }
        // Every slot busy writing a reply: close at once.
        let Some(slot) = slots.admit_counted(&counters.silent_dropped, &counters.refused_busy)
        else {
            continue;
        };
        let id = slot.id();
        let task = tokio::task::spawn_local(read_and_forward(
            stream,
            slot,
            requests.clone(),
            Rc::clone(&counters),
        ));
        slots.waited_on_by(id, task.abort_handle());
    }
}

/// Reads one client's request and passes it on; counts what is not one.
/// The counters move before the connection closes, so a client's next
/// request sees them.
async fn read_and_forward(
    mut stream: UnixStream,
    mut slot: Slot,
    requests: mpsc::Sender<ControlRequest>,
    counters: Rc<ControlCounters>,
) {
    let mut code = [0u8; 4];
    match tokio::time::timeout(REQUEST_TIMEOUT, stream.read_exact(&mut code)).await {
        Ok(Ok(_)) => match conntrackd_core::request::parse_request(&code) {
            Ok(asked) => {
                if slot.heard() {
                    let _ = requests
                        .send(ControlRequest {
                            asked,
                            stream,
                            slot,
                        })
                        .await;
                }
            }
            Err(_) => bump(&counters.unknown_request),
        },
        _ => bump(&counters.read_failed),
    }
}

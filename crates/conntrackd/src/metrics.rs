//! The Prometheus endpoint: a minimal HTTP/1.x server of the metrics
//! (`General { Metrics { … } }`, off by default). The exposition text
//! itself comes from the counters' descriptions
//! (`crate::counters::exposition`).

use conntrackd_core::http::{self, Asked};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::accept_backoff::AcceptBackoff;
use crate::client_slots::{ClientSlots, Slot};
use crate::runtime_stats::{MetricsCounters, bump};

/// A scrape waiting for the main loop to take a snapshot.
pub type ScrapeRequest = oneshot::Sender<String>;

/// Binds every configured address; an address that cannot be bound is an
/// error at start-up, not a silent gap in monitoring.
/// The metrics endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("can't listen for metrics on {address}: {source}")]
pub struct BindError {
    address: SocketAddr,
    source: std::io::Error,
}

pub async fn bind(addresses: &[SocketAddr]) -> Result<Vec<TcpListener>, BindError> {
    let mut listeners = Vec::new();
    for &address in addresses {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| BindError { address, source })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Connections served at once, so a flood of clients cannot use up the
/// daemon's file descriptors. When all are taken, a newcomer replaces the
/// oldest connection that has not sent a complete request yet, so idle
/// connections cannot lock out the scraper (see `crate::client_slots`).
const MAX_CLIENTS: usize = 16;

/// Accepts scrapers; each connection is served by its own task, and the
/// main loop only renders a snapshot for those that asked.
pub async fn serve(
    listener: TcpListener,
    scrapes: mpsc::Sender<ScrapeRequest>,
    counters: Rc<MetricsCounters>,
) {
    let slots = ClientSlots::new(MAX_CLIENTS);
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff.succeeded();
                stream
            }
            Err(_) => {
                // Out of descriptors, most likely: let some close first.
                bump(&counters.accept_errors);
                tokio::time::sleep(backoff.failed()).await;
                continue;
            }
        };
        // Every slot busy with a response: close at once.
        let Some(slot) = slots.admit_counted(&counters.silent_dropped, &counters.refused_busy)
        else {
            continue;
        };
        let id = slot.id();
        let task =
            tokio::task::spawn_local(answer(stream, slot, scrapes.clone(), Rc::clone(&counters)));
        slots.waited_on_by(id, task.abort_handle());
    }
}

/// A client gets this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one request and answers it: the head within [`READ_TIMEOUT`] and
/// [`MAX_HEAD`] bytes, the response within [`READ_TIMEOUT`] too.
async fn answer(
    mut stream: TcpStream,
    mut slot: Slot,
    scrapes: mpsc::Sender<ScrapeRequest>,
    counters: Rc<MetricsCounters>,
) {
    let mut head = Vec::with_capacity(1024);
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        loop {
            if http::head_complete(&head) {
                return true;
            }
            if head.len() > http::MAX_HEAD {
                return false;
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or(false);
    // From now on the connection keeps its slot until answered.
    if !slot.heard() {
        return;
    }
    let asked = if complete {
        http::parse_request(&head)
    } else {
        Asked::BadRequest
    };
    match asked {
        Asked::Metrics { .. } => bump(&counters.scrapes),
        // Too slow, or gone before the end of its request (an oversized
        // head is a bad request).
        _ if !complete && head.len() <= http::MAX_HEAD => bump(&counters.incomplete_requests),
        _ => bump(&counters.bad_requests),
    }
    let (status, body, head_only) = match asked {
        Asked::Metrics { head } => {
            let (tx, rx) = oneshot::channel();
            let body = match scrapes.send(tx).await {
                Ok(()) => rx.await.ok(),
                Err(_) => None,
            };
            match body {
                Some(body) => ("200 OK", body, head),
                None => (
                    "503 Service Unavailable",
                    "daemon is shutting down\n".to_string(),
                    head,
                ),
            }
        }
        Asked::NotFound => ("404 Not Found", "try /metrics\n".to_string(), false),
        Asked::MethodNotAllowed => (
            "405 Method Not Allowed",
            "only GET and HEAD\n".to_string(),
            false,
        ),
        Asked::BadRequest => ("400 Bad Request", "malformed request\n".to_string(), false),
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    let _ = tokio::time::timeout(READ_TIMEOUT, stream.write_all(&response)).await;
    let _ = stream.shutdown().await;
}

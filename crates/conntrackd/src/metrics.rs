//! Prometheus metrics: the text exposition format (version 0.0.4) of a
//! [`Snapshot`], and a minimal HTTP/1.x endpoint serving it
//! (`General { Metrics { … } }`, off by default).

use conntrackd_core::http::{self, Asked};
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::accept_backoff::AcceptBackoff;
use crate::client_slots::{Admitted, ClientSlots, Slot};
use crate::node::snapshot::Snapshot;

/// Prefix of every metric name.
const NS: &str = "conntrackd";

/// Writes metric families, each with its HELP and TYPE once and all its
/// samples together, as the format requires.
struct Exposition {
    out: String,
}

type Labels = Vec<(&'static str, String)>;

impl Exposition {
    fn family(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let _ = writeln!(self.out, "# HELP {NS}_{name} {help}");
        let _ = writeln!(self.out, "# TYPE {NS}_{name} {kind}");
        for (labels, value) in samples {
            let _ = write!(self.out, "{NS}_{name}");
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (key, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{key}=\"{}\"", escape(value));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {value}");
        }
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help, [(Vec::new(), value)]);
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
/// The families of the user-space helpers, labelled by helper, family,
/// protocol and queue.
pub fn render_helpers(helpers: &[crate::helpers::HelperStats]) -> String {
    let mut e = Exposition { out: String::new() };
    helper_families(&mut e, helpers);
    e.out
}

fn helper_families(e: &mut Exposition, helpers: &[crate::helpers::HelperStats]) {
    type Pick = fn(&crate::helpers::HelperStats) -> u64;
    let families: [(&str, &str, Pick); 7] = [
        (
            "helper_packets_total",
            "Packets queued to a user-space helper (-s: packets seen).",
            |h| h.packets,
        ),
        (
            "helper_expectations_created_total",
            "Expectations a helper created in the kernel (-s: expectations created).",
            |h| h.expectations_created,
        ),
        (
            "helper_expectations_refused_total",
            "Expectations a helper asked for that the kernel refused (-s: expectations refused).",
            |h| h.expectations_refused,
        ),
        (
            "helper_refused_by_policy_total",
            "Expectations announced that the helper's policy does not allow, such as an FTP PORT naming another host (-s: refused by policy).",
            |h| h.refused_by_policy,
        ),
        (
            "helper_evicted_by_policy_total",
            "Older expectations removed to stay within ExpectMax (-s: evicted by policy).",
            |h| h.evicted_by_policy,
        ),
        (
            "helper_parse_errors_total",
            "Payloads a helper could not read, accepted without an expectation (-s: parse errors).",
            |h| h.parse_errors,
        ),
        (
            "helper_queue_drops_total",
            "Packets of a helper's queue the kernel could not queue or deliver (-s: queue drops).",
            |h| h.queue_drops,
        ),
    ];
    for (name, help, pick) in families {
        e.family(
            name,
            "counter",
            help,
            helpers.iter().map(|h| {
                (
                    vec![
                        ("helper", h.name.to_owned()),
                        ("family", h.family.to_owned()),
                        ("protocol", h.protocol.to_owned()),
                        ("queue", h.queue.to_string()),
                    ],
                    pick(h) as f64,
                )
            }),
        );
    }
}

/// The exposition text of a snapshot. Names follow the Prometheus
/// conventions: `_total` counters, base units, `snake_case`.
pub fn render(s: &Snapshot) -> String {
    let mut e = Exposition { out: String::new() };
    helper_families(&mut e, &s.helpers);
    e.family(
        "info",
        "gauge",
        "Constant 1, labelled with the daemon's version and mode.",
        [(
            vec![
                ("version", s.version.to_string()),
                ("mode", s.mode.to_string()),
            ],
            1.0,
        )],
    );
    e.one(
        "uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        s.uptime_seconds as f64,
    );

    type CacheField = fn(&crate::node::snapshot::CacheStats) -> u64;
    let cache_families: [(&str, &str, &str, CacheField); 8] = [
        (
            "cache_objects",
            "gauge",
            "Objects in the cache (-s: current active connections).",
            |c| c.active,
        ),
        (
            "cache_created_total",
            "counter",
            "Objects added to the cache (-s: connections created).",
            |c| c.created,
        ),
        (
            "cache_create_failed_total",
            "counter",
            "Objects the cache refused (-s: connections created ... failed).",
            |c| c.create_failed,
        ),
        (
            "cache_full_total",
            "counter",
            "Objects refused because HashLimit was reached (-s cache: no space left in cache).",
            |c| c.no_space,
        ),
        (
            "cache_updated_total",
            "counter",
            "Objects updated in the cache (-s: connections updated).",
            |c| c.updated,
        ),
        (
            "cache_update_failed_total",
            "counter",
            "Failed updates (-s: connections updated ... failed).",
            |c| c.update_failed,
        ),
        (
            "cache_destroyed_total",
            "counter",
            "Objects removed from the cache (-s: connections destroyed).",
            |c| c.destroyed,
        ),
        (
            "cache_destroy_failed_total",
            "counter",
            "Failed removals (-s: connections destroyed ... failed).",
            |c| c.destroy_failed,
        ),
    ];
    for (name, kind, help, field) in cache_families {
        let samples = s.caches.iter().map(|c| {
            (
                vec![("cache", c.name.to_string()), ("kind", c.kind.to_string())],
                field(c) as f64,
            )
        });
        e.family(name, kind, help, samples);
    }
    if s.mode != "idle" {
        e.one(
            "traffic_bytes_total",
            "counter",
            "Bytes of destroyed flows with accounting (-s: traffic processed).",
            s.traffic.bytes as f64,
        );
        e.one(
            "traffic_packets_total",
            "counter",
            "Packets of destroyed flows with accounting (-s: traffic processed).",
            s.traffic.packets as f64,
        );
    }

    let n = &s.netlink;
    for (name, help, value) in [
        (
            "netlink_events_received_total",
            "Kernel conntrack events received (-s runtime: events received).",
            n.events_received,
        ),
        (
            "netlink_events_filtered_total",
            "Kernel events dropped by the filter (-s runtime: events filtered).",
            n.events_filtered,
        ),
        (
            "netlink_events_unknown_type_total",
            "Netlink messages of an unknown type (-s runtime: events unknown type).",
            n.events_unknown_type,
        ),
        (
            "netlink_catch_event_failed_total",
            "Events that could not be decoded (-s runtime: catch event failed).",
            n.catch_event_failed,
        ),
        (
            "netlink_dump_unknown_type_total",
            "Dump messages of an unknown type (-s runtime: dump unknown type).",
            n.dump_unknown_type,
        ),
        (
            "netlink_overruns_total",
            "Event socket overruns: events lost and repaired by a resync (-s runtime: netlink overrun).",
            n.overruns,
        ),
        (
            "netlink_kernel_flushes_total",
            "Kernel table flushes (-s runtime: flush kernel table).",
            n.kernel_flushes,
        ),
        (
            "netlink_kernel_resyncs_total",
            "Resyncs with the kernel table (-s runtime: resync with kernel table).",
            n.kernel_resyncs,
        ),
    ] {
        e.one(name, "counter", help, value as f64);
    }
    e.one(
        "netlink_buffer_bytes",
        "gauge",
        "Size of the netlink event socket buffer (-s runtime: current buffer size).",
        n.buffer_bytes as f64,
    );
    e.one(
        "control_read_failed_total",
        "counter",
        "Control-socket clients that sent no complete request (-s runtime: local read failed).",
        s.control.read_failed as f64,
    );
    e.one(
        "control_unknown_requests_total",
        "counter",
        "Control requests with an unknown code (-s runtime: local unknown request).",
        s.control.unknown_requests as f64,
    );

    for (name, help, value) in [
        (
            "control_replies_abandoned_total",
            "Control replies given up because the client read nothing for ReplyTimeout (-s runtime: replies abandoned).",
            s.control.replies_abandoned,
        ),
        (
            "control_clients_refused_total",
            "Control clients closed at once because every MaxClients slot was busy with a reply (-s runtime: clients refused (busy)).",
            s.control.clients_refused,
        ),
        (
            "control_silent_clients_dropped_total",
            "Control clients closed before sending a request, to make room for a newcomer (-s runtime: silent clients dropped).",
            s.control.silent_clients_dropped,
        ),
        (
            "control_accept_errors_total",
            "Failed accepts on the control socket, such as EMFILE (-s runtime: accept errors).",
            s.control.accept_errors,
        ),
    ] {
        e.one(name, "counter", help, value as f64);
    }

    if let Some(sync) = &s.sync {
        let r = &sync.received;
        e.family(
            "sync_info",
            "gauge",
            "Constant 1, labelled with the sync protocol and whether authentication is on.",
            [(
                vec![
                    ("protocol", sync.protocol.to_string()),
                    ("authentication", sync.authentication.to_string()),
                ],
                1.0,
            )],
        );
        e.one(
            "sync_malformed_messages_total",
            "counter",
            "Malformed messages received, all reasons (-s network: Malformed messages).",
            r.malformed as f64,
        );
        e.family(
            "sync_malformed_by_reason_total",
            "counter",
            "Malformed messages received, by reason (-s network).",
            [
                ("version", r.wrong_version),
                ("header", r.malformed_header),
                ("payload", r.malformed_payload),
                ("type", r.bad_type),
                ("truncated", r.truncated),
                ("size", r.bad_size),
            ]
            .map(|(reason, v)| (vec![("reason", reason.to_string())], v as f64)),
        );
        e.one(
            "sync_messages_lost_total",
            "counter",
            "Messages missing from the peers' sequence (-s network: Packets lost).",
            r.lost as f64,
        );
        e.one(
            "sync_messages_before_total",
            "counter",
            "Messages with an old sequence number (-s network: Packets before).",
            r.before as f64,
        );
        e.one(
            "sync_messages_applied_total",
            "counter",
            "Received messages applied to the caches or the kernel.",
            r.applied as f64,
        );
        e.one(
            "sync_auth_failures_total",
            "counter",
            "Envelopes refused by authentication, every reason (-s network: Auth failures).",
            r.auth_failures as f64,
        );
        if let Some(auth) = &sync.auth {
            e.family(
                "sync_auth_refused_total",
                "counter",
                "Envelopes refused by authentication, by reason (-s network: authentication).",
                auth.refused
                    .iter()
                    .map(|(reason, n)| (vec![("reason", reason.to_string())], *n as f64)),
            );
            e.one(
                "sync_auth_sessions",
                "gauge",
                "Peer sessions verified by a handshake now.",
                auth.verified_now as f64,
            );
            e.one(
                "sync_auth_sessions_verified_total",
                "counter",
                "Peer sessions verified by a handshake (starts and restarts of peers, and of this node).",
                auth.verified as f64,
            );
            e.one(
                "sync_auth_held_envelopes",
                "gauge",
                "Envelopes of sessions not yet verified, held for a handshake.",
                auth.held_now as f64,
            );
            e.one(
                "sync_auth_handshakes_sent_total",
                "counter",
                "Handshake envelopes sent.",
                auth.handshakes_sent as f64,
            );
        }
        e.one(
            "sync_peers_evicted_total",
            "counter",
            "Peers forgotten to make room for a new sender while 64 were tracked.",
            r.peers_evicted as f64,
        );
        if let Some(age) = sync.seconds_since_last_message {
            e.one(
                "sync_last_message_age_seconds",
                "gauge",
                "Seconds since the last well-formed message from a peer.",
                age,
            );
        }
        let q = &sync.queues;
        let mut lengths = vec![
            (vec![("queue", "transmit".to_string())], q.transmit as f64),
            (vec![("queue", "error".to_string())], q.error_queue as f64),
        ];
        if q.resend_max.is_some() {
            lengths.push((vec![("queue", "resend".to_string())], q.resend as f64));
        }
        e.family(
            "sync_queue_length",
            "gauge",
            "Messages waiting in a queue (-s queue: current elements); resend = sent, not yet acknowledged.",
            lengths,
        );
        let mut capacity = vec![(
            vec![("queue", "error".to_string())],
            q.error_queue_max as f64,
        )];
        let mut dropped = vec![(
            vec![("queue", "error".to_string())],
            q.error_queue_dropped as f64,
        )];
        if let Some(max) = q.resend_max {
            capacity.push((vec![("queue", "resend".to_string())], max as f64));
            dropped.push((
                vec![("queue", "resend".to_string())],
                q.resend_dropped as f64,
            ));
        }
        e.family(
            "sync_queue_capacity",
            "gauge",
            "Maximum elements of a queue (-s queue: maximum elements).",
            capacity,
        );
        e.family(
            "sync_queue_dropped_total",
            "counter",
            "Messages dropped because a queue was full (-s queue: not enough space errors).",
            dropped,
        );

        type ChannelField = fn(&crate::node::snapshot::Channel) -> f64;
        let channel_families: [(&str, &str, &str, ChannelField); 9] = [
            (
                "sync_channel_up",
                "gauge",
                "1 if the channel's device is RUNNING, 0 if DOWN or NO-CARRIER (-s link: status).",
                |c| f64::from(u8::from(c.status == "RUNNING")),
            ),
            (
                "sync_channel_active",
                "gauge",
                "1 for the channel that sends (-s link: role=ACTIVE), 0 for backups.",
                |c| f64::from(u8::from(c.active)),
            ),
            (
                "sync_channel_sent_bytes_total",
                "counter",
                "Bytes sent on the channel (-s link: Bytes sent).",
                |c| c.bytes_sent as f64,
            ),
            (
                "sync_channel_received_bytes_total",
                "counter",
                "Bytes received on the channel (-s link: Bytes recv).",
                |c| c.bytes_received as f64,
            ),
            (
                "sync_channel_sent_packets_total",
                "counter",
                "Datagrams sent on the channel (-s link: Pckts sent).",
                |c| c.packets_sent as f64,
            ),
            (
                "sync_channel_received_packets_total",
                "counter",
                "Datagrams received on the channel (-s link: Pckts recv).",
                |c| c.packets_received as f64,
            ),
            (
                "sync_channel_send_errors_total",
                "counter",
                "Send errors on the channel (-s link: Error send).",
                |c| c.send_errors as f64,
            ),
            (
                "sync_channel_foreign_connections_total",
                "counter",
                "TCP connections refused because they did not come from the configured peer address.",
                |c| c.foreign_connections as f64,
            ),
            (
                "sync_channel_receive_errors_total",
                "counter",
                "Receive errors on the channel (-s link: Error recv).",
                |c| c.receive_errors as f64,
            ),
        ];
        for (name, kind, help, field) in channel_families {
            let samples = sync.channels.iter().map(|c| {
                (
                    vec![
                        ("channel", c.index.to_string()),
                        ("transport", c.transport.to_string()),
                        ("device", c.device.clone()),
                    ],
                    field(c),
                )
            });
            e.family(name, kind, help, samples);
        }
        if let Some(b) = &sync.bypass {
            e.family(
                "bypass_events_total",
                "counter",
                "Events sent straight to the peers without an internal cache (-s: internal bypass).",
                [("new", b.new), ("updated", b.updated), ("destroyed", b.destroyed)]
                    .map(|(event, v)| (vec![("event", event.to_string())], v as f64)),
            );
        }
        if let Some(i) = &sync.inject {
            e.family(
                "inject_total",
                "counter",
                "Peer messages written straight into the kernel (-s: external inject).",
                [
                    ("create", "ok", i.created),
                    ("create", "failed", i.create_failed),
                    ("update", "ok", i.updated),
                    ("update", "failed", i.update_failed),
                    ("destroy", "ok", i.destroyed),
                    ("destroy", "failed", i.destroy_failed),
                ]
                .map(|(op, result, v)| {
                    (
                        vec![
                            ("operation", op.to_string()),
                            ("result", result.to_string()),
                        ],
                        v as f64,
                    )
                }),
            );
        }
        if let Some(commit) = &sync.last_commit {
            e.one(
                "commit_duration_seconds",
                "gauge",
                "How long the last commit (-c) took.",
                commit.seconds,
            );
            e.family(
                "commit_entries",
                "gauge",
                "Entries the last commit wrote into the kernel, and those it could not.",
                [("committed", commit.committed), ("failed", commit.failed)]
                    .map(|(result, v)| (vec![("result", result.to_string())], v as f64)),
            );
        }
    }
    e.out
}

/// A scrape waiting for the main loop to take a snapshot.
pub type ScrapeRequest = oneshot::Sender<String>;

/// Binds every configured address; an address that cannot be bound is an
/// error at start-up, not a silent gap in monitoring.
pub async fn bind(addresses: &[SocketAddr]) -> Result<Vec<TcpListener>, String> {
    let mut listeners = Vec::new();
    for address in addresses {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| format!("can't listen for metrics on {address}: {e}"))?;
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
pub async fn serve(listener: TcpListener, scrapes: mpsc::Sender<ScrapeRequest>) {
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
                tokio::time::sleep(backoff.failed()).await;
                continue;
            }
        };
        // Every slot busy with a response: close at once.
        let Ok(Admitted { slot, .. }) = slots.admit() else {
            continue;
        };
        let id = slot.id();
        let task = tokio::task::spawn_local(answer(stream, slot, scrapes.clone()));
        slots.waited_on_by(id, task.abort_handle());
    }
}

/// A client gets this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one request and answers it: the head within [`READ_TIMEOUT`] and
/// [`MAX_HEAD`] bytes, the response within [`READ_TIMEOUT`] too.
async fn answer(mut stream: TcpStream, mut slot: Slot, scrapes: mpsc::Sender<ScrapeRequest>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

//! The reading of every counter the daemon keeps, each described once
//! (see `describe.rs`): the `--json` document of `-s`, the Prometheus
//! metrics, and the tables of docs/json.md and docs/metrics.md all come
//! from these declarations. Filled in by `Node::snapshot`.
//!
//! Adding a counter: count it where it happens, declare it in the struct
//! it belongs to here, fill it in `Node::snapshot`, and run
//! `cargo run -p docgen`.

use std::collections::BTreeMap;

crate::described! {
    /// One reading of the daemon's counters.
    pub struct Snapshot {
        /// Our version.
        info("info", "version", help = "Constant 1, labelled with the daemon's version and mode.")
        version: &'static str,
        /// `sync`, `stats` or `idle`.
        info("info", "mode") mode: &'static str,
        /// Seconds since the daemon started.
        #[shown = "-s runtime: daemon uptime"]
        gauge("uptime_seconds") uptime_seconds: u64,
        /// One object per cache.
        part(CacheStats) caches: Vec<CacheStats>,
        /// Traffic of destroyed flows, with accounting on (null when idle).
        part(Traffic) traffic: Option<Traffic>,
        /// The kernel event socket.
        part(Netlink) netlink: Netlink,
        /// The control socket.
        part(Control) control: Control,
        /// The Prometheus endpoint (null when `Metrics` is off).
        part(MetricsEndpoint) metrics_endpoint: Option<MetricsEndpoint>,
        /// Sync mode only.
        part(SyncStats) sync: Option<SyncStats>,
        /// The user-space helpers, one per `Type` (empty without a
        /// `Helper` section).
        part(HelperStats) helpers: Vec<HelperStats>,
    }
}

crate::described! {
    /// One cache (`-s` `cache NAME:` block, `-s cache`, `-s expect`).
    pub struct CacheStats {
        /// `internal`, `external` or `stats`.
        label("cache") name: &'static str,
        /// `conntrack` or `expect`.
        label("kind") kind: &'static str,
        /// Objects in the cache.
        #[shown = "-s: current active connections"]
        gauge("cache_objects") active: u64,
        /// Objects added to the cache.
        #[shown = "-s: connections created"]
        counter("cache_created_total") created: u64,
        /// Objects the cache refused.
        #[shown = "-s: connections created ... failed"]
        counter("cache_create_failed_total") create_failed: u64,
        /// Objects updated in the cache.
        #[shown = "-s: connections updated"]
        counter("cache_updated_total") updated: u64,
        /// Failed updates.
        #[shown = "-s: connections updated ... failed"]
        counter("cache_update_failed_total") update_failed: u64,
        /// Objects removed from the cache.
        #[shown = "-s: connections destroyed"]
        counter("cache_destroyed_total") destroyed: u64,
        /// Failed removals.
        #[shown = "-s: connections destroyed ... failed"]
        counter("cache_destroy_failed_total") destroy_failed: u64,
        /// Objects refused because `HashLimit` was reached.
        #[shown = "-s cache: no space left in cache"]
        counter("cache_full_total") no_space: u64,
    }
}

crate::described! {
    /// `traffic processed:`.
    pub struct Traffic {
        /// Bytes of destroyed flows, with accounting on.
        #[shown = "-s: traffic processed ... Bytes"]
        counter("traffic_bytes_total") bytes: u64,
        /// Packets of destroyed flows, with accounting on.
        #[shown = "-s: traffic processed ... Pckts"]
        counter("traffic_packets_total") packets: u64,
    }
}

crate::described! {
    /// `-s runtime` `netlink stats:`.
    pub struct Netlink {
        /// Kernel conntrack events read.
        #[shown = "-s runtime: events received"]
        counter("netlink_events_received_total") events_received: u64,
        /// Kernel events the user-space filter dropped.
        #[shown = "-s runtime: events filtered"]
        counter("netlink_events_filtered_total") events_filtered: u64,
        /// Netlink messages of an unknown type.
        #[shown = "-s runtime: events unknown type"]
        counter("netlink_events_unknown_type_total") events_unknown_type: u64,
        /// Events that could not be decoded.
        #[shown = "-s runtime: catch event failed"]
        counter("netlink_catch_event_failed_total") catch_event_failed: u64,
        /// Dump messages of an unknown type.
        #[shown = "-s runtime: dump unknown type"]
        counter("netlink_dump_unknown_type_total") dump_unknown_type: u64,
        /// Event socket overruns: events were lost and a resync repaired
        /// them.
        #[shown = "-s runtime: netlink overrun"]
        counter("netlink_overruns_total") overruns: u64,
        /// Kernel table flushes (`-F`, `-t`).
        #[shown = "-s runtime: flush kernel table"]
        counter("netlink_kernel_flushes_total") kernel_flushes: u64,
        /// Resyncs with the kernel table (after overruns, in polling mode).
        #[shown = "-s runtime: resync with kernel table"]
        counter("netlink_kernel_resyncs_total") kernel_resyncs: u64,
        /// Size of the event socket buffer; it doubles after an overrun up
        /// to `NetlinkBufferSizeMaxGrowth`.
        #[shown = "-s runtime: current buffer size (in bytes)"]
        gauge("netlink_buffer_bytes") buffer_bytes: u64,
    }
}

crate::described! {
    /// What happened to control-socket clients (`-s runtime`).
    pub struct Control {
        /// Clients that sent no complete request.
        #[shown = "-s runtime: local read failed"]
        counter("control_read_failed_total") read_failed: u64,
        /// Requests with a code 1.4.7 does not define.
        #[shown = "-s runtime: local unknown request"]
        counter("control_unknown_requests_total") unknown_requests: u64,
        /// Replies given up because the client read nothing of them for
        /// `ReplyTimeout` seconds.
        #[shown = "-s runtime: control socket: ... replies abandoned"]
        counter("control_replies_abandoned_total") replies_abandoned: u64,
        /// Clients closed at once because every `MaxClients` slot was busy
        /// writing a reply.
        #[shown = "-s runtime: control socket: ... clients refused (busy)"]
        counter("control_clients_refused_total") clients_refused: u64,
        /// Clients closed before they sent a request, to make room for a
        /// newcomer.
        #[shown = "-s runtime: control socket: ... silent clients dropped"]
        counter("control_silent_clients_dropped_total") silent_clients_dropped: u64,
        /// Failed accepts on the control socket, such as EMFILE; retried
        /// after a pause that grows to 1 s.
        #[shown = "-s runtime: control socket: ... accept errors"]
        counter("control_accept_errors_total") accept_errors: u64,
    }
}

crate::described! {
    /// What happened to clients of the Prometheus endpoint.
    pub struct MetricsEndpoint {
        /// Scrapes answered with the metrics (`GET` or `HEAD /metrics`).
        counter("metrics_scrapes_total") scrapes: u64,
        /// Requests answered with an error: malformed (400), another
        /// path (404) or another method (405).
        counter("metrics_bad_requests_total") bad_requests: u64,
        /// Clients that sent no complete request within 5 s, or closed
        /// before they did.
        counter("metrics_incomplete_requests_total") incomplete_requests: u64,
        /// Clients closed at once because every slot (16) was busy
        /// answering.
        counter("metrics_clients_refused_total") clients_refused: u64,
        /// Clients closed before they sent a request, to make room for a
        /// newcomer.
        counter("metrics_silent_clients_dropped_total") silent_clients_dropped: u64,
        /// Failed accepts on the endpoint, such as EMFILE; retried after a
        /// pause that grows to 1 s.
        counter("metrics_accept_errors_total") accept_errors: u64,
    }
}

crate::described! {
    /// Sync mode.
    pub struct SyncStats {
        /// `ftfw`, `alarm` or `notrack`.
        info("sync_info", "protocol", help = "Constant 1, labelled with the sync protocol and whether authentication is on.")
        protocol: &'static str,
        /// `Authentication` is on.
        info("sync_info", "authentication") authentication: bool,
        /// What arrived on the sync link (`-s network`).
        part(Received) received: Received,
        /// `Authentication` on: what it refused and what its handshakes did.
        part(AuthStats) auth: Option<AuthStats>,
        /// `-s queue`.
        part(Queues) queues: Queues,
        /// One per channel, in configuration order.
        part(Channel) channels: Vec<Channel>,
        /// NOTRACK with `DisableInternalCache`.
        part(Bypass) bypass: Option<Bypass>,
        /// `DisableExternalCache`.
        part(InjectCounters) inject: Option<InjectCounters>,
        /// The last `-c`, if one ran.
        part(CommitReport) last_commit: Option<CommitReport>,
        /// Seconds since the last well-formed message from a peer (null
        /// before the first).
        gauge("sync_last_message_age_seconds") seconds_since_last_message: Option<f64>,
        /// This node holds the state of every live peer (`conntrackd
        /// --synced`, docs/readiness.md).
        gauge("sync_synced") synced: bool,
        /// Peers heard within the last 5 s.
        gauge("sync_peers", state = "live", help = "Peers heard within 5 s (live), and those whose state has not all arrived (waiting).")
        live_peers: u64,
        /// Live peers whose state has not all arrived yet.
        gauge("sync_peers", state = "waiting") peers_waiting: u64,
    }
}

crate::described! {
    /// What arrived on the sync link (`-s network`).
    pub struct Received {
        /// Malformed messages received, all reasons.
        #[shown = "-s network: Malformed messages"]
        counter("sync_malformed_messages_total") malformed: u64,
        /// Of a protocol version other than 0.
        #[shown = "-s network: Wrong protocol version"]
        counter("sync_malformed_by_reason_total", reason = "version", help = "Malformed messages received, by reason.")
        wrong_version: u64,
        /// With a malformed header, or a message the mode does not expect.
        #[shown = "-s network: Malformed header"]
        counter("sync_malformed_by_reason_total", reason = "header") malformed_header: u64,
        /// With a malformed payload.
        #[shown = "-s network: Malformed payload"]
        counter("sync_malformed_by_reason_total", reason = "payload") malformed_payload: u64,
        /// Of an unknown type.
        #[shown = "-s network: Bad message type"]
        counter("sync_malformed_by_reason_total", reason = "type") bad_type: u64,
        /// Cut short.
        #[shown = "-s network: Truncated message"]
        counter("sync_malformed_by_reason_total", reason = "truncated") truncated: u64,
        /// With a length field that does not fit.
        #[shown = "-s network: Bad message size"]
        counter("sync_malformed_by_reason_total", reason = "size") bad_size: u64,
        /// Messages missing from a peer's sequence.
        #[shown = "-s network: Packets lost"]
        counter("sync_messages_lost_total") lost: u64,
        /// Messages with an old sequence number.
        #[shown = "-s network: Packets before"]
        counter("sync_messages_before_total") before: u64,
        /// Received messages applied to a cache or the kernel.
        counter("sync_messages_applied_total") applied: u64,
        /// Envelopes refused by `Authentication`, every reason.
        #[shown = "-s network: Auth failures"]
        counter("sync_auth_failures_total") auth_failures: u64,
        /// Peers forgotten to make room for a new sender while 64 were
        /// tracked. Real clusters have a handful of nodes: without
        /// `Authentication`, a rising count means forged source addresses
        /// on the sync link.
        counter("sync_peers_evicted_total") peers_evicted: u64,
    }
}

crate::described! {
    /// The `authentication:` block of `-s network`.
    pub struct AuthStats {
        /// Envelopes refused, by reason: `not_envelope`, `unknown_key`,
        /// `unencrypted`, `bad_tag`, `reflected`, `replayed`, `stale`,
        /// `unverified` (docs/authentication.md, "Counters").
        #[shown = "-s network: authentication:"]
        map("sync_auth_refused_total", counter, "reason", help = "Envelopes refused by authentication, by reason.")
        refused: BTreeMap<&'static str, u64>,
        /// Envelopes of sessions not verified yet, held for a handshake,
        /// in all.
        counter("sync_auth_held_total") held: u64,
        /// Envelopes held now (normally 0 but for a moment after a start).
        #[shown = "-s network: Held envelopes"]
        gauge("sync_auth_held_envelopes") held_now: u64,
        /// Peer sessions verified by a handshake: each start or restart of
        /// a peer, and every peer after this node restarted.
        #[shown = "-s network: Verified in all"]
        counter("sync_auth_sessions_verified_total") verified: u64,
        /// Peer sessions verified now.
        #[shown = "-s network: Verified now"]
        gauge("sync_auth_sessions") verified_now: u64,
        /// Handshake envelopes sent.
        #[shown = "-s network: Handshakes sent"]
        counter("sync_auth_handshakes_sent_total") handshakes_sent: u64,
    }
}

crate::described! {
    /// `-s queue`.
    pub struct Queues {
        /// Messages waiting to be sent.
        #[shown = "-s queue: queue txqueue: ... current elements"]
        gauge("sync_queue_length", queue = "transmit", help = "Messages waiting in a queue; resend = sent, not yet acknowledged.")
        transmit: u64,
        /// FTFW: messages sent and not yet acknowledged (null otherwise).
        #[shown = "-s queue: queue rsqueue: ... current elements"]
        gauge("sync_queue_length", queue = "resend") resend: Option<u64>,
        /// FTFW: `ResendQueueSize`.
        #[shown = "-s queue: queue rsqueue: ... maximum elements"]
        gauge("sync_queue_capacity", queue = "resend", help = "Maximum elements of a queue.")
        resend_max: Option<u64>,
        /// FTFW: entries dropped because the resend queue was full.
        #[shown = "-s queue: queue rsqueue: ... not enough space errors"]
        counter("sync_queue_dropped_total", queue = "resend", help = "Messages dropped because a queue was full.")
        resend_dropped: Option<u64>,
        /// Control messages queued.
        #[shown = "-s queue: allocated queue nodes"]
        plain control_nodes: u64,
        /// TCP: batches waiting for a slow peer.
        #[shown = "-s queue: queue errorq: ... current elements"]
        gauge("sync_queue_length", queue = "error") error_queue: u64,
        /// `ErrorQueueLength`.
        #[shown = "-s queue: queue errorq: ... maximum elements"]
        gauge("sync_queue_capacity", queue = "error") error_queue_max: u64,
        /// Batches dropped because the error queue was full.
        #[shown = "-s queue: queue errorq: ... not enough space errors"]
        counter("sync_queue_dropped_total", queue = "error") error_queue_dropped: u64,
    }
}

crate::described! {
    /// One `Multicast`, `UDP` or `TCP` channel (`-s link`).
    pub struct Channel {
        /// Position in the configuration (0 first).
        label("channel") index: usize,
        /// `multicast`, `udp` or `tcp`.
        label("transport") transport: &'static str,
        /// `Interface`.
        label("device") device: String,
        /// `RUNNING`, `NO-CARRIER` or `DOWN`.
        plain status: &'static str,
        /// The channel's device is RUNNING (not DOWN or NO-CARRIER).
        #[shown = "-s link: status="]
        gauge("sync_channel_up") up: bool,
        /// The channel that sends (role ACTIVE); the others are backups.
        #[shown = "-s link: role="]
        gauge("sync_channel_active") active: bool,
        /// Bytes sent on the channel.
        #[shown = "-s link: Bytes sent"]
        counter("sync_channel_sent_bytes_total") bytes_sent: u64,
        /// Bytes received on the channel.
        #[shown = "-s link: Bytes recv"]
        counter("sync_channel_received_bytes_total") bytes_received: u64,
        /// Datagrams sent on the channel.
        #[shown = "-s link: Pckts sent"]
        counter("sync_channel_sent_packets_total") packets_sent: u64,
        /// Datagrams received on the channel.
        #[shown = "-s link: Pckts recv"]
        counter("sync_channel_received_packets_total") packets_received: u64,
        /// Send errors on the channel.
        #[shown = "-s link: Error send"]
        counter("sync_channel_send_errors_total") send_errors: u64,
        /// Receive errors on the channel.
        #[shown = "-s link: Error recv"]
        counter("sync_channel_receive_errors_total") receive_errors: u64,
        /// TCP: connections refused because they did not come from the
        /// configured peer address.
        #[shown = "-s network: TCP connections refused (not from the peer)"]
        counter("sync_channel_foreign_connections_total") foreign_connections: u64,
    }
}

crate::described! {
    /// `internal bypass:`: events sent straight to the peers without an
    /// internal cache.
    pub struct Bypass {
        /// New flows.
        #[shown = "-s: internal bypass ... connections new"]
        counter("bypass_events_total", event = "new", help = "Events sent straight to the peers without an internal cache.")
        new: u64,
        /// Updated flows.
        #[shown = "-s: internal bypass ... connections updated"]
        counter("bypass_events_total", event = "updated") updated: u64,
        /// Destroyed flows.
        #[shown = "-s: internal bypass ... connections destroyed"]
        counter("bypass_events_total", event = "destroyed") destroyed: u64,
    }
}

crate::described! {
    /// `external inject:`: peer messages written straight into the kernel.
    #[derive(Default, Copy, PartialEq, Eq)]
    pub struct InjectCounters {
        /// Flows created.
        #[shown = "-s: external inject ... connections created"]
        counter("inject_total", operation = "create", result = "ok", help = "Peer messages written straight into the kernel.")
        created: u64,
        /// Creations the kernel refused.
        #[shown = "-s: external inject ... connections created ... failed"]
        counter("inject_total", operation = "create", result = "failed") create_failed: u64,
        /// Flows updated.
        #[shown = "-s: external inject ... connections updated"]
        counter("inject_total", operation = "update", result = "ok") updated: u64,
        /// Updates the kernel refused.
        #[shown = "-s: external inject ... connections updated ... failed"]
        counter("inject_total", operation = "update", result = "failed") update_failed: u64,
        /// Flows deleted.
        #[shown = "-s: external inject ... connections destroyed"]
        counter("inject_total", operation = "destroy", result = "ok") destroyed: u64,
        /// Deletions the kernel refused.
        #[shown = "-s: external inject ... connections destroyed ... failed"]
        counter("inject_total", operation = "destroy", result = "failed") destroy_failed: u64,
    }
}

crate::described! {
    /// What the last commit (`-c`) did.
    #[derive(Copy, PartialEq)]
    pub struct CommitReport {
        /// How long the last commit took.
        gauge("commit_duration_seconds") seconds: f64,
        /// Entries the last commit wrote into the kernel.
        gauge("commit_entries", result = "committed", help = "Entries the last commit wrote into the kernel, and those it could not.")
        committed: u64,
        /// Entries the last commit could not write.
        gauge("commit_entries", result = "failed") failed: u64,
    }
}

crate::described! {
    /// One user-space helper (`-s` `user-space helpers:`).
    pub struct HelperStats {
        /// The helper (`ftp`, `rpc`, ...).
        label("helper") name: &'static str,
        /// `inet` or `inet6`.
        label("family") family: &'static str,
        /// `tcp` or `udp`.
        label("protocol") protocol: &'static str,
        /// `QueueNum`.
        label("queue") queue: u16,
        /// Packets queued to the helper.
        #[shown = "-s: user-space helpers: ... packets seen"]
        counter("helper_packets_total") packets: u64,
        /// Expectations the helper created in the kernel.
        #[shown = "-s: user-space helpers: ... expectations created"]
        counter("helper_expectations_created_total") expectations_created: u64,
        /// Expectations the helper asked for that the kernel refused.
        #[shown = "-s: user-space helpers: ... expectations refused"]
        counter("helper_expectations_refused_total") expectations_refused: u64,
        /// Expectations announced that the helper's policy does not allow,
        /// such as an FTP PORT naming another host.
        #[shown = "-s: user-space helpers: ... refused by policy"]
        counter("helper_refused_by_policy_total") refused_by_policy: u64,
        /// Older expectations removed to stay within `ExpectMax`.
        #[shown = "-s: user-space helpers: ... evicted by policy"]
        counter("helper_evicted_by_policy_total") evicted_by_policy: u64,
        /// Payloads the helper could not read, accepted without an
        /// expectation.
        #[shown = "-s: user-space helpers: ... parse errors"]
        counter("helper_parse_errors_total") parse_errors: u64,
        /// Packets of the helper's queue the kernel could not queue or
        /// deliver.
        #[shown = "-s: user-space helpers: ... queue drops"]
        counter("helper_queue_drops_total") queue_drops: u64,
    }
}

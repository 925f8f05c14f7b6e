//! The documented configuration reference: every section and every key the
//! parser accepts, with its value syntax, default and a short description.
//!
//! This table is where a key is declared. From it come:
//!
//! - the parser's key list of each block (`parser::key_block!`, evaluated at
//!   compile time): what the block accepts, where it resumes after an
//!   error and what "did you mean" suggests. An item that is not a key
//!   documented for its block is refused before the block's match arms
//!   see it, so the parser accepts nothing undocumented;
//! - the scanner's keywords (`lexer::KEYWORDS`): the keys of 1.4.7's
//!   grammar ([`Key::in_147_grammar`]) plus a few grammar words;
//! - `conntrackd.conf(5)`, rendered by the `docgen` crate.
//!
//! Values are not repeated here: a default the code applies is a constant
//! next to the model field it fills (`DEFAULT_*` in model.rs), a limit one
//! of [`crate::limits`], and the text states it with `const_str!`. What the
//! parser does with a key stays in its match arm (general.rs, sync.rs, …),
//! under the key's name.
//!
//! Adding a key: its entry below; its arm in the parser, which stores the
//! value in the model (`p.config.general.…`, or `settings` of the `Sync`
//! being parsed); its field in the model, with its `DEFAULT_*` constant
//! used by the model's `Default` and by the entry; then `cargo run -p
//! docgen`. The tests here and in `tests/reference.rs` fail if the entry
//! and the parser disagree, or if the documented default is not the one
//! parsed.

use crate::const_text::{const_str, in_words, on_off};
use crate::limits::{
    MAX_CHANNELS, MAX_FILE_PATH_LEN, MAX_INTERFACE_NAME_LEN, MAX_PRIORITY, MAX_SOCKET_PATH_LEN,
    MIN_KEY_FILE_LEN,
};
use crate::model::{
    DEFAULT_ACK_WINDOW_SIZE, DEFAULT_CACHE_TIMEOUT, DEFAULT_CHECKSUM, DEFAULT_DATAGRAM_RCVBUF,
    DEFAULT_ERROR_QUEUE_LENGTH, DEFAULT_EVENT_BATCH_DELAY, DEFAULT_EVENT_ITERATION_LIMIT,
    DEFAULT_HASH_LIMIT, DEFAULT_HASH_SIZE, DEFAULT_KERNEL_EVENTS_PER_WAKEUP, DEFAULT_LOCK_FILE,
    DEFAULT_LOG_FILE, DEFAULT_MAX_CLIENTS, DEFAULT_METRICS_PORT, DEFAULT_NETLINK_OVERRUN_RESYNC,
    DEFAULT_PRIORITY, DEFAULT_PURGE_TIMEOUT, DEFAULT_REFRESH_TIME, DEFAULT_REPLICATE_LABELS,
    DEFAULT_REPLY_TIMEOUT, DEFAULT_RESEND_QUEUE_SIZE, DEFAULT_STARTUP_RESYNC,
    DEFAULT_STATS_LOG_FILE, DEFAULT_SYSTEMD, MAX_EVENT_BATCH_DELAY,
};

/// What a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// An ordinary setting.
    Setting,
    /// Opens a block; the ids of the sections it can open.
    Block(&'static [&'static str]),
    /// Another spelling, accepted by conntrackd 1.4.7 as well, with the
    /// same meaning as the named key.
    Alias(&'static str),
    /// A spelling conntrackd 1.4.7 rejects; accepted here with a warning
    /// and treated as the named replacement.
    Legacy(&'static str),
    /// Accepted and ignored, with a warning, as conntrackd 1.4.7 does.
    Ignored,
    /// A key of an older conntrackd that 1.4.7 rejects; accepted and
    /// ignored here, with a warning.
    Obsolete,
}

/// A block of the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// Identifier: the path of openers, joined with `.` (`Sync.Mode FTFW`).
    pub id: &'static str,
    /// The enclosing section, `None` for the top level.
    pub parent: Option<&'static str>,
    /// How the block is written, e.g. `Multicast [Default] { … }`.
    pub syntax: &'static str,
    /// A concrete opener that the parser accepts (used by the tests).
    pub sample: &'static str,
    /// What the block is for.
    pub description: &'static str,
    /// Not part of conntrackd 1.4.7.
    pub extension: bool,
}

/// One key of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// [`Section::id`] of the enclosing block.
    pub section: &'static str,
    /// The key as written (case-sensitive).
    pub name: &'static str,
    /// Value syntax, e.g. `NUMBER`, `on|off`, `PATH`.
    pub value: &'static str,
    /// Default when the key is absent, if there is one worth stating.
    pub default: Option<&'static str>,
    /// One or two sentences.
    pub description: &'static str,
    /// Setting, block, alias, legacy spelling or ignored key.
    pub kind: KeyKind,
    /// A value the parser accepts (written after the key by the tests).
    pub example: &'static str,
    /// Not part of conntrackd 1.4.7.
    pub extension: bool,
}

impl Key {
    /// Whether conntrackd 1.4.7's grammar has this key: then its name is
    /// one of the scanner's keywords (see `lexer::KEYWORDS`), which also
    /// means it cannot be used as a name (of an interface, a helper …).
    /// Keys added since, and spellings 1.4.7 rejects, are plain words.
    pub const fn in_147_grammar(&self) -> bool {
        !self.extension && !matches!(self.kind, KeyKind::Legacy(_) | KeyKind::Obsolete)
    }
}

/// A key removed in conntrackd 1.4.5: accepted in any of [`REMOVED_IN`]
/// and skipped with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovedKey {
    /// The key as written.
    pub name: &'static str,
    /// Value syntax.
    pub value: &'static str,
    /// What it meant, and what replaces it, if anything.
    pub description: &'static str,
    /// A value the parser skips.
    pub example: &'static str,
}

/// The top level pseudo-section.
pub const TOP: &str = "";

/// Every section, parents before children, in documentation order.
pub const SECTIONS: &[Section] = &[
    Section {
        id: TOP,
        parent: None,
        syntax: "",
        sample: "",
        description: "The file is a sequence of sections, in any order; a section may be repeated, and its settings accumulate. \
            A daemon runs in sync mode (with a Sync section) or in stats mode (with a Stats section), not both; \
            with neither it starts idle.",
        extension: false,
    },
    Section {
        id: "General",
        parent: Some(TOP),
        syntax: "General { … }",
        sample: "General",
        description: "Settings of the daemon itself: caches, logging, the control socket, the netlink event socket, scheduling and the event filter.",
        extension: false,
    },
    Section {
        id: "General.UNIX",
        parent: Some("General"),
        syntax: "UNIX { … }",
        sample: "UNIX",
        description: "The control socket through which the client commands of conntrackd(8) reach the daemon. \
            The client reads the same configuration file to find it.",
        extension: false,
    },
    Section {
        id: "General.Scheduler",
        parent: Some("General"),
        syntax: "Scheduler { … }",
        sample: "Scheduler",
        description: const_str!(
            "Real-time CPU scheduling of the daemon. Without this block the daemon asks for SCHED_RR at priority ",
            DEFAULT_PRIORITY,
            ". \
            When Type is given, Priority is used (0 if absent, which the kernel refuses for real-time policies: the default scheduler is then kept, with a warning)."
        ),
        extension: false,
    },
    Section {
        id: "General.Filter",
        parent: Some("General"),
        syntax: "Filter [From Userspace|From Kernelspace] { … }",
        sample: "Filter",
        description: "Which flows are tracked and replicated. Each category (Protocol, Address, State) has one policy, Accept or Ignore, taken from its last block; \
            the items of all blocks of a category accumulate. From Kernelspace applies the filter with a BPF program attached to the event socket, \
            From Userspace (the default) in the daemon.",
        extension: false,
    },
    Section {
        id: "General.Filter.Address",
        parent: Some("General.Filter"),
        syntax: "Address Accept|Ignore { … }",
        sample: "Address Accept",
        description: "Addresses, or networks with a /PREFIX, matched against the original source and the reply source of a flow (its real client and server, whatever the NAT).",
        extension: false,
    },
    Section {
        id: "General.Metrics",
        parent: Some("General"),
        syntax: "Metrics { … }",
        sample: "Metrics",
        description: "A Prometheus endpoint: the daemon serves its statistics over HTTP at /metrics. \
            Off unless this block is present.",
        extension: true,
    },
    Section {
        id: "Sync",
        parent: Some(TOP),
        syntax: "Sync { … }",
        sample: "Sync",
        description: "Replication of the connection tracking table to the other firewalls: the mode, the dedicated links (channels) and their options. \
            The timers may be given here or in any Mode block; they are global either way.",
        extension: false,
    },
    Section {
        id: "Sync.Mode FTFW",
        parent: Some("Sync"),
        syntax: "Mode FTFW { … }",
        sample: "Mode FTFW",
        description: "Reliable replication: messages are numbered, acknowledged and resent when lost. \
            Without any Mode block FTFW is used, with a warning. The legacy name NACK is accepted with a warning.",
        extension: false,
    },
    Section {
        id: "Sync.Mode ALARM",
        parent: Some("Sync"),
        syntax: "Mode ALARM { … }",
        sample: "Mode ALARM",
        description: "Periodic replication: every flow is re-sent at a random interval below RefreshTime, and a replicated flow not refreshed within CacheTimeout is dropped. \
            The legacy name PERSISTENT (capital final T) is accepted with a warning.",
        extension: false,
    },
    Section {
        id: "Sync.Mode NOTRACK",
        parent: Some("Sync"),
        syntax: "Mode NOTRACK { … }",
        sample: "Mode NOTRACK",
        description: "Best-effort replication: events are sent once, without acknowledgement.",
        extension: false,
    },
    Section {
        id: "Sync.Multicast",
        parent: Some("Sync"),
        syntax: "Multicast [Default] { … }",
        sample: "Multicast",
        description: const_str!(
            "A channel over IP multicast. Up to ",
            in_words(MAX_CHANNELS),
            " channels of one kind (Multicast, UDP or TCP) may be given; \
            Default marks the one used first, the others take over when its link goes down."
        ),
        extension: false,
    },
    Section {
        id: "Sync.UDP",
        parent: Some("Sync"),
        syntax: "UDP [Default] { … }",
        sample: "UDP",
        description: "A channel over unicast UDP to one peer.",
        extension: false,
    },
    Section {
        id: "Sync.TCP",
        parent: Some("Sync"),
        syntax: "TCP [Default] { … }",
        sample: "TCP",
        description: "A channel over a TCP connection to one peer.",
        extension: false,
    },
    Section {
        id: "Sync.Options",
        parent: Some("Sync"),
        syntax: "Options { … }",
        sample: "Options",
        description: "Optional replication features.",
        extension: false,
    },
    Section {
        id: "Sync.Authentication",
        parent: Some("Sync"),
        syntax: "Authentication { … }",
        sample: "Authentication",
        description: "Authenticated sync: every datagram carries the sender's session, a counter and an HMAC-SHA256 tag; a session is believed once a handshake showed that its sender holds the key now. \
            Forged, replayed and reflected datagrams are dropped and counted by reason. \
            Both peers must run this implementation with the same key; the wire format is then not readable by conntrackd 1.4.7.",
        extension: true,
    },
    Section {
        id: "Stats",
        parent: Some(TOP),
        syntax: "Stats { … }",
        sample: "Stats",
        description: "Stats mode: no replication; destroyed flows are written to a log.",
        extension: false,
    },
    Section {
        id: "Helper",
        parent: Some(TOP),
        syntax: "Helper { … }",
        sample: "Helper",
        description: "User-space connection tracking helpers: the kernel queues the packets of a helped flow (NFQUEUE), the daemon's helper reads them, creates the expectations they announce (the data connection of FTP, the port an RPC portmapper gives, …) and lets them go (always accepted; a payload it cannot read is counted, not dropped). Needs a kernel with CONFIG_NF_CT_NETLINK_HELPER: without it the daemon, like 1.4.7, refuses to start, and --check refuses the file when run on such a kernel. The flows are given to a helper by the kernel (nft `ct helper set', iptables `-j CT --helper') and their packets queued to its QueueNum. Works next to Sync (expectations are then replicated with ExpectationSync) or alone.",
        extension: false,
    },
    Section {
        id: "Helper.Type",
        parent: Some("Helper"),
        syntax: "Type NAME inet|inet6 tcp|udp { … }",
        sample: "Type ftp inet tcp",
        description: "One helper: its name (amanda, dhcpv6, ftp, mdns, rpc, sane, slp, ssdp, tftp or tns), layer 3 and layer 4 protocols. ftp, sane and tns serve tcp; rpc and ssdp tcp and udp; the others udp.",
        extension: false,
    },
    Section {
        id: "Helper.Type.Policy",
        parent: Some("Helper.Type"),
        syntax: "Policy NAME { … }",
        sample: "Policy ftp",
        description: "The expectation policy of a helper; NAME is the helper's name. At least one of its keys must be given; the other keeps the helper's default (ExpectMax/ExpectTimeout: amanda 3/180, mdns 8/30, slp 8/16, ssdp 8/300, the others 1/300).",
        extension: false,
    },
];

const fn key(
    section: &'static str,
    name: &'static str,
    value: &'static str,
    default: Option<&'static str>,
    description: &'static str,
    example: &'static str,
) -> Key {
    Key {
        section,
        name,
        value,
        default,
        description,
        kind: KeyKind::Setting,
        example,
        extension: false,
    }
}

const fn block(
    section: &'static str,
    name: &'static str,
    value: &'static str,
    opens: &'static [&'static str],
    description: &'static str,
    example: &'static str,
) -> Key {
    Key {
        section,
        name,
        value,
        default: None,
        description,
        kind: KeyKind::Block(opens),
        example,
        extension: false,
    }
}

const fn with_kind(mut k: Key, kind: KeyKind) -> Key {
    k.kind = kind;
    k
}

const fn extension(mut k: Key) -> Key {
    k.extension = true;
    k
}

const REFRESH_TIME: &str =
    "ALARM: upper bound of the random interval at which each flow is sent again.";
const CACHE_TIMEOUT: &str =
    "ALARM: lifetime of a replicated flow that is not refreshed by its peer.";
const COMMIT_TIMEOUT: &str = "If set, flows written into the kernel by a commit (conntrackd -c) get this fixed timeout, \
    and sent messages carry no timeout. Ignored, with a warning, when DisableExternalCache is on.";
const PURGE_TIMEOUT: &str =
    "Delay before the flows that conntrackd -t marks are flushed from the kernel table.";
const DISABLE_EXTERNAL: &str = "Write received flows straight into the kernel table instead of keeping them in the external cache until a commit.";
const STARTUP_RESYNC: &str = "Ask the peers for a full resynchronisation at start-up, so that a restarted node gets back the flows it lost. \
    On unless StartupResync off is written (conntrackd 1.4.7 asks only with StartupResync on).";
const INTERFACE: &str = const_str!(
    "Network interface of the channel (at most ",
    MAX_INTERFACE_NAME_LEN,
    " characters); its MTU sizes the messages and its link state selects the channel."
);
const SND_BUFFER: &str =
    "Send buffer size of the channel's socket, set even above the system limit.";
const RCV_BUFFER: &str =
    "Receive buffer size of the channel's socket, set even above the system limit.";
const CHECKSUM: &str = "Compute UDP checksums on the channel.";
const BIND_ADDRESS: &str = "Local address the channel binds to (optional): without it, the channel binds any address of the destination's family, as 1.4.7 does. \
    Of the same family as the destination.";
const PEER_ADDRESS: &str = "Address of the peer the channel sends to (UDP) or connects to (TCP); required. It sets the channel's address family.";
const UNICAST_PORT: &str = "Port of the channel, the same on both peers.";
const SECTIONS_TEXT: &str = "Opens the section of that name.";
const RESEND_BUFFER_SIZE: &str = "Rejected by conntrackd 1.4.7. It sized a resend buffer in bytes (0.9.x) and was ignored from 0.9.10 on; ignored here too, with a warning. ResendQueueSize in Mode FTFW sizes the resend queue, in objects.";

/// Every key of every section, in documentation order.
pub const KEYS: &[Key] = &[
    // ---- top level ---------------------------------------------------
    block(TOP, "General", "{ … }", &["General"], SECTIONS_TEXT, "{ }"),
    block(TOP, "Sync", "{ … }", &["Sync"], SECTIONS_TEXT, "{ }"),
    block(TOP, "Stats", "{ … }", &["Stats"], SECTIONS_TEXT, "{ }"),
    block(TOP, "Helper", "{ … }", &["Helper"], SECTIONS_TEXT, "{ }"),
    with_kind(
        key(
            TOP,
            "IgnoreTrafficFor",
            "{ IPv4_address ADDRESS … }",
            None,
            "Flows of these addresses are ignored.",
            "{ IPv4_address 192.0.2.1 }",
        ),
        KeyKind::Legacy("General { Filter { Address Ignore { … } } }"),
    ),
    with_kind(
        key(
            TOP,
            "IgnoreProtocol",
            "{ PROTOCOL … }",
            None,
            "Flows of these protocols are ignored.",
            "{ UDP }",
        ),
        KeyKind::Legacy("General { Filter { Protocol Ignore { … } } }"),
    ),
    // ---- General -----------------------------------------------------
    key(
        "General",
        "HashSize",
        "NUMBER",
        Some(const_str!(DEFAULT_HASH_SIZE)),
        "Number of buckets of each cache's hash table (0 means the default).",
        "8192",
    ),
    key(
        "General",
        "HashLimit",
        "NUMBER",
        Some(const_str!(DEFAULT_HASH_LIMIT)),
        "Maximum number of flows per cache (0 means the default); flows beyond it are refused and counted.",
        "65535",
    ),
    key(
        "General",
        "LogFile",
        "on|off|PATH",
        Some("off"),
        const_str!(
            "Log to PATH (at most ",
            MAX_FILE_PATH_LEN,
            " characters), or with on to ",
            DEFAULT_LOG_FILE,
            ". off does not undo an earlier LogFile."
        ),
        "/var/log/conntrackd.log",
    ),
    key(
        "General",
        "Syslog",
        "on|off|FACILITY",
        Some("off"),
        "Log to syslog with FACILITY (daemon, local0 … local7); on means daemon. An unknown facility is ignored with a warning.",
        "daemon",
    ),
    key(
        "General",
        "LockFile",
        "PATH",
        Some(DEFAULT_LOCK_FILE),
        const_str!(
            "Lock file preventing a second daemon from starting (at most ",
            MAX_FILE_PATH_LEN,
            " characters)."
        ),
        "/var/lock/conntrackd.lock",
    ),
    block(
        "General",
        "UNIX",
        "{ … }",
        &["General.UNIX"],
        "The control socket.",
        "{ }",
    ),
    key(
        "General",
        "NetlinkBufferSize",
        "BYTES",
        Some("the system default"),
        "Receive buffer size of the netlink event socket. Used only if not above NetlinkBufferSizeMaxGrowth.",
        "2097152",
    ),
    with_kind(
        key("General", "SocketBufferSize", "BYTES", None, "", "2097152"),
        KeyKind::Alias("NetlinkBufferSize"),
    ),
    key(
        "General",
        "NetlinkBufferSizeMaxGrowth",
        "BYTES",
        Some("0"),
        "Upper bound up to which the event socket's buffer is doubled after an overrun.",
        "8388608",
    ),
    with_kind(
        key(
            "General",
            "SocketBufferSizeMaxGrown",
            "BYTES",
            None,
            "",
            "8388608",
        ),
        KeyKind::Alias("NetlinkBufferSizeMaxGrowth"),
    ),
    with_kind(
        key(
            "General",
            "SocketBufferSizeMaxGrowth",
            "BYTES",
            None,
            "",
            "8388608",
        ),
        KeyKind::Alias("NetlinkBufferSizeMaxGrowth"),
    ),
    key(
        "General",
        "NetlinkOverrunResync",
        "on|off|SECONDS",
        Some(const_str!(
            "on (",
            DEFAULT_NETLINK_OVERRUN_RESYNC,
            " seconds)"
        )),
        const_str!(
            "After an event socket overrun, resynchronise the internal cache with the kernel table after SECONDS (on means ",
            DEFAULT_NETLINK_OVERRUN_RESYNC,
            "); off never does."
        ),
        "on",
    ),
    key(
        "General",
        "NetlinkEventsReliable",
        "on|off",
        Some("off"),
        "Ask the kernel for reliable event delivery: events are not dropped silently, an overrun is reported instead.",
        "off",
    ),
    key(
        "General",
        "EventIterationLimit",
        "NUMBER",
        Some(const_str!(
            "unset: ",
            DEFAULT_KERNEL_EVENTS_PER_WAKEUP,
            " kernel events, ",
            DEFAULT_EVENT_ITERATION_LIMIT,
            " datagrams per channel (1.4.7: ",
            DEFAULT_EVENT_ITERATION_LIMIT,
            " for both)"
        )),
        const_str!(
            "Maximum number of kernel events, and of datagrams of each Multicast or UDP channel, handled in one go before other work is served (0 means ",
            DEFAULT_EVENT_ITERATION_LIMIT,
            "). \
        TCP channels read up to ",
            DEFAULT_EVENT_ITERATION_LIMIT,
            " chunks of their stream in one go whatever is set."
        ),
        "200",
    ),
    extension(key(
        "General",
        "EventBatchDelay",
        "MILLISECONDS",
        Some(const_str!(DEFAULT_EVENT_BATCH_DELAY)),
        const_str!(
            "After a read that found kernel events, send what they produced and wait this long before reading again (0 to ",
            MAX_EVENT_BATCH_DELAY,
            "), so that one wake-up handles every event of that time: less CPU (wake-ups cost more than the work of several events), up to this much more replication lag. \
        0 reads events as they come and sends what they produced at once, as 1.4.7 does. The wait is skipped while the event buffer (NetlinkBufferSize) holds less than 1 MiB per millisecond of it, so that it cannot cause an overrun."
        ),
        "0",
    )),
    key(
        "General",
        "PollSecs",
        "SECONDS",
        Some("off (events are used)"),
        "Read the kernel table every SECONDS instead of listening for events. Must be greater than 0.",
        "15",
    ),
    with_kind(
        key(
            "General",
            "Nice",
            "-N|+N",
            None,
            "Use nice(1) or renice(1) instead.",
            "-20",
        ),
        KeyKind::Ignored,
    ),
    block(
        "General",
        "Scheduler",
        "{ … }",
        &["General.Scheduler"],
        "Real-time scheduling.",
        "{ }",
    ),
    key(
        "General",
        "Systemd",
        "on|off",
        Some(on_off(DEFAULT_SYSTEMD)),
        "Notify systemd of start-up, shutdown and liveness (READY, STOPPING, WATCHDOG), for a unit of Type=notify.",
        "on",
    ),
    block(
        "General",
        "Filter",
        "[From Userspace|From Kernelspace] { … }",
        &["General.Filter"],
        "Which flows are handled.",
        "From Kernelspace { }",
    ),
    extension(block(
        "General",
        "Metrics",
        "{ … }",
        &["General.Metrics"],
        "The Prometheus metrics endpoint.",
        "{ }",
    )),
    // ---- General.UNIX ------------------------------------------------
    key(
        "General.UNIX",
        "Path",
        "PATH",
        Some("none"),
        const_str!(
            "Path of the control socket (at most ",
            MAX_SOCKET_PATH_LEN,
            " characters). Without it no client can reach the daemon. The socket is created with mode 0600, and only root may send requests."
        ),
        "/var/run/conntrackd.ctl",
    ),
    extension(key(
        "General.UNIX",
        "MaxClients",
        "NUMBER",
        Some(const_str!(DEFAULT_MAX_CLIENTS)),
        "Clients served at once (greater than 0). When all are taken, a newcomer closes the oldest connection that has not sent its request yet; if every client is being answered, the newcomer is closed at once. Both are counted (-s runtime, --json, metrics).",
        "8",
    )),
    extension(key(
        "General.UNIX",
        "ReplyTimeout",
        "SECONDS",
        Some(const_str!(DEFAULT_REPLY_TIMEOUT)),
        "A reply is abandoned, and counted, when its client has read nothing of it for this long (greater than 0). Other clients, replication and timers never wait for a client.",
        "10",
    )),
    with_kind(
        key(
            "General.UNIX",
            "Backlog",
            "NUMBER",
            None,
            "The listen backlog is fixed.",
            "20",
        ),
        KeyKind::Ignored,
    ),
    // ---- General.Scheduler -------------------------------------------
    key(
        "General.Scheduler",
        "Type",
        "RR|FIFO",
        Some("RR"),
        "Scheduling policy, SCHED_RR or SCHED_FIFO (any case).",
        "FIFO",
    ),
    key(
        "General.Scheduler",
        "Priority",
        const_str!("0-", MAX_PRIORITY),
        Some(const_str!(DEFAULT_PRIORITY, " without Type, 0 with Type")),
        "Real-time priority.",
        "50",
    ),
    // ---- General.Filter ----------------------------------------------
    key(
        "General.Filter",
        "Protocol",
        "Accept|Ignore { PROTOCOL … }",
        None,
        "Layer 4 protocols: TCP, UDP or a name from /etc/protocols (icmp, sctp, ipv6-icmp …). Numbers are not accepted.",
        "Accept { TCP UDP }",
    ),
    block(
        "General.Filter",
        "Address",
        "Accept|Ignore { … }",
        &["General.Filter.Address"],
        "Addresses and networks.",
        "Ignore { IPv4_address 127.0.0.1 }",
    ),
    key(
        "General.Filter",
        "State",
        "Accept|Ignore { STATE … for TCP }",
        None,
        "TCP states: SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE (or CLOSED), LISTEN. Each group of states ends with for TCP; other protocols are not filtered by state.",
        "Accept { ESTABLISHED CLOSED TIME_WAIT CLOSE_WAIT for TCP }",
    ),
    // ---- General.Filter.Address --------------------------------------
    key(
        "General.Filter.Address",
        "IPv4_address",
        "ADDRESS[/PREFIX]",
        None,
        "An IPv4 host or network.",
        "10.0.0.0/8",
    ),
    key(
        "General.Filter.Address",
        "IPv6_address",
        "ADDRESS[/PREFIX]",
        None,
        "An IPv6 host or network.",
        "fe80::/10",
    ),
    // ---- General.Metrics ---------------------------------------------
    extension(key(
        "General.Metrics",
        "IPv4_address",
        "ADDRESS",
        None,
        "IPv4 address the endpoint listens on (may be given more than once; 127.0.0.1 when the block names no address). An invalid address is an error.",
        "127.0.0.1",
    )),
    extension(key(
        "General.Metrics",
        "IPv6_address",
        "ADDRESS",
        None,
        "IPv6 address the endpoint listens on (may be given more than once). An invalid address is an error.",
        "::1",
    )),
    extension(key(
        "General.Metrics",
        "Port",
        "NUMBER",
        Some(const_str!(DEFAULT_METRICS_PORT)),
        "TCP port of the endpoint.",
        "9465",
    )),
    // ---- Sync ----------------------------------------------------------
    block(
        "Sync",
        "Mode",
        "FTFW|ALARM|NOTRACK { … }",
        &["Sync.Mode FTFW", "Sync.Mode ALARM", "Sync.Mode NOTRACK"],
        "The replication mode (any case). If several are given, the first of FTFW, ALARM, NOTRACK present is used.",
        "FTFW { }",
    ),
    block(
        "Sync",
        "Multicast",
        "[Default] { … }",
        &["Sync.Multicast"],
        "A multicast channel.",
        "Default { }",
    ),
    block(
        "Sync",
        "UDP",
        "[Default] { … }",
        &["Sync.UDP"],
        "A UDP channel.",
        "{ }",
    ),
    block(
        "Sync",
        "TCP",
        "[Default] { … }",
        &["Sync.TCP"],
        "A TCP channel.",
        "{ }",
    ),
    block(
        "Sync",
        "Options",
        "{ … }",
        &["Sync.Options"],
        "Optional features.",
        "{ }",
    ),
    key(
        "Sync",
        "RefreshTime",
        "SECONDS",
        Some(const_str!(DEFAULT_REFRESH_TIME)),
        REFRESH_TIME,
        "15",
    ),
    key(
        "Sync",
        "CacheTimeout",
        "SECONDS",
        Some(const_str!(DEFAULT_CACHE_TIMEOUT)),
        CACHE_TIMEOUT,
        "180",
    ),
    key(
        "Sync",
        "CommitTimeout",
        "SECONDS",
        Some("unset"),
        COMMIT_TIMEOUT,
        "180",
    ),
    key(
        "Sync",
        "PurgeTimeout",
        "SECONDS",
        Some(const_str!(DEFAULT_PURGE_TIMEOUT)),
        PURGE_TIMEOUT,
        "5",
    ),
    with_kind(
        key(
            "Sync",
            "Checksum",
            "on|off",
            None,
            "Checksum setting of every channel that does not set its own.",
            "on",
        ),
        KeyKind::Legacy("Checksum in each channel block"),
    ),
    with_kind(
        key(
            "Sync",
            "Replicate",
            "STATE … for TCP",
            None,
            "Replicate only TCP flows in these states.",
            "ESTABLISHED for TCP",
        ),
        KeyKind::Legacy("General { Filter { State Accept { … for TCP } } }"),
    ),
    with_kind(
        key("Sync", "CacheWriteThrough", "on|off", None, "", "off"),
        KeyKind::Legacy("DisableExternalCache"),
    ),
    with_kind(
        key(
            "Sync",
            "ResendBufferSize",
            "BYTES",
            None,
            RESEND_BUFFER_SIZE,
            "131072",
        ),
        KeyKind::Obsolete,
    ),
    extension(block(
        "Sync",
        "Authentication",
        "{ … }",
        &["Sync.Authentication"],
        "Authenticated (and optionally encrypted) sync.",
        "{ }",
    )),
    // ---- Sync.Mode FTFW ------------------------------------------------
    key(
        "Sync.Mode FTFW",
        "ResendQueueSize",
        "NUMBER",
        Some(const_str!(DEFAULT_RESEND_QUEUE_SIZE)),
        "Number of sent messages kept for retransmission until acknowledged (0 means the default).",
        "131072",
    ),
    key(
        "Sync.Mode FTFW",
        "CommitTimeout",
        "SECONDS",
        Some("unset"),
        COMMIT_TIMEOUT,
        "180",
    ),
    key(
        "Sync.Mode FTFW",
        "PurgeTimeout",
        "SECONDS",
        Some(const_str!(DEFAULT_PURGE_TIMEOUT)),
        PURGE_TIMEOUT,
        "60",
    ),
    key(
        "Sync.Mode FTFW",
        "ACKWindowSize",
        "NUMBER",
        Some(const_str!(DEFAULT_ACK_WINDOW_SIZE)),
        "Number of messages received before an acknowledgement is sent (0 means the default).",
        "300",
    ),
    key(
        "Sync.Mode FTFW",
        "DisableExternalCache",
        "on|off",
        Some("off"),
        DISABLE_EXTERNAL,
        "off",
    ),
    key(
        "Sync.Mode FTFW",
        "StartupResync",
        "on|off",
        Some(const_str!(on_off(DEFAULT_STARTUP_RESYNC), " (1.4.7: off)")),
        STARTUP_RESYNC,
        "on",
    ),
    with_kind(
        key(
            "Sync.Mode FTFW",
            "ResendBufferSize",
            "BYTES",
            None,
            RESEND_BUFFER_SIZE,
            "131072",
        ),
        KeyKind::Obsolete,
    ),
    with_kind(
        key(
            "Sync.Mode FTFW",
            "CacheWriteThrough",
            "on|off",
            None,
            "",
            "off",
        ),
        KeyKind::Legacy("DisableExternalCache"),
    ),
    // ---- Sync.Mode ALARM -----------------------------------------------
    key(
        "Sync.Mode ALARM",
        "RefreshTime",
        "SECONDS",
        Some(const_str!(DEFAULT_REFRESH_TIME)),
        REFRESH_TIME,
        "15",
    ),
    key(
        "Sync.Mode ALARM",
        "CacheTimeout",
        "SECONDS",
        Some(const_str!(DEFAULT_CACHE_TIMEOUT)),
        CACHE_TIMEOUT,
        "180",
    ),
    key(
        "Sync.Mode ALARM",
        "CommitTimeout",
        "SECONDS",
        Some("unset"),
        COMMIT_TIMEOUT,
        "180",
    ),
    key(
        "Sync.Mode ALARM",
        "PurgeTimeout",
        "SECONDS",
        Some(const_str!(DEFAULT_PURGE_TIMEOUT)),
        PURGE_TIMEOUT,
        "60",
    ),
    // ---- Sync.Mode NOTRACK ---------------------------------------------
    key(
        "Sync.Mode NOTRACK",
        "CommitTimeout",
        "SECONDS",
        Some("unset"),
        COMMIT_TIMEOUT,
        "180",
    ),
    key(
        "Sync.Mode NOTRACK",
        "PurgeTimeout",
        "SECONDS",
        Some(const_str!(DEFAULT_PURGE_TIMEOUT)),
        PURGE_TIMEOUT,
        "60",
    ),
    key(
        "Sync.Mode NOTRACK",
        "DisableInternalCache",
        "on|off",
        Some("off"),
        "Send kernel events directly, without keeping an internal cache (conntrackd -i then shows nothing).",
        "on",
    ),
    key(
        "Sync.Mode NOTRACK",
        "DisableExternalCache",
        "on|off",
        Some("off"),
        DISABLE_EXTERNAL,
        "on",
    ),
    key(
        "Sync.Mode NOTRACK",
        "StartupResync",
        "on|off",
        Some(const_str!(on_off(DEFAULT_STARTUP_RESYNC), " (1.4.7: off)")),
        STARTUP_RESYNC,
        "on",
    ),
    with_kind(
        key(
            "Sync.Mode NOTRACK",
            "CacheWriteThrough",
            "on|off",
            None,
            "",
            "off",
        ),
        KeyKind::Legacy("DisableExternalCache"),
    ),
    // ---- Sync.Multicast ------------------------------------------------
    key(
        "Sync.Multicast",
        "IPv4_address",
        "ADDRESS",
        None,
        "IPv4 multicast group of the channel.",
        "225.0.0.50",
    ),
    key(
        "Sync.Multicast",
        "IPv6_address",
        "ADDRESS",
        None,
        "IPv6 multicast group of the channel. Write it before Interface.",
        "ff02::1:50",
    ),
    key(
        "Sync.Multicast",
        "IPv4_interface",
        "ADDRESS",
        Some("0.0.0.0"),
        "Local IPv4 address used to join the group and to send to it.",
        "192.168.100.100",
    ),
    with_kind(
        key(
            "Sync.Multicast",
            "IPv6_interface",
            "ADDRESS",
            None,
            "IPv6 groups are joined on Interface.",
            "fe80::1",
        ),
        KeyKind::Ignored,
    ),
    key(
        "Sync.Multicast",
        "Interface",
        "NAME",
        Some("none (required)"),
        INTERFACE,
        "eth2",
    ),
    key(
        "Sync.Multicast",
        "Group",
        "NUMBER",
        None,
        "UDP port of the group, the same on all peers.",
        "3780",
    ),
    key(
        "Sync.Multicast",
        "SndSocketBuffer",
        "BYTES",
        Some("the system default"),
        SND_BUFFER,
        "1249280",
    ),
    key(
        "Sync.Multicast",
        "RcvSocketBuffer",
        "BYTES",
        Some(const_str!(
            "the system default, raised to ",
            DEFAULT_DATAGRAM_RCVBUF >> 20,
            " MiB"
        )),
        RCV_BUFFER,
        "1249280",
    ),
    key(
        "Sync.Multicast",
        "Checksum",
        "on|off",
        Some(on_off(DEFAULT_CHECKSUM)),
        CHECKSUM,
        "on",
    ),
    with_kind(
        key(
            "Sync.Multicast",
            "McastSndSocketBuffer",
            "BYTES",
            None,
            "",
            "1249280",
        ),
        KeyKind::Legacy("SndSocketBuffer"),
    ),
    with_kind(
        key(
            "Sync.Multicast",
            "McastRcvSocketBuffer",
            "BYTES",
            None,
            "",
            "1249280",
        ),
        KeyKind::Legacy("RcvSocketBuffer"),
    ),
    with_kind(
        key(
            "Sync.Multicast",
            "ListenTo",
            "ADDRESS",
            None,
            "",
            "192.168.100.100",
        ),
        KeyKind::Legacy("IPv4_interface"),
    ),
    // ---- Sync.UDP --------------------------------------------------------
    key(
        "Sync.UDP",
        "IPv4_address",
        "ADDRESS",
        None,
        BIND_ADDRESS,
        "192.168.2.100",
    ),
    key(
        "Sync.UDP",
        "IPv6_address",
        "ADDRESS",
        None,
        BIND_ADDRESS,
        "fe80::2",
    ),
    key(
        "Sync.UDP",
        "IPv4_Destination_Address",
        "ADDRESS",
        None,
        PEER_ADDRESS,
        "192.168.2.101",
    ),
    key(
        "Sync.UDP",
        "IPv6_Destination_Address",
        "ADDRESS",
        None,
        PEER_ADDRESS,
        "fe80::3",
    ),
    key(
        "Sync.UDP",
        "Interface",
        "NAME",
        Some("none (required)"),
        INTERFACE,
        "eth3",
    ),
    key("Sync.UDP", "Port", "NUMBER", None, UNICAST_PORT, "3780"),
    key(
        "Sync.UDP",
        "SndSocketBuffer",
        "BYTES",
        Some("the system default"),
        SND_BUFFER,
        "1249280",
    ),
    key(
        "Sync.UDP",
        "RcvSocketBuffer",
        "BYTES",
        Some(const_str!(
            "the system default, raised to ",
            DEFAULT_DATAGRAM_RCVBUF >> 20,
            " MiB"
        )),
        RCV_BUFFER,
        "1249280",
    ),
    key(
        "Sync.UDP",
        "Checksum",
        "on|off",
        Some(on_off(DEFAULT_CHECKSUM)),
        CHECKSUM,
        "on",
    ),
    with_kind(
        key(
            "Sync.UDP",
            "McastSndSocketBuffer",
            "BYTES",
            None,
            "",
            "1249280",
        ),
        KeyKind::Legacy("SndSocketBuffer"),
    ),
    with_kind(
        key(
            "Sync.UDP",
            "McastRcvSocketBuffer",
            "BYTES",
            None,
            "",
            "1249280",
        ),
        KeyKind::Legacy("RcvSocketBuffer"),
    ),
    // ---- Sync.TCP --------------------------------------------------------
    key(
        "Sync.TCP",
        "IPv4_address",
        "ADDRESS",
        None,
        BIND_ADDRESS,
        "192.168.2.100",
    ),
    key(
        "Sync.TCP",
        "IPv6_address",
        "ADDRESS",
        None,
        BIND_ADDRESS,
        "fe80::2",
    ),
    key(
        "Sync.TCP",
        "IPv4_Destination_Address",
        "ADDRESS",
        None,
        PEER_ADDRESS,
        "192.168.2.101",
    ),
    key(
        "Sync.TCP",
        "IPv6_Destination_Address",
        "ADDRESS",
        None,
        PEER_ADDRESS,
        "fe80::3",
    ),
    key(
        "Sync.TCP",
        "Interface",
        "NAME",
        Some("none (required)"),
        INTERFACE,
        "eth3",
    ),
    key("Sync.TCP", "Port", "NUMBER", None, UNICAST_PORT, "3780"),
    key(
        "Sync.TCP",
        "SndSocketBuffer",
        "BYTES",
        Some("the system default"),
        SND_BUFFER,
        "1249280",
    ),
    key(
        "Sync.TCP",
        "RcvSocketBuffer",
        "BYTES",
        Some("the system default"),
        RCV_BUFFER,
        "1249280",
    ),
    key(
        "Sync.TCP",
        "Checksum",
        "on|off",
        Some(on_off(DEFAULT_CHECKSUM)),
        CHECKSUM,
        "on",
    ),
    key(
        "Sync.TCP",
        "ErrorQueueLength",
        "NUMBER",
        Some(const_str!(DEFAULT_ERROR_QUEUE_LENGTH)),
        "Number of message batches kept for retransmission after send errors (one setting for all TCP channels).",
        "128",
    ),
    with_kind(
        key(
            "Sync.TCP",
            "McastSndSocketBuffer",
            "BYTES",
            None,
            "",
            "1249280",
        ),
        KeyKind::Legacy("SndSocketBuffer"),
    ),
    with_kind(
        key(
            "Sync.TCP",
            "McastRcvSocketBuffer",
            "BYTES",
            None,
            "",
            "1249280",
        ),
        KeyKind::Legacy("RcvSocketBuffer"),
    ),
    // ---- Sync.Options ------------------------------------------------------
    key(
        "Sync.Options",
        "TCPWindowTracking",
        "on|off",
        Some("off"),
        "Keep TCP window tracking for committed flows; off marks them to be tracked liberally.",
        "on",
    ),
    key(
        "Sync.Options",
        "ExpectationSync",
        "on|off|{ HELPER … }",
        Some("off"),
        "Replicate expectations too: all of them (on), or those of the listed helpers (matched by name prefix, any case).",
        "{ ftp sip }",
    ),
    extension(key(
        "Sync.Options",
        "ReplicateLabels",
        "on|off",
        Some(on_off(DEFAULT_REPLICATE_LABELS)),
        "Replicate connection labels (connlabels). off leaves them out of the messages sent, and drops them from the messages received, so that they are never committed or injected into the kernel: \
        replicated labels crash kernels running the nDPI module (vel21ripn/nDPI#176). The peers need not agree: off on the receiving side is enough to keep labels out of its kernel.",
        "off",
    )),
    // ---- Sync.Authentication -----------------------------------------------
    extension(key(
        "Sync.Authentication",
        "KeyFile",
        "PATH",
        None,
        const_str!(
            "File holding the shared key (at least ",
            MIN_KEY_FILE_LEN,
            " bytes, not accessible to other users); what we send is sealed with it. Read at start-up and again on SIGHUP."
        ),
        "/etc/conntrackd/sync.key",
    )),
    extension(key(
        "Sync.Authentication",
        "AcceptKeyFile",
        "PATH",
        None,
        "A second key, accepted from peers but never used to send: during a key rotation, the new key before every node sends with it, then the old one until every node does.",
        "/etc/conntrackd/sync.key.old",
    )),
    extension(key(
        "Sync.Authentication",
        "Encrypt",
        "on|off",
        Some("off"),
        "Also encrypt the messages (XChaCha20-Poly1305).",
        "on",
    )),
    extension(key(
        "Sync.Authentication",
        "RequireEncryption",
        "on|off",
        Some("as Encrypt"),
        "Refuse envelopes that are not encrypted. Set it off while the nodes of a pair switch to Encrypt on one by one.",
        "off",
    )),
    // ---- Stats ---------------------------------------------------------------
    key(
        "Stats",
        "LogFile",
        "on|off|PATH",
        Some("off"),
        const_str!(
            "Write each destroyed flow to PATH (at most ",
            MAX_FILE_PATH_LEN,
            " characters), or with on to ",
            DEFAULT_STATS_LOG_FILE,
            "."
        ),
        "/var/log/conntrackd-stats.log",
    ),
    key(
        "Stats",
        "Syslog",
        "on|off|FACILITY",
        Some("off"),
        "Also send each destroyed flow to syslog (with the General facility).",
        "on",
    ),
    // ---- Helper ------------------------------------------------------------
    block(
        "Helper",
        "Type",
        "NAME inet|inet6 tcp|udp { … }",
        &["Helper.Type"],
        "A helper.",
        "ftp inet tcp { }",
    ),
    key(
        "Helper",
        "Setup",
        "on|off",
        Some("off"),
        "The helpers' kernel stubs. on: created at start-up (with room for each helper's per-flow data) and removed at exit. off: they must exist already (`nfct add helper NAME inet tcp'); either way the daemon sets each stub's queue and policy at start-up and refuses to start if the kernel refuses.",
        "on",
    ),
    key(
        "Helper.Type",
        "QueueNum",
        "NUMBER",
        None,
        "NFQUEUE number (0 to 65535) the helper's packets arrive on (0 if not written, as 1.4.7).",
        "5",
    ),
    key(
        "Helper.Type",
        "QueueLen",
        "NUMBER",
        Some("the kernel default"),
        "Maximum length of that queue. When it is full, packets pass without being seen (fail-open), so the helper can miss an announcement but traffic never stalls.",
        "10240",
    ),
    block(
        "Helper.Type",
        "Policy",
        "NAME { … }",
        &["Helper.Type.Policy"],
        "The expectation policy.",
        "ftp { ExpectMax 1 }",
    ),
    key(
        "Helper.Type.Policy",
        "ExpectMax",
        "NUMBER",
        None,
        "Maximum number of live expectations per master flow; a new one replaces the oldest (as the kernel does). 0: no limit.",
        "1",
    ),
    key(
        "Helper.Type.Policy",
        "ExpectTimeout",
        "SECONDS",
        None,
        "Lifetime of an expectation, seconds.",
        "300",
    ),
];

/// Sections in which the [`REMOVED`] keys are skipped.
pub const REMOVED_IN: &[&str] = &[
    "General",
    "Stats",
    "Sync",
    "Sync.Mode FTFW",
    "Sync.Mode ALARM",
    "Sync.Mode NOTRACK",
    "Sync.Multicast",
    "Sync.UDP",
    "Sync.TCP",
];

/// Keys removed in conntrackd 1.4.5 (1.4.7 rejects them); skipped here
/// with a warning.
pub const REMOVED: &[RemovedKey] = &[
    RemovedKey {
        name: "StripNAT",
        value: "[on|off]",
        description: "Obsolete; had no effect.",
        example: "on",
    },
    RemovedKey {
        name: "RelaxTransitions",
        value: "[on|off]",
        description: "Obsolete.",
        example: "",
    },
    RemovedKey {
        name: "DelayDestroyMessages",
        value: "[on|off]",
        description: "Obsolete.",
        example: "off",
    },
    RemovedKey {
        name: "DestroyTimeout",
        value: "NUMBER",
        description: "Obsolete.",
        example: "10",
    },
    RemovedKey {
        name: "LogFileBufferSize",
        value: "NUMBER",
        description: "Obsolete.",
        example: "4096",
    },
    RemovedKey {
        name: "Family",
        value: "IPv4|IPv6",
        description: "The address family now follows from the IPv4_ and IPv6_ address keys.",
        example: "IPv4",
    },
];

/// The section with this id.
pub fn section(id: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| s.id == id)
}

/// The keys of a section, in documentation order.
pub fn keys_of(id: &str) -> impl Iterator<Item = &'static Key> + '_ {
    KEYS.iter().filter(move |k| k.section == id)
}

/// Whether two strings are equal, in constants.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Number of keys documented in `section` (see [`key_names`]).
pub(crate) const fn key_count(section: &str) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < KEYS.len() {
        if same(KEYS[i].section, section) {
            count += 1;
        }
        i += 1;
    }
    count
}

/// The names of the keys documented in `section`, in documentation order,
/// at compile time: the parser's key list of that block. `N` is
/// [`key_count`]`(section)`.
pub(crate) const fn key_names<const N: usize>(section: &str) -> [&'static str; N] {
    let mut names = [""; N];
    let mut at = 0;
    let mut i = 0;
    while i < KEYS.len() {
        if same(KEYS[i].section, section) {
            names[at] = KEYS[i].name;
            at += 1;
        }
        i += 1;
    }
    assert!(at == N, "key_names: N is not key_count(section)");
    names
}

/// Whether `KEYS[index]` is the first key of 1.4.7's grammar with its name.
const fn first_of_147_grammar(index: usize) -> bool {
    if !KEYS[index].in_147_grammar() {
        return false;
    }
    let mut i = 0;
    while i < index {
        if KEYS[i].in_147_grammar() && same(KEYS[i].name, KEYS[index].name) {
            return false;
        }
        i += 1;
    }
    true
}

/// Number of distinct names of keys of 1.4.7's grammar (see
/// [`names_in_147_grammar`]).
pub(crate) const fn count_in_147_grammar() -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < KEYS.len() {
        if first_of_147_grammar(i) {
            count += 1;
        }
        i += 1;
    }
    count
}

/// The distinct names of the keys of 1.4.7's grammar ([`Key::in_147_grammar`]),
/// at compile time. `N` is [`count_in_147_grammar`]`()`.
pub(crate) const fn names_in_147_grammar<const N: usize>() -> [&'static str; N] {
    let mut names = [""; N];
    let mut at = 0;
    let mut i = 0;
    while i < KEYS.len() {
        if first_of_147_grammar(i) {
            names[at] = KEYS[i].name;
            at += 1;
        }
        i += 1;
    }
    assert!(
        at == N,
        "names_in_147_grammar: N is not count_in_147_grammar()"
    );
    names
}

/// The openers from the top level down to `id`, e.g. `["Sync", "Mode FTFW"]`.
pub fn sample_path(id: &str) -> Vec<&'static str> {
    let mut path = Vec::new();
    let mut current = section(id);
    while let Some(s) = current {
        if s.id == TOP {
            break;
        }
        path.push(s.sample);
        current = s.parent.and_then(section);
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParseOptions, parse_str_with};

    /// Sections documented ahead of their parser support. Once the parser
    /// accepts one, the test `pending_sections_are_not_yet_parsed` fails:
    /// then delete its entry.
    const PENDING: &[&str] = &[];

    /// The parser's key block of each section.
    fn parser_tables() -> Vec<(&'static str, crate::parser::KeyBlock)> {
        vec![
            (TOP, crate::parser::TOP_SECTIONS),
            ("General", crate::general::GENERAL),
            ("General.UNIX", crate::general::UNIX),
            ("General.Scheduler", crate::general::SCHEDULER),
            ("General.Filter", crate::general::FILTER),
            ("General.Filter.Address", crate::general::ADDRESS_LIST),
            ("General.Metrics", crate::general::METRICS),
            ("Sync", crate::sync::SYNC),
            ("Sync.Mode FTFW", crate::sync::FTFW),
            ("Sync.Mode ALARM", crate::sync::ALARM),
            ("Sync.Mode NOTRACK", crate::sync::NOTRACK),
            ("Sync.Multicast", crate::sync::MCAST),
            ("Sync.UDP", crate::sync::UDP),
            ("Sync.TCP", crate::sync::TCP),
            ("Sync.Options", crate::sync::OPTIONS),
            ("Sync.Authentication", crate::sync::AUTHENTICATION),
            ("Stats", crate::parser::STATS),
            ("Helper", crate::helper::HELPER),
            ("Helper.Type", crate::helper::TYPE),
            ("Helper.Type.Policy", crate::helper::POLICY),
        ]
    }

    fn is_pending(k: &Key) -> bool {
        PENDING.contains(&k.section)
            || matches!(k.kind, KeyKind::Block(opens) if opens.iter().all(|o| PENDING.contains(o)))
    }

    #[test]
    fn reference_matches_the_parser_tables() {
        let tables = parser_tables();
        let mut problems = Vec::new();
        for s in SECTIONS {
            if !PENDING.contains(&s.id) && !tables.iter().any(|(id, _)| *id == s.id) {
                problems.push(format!("section `{}` has no parser table", s.id));
            }
        }
        for (id, block) in &tables {
            if section(id).is_none() || block.section != *id {
                problems.push(format!("parser table of `{id}` has no documented section"));
            }
            let table = block.keys;
            for name in table {
                let documented = keys_of(id).any(|k| k.name == *name)
                    || (REMOVED_IN.contains(id) && REMOVED.iter().any(|r| r.name == *name));
                if !documented {
                    problems.push(format!("`{name}` in `{id}` is accepted but not documented"));
                }
            }
            for k in keys_of(id) {
                if !table.contains(&k.name) && !is_pending(k) {
                    problems.push(format!(
                        "`{}` in `{id}` is documented but not in the parser's table",
                        k.name
                    ));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Defaults are constants of the model; the reference states them as
    /// text, so the two are compared here.
    #[test]
    fn documented_defaults_are_the_code_defaults() {
        let documented = |section: &str, name: &str| {
            keys_of(section)
                .find(|k| k.name == name)
                .and_then(|k| k.default)
        };
        let general = crate::model::General::default();
        for (section, name, value) in [
            (
                "General.UNIX",
                "MaxClients",
                general.max_clients.to_string(),
            ),
            (
                "General.UNIX",
                "ReplyTimeout",
                general.reply_timeout.to_string(),
            ),
            ("General.Metrics", "Port", DEFAULT_METRICS_PORT.to_string()),
            (
                "General",
                "EventBatchDelay",
                general.event_batch_delay.to_string(),
            ),
        ] {
            assert_eq!(
                documented(section, name),
                Some(value.as_str()),
                "{section} {name}"
            );
        }
    }

    #[test]
    fn reference_is_consistent() {
        for s in SECTIONS {
            if let Some(parent) = s.parent {
                assert!(section(parent).is_some(), "{}: unknown parent", s.id);
                if !PENDING.contains(&s.id) {
                    assert!(
                        keys_of(parent)
                            .any(|k| matches!(k.kind, KeyKind::Block(o) if o.contains(&s.id))),
                        "{}: no key of {parent} opens it",
                        s.id
                    );
                }
            }
        }
        for k in KEYS {
            assert!(section(k.section).is_some(), "{}: unknown section", k.name);
            match k.kind {
                KeyKind::Block(opens) => {
                    for o in opens {
                        assert!(section(o).is_some(), "{}: opens unknown {o}", k.name);
                    }
                }
                KeyKind::Alias(of) => assert!(
                    keys_of(k.section).any(|m| m.name == of && m.kind == KeyKind::Setting),
                    "{}: alias of unknown {of}",
                    k.name
                ),
                KeyKind::Setting => {
                    assert!(!k.description.is_empty(), "{}: no description", k.name)
                }
                KeyKind::Legacy(_) | KeyKind::Ignored | KeyKind::Obsolete => {}
            }
            let same = keys_of(k.section).filter(|m| m.name == k.name).count();
            assert_eq!(same, 1, "{} listed {same} times in {}", k.name, k.section);
        }
    }

    /// A file that opens the blocks down to `section` and writes `line`
    /// inside; returns the file and the 1-based line number of `line`.
    fn embed(section: &str, line: &str) -> (String, usize) {
        let path = sample_path(section);
        let mut text = String::new();
        for opener in &path {
            text.push_str(opener);
            text.push_str(" {\n");
        }
        text.push_str(line);
        text.push('\n');
        for _ in &path {
            text.push_str("}\n");
        }
        (text, path.len() + 1)
    }

    /// Syntax errors reported on line `line` of a parse of `text`.
    fn syntax_errors_on(text: &str, line: usize) -> Vec<String> {
        let parsed = parse_str_with(
            text,
            ParseOptions {
                check_interfaces: false,
            },
        );
        parsed
            .diagnostics
            .iter()
            .filter(|d| d.line == line && d.message.starts_with("syntax error"))
            .map(|d| d.message.clone())
            .collect()
    }

    #[test]
    fn every_documented_key_is_accepted_with_its_example() {
        let mut problems = Vec::new();
        for k in KEYS.iter().filter(|k| !is_pending(k)) {
            let (text, line) = embed(k.section, &format!("{} {}", k.name, k.example));
            let errors = syntax_errors_on(&text, line);
            if !errors.is_empty() {
                problems.push(format!("{text}=> {errors:?}"));
            }
        }
        for id in REMOVED_IN {
            for r in REMOVED {
                let (text, line) = embed(id, &format!("{} {}", r.name, r.example));
                let errors = syntax_errors_on(&text, line);
                if !errors.is_empty() {
                    problems.push(format!("{text}=> {errors:?}"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn an_undocumented_key_is_rejected_in_every_section() {
        for s in SECTIONS.iter().filter(|s| !PENDING.contains(&s.id)) {
            let (text, line) = embed(s.id, "NoSuchKey 1");
            assert!(
                !syntax_errors_on(&text, line).is_empty(),
                "NoSuchKey accepted in {}",
                s.id
            );
        }
    }

    #[test]
    fn pending_sections_are_not_yet_parsed() {
        for id in PENDING {
            let Some(s) = section(id) else {
                panic!("pending section {id} is not documented");
            };
            let parent = s.parent.unwrap_or(TOP);
            let (text, line) = embed(parent, &format!("{} {{ }}", s.sample));
            assert!(
                !syntax_errors_on(&text, line).is_empty(),
                "the parser now accepts `{id}`: remove it from PENDING in reference.rs"
            );
        }
    }
}

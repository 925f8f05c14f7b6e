//! Typed configuration produced by the parser (defaults already applied),
//! and the default of every key whose default the code applies, defined
//! once next to the field it fills: the parser and the model's `Default`
//! apply them, the reference states them (and from it the manual page),
//! and the daemon and the sync channels read them from here. A test
//! (tests/reference.rs) parses each section with and without each
//! documented default written out and compares.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::diag::Span;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `General { … }` (all blocks merged).
    pub general: General,
    /// `Sync { … }`, if present.
    pub sync: Option<SyncSection>,
    /// `Stats { … }`, if present.
    pub stats: Option<StatsSection>,
    /// `Helper { … }`, if present.
    pub helper: Option<HelperSection>,
}

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogTarget {
    /// No log file.
    #[default]
    Off,
    /// `LogFile on`: the section's default path.
    Default,
    /// `LogFile PATH`.
    Path(PathBuf),
}

/// Syslog facility accepted by `Syslog NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    /// `daemon` (also `Syslog on`).
    Daemon,
    /// `local0` … `local7`.
    Local(u8),
}

impl Facility {
    /// Parses `daemon` / `local0`…`local7` (exact, lower case).
    pub fn from_name(name: &str) -> Option<Facility> {
        if name == "daemon" {
            return Some(Facility::Daemon);
        }
        let n = name.strip_prefix("local")?;
        match n.as_bytes() {
            [d @ b'0'..=b'7'] => Some(Facility::Local(d - b'0')),
            _ => None,
        }
    }

    /// Name as written in the configuration.
    pub fn name(self) -> String {
        match self {
            Facility::Daemon => "daemon".to_owned(),
            Facility::Local(n) => format!("local{n}"),
        }
    }
}

/// CPU scheduling policy of `Scheduler { Type }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerType {
    /// SCHED_RR.
    Rr,
    /// SCHED_FIFO.
    Fifo,
}

/// `Scheduler { Type …; Priority … }` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scheduler {
    /// `Type`, if given.
    pub kind: Option<SchedulerType>,
    /// `Priority`, if given (0..=99).
    pub priority: Option<u8>,
}

impl Scheduler {
    /// Policy and priority the 1.4.7 daemon actually uses: RR at
    /// [`DEFAULT_PRIORITY`] without `Type`; with `Type`, the configured
    /// priority or 0 (docs/config.md §4.1).
    pub fn effective(&self) -> (SchedulerType, u8) {
        match self.kind {
            None => (SchedulerType::Rr, DEFAULT_PRIORITY),
            Some(kind) => (kind, self.priority.unwrap_or(0)),
        }
    }
}

/// Accept or ignore policy of a filter category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Only matching flows are processed.
    Accept,
    /// Matching flows are dropped.
    Ignore,
}

/// An address with a prefix length (host entries have the full length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// Address as written.
    pub addr: IpAddr,
    /// Prefix length (32/128 for a host).
    pub prefix_len: u8,
}

impl IpNet {
    /// True if this is a single host (full-length prefix).
    pub fn is_host(&self) -> bool {
        self.prefix_len == if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// `Filter { … }` (all Filter blocks merged).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// `From Kernelspace` (last Filter block decides).
    pub from_kernelspace: bool,
    /// Protocol policy and protocol numbers.
    pub protocol: Option<(Policy, Vec<u8>)>,
    /// Address policy and networks/hosts.
    pub address: Option<(Policy, Vec<IpNet>)>,
    /// State policy and TCP states (`conntrack_model::consts::tcp_state`).
    pub state: Option<(Policy, Vec<u8>)>,
    /// Span of the last `Filter` keyword (None if no Filter block).
    pub span: Option<Span>,
}

impl Filter {
    /// True if no category is configured.
    pub fn is_empty(&self) -> bool {
        self.protocol.is_none() && self.address.is_none() && self.state.is_none()
    }
}

// ---- Defaults of General ---------------------------------------------------

/// `LockFile`.
pub const DEFAULT_LOCK_FILE: &str = "/var/lock/conntrackd.lock";
/// `LogFile on` in `General`.
pub const DEFAULT_LOG_FILE: &str = "/var/log/conntrackd.log";
/// `HashSize`: buckets of each cache's hash table (also what 0 means).
pub const DEFAULT_HASH_SIZE: u32 = 65_536;
/// `HashLimit`: flows per cache (also what 0 means).
pub const DEFAULT_HASH_LIMIT: u32 = 262_144;
/// `NetlinkOverrunResync`: seconds before the resync that follows an
/// overrun (also what `on` and 0 mean).
pub const DEFAULT_NETLINK_OVERRUN_RESYNC: u32 = 30;
/// `EventIterationLimit` as 1.4.7 sets it, and what 0 means: kernel events
/// and datagrams of each Multicast or UDP channel handled per wake-up.
/// Unwritten, the daemon reads [`DEFAULT_KERNEL_EVENTS_PER_WAKEUP`] kernel
/// events and this many datagrams; a TCP channel reads this many chunks of
/// its stream whatever is written.
pub const DEFAULT_EVENT_ITERATION_LIMIT: u32 = 100;
/// Kernel events read per wake-up when `EventIterationLimit` is not
/// written (ours; 1.4.7 reads [`DEFAULT_EVENT_ITERATION_LIMIT`]): a flood
/// of events still leaves turns to `-c`, the sync link and the timers.
pub const DEFAULT_KERNEL_EVENTS_PER_WAKEUP: u32 = 2048;
/// `General { EventBatchDelay }`, in milliseconds: after a read that found
/// kernel events, the daemon sends what they produced and waits this long
/// before reading again, so that one wake-up handles every event of that
/// time. Wake-ups cost more than the work of several events; the price is
/// up to this much more lag. 0 reads events as they come, as 1.4.7 does.
pub const DEFAULT_EVENT_BATCH_DELAY: u32 = 4;
/// The longest `EventBatchDelay`: the event buffer must hold what arrives
/// meanwhile, and lag beyond this is felt at failover.
pub const MAX_EVENT_BATCH_DELAY: u32 = 20;
/// `Systemd` (on, like the Debian build of 1.4.7).
pub const DEFAULT_SYSTEMD: bool = true;
/// Real-time priority without `Scheduler { Type }` (with `Type` and no
/// `Priority`, 1.4.7 uses 0).
pub const DEFAULT_PRIORITY: u8 = 99;
/// `UNIX { MaxClients }`: far more than operators and scripts run at once,
/// few enough descriptors and reply buffers to be harmless.
pub const DEFAULT_MAX_CLIENTS: u32 = 32;
/// `UNIX { ReplyTimeout }`, in seconds: a reader paused this long (a pager,
/// `| (sleep 8; wc -l)`) still gets its whole dump, and a stopped one
/// gives its slot back within a minute.
pub const DEFAULT_REPLY_TIMEOUT: u32 = 60;
/// `Metrics { Port }`.
pub const DEFAULT_METRICS_PORT: u16 = 9465;

/// `General { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct General {
    /// Buckets per cache hash table ([`DEFAULT_HASH_SIZE`]).
    pub hash_size: u32,
    /// Max objects per cache ([`DEFAULT_HASH_LIMIT`]).
    pub hash_limit: u32,
    /// Daemon log file.
    pub log_file: LogTarget,
    /// Syslog facility, None = off.
    pub syslog: Option<Facility>,
    /// Lock file path.
    pub lock_file: PathBuf,
    /// Control socket path (`UNIX { Path }`); None = unreachable abstract socket.
    pub unix_path: Option<PathBuf>,
    /// Control clients served at once (`UNIX { MaxClients }`, our extension).
    pub max_clients: u32,
    /// Seconds a control client may read nothing of its reply before the
    /// reply is abandoned (`UNIX { ReplyTimeout }`, our extension).
    pub reply_timeout: u32,
    /// Netlink event socket buffer in bytes (0 = system default).
    pub netlink_buffer_size: u32,
    /// Upper bound for automatic buffer growth (0 = no growth).
    pub netlink_buffer_size_max_growth: u32,
    /// Resync delay after a netlink overrun in seconds; None = off.
    pub netlink_overrun_resync: Option<u32>,
    /// Reliable event delivery.
    pub netlink_events_reliable: bool,
    /// `EventIterationLimit` as written (0 means
    /// [`DEFAULT_EVENT_ITERATION_LIMIT`],
    /// as 1.4.7): kernel events and datagrams of each Multicast or UDP
    /// channel handled per wake-up. Unwritten, the daemon's own caps apply
    /// (docs/migration.md).
    pub event_iteration_limit: Option<u32>,
    /// Milliseconds to wait after a read of kernel events before the next
    /// ([`DEFAULT_EVENT_BATCH_DELAY`]; `EventBatchDelay`, our extension).
    pub event_batch_delay: u32,
    /// Polling mode interval in seconds (None = event mode).
    pub poll_secs: Option<u32>,
    /// CPU scheduler settings.
    pub scheduler: Scheduler,
    /// sd_notify support (default on, like the Debian build).
    pub systemd: bool,
    /// Event filter.
    pub filter: Filter,
    /// `Metrics { … }`: the Prometheus endpoint (our extension; off unless
    /// the block is present).
    pub metrics: Option<Metrics>,
}

/// `General { Metrics { IPv4_address … IPv6_address … Port … } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Addresses to listen on; 127.0.0.1 when the block names none.
    pub addresses: Vec<IpAddr>,
    pub port: u16,
}

impl Metrics {
    /// Where the endpoint listens.
    pub fn listen(&self) -> Vec<SocketAddr> {
        let addresses = if self.addresses.is_empty() {
            vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]
        } else {
            self.addresses.clone()
        };
        addresses
            .into_iter()
            .map(|ip| SocketAddr::new(ip, self.port))
            .collect()
    }
}

impl Default for General {
    fn default() -> Self {
        General {
            hash_size: DEFAULT_HASH_SIZE,
            hash_limit: DEFAULT_HASH_LIMIT,
            log_file: LogTarget::Off,
            syslog: None,
            lock_file: PathBuf::from(DEFAULT_LOCK_FILE),
            unix_path: None,
            max_clients: DEFAULT_MAX_CLIENTS,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            netlink_buffer_size: 0,
            netlink_buffer_size_max_growth: 0,
            netlink_overrun_resync: Some(DEFAULT_NETLINK_OVERRUN_RESYNC),
            netlink_events_reliable: false,
            event_iteration_limit: None,
            event_batch_delay: DEFAULT_EVENT_BATCH_DELAY,
            poll_secs: None,
            scheduler: Scheduler::default(),
            systemd: DEFAULT_SYSTEMD,
            filter: Filter::default(),
            metrics: None,
        }
    }
}

/// Synchronisation mode with its own options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// FT-FW reliable protocol.
    Ftfw {
        /// Objects kept for retransmission
        /// ([`DEFAULT_RESEND_QUEUE_SIZE`]).
        resend_queue_size: u32,
        /// Messages per ACK window
        /// ([`DEFAULT_ACK_WINDOW_SIZE`]).
        ack_window_size: u32,
        /// Inject received states directly.
        disable_external_cache: bool,
        /// `StartupResync` as written; see [`SyncMode::startup_resync`].
        startup_resync: Option<bool>,
    },
    /// Periodic refresh ALARM mode.
    Alarm,
    /// Best-effort NOTRACK mode.
    Notrack {
        /// Send events directly, no internal cache.
        disable_internal_cache: bool,
        /// Inject received states directly.
        disable_external_cache: bool,
        /// `StartupResync` as written; see [`SyncMode::startup_resync`].
        startup_resync: Option<bool>,
    },
}

impl SyncMode {
    /// Upper-case mode name (`FTFW`, `ALARM`, `NOTRACK`).
    pub fn name(&self) -> &'static str {
        match self {
            SyncMode::Ftfw { .. } => "FTFW",
            SyncMode::Alarm => "ALARM",
            SyncMode::Notrack { .. } => "NOTRACK",
        }
    }

    /// Whether the peers are asked for their state at start-up. Unless
    /// `StartupResync off` is written, they are (1.4.7 asks only with
    /// `StartupResync on`): a restarted node gets back what it lost
    /// (docs/migration.md). Never in ALARM, which has no resync request.
    pub fn startup_resync(&self) -> bool {
        match self {
            SyncMode::Ftfw { startup_resync, .. } | SyncMode::Notrack { startup_resync, .. } => {
                startup_resync.unwrap_or(DEFAULT_STARTUP_RESYNC)
            }
            SyncMode::Alarm => false,
        }
    }

    /// True if the external cache is disabled.
    pub fn external_cache_disabled(&self) -> bool {
        match self {
            SyncMode::Ftfw {
                disable_external_cache,
                ..
            }
            | SyncMode::Notrack {
                disable_external_cache,
                ..
            } => *disable_external_cache,
            SyncMode::Alarm => false,
        }
    }
}

/// Dedicated link transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// `Multicast { … }`.
    Multicast,
    /// `UDP { … }`.
    Udp,
    /// `TCP { … }`.
    Tcp,
}

/// The spellings of each transport, one per place it is named.
impl ChannelKind {
    /// As written in the configuration (`UDP { … }`).
    pub fn keyword(self) -> &'static str {
        match self {
            ChannelKind::Multicast => "Multicast",
            ChannelKind::Udp => "UDP",
            ChannelKind::Tcp => "TCP",
        }
    }

    /// In lower case, as logs, `--json` and metrics name it (`udp`).
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Multicast => "multicast",
            ChannelKind::Udp => "udp",
            ChannelKind::Tcp => "tcp",
        }
    }

    /// As conntrackd 1.4.7's statistics name its traffic (`UDP traffic`,
    /// `multicast traffic`).
    pub fn stats_name(self) -> &'static str {
        match self {
            ChannelKind::Multicast => "multicast",
            ChannelKind::Udp => "UDP",
            ChannelKind::Tcp => "TCP",
        }
    }
}

/// Address family of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// AF_INET.
    Ipv4,
    /// AF_INET6.
    Ipv6,
}

// ---- Defaults of a channel -------------------------------------------------

/// `Checksum` of a channel.
pub const DEFAULT_CHECKSUM: bool = true;
/// `RcvSocketBuffer` of a Multicast or UDP channel when not written, in
/// bytes, unless the system default is larger already: the system default
/// (about 208 KiB) overflows when a peer sends a burst of full datagrams
/// while this node is busy, and each lost datagram costs a NACK and a
/// resend (or, in ALARM and NOTRACK, the flows until the next refresh).
/// Memory is only taken while datagrams wait.
pub const DEFAULT_DATAGRAM_RCVBUF: u32 = 4 << 20;

/// One dedicated link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Transport.
    pub kind: ChannelKind,
    /// Marked `Default` (or chosen as default because it is first).
    pub default: bool,
    /// Family implied by the address keywords (UDP/TCP: the destination's).
    pub family: Option<Family>,
    /// Multicast: group address; UDP/TCP: local bind address, the wildcard
    /// address of the destination's family when none is written.
    pub address: Option<IpAddr>,
    /// UDP/TCP peer address.
    pub destination: Option<IpAddr>,
    /// Multicast: local interface address (`IPv4_interface`).
    pub ipv4_interface: Option<Ipv4Addr>,
    /// Interface name.
    pub interface: Option<String>,
    /// UDP/TCP `Port` or Multicast `Group`.
    pub port: u16,
    /// `SndSocketBuffer` in bytes.
    pub snd_buf: Option<u32>,
    /// `RcvSocketBuffer` in bytes.
    pub rcv_buf: Option<u32>,
    /// Message checksums ([`DEFAULT_CHECKSUM`]).
    pub checksum: bool,
    /// Span of the channel keyword.
    pub span: Span,
    /// Line of the channel keyword.
    pub line: usize,
}

impl Channel {
    /// A channel of `kind` whose keyword is at `span` on `line`, before its
    /// items are read: nothing set, checksums [`DEFAULT_CHECKSUM`].
    pub fn new(kind: ChannelKind, span: Span, line: usize) -> Channel {
        Channel {
            kind,
            default: false,
            family: None,
            address: None,
            destination: None,
            ipv4_interface: None,
            interface: None,
            port: 0,
            snd_buf: None,
            rcv_buf: None,
            checksum: DEFAULT_CHECKSUM,
            span,
            line,
        }
    }
}

/// `Options { ExpectationSync … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExpectSync {
    /// Not synchronised.
    #[default]
    Off,
    /// All expectations.
    All,
    /// Only expectations whose helper name starts with one of these
    /// (case-insensitive).
    Helpers(Vec<String>),
}

// ---- Defaults of Sync ------------------------------------------------------

/// `RefreshTime` (ALARM), seconds (also what 0 means).
pub const DEFAULT_REFRESH_TIME: u32 = 60;
/// `CacheTimeout` (ALARM), seconds (also what 0 means).
pub const DEFAULT_CACHE_TIMEOUT: u32 = 180;
/// `PurgeTimeout`, seconds (also what 0 means).
pub const DEFAULT_PURGE_TIMEOUT: u32 = 60;
/// `ResendQueueSize` (FTFW), objects (also what 0 means).
pub const DEFAULT_RESEND_QUEUE_SIZE: u32 = 131_072;
/// `ACKWindowSize` (FTFW), messages (also what 0 means).
pub const DEFAULT_ACK_WINDOW_SIZE: u32 = 300;
/// `StartupResync` when not written (1.4.7: off; docs/migration.md).
pub const DEFAULT_STARTUP_RESYNC: bool = true;
/// `ErrorQueueLength` of the TCP channels, batches (also what 0 means).
pub const DEFAULT_ERROR_QUEUE_LENGTH: u32 = 128;
/// `Options { ReplicateLabels }` (our extension).
pub const DEFAULT_REPLICATE_LABELS: bool = true;

/// `Sync { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSection {
    /// Selected mode (priority FTFW > ALARM > NOTRACK; FTFW if none).
    pub mode: SyncMode,
    /// False if no `Mode` block was given.
    pub mode_specified: bool,
    /// ALARM refresh interval (s,
    /// [`DEFAULT_REFRESH_TIME`]).
    pub refresh_time: u32,
    /// ALARM external-entry lifetime (s,
    /// [`DEFAULT_CACHE_TIMEOUT`]).
    pub cache_timeout: u32,
    /// Timeout of committed entries (s, 0 = not set).
    pub commit_timeout: u32,
    /// Delay of the scheduled kernel flush (s,
    /// [`DEFAULT_PURGE_TIMEOUT`]).
    pub purge_timeout: u32,
    /// Dedicated links, in file order (the default one has `default`);
    /// at most [`MAX_CHANNELS`](crate::MAX_CHANNELS).
    pub channels: Vec<Channel>,
    /// TCP error queue length
    /// ([`DEFAULT_ERROR_QUEUE_LENGTH`]).
    pub error_queue_length: u32,
    /// `TCPWindowTracking`.
    pub tcp_window_tracking: bool,
    /// `ReplicateLabels` (our extension,
    /// [`DEFAULT_REPLICATE_LABELS`]): off leaves
    /// connlabels out of what is sent, committed and injected.
    pub replicate_labels: bool,
    /// `ExpectationSync`.
    pub expectation_sync: ExpectSync,
    /// `Authentication { KeyFile … }` (an extension of ours; off by default).
    pub key_file: Option<PathBuf>,
    /// `Authentication { AcceptKeyFile … }`: a second key, accepted but
    /// not used to send (key rotation).
    pub accept_key_file: Option<PathBuf>,
    /// `Authentication { Encrypt on }`: encrypt as well as authenticate.
    pub encrypt: bool,
    /// Refuse envelopes that are not encrypted (`RequireEncryption`,
    /// default: as `Encrypt`).
    pub require_encryption: bool,
}

impl Default for SyncSection {
    /// A `Sync` section that writes no setting: FTFW (as without a `Mode`
    /// block), no channel yet, every default.
    fn default() -> Self {
        SyncSection {
            mode: SyncMode::Ftfw {
                resend_queue_size: DEFAULT_RESEND_QUEUE_SIZE,
                ack_window_size: DEFAULT_ACK_WINDOW_SIZE,
                disable_external_cache: false,
                startup_resync: None,
            },
            mode_specified: false,
            refresh_time: DEFAULT_REFRESH_TIME,
            cache_timeout: DEFAULT_CACHE_TIMEOUT,
            commit_timeout: 0,
            purge_timeout: DEFAULT_PURGE_TIMEOUT,
            channels: Vec::new(),
            error_queue_length: DEFAULT_ERROR_QUEUE_LENGTH,
            tcp_window_tracking: false,
            replicate_labels: DEFAULT_REPLICATE_LABELS,
            expectation_sync: ExpectSync::Off,
            key_file: None,
            accept_key_file: None,
            encrypt: false,
            require_encryption: false,
        }
    }
}

impl SyncSection {
    /// Index of the default channel.
    pub fn default_channel(&self) -> usize {
        self.channels.iter().position(|c| c.default).unwrap_or(0)
    }
}

// ---- Defaults of Stats -----------------------------------------------------

/// `LogFile on` in `Stats`.
pub const DEFAULT_STATS_LOG_FILE: &str = "/var/log/conntrackd-stats.log";

/// `Stats { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsSection {
    /// Destroyed-flow log file.
    pub log_file: LogTarget,
    /// Syslog facility, None = off.
    pub syslog: Option<Facility>,
}

/// Layer 3 protocol of a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperL3 {
    /// `inet`.
    Inet,
    /// `inet6`.
    Inet6,
}

/// Layer 4 protocol of a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperL4 {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
}

/// `Policy NAME { … }` of a helper type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperPolicy {
    /// Policy name.
    pub name: String,
    /// `ExpectMax`.
    pub expect_max: Option<u32>,
    /// `ExpectTimeout` in seconds.
    pub expect_timeout: Option<u32>,
}

/// `Type NAME L3 L4 { … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperType {
    /// Helper name (one of [`KNOWN_HELPERS`]).
    pub name: String,
    /// Layer 3.
    pub l3: HelperL3,
    /// Layer 4.
    pub l4: HelperL4,
    /// NFQUEUE number.
    pub queue_num: Option<u32>,
    /// NFQUEUE max length.
    pub queue_len: Option<u32>,
    /// Expectation policies.
    pub policies: Vec<HelperPolicy>,
    /// Span of the `Type` keyword.
    pub span: Span,
}

/// `Helper { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HelperSection {
    /// `Setup on|off`.
    pub setup: bool,
    /// Configured helpers.
    pub types: Vec<HelperType>,
}

/// Whether the helper `name` serves `l4` (1.4.7 looks a helper up by
/// name and transport: `Type ftp inet udp` is an unknown helper).
pub fn helper_serves(name: &str, l4: HelperL4) -> bool {
    match name {
        "rpc" | "ssdp" => true,
        "ftp" | "sane" | "tns" => l4 == HelperL4::Tcp,
        _ => l4 == HelperL4::Udp,
    }
}

/// Largest `QueueNum`: the queue number travels in 16 bits.
pub const MAX_QUEUE_NUM: u32 = 65_535;

/// Helper modules installed with 1.4.7 (docs/config.md §4.8); each has one
/// expectation policy with the same name.
pub const KNOWN_HELPERS: &[&str] = &[
    "amanda", "dhcpv6", "ftp", "mdns", "rpc", "sane", "slp", "ssdp", "tftp", "tns",
];

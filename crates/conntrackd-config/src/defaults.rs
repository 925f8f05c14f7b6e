//! The default of every configuration key whose default the code applies,
//! defined once. The parser applies them, the model's `Default` uses them,
//! the reference states them (and from it the manual page), and the daemon
//! and the sync channels read them from here. A test parses each section
//! with and without each documented default written out and compares.

// ---- General ------------------------------------------------------------

/// `HashSize`: buckets of each cache's hash table (also what 0 means).
pub const DEFAULT_HASH_SIZE: u32 = 65_536;
/// `HashLimit`: flows per cache (also what 0 means).
pub const DEFAULT_HASH_LIMIT: u32 = 262_144;
/// `LockFile`.
pub const DEFAULT_LOCK_FILE: &str = "/var/lock/conntrackd.lock";
/// `LogFile on` in `General`.
pub const DEFAULT_LOG_FILE: &str = "/var/log/conntrackd.log";
/// `LogFile on` in `Stats`.
pub const DEFAULT_STATS_LOG_FILE: &str = "/var/log/conntrackd-stats.log";
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
/// `Systemd` (on, like the Debian build of 1.4.7).
pub const DEFAULT_SYSTEMD: bool = true;
/// Real-time priority without `Scheduler { Type }` (with `Type` and no
/// `Priority`, 1.4.7 uses 0).
pub const DEFAULT_PRIORITY: u8 = 99;

// ---- General.UNIX and General.Metrics (our extensions) --------------------

/// `UNIX { MaxClients }`: far more than operators and scripts run at once,
/// few enough descriptors and reply buffers to be harmless.
pub const DEFAULT_MAX_CLIENTS: u32 = 32;
/// `UNIX { ReplyTimeout }`, in seconds: a reader paused this long (a pager,
/// `| (sleep 8; wc -l)`) still gets its whole dump, and a stopped one
/// gives its slot back within a minute.
pub const DEFAULT_REPLY_TIMEOUT: u32 = 60;
/// `Metrics { Port }`.
pub const DEFAULT_METRICS_PORT: u16 = 9465;

// ---- Sync -------------------------------------------------------------------

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
/// `Checksum` of a channel.
pub const DEFAULT_CHECKSUM: bool = true;
/// `RcvSocketBuffer` of a Multicast or UDP channel when not written, in
/// bytes, unless the system default is larger already: the system default
/// (about 208 KiB) overflows when a peer sends a burst of full datagrams
/// while this node is busy, and each lost datagram costs a NACK and a
/// resend (or, in ALARM and NOTRACK, the flows until the next refresh).
/// Memory is only taken while datagrams wait.
pub const DEFAULT_DATAGRAM_RCVBUF: u32 = 4 << 20;
/// `ErrorQueueLength` of the TCP channels, batches (also what 0 means).
pub const DEFAULT_ERROR_QUEUE_LENGTH: u32 = 128;
/// `Options { ReplicateLabels }` (our extension).
pub const DEFAULT_REPLICATE_LABELS: bool = true;

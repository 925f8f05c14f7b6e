//! The limits the configuration enforces, defined once: the parser checks
//! them (and its messages name them), the reference states them, and the
//! daemon relies on them.

/// Dedicated links (channels) in `Sync`, as 1.4.7.
pub const MAX_CHANNELS: usize = 4;
/// Characters of a `LogFile` or `LockFile` path (1.4.7's buffers).
pub const MAX_FILE_PATH_LEN: usize = 256;
/// Characters of the control socket's `Path` (`sun_path` less its NUL).
pub const MAX_SOCKET_PATH_LEN: usize = 107;
/// Characters of an `Authentication` key file's path.
pub const MAX_KEY_FILE_PATH_LEN: usize = 4096;
/// Characters of an interface name (`IFNAMSIZ` less its NUL).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;
/// Highest `Scheduler { Priority }`.
pub const MAX_PRIORITY: u8 = 99;
/// Bytes a `KeyFile` must hold at least (the authentication layer of the
/// sync core refuses shorter keys: `conntrackd_core::sync::auth::MIN_KEY_LEN`).
pub const MIN_KEY_FILE_LEN: u64 = 16;

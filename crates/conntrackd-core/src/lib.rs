//! Sans-IO core of conntrackd: caches, filters, counters; never reads a
//! clock or touches a socket. Inputs come in through `handle_*(now, …)`,
//! outputs are drained with `poll_*()`.

pub mod bpf;
pub mod cache;
mod compact;
pub mod expect_cache;
pub mod filter;
#[doc(hidden)]
pub mod fixtures;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
mod index;
pub mod local;
pub mod report;
pub mod request;
pub mod sync;
mod table;

/// Hash maps keyed by flows: foldhash with a random seed per map (fast, and
/// keys from the network cannot be chosen to collide without the seed).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

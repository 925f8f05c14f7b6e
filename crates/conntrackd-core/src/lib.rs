//! Sans-IO core of conntrackd: caches, filters, counters; never reads a
//! clock or touches a socket. Inputs come in through `handle_*(now, …)`,
//! outputs are drained with `poll_*()`.

pub mod bpf;
pub mod cache;
pub mod expect_cache;
pub mod filter;
pub mod local;
pub mod report;
pub mod sync;

//! The running daemon's state: which mode it is in (idle, stats, sync),
//! the kernel sockets, and the sans-IO core they feed.

use std::time::Instant;

use conntrackd_config::Config;

use crate::cli::code;
use crate::runtime_stats::RuntimeStats;

/// Which of the three daemon modes runs (sync-modes.md §1.3).
#[derive(Debug)]
enum Mode {
    /// Neither `Sync` nor `Stats`: only `-k`, `-s runtime`, `-s process`.
    Idle,
}

/// Readiness of the kernel event socket.
#[derive(Debug)]
pub struct KernelReady;

#[derive(Debug)]
pub struct Node {
    mode: Mode,
}

impl Node {
    pub fn new(_config: &Config, _now: Instant) -> Result<Node, String> {
        Ok(Node { mode: Mode::Idle })
    }

    /// When the core next needs `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Resolves when the kernel event socket has data.
    pub async fn kernel_readable(&self) -> KernelReady {
        std::future::pending().await
    }

    pub fn handle_kernel_readable(&mut self, _ready: KernelReady, _now: Instant) {}

    pub fn handle_timeout(&mut self, _now: Instant) {}

    pub fn reopen_logs(&mut self) {}

    /// Serves one control request and returns the reply text.
    pub async fn handle_request(
        &mut self,
        request: i32,
        now: Instant,
        stats: &mut RuntimeStats,
    ) -> String {
        match (&self.mode, request) {
            (_, code::STATS_RUNTIME) => {
                let mut out = stats.uptime_line(now);
                out.push_str(&stats.render_runtime_block());
                out
            }
            (_, code::STATS_PROCESS) => String::new(),
            (Mode::Idle, _) => String::new(),
        }
    }
}

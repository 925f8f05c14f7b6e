//! Daemon-level counters of `-s runtime` that belong to the shell (control
//! socket, children), and the uptime text.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use crate::counters::model::{Control, MetricsEndpoint};
use crate::counters::stats_text;

#[derive(Debug)]
pub struct RuntimeStats {
    pub started: Instant,
    pub control: Rc<ControlCounters>,
    /// The Prometheus endpoint's clients, if `Metrics` is on.
    pub metrics: Option<Rc<MetricsCounters>>,
    /// The user-space helpers' counters, published by their task.
    pub helpers: crate::helpers::SharedReport,
}

/// What happened to control-socket clients. Shared with the tasks that
/// accept clients and write replies (all on the daemon's one thread), so
/// each counts where it happens, before the client sees the outcome.
#[derive(Debug, Default)]
pub struct ControlCounters {
    /// No complete request in time (`local read failed`).
    pub read_failed: Cell<u64>,
    /// A code 1.4.7 does not define (`local unknown request`).
    pub unknown_request: Cell<u64>,
    /// Replies given up because the client read nothing for `ReplyTimeout`.
    pub replies_abandoned: Cell<u64>,
    /// Newcomers closed because every slot was busy with a reply.
    pub refused_busy: Cell<u64>,
    /// Clients that had sent nothing, closed to make room for a newcomer.
    pub silent_dropped: Cell<u64>,
    /// Failed `accept()`s (EMFILE and the like).
    pub accept_errors: Cell<u64>,
}

/// Adds one to a shell counter.
pub fn bump(counter: &Cell<u64>) {
    counter.set(counter.get() + 1);
}

impl ControlCounters {
    /// The reading of these counters (`-s runtime`, `--json`, metrics).
    pub fn reading(&self) -> Control {
        Control {
            read_failed: self.read_failed.get(),
            unknown_requests: self.unknown_request.get(),
            replies_abandoned: self.replies_abandoned.get(),
            clients_refused: self.refused_busy.get(),
            silent_clients_dropped: self.silent_dropped.get(),
            accept_errors: self.accept_errors.get(),
        }
    }
}

/// What happened to clients of the Prometheus endpoint; shared with its
/// tasks like [`ControlCounters`].
#[derive(Debug, Default)]
pub struct MetricsCounters {
    pub scrapes: Cell<u64>,
    pub bad_requests: Cell<u64>,
    pub incomplete_requests: Cell<u64>,
    pub refused_busy: Cell<u64>,
    pub silent_dropped: Cell<u64>,
    pub accept_errors: Cell<u64>,
}

impl MetricsCounters {
    /// The reading of these counters (`--json`, metrics).
    pub fn reading(&self) -> MetricsEndpoint {
        MetricsEndpoint {
            scrapes: self.scrapes.get(),
            bad_requests: self.bad_requests.get(),
            incomplete_requests: self.incomplete_requests.get(),
            clients_refused: self.refused_busy.get(),
            silent_clients_dropped: self.silent_dropped.get(),
            accept_errors: self.accept_errors.get(),
        }
    }
}

/// Where a field of ours is shown: the `control socket:` block.
const CONTROL_BLOCK: &str = "-s runtime: control socket: ... ";

impl RuntimeStats {
    pub fn new(started: Instant) -> Self {
        RuntimeStats {
            started,
            control: Rc::default(),
            metrics: None,
            helpers: Rc::default(),
        }
    }

    /// The `runtime stats:` block (docs/control-and-cli.md §4.4). We fork no
    /// children and use no select(), so those counters stay 0. Our own
    /// control-socket counters follow in a block of their own, shown once
    /// one of them is not 0, so that the report keeps 1.4.7's layout until
    /// something happened (docs/troubleshooting.md).
    pub fn render_runtime_block(&self) -> String {
        let c = self.control.reading();
        let mut text = format!(
            "runtime stats:\n\tchild process failed:\t\t{:>12}\n\t\tchild process segfault:\t{:>12}\n\t\tchild process termsig:\t{:>12}\n\tselect failed:\t\t\t{:>12}\n\twait failed:\t\t\t{:>12}\n\tlocal read failed:\t\t{:>12}\n\tlocal unknown request:\t\t{:>12}\n\n",
            0, 0, 0, 0, 0, c.read_failed, c.unknown_requests
        );
        // Ours: the fields described as shown in `control socket:`, once
        // one of them is not 0.
        let mut ours = String::from("control socket:\n");
        if stats_text::lines(&mut ours, Control::FIELDS, CONTROL_BLOCK, |f| c.number(f)) {
            text.push_str(&ours);
            text.push('\n');
        }
        text
    }

    pub fn uptime_line(&self, now: Instant) -> String {
        format!(
            "daemon uptime: {}\n\n",
            uptime_text(now.duration_since(self.started).as_secs())
        )
    }
}

/// `"<d> day(s) <h> h <m> min"` as the C daemon prints it.
pub fn uptime_text(t: u64) -> String {
    let days = t / 86400;
    let hours = (t / 3600) % 24;
    let minutes = (t / 60) % 60;
    let mut out = String::new();
    if days > 0 {
        out.push_str(&format!(
            "{days} {} ",
            if days == 1 { "day" } else { "days" }
        ));
    }
    if hours > 0 {
        out.push_str(&format!("{hours} h {minutes} min"));
    } else {
        out.push_str(&format!("{minutes} min"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_follows_the_c_rules() {
        assert_eq!(uptime_text(0), "0 min");
        assert_eq!(uptime_text(59), "0 min");
        assert_eq!(uptime_text(3600 + 120), "1 h 2 min");
        assert_eq!(uptime_text(86400), "1 day 0 min");
        assert_eq!(uptime_text(2 * 86400 + 7200), "2 days 2 h 0 min");
    }

    #[test]
    fn runtime_block_layout() {
        let s = RuntimeStats::new(Instant::now());
        let text = s.render_runtime_block();
        assert!(text.starts_with("runtime stats:\n\tchild process failed:\t\t           0\n"));
        assert!(text.ends_with("\tlocal unknown request:\t\t           0\n\n"));
    }

    #[test]
    fn control_block_appears_once_a_client_was_turned_away() {
        let s = RuntimeStats::new(Instant::now());
        bump(&s.control.silent_dropped);
        let text = s.render_runtime_block();
        let (classic, ours) = text
            .split_once("\n\ncontrol socket:\n")
            .expect("our block after 1.4.7's");
        assert!(classic.ends_with("\tlocal unknown request:\t\t           0"));
        assert_eq!(
            ours,
            "\treplies abandoned:\t\t           0\n\tclients refused (busy):\t\t           0\n\tsilent clients dropped:\t\t           1\n\taccept errors:\t\t\t           0\n\n"
        );
    }
}

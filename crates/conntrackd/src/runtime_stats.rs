//! Daemon-level counters of `-s runtime` that belong to the shell (control
//! socket, children), and the uptime text.

use std::time::Instant;

#[derive(Debug)]
pub struct RuntimeStats {
    pub started: Instant,
    pub local_read_failed: u64,
    pub local_unknown_request: u64,
}

impl RuntimeStats {
    pub fn new(started: Instant) -> Self {
        RuntimeStats {
            started,
            local_read_failed: 0,
            local_unknown_request: 0,
        }
    }

    /// The `runtime stats:` block (control-and-cli.md §4.4). We fork no
    /// children and use no select(), so those counters stay 0.
    pub fn render_runtime_block(&self) -> String {
        format!(
            "runtime stats:\n\tchild process failed:\t\t{:>12}\n\t\tchild process segfault:\t{:>12}\n\t\tchild process termsig:\t{:>12}\n\tselect failed:\t\t\t{:>12}\n\twait failed:\t\t\t{:>12}\n\tlocal read failed:\t\t{:>12}\n\tlocal unknown request:\t\t{:>12}\n\n",
            0, 0, 0, 0, 0, self.local_read_failed, self.local_unknown_request
        )
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
}

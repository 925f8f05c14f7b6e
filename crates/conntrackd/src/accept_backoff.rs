//! Pauses between failed `accept()`s. An error such as EMFILE leaves the
//! pending connection in the backlog, so the listener stays readable and
//! an immediate retry fails again at once: at SCHED_RR that loop would
//! take a whole CPU. Pauses start at 10 ms and double up to 1 s; one
//! success starts them over.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(10);
const LONGEST: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    next: Duration,
    failing: bool,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            next: FIRST,
            failing: false,
        }
    }
}

impl AcceptBackoff {
    /// After a failed accept: how long to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(LONGEST);
        self.failing = true;
        pause
    }

    pub fn succeeded(&mut self) {
        *self = AcceptBackoff::default();
    }

    /// The last accept failed (so a new failure needs no new log line).
    pub fn failing(&self) -> bool {
        self.failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_a_second_and_restart_after_a_success() {
        let mut backoff = AcceptBackoff::default();
        assert!(!backoff.failing());
        let pauses: Vec<u64> = (0..9)
            .map(|_| backoff.failed().as_millis() as u64)
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert!(backoff.failing());
        backoff.succeeded();
        assert!(!backoff.failing());
        assert_eq!(backoff.failed(), FIRST);
    }
}

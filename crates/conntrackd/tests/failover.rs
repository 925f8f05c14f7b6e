//! End to end: a live TCP session through the primary firewall survives
//! the move of the virtual gateways to the backup (scripts/failover), in
//! every sync mode; without conntrackd the same session breaks.

mod common;

use common::{netns_available, run_scenario};

/// Runs scripts/failover; true if the session survived.
fn failover(args: &[&str]) -> (bool, String) {
    run_scenario("failover", args)
}

macro_rules! survives {
    ($name:ident, $($arg:expr),*) => {
        #[test]
        fn $name() {
            if !netns_available(stringify!($name)) {
                return;
            }
            let (ok, text) = failover(&[$($arg),*]);
            assert!(ok, "the session broke: {text}");
            assert!(text.contains("SURVIVED"), "{text}");
        }
    };
}

survives!(ftfw_multicast_session_survives, "--mode", "ftfw");
survives!(alarm_multicast_session_survives, "--mode", "alarm");
survives!(notrack_multicast_session_survives, "--mode", "notrack");
survives!(
    ftfw_udp_session_survives,
    "--mode",
    "ftfw",
    "--transport",
    "udp"
);
survives!(
    notrack_tcp_session_survives,
    "--mode",
    "notrack",
    "--transport",
    "tcp"
);

#[test]
fn without_conntrackd_the_session_breaks() {
    if !netns_available("without_conntrackd_the_session_breaks") {
        return;
    }
    let (ok, text) = failover(&["--daemon", "none"]);
    assert!(!ok, "the control run should break: {text}");
    assert!(text.contains("BROKEN"), "{text}");
}

//! End to end with keepalived (scripts/keepalived-failover): VRRP moves the
//! virtual gateways from a killed primary to the backup by itself, the
//! repository's notify script (packaging/keepalived/conntrackd-notify.sh)
//! runs our daemon's commands, and a live TCP session survives. Its gate
//! keeps traffic away from the new primary until the commit is done; with
//! the gate off, a slow commit and tcp_loose on, traffic does pass through
//! an entry picked up mid-stream before the commit.

mod common;

use std::process::Command;

use common::{netns_available, run_scenario};

/// True when keepalived can run here; otherwise skips loudly, or panics
/// when CONNTRACKD_REQUIRE_NETNS=1.
fn keepalived_available(test: &str) -> bool {
    if !netns_available(test) {
        return false;
    }
    let ok = Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    let why = format!("SKIPPING {test}: needs keepalived (apt-get install keepalived)");
    if std::env::var("CONNTRACKD_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("{why} — and CONNTRACKD_REQUIRE_NETNS=1 forbids skipping");
    }
    eprintln!("\n!!!!!!!! {why} !!!!!!!!\n");
    false
}

/// Runs scripts/keepalived-failover; (exit 0, output).
fn keepalived_failover(args: &[&str]) -> (bool, String) {
    run_scenario("keepalived-failover", args)
}

const NO_EARLY_TRAFFIC: &str = "no traffic through fw2 before its commit";

#[test]
fn keepalived_moves_the_gateways_and_the_session_survives() {
    if !keepalived_available("keepalived_moves_the_gateways_and_the_session_survives") {
        return;
    }
    let (ok, text) = keepalived_failover(&[]);
    assert!(ok, "the session broke: {text}");
    assert!(text.contains("SURVIVED"), "{text}");
    assert!(text.contains(NO_EARLY_TRAFFIC), "{text}");
    assert!(text.contains("gate lifted"), "{text}");
}

/// The race made wide: the commit takes 4 s, tcp_loose is on and the LAN
/// may open connections. Mid-stream packets reach fw2 within those 4 s
/// (TCP retransmits at least every 3.2 s by then).
const SLOW_COMMIT: [&str; 4] = ["--tcp-loose", "--lan-open", "--commit-delay", "4"];

#[test]
fn without_the_gate_traffic_passes_before_the_commit() {
    if !keepalived_available("without_the_gate_traffic_passes_before_the_commit") {
        return;
    }
    let mut args = vec!["--no-gate"];
    args.extend(SLOW_COMMIT);
    let (ok, text) = keepalived_failover(&args);
    assert!(!ok, "the race should show without the gate: {text}");
    assert!(text.contains("RACE:"), "{text}");
    // The entry that carried it was picked up mid-stream: no mark from fw1.
    assert!(
        text.contains("fw2 kernel before its commit:") && text.contains("mark=0"),
        "{text}"
    );
}

#[test]
fn the_gate_holds_traffic_until_the_commit_is_done() {
    if !keepalived_available("the_gate_holds_traffic_until_the_commit_is_done") {
        return;
    }
    let (ok, text) = keepalived_failover(&SLOW_COMMIT);
    assert!(ok, "{text}");
    assert!(text.contains("SURVIVED"), "{text}");
    assert!(text.contains(NO_EARLY_TRAFFIC), "{text}");
    assert!(!text.contains("RACE:"), "{text}");
}

/// The primary comes back after the failover (keepalived first, conntrackd
/// 3 s later, an empty kernel table) with preemption on: a track_script on
/// `conntrackd --synced` keeps its priority low until its external cache
/// holds the session, and the session survives both moves.
#[test]
fn a_restarted_primary_takes_the_addresses_back_only_once_synced() {
    if !keepalived_available("a_restarted_primary_takes_the_addresses_back_only_once_synced") {
        return;
    }
    let (ok, text) = keepalived_failover(&["--restart-primary"]);
    assert!(ok, "{text}");
    assert!(text.contains("SURVIVED"), "{text}");
    assert!(
        text.contains("fw1 held the session in its external cache"),
        "{text}"
    );
}

/// The control run: without the track_script the restarted primary
/// preempts before its conntrackd holds anything, and the session breaks.
#[test]
fn without_readiness_a_restarted_primary_takes_the_addresses_back_too_early() {
    if !keepalived_available(
        "without_readiness_a_restarted_primary_takes_the_addresses_back_too_early",
    ) {
        return;
    }
    let (ok, text) = keepalived_failover(&["--restart-primary", "--no-readiness"]);
    assert!(!ok, "the early takeover should show: {text}");
    assert!(
        text.contains("EARLY: fw1 took the addresses back"),
        "{text}"
    );
}

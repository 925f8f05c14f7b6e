//! The sync-mode parts of `-s` (docs/control-and-cli.md §4.1, §4.2, §4.6, §4.8).

use std::fmt::Write;

use super::queue::Item;
use super::{BypassCounters, SyncCore};

/// `network statistics:` and `sequence tracking statistics:` of
/// `-s network`, without the channel block.
pub fn network_block(out: &mut String, core: &SyncCore) {
    let c = &core.counters;
    let _ = write!(
        out,
        "network statistics:\n\trecv:\n\t\tMalformed messages:\t{:>20}\n\t\tWrong protocol version:\t{:>20}\n\t\tMalformed header:\t{:>20}\n\t\tMalformed payload:\t{:>20}\n\t\tBad message type:\t{:>20}\n\t\tTruncated message:\t{:>20}\n\t\tBad message size:\t{:>20}\n\tsend:\n\t\tMalformed messages:\t{:>20}\n\nsequence tracking statistics:\n\trecv:\n\t\tPackets lost:\t\t{:>20}\n\t\tPackets before:\t\t{:>20}\n\n",
        c.malformed,
        c.bad_version,
        c.bad_header,
        c.bad_payload,
        c.bad_type,
        c.truncated,
        c.bad_size,
        0,
        c.lost,
        c.before
    );
    if let Some(auth) = core.auth() {
        auth_block(out, auth);
    }
}

/// `authentication:` of `-s network` (our extension): refusals by reason,
/// then what the handshakes did.
fn auth_block(out: &mut String, auth: &super::auth::Auth) {
    let c = auth.counters();
    let _ = write!(
        out,
        "authentication:\n\trecv:\n\t\tAuth failures:\t\t{:>20}\n",
        c.refused_total()
    );
    for why in super::auth::Refusal::ALL {
        let label = format!("{}:", why.label());
        let _ = writeln!(out, "\t\t  {label:<22}{:>20}", c.refused(why));
    }
    let _ = write!(
        out,
        "\tsessions:\n\t\tVerified now:\t\t{:>20}\n\t\tVerified in all:\t{:>20}\n\t\tHeld envelopes:\t\t{:>20}\n\t\tHandshakes sent:\t{:>20}\n\n",
        auth.verified_sessions(),
        c.verified,
        auth.held_now(),
        c.handshakes_sent
    );
}

/// `message tracking:` of `-s`.
pub fn message_tracking_block(out: &mut String, core: &SyncCore) {
    let _ = write!(
        out,
        "message tracking:\n{:>20} Malformed msgs {:>20} Lost msgs\n\n",
        core.counters.malformed, core.counters.lost
    );
}

/// `internal bypass:` (NOTRACK, DisableInternalCache).
pub fn bypass_block(out: &mut String, c: &BypassCounters) {
    let _ = write!(
        out,
        "internal bypass:\nconnections new:\t\t{:>12}\nconnections updated:\t\t{:>12}\nconnections destroyed:\t\t{:>12}\n\n",
        c.new, c.updated, c.destroyed
    );
}

fn queue_block(out: &mut String, name: &str, len: usize, max: u64, errors: u64) {
    let _ = write!(
        out,
        "queue {name}:\ncurrent elements:\t\t{len:>12}\nmaximum elements:\t\t{max:>12}\nnot enough space errors:\t{errors:>12}\n\n"
    );
}

/// `-s queue`; `errorq` is the TCP error queue (len, max, drops).
pub fn queues(out: &mut String, core: &SyncCore, errorq: (usize, usize, u64)) {
    let q = core.queue_stats();
    let controls = q.control_nodes;
    let _ = write!(out, "allocated queue nodes:\t\t{controls:>12}\n\n");
    queue_block(out, "txqueue", q.transmit, i32::MAX as u64, 0);
    queue_block(out, "errorq", errorq.0, errorq.1 as u64, errorq.2);
    if let Some(max) = q.resend_max {
        queue_block(out, "rsqueue", q.resend, max, q.resend_dropped);
    }
}

/// `-s rsqueue`: the resend queue, oldest first.
pub fn resend_queue(out: &mut String, core: &SyncCore) {
    let Some(ftfw) = core.ftfw() else {
        return;
    };
    let _ = writeln!(out, "resent queue (len={})", ftfw.rsq.len());
    for (item, sent) in ftfw.rsq.iter() {
        let seq = sent.seq;
        match item {
            Item::Control(c) => {
                let _ = writeln!(out, "control -> seq:{seq} flags:{}", c.flags());
            }
            Item::Object(_) => {
                let _ = writeln!(out, "object -> seq:{seq}");
            }
        }
    }
}

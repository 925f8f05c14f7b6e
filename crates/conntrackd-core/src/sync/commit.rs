//! The commit (`-c`, docs/sync-modes.md §8.2) and the kernel requests built
//! from replicated objects (§8.3). Pure: the shell sends the requests.

use std::time::{Duration, Instant};

use conntrack_model::consts::{IPPROTO_TCP, status};
use conntrack_model::{Conntrack, TcpFlags, TcpInfo, Tuple};

use super::SyncCore;

/// `IP_CT_TCP_FLAG_BE_LIBERAL`: no window checks on recovered sessions.
const TCP_FLAG_BE_LIBERAL: u8 = 0x08;

/// Kernel create requests for the external conntrack cache, in commit
/// order: plain flows, then related ones (their master must exist first).
/// Built one by one, so a commit of many flows needs no second copy.
pub(super) fn flows(core: &SyncCore, now: Instant) -> impl Iterator<Item = Conntrack> + '_ {
    let pass = move |related: bool| {
        (0..core.external.len()).filter_map(move |at| request_at(core, at, related, now))
    };
    pass(false).chain(pass(true))
}

/// The create request for the external flow at position `at`, if it
/// belongs to the pass (`related`: flows with a master).
pub(super) fn request_at(
    core: &SyncCore,
    at: usize,
    related: bool,
    now: Instant,
) -> Option<Conntrack> {
    let settings = core.settings();
    if settings.disable_external_cache {
        return None;
    }
    let entry = core.external.entry_at(at)?;
    let flow = entry.ct();
    if flow.master.is_some() != related {
        return None;
    }
    let age = core.external.idle(entry, now);
    let timeout = commit_timeout(settings.commit_timeout, flow.timeout, age);
    Some(prepare_create(&flow, timeout, settings.tcp_window_tracking))
}

/// The reply tuple the kernel gives a committed flow: the inverse of the
/// original, with the SNAT target as its destination and the DNAT target
/// as its source (sync messages carry the NAT, not the reply tuple).
pub(super) fn reply_after_nat(ct: &Conntrack) -> Option<Tuple> {
    let mut reply = ct.orig.as_ref()?.inverted();
    if let Some(snat) = &ct.nat_src {
        if let Some(ip) = snat.min_ip {
            reply.dst = ip;
        }
        if let Some(port) = snat.min_port {
            reply.dst_port = Some(port);
        }
    }
    if let Some(dnat) = &ct.nat_dst {
        if let Some(ip) = dnat.min_ip {
            reply.src = ip;
        }
        if let Some(port) = dnat.min_port {
            reply.src_port = Some(port);
        }
    }
    Some(reply)
}

/// `CommitTimeout` if set; else the reported timeout minus the time since
/// the last update; 60 s when that is not positive. (1.4.7 passes no
/// timeout when it comes out at exactly 0, and the kernel refuses the
/// entry; we use 60 then too.)
pub(super) fn commit_timeout(configured: u32, reported: Option<u32>, age: Duration) -> u32 {
    if configured > 0 {
        return configured;
    }
    let left = i64::from(reported.unwrap_or(0)) - i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
    if left <= 0 {
        60
    } else {
        u32::try_from(left).unwrap_or(u32::MAX)
    }
}

/// A create request for a replicated flow: reply = inverse of the original
/// (the kernel derives the NAT'ed reply from the NAT attributes), no
/// EXPECTED bit, BE_LIBERAL both ways unless window tracking is on.
pub fn prepare_create(ct: &Conntrack, timeout: u32, tcp_window_tracking: bool) -> Conntrack {
    let mut c = ct.clone();
    c.timeout = Some(timeout);
    c.status = Some(ct.status.unwrap_or(0) & !status::EXPECTED);
    c.reply = c.orig.as_ref().map(Tuple::inverted);
    c.id = None;
    c.use_count = None;
    c.counters_orig = None;
    c.counters_reply = None;
    c.timestamp = None;
    if !tcp_window_tracking && c.l4proto() == Some(IPPROTO_TCP) {
        let liberal = Some(TcpFlags {
            flags: TCP_FLAG_BE_LIBERAL,
            mask: TCP_FLAG_BE_LIBERAL,
        });
        let tcp = c.tcp.get_or_insert_with(TcpInfo::default);
        tcp.flags_orig = liberal;
        tcp.flags_reply = liberal;
    }
    c
}

/// An update request (injection of CT_UPD): as a create, without NAT,
/// helper and master, which the kernel refuses to change.
pub fn prepare_update(ct: &Conntrack, timeout: u32, tcp_window_tracking: bool) -> Conntrack {
    let mut c = prepare_create(ct, timeout, tcp_window_tracking);
    c.nat_src = None;
    c.nat_dst = None;
    c.status = c.status.map(|s| s & !(status::SRC_NAT | status::DST_NAT));
    c.helper = None;
    c.master = None;
    c
}

/// The create and update requests for a flow a peer sent, written at once
/// (`DisableExternalCache`, docs/sync-modes.md §8.1). A sender with
/// `CommitTimeout` leaves the timeout out: the create then gets 60 s (as a
/// commit would; 1.4.7 sends none and the kernel refuses the entry), and
/// the update leaves the kernel's timeout alone (a timeout of 0 would end
/// the flow at once).
pub fn inject_requests(ct: &Conntrack, tcp_window_tracking: bool) -> (Conntrack, Conntrack) {
    let create = prepare_create(
        ct,
        commit_timeout(0, ct.timeout, Duration::ZERO),
        tcp_window_tracking,
    );
    let mut update = prepare_update(ct, 0, tcp_window_tracking);
    update.timeout = ct.timeout;
    (create, update)
}

#[cfg(test)]
mod nat_tests {
    use super::*;
    use conntrack_model::NatRange;

    #[test]
    fn reply_follows_the_nat_targets() {
        let orig = Tuple::new(
            "10.0.0.2".parse().expect("ip"),
            "192.0.2.80".parse().expect("ip"),
            IPPROTO_TCP,
        )
        .with_ports(40000, 80);
        let mut ct = Conntrack {
            orig: Some(orig.clone()),
            ..Conntrack::default()
        };
        assert_eq!(reply_after_nat(&ct), Some(orig.inverted()));
        ct.nat_src = Some(NatRange {
            min_ip: Some("198.51.100.1".parse().expect("ip")),
            max_ip: None,
            min_port: Some(50000),
            max_port: None,
        });
        ct.nat_dst = Some(NatRange {
            min_ip: Some("10.9.9.9".parse().expect("ip")),
            max_ip: None,
            min_port: Some(8080),
            max_port: None,
        });
        let reply = reply_after_nat(&ct).expect("reply");
        assert_eq!(
            reply.src,
            "10.9.9.9".parse::<std::net::IpAddr>().expect("ip")
        );
        assert_eq!(reply.src_port, Some(8080));
        assert_eq!(
            reply.dst,
            "198.51.100.1".parse::<std::net::IpAddr>().expect("ip")
        );
        assert_eq!(reply.dst_port, Some(50000));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rules() {
        let s = Duration::from_secs;
        assert_eq!(commit_timeout(180, Some(5), s(0)), 180);
        assert_eq!(commit_timeout(0, Some(100), s(30)), 70);
        assert_eq!(commit_timeout(0, Some(10), s(30)), 60);
        assert_eq!(commit_timeout(0, None, s(0)), 60);
        assert_eq!(commit_timeout(0, Some(5), s(5)), 60);
    }

    #[test]
    fn create_is_liberal_and_inverts_the_tuple() {
        let orig = Tuple::new(
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            6,
        )
        .with_ports(1000, 80);
        let ct = Conntrack {
            orig: Some(orig.clone()),
            status: Some(status::EXPECTED | status::ASSURED),
            helper: Some("ftp".into()),
            ..Conntrack::default()
        };
        let c = prepare_create(&ct, 30, false);
        assert_eq!(c.reply, Some(orig.inverted()));
        assert_eq!(c.status, Some(status::ASSURED));
        assert_eq!(c.timeout, Some(30));
        let liberal = Some(TcpFlags { flags: 8, mask: 8 });
        assert_eq!(
            c.tcp.as_ref().map(|t| (t.flags_orig, t.flags_reply)),
            Some((liberal, liberal))
        );
        assert!(prepare_create(&ct, 30, true).tcp.is_none());
        let u = prepare_update(&ct, 30, false);
        assert_eq!(u.helper, None);
    }

    #[test]
    fn injected_flows_without_a_timeout_keep_one() {
        let orig = Tuple::new(
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
            17,
        )
        .with_ports(1000, 53);
        let mut ct = Conntrack {
            orig: Some(orig),
            ..Conntrack::default()
        };
        let (create, update) = inject_requests(&ct, false);
        assert_eq!(create.timeout, Some(60));
        assert_eq!(update.timeout, None, "the kernel's timeout stays");
        ct.timeout = Some(25);
        let (create, update) = inject_requests(&ct, false);
        assert_eq!((create.timeout, update.timeout), (Some(25), Some(25)));
    }
}

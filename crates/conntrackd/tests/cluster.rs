//! Topologies beyond one pair: three firewalls on one multicast group,
//! redundant sync links with failover, and a backup that crashes and
//! comes back. Our daemon only (1.4.7 cannot do the first two).

mod common;

use std::time::Duration;

use common::{Daemon, Impl, Netns, Scratch, netns_available, unique, wait_until};

/// `links` bridges in a switch namespace; node i has interface `syncK` on
/// bridge K with address 10.(77+K).0.(i+1).
struct Cluster {
    nodes: Vec<Daemon>,
    _switch: Netns,
}

fn multicast_block(link: usize, me: usize, default: bool) -> String {
    format!(
        "\tMulticast {}{{\n\t\tIPv4_address 225.0.0.{}\n\t\tIPv4_interface 10.{}.0.{}\n\t\tInterface sync{link}\n\t\tGroup {}\n\t}}\n",
        if default { "Default " } else { "" },
        50 + link,
        77 + link,
        me + 1,
        3780 + link
    )
}

impl Cluster {
    fn new(nodes: usize, links: usize, mode: &str, default_link: usize) -> Cluster {
        let switch = Netns::new("csw");
        for k in 0..links {
            switch.ip(&["link", "add", &format!("br{k}"), "type", "bridge"]);
            switch.ip(&["link", "set", &format!("br{k}"), "up"]);
        }
        let mut daemons = Vec::new();
        for i in 0..nodes {
            let ns = Netns::new("cln");
            for k in 0..links {
                let (a, b) = (unique("ca"), unique("cb"));
                common::run_ok(
                    "ip",
                    &["link", "add", &a, "type", "veth", "peer", "name", &b],
                );
                common::run_ok("ip", &["link", "set", &a, "netns", &ns.name]);
                common::run_ok("ip", &["link", "set", &b, "netns", &switch.name]);
                switch.ip(&["link", "set", &b, "master", &format!("br{k}"), "up"]);
                let dev = format!("sync{k}");
                ns.ip(&["link", "set", &a, "name", &dev]);
                ns.ip(&[
                    "addr",
                    "add",
                    &format!("10.{}.0.{}/24", 77 + k, i + 1),
                    "dev",
                    &dev,
                ]);
                ns.ip(&["link", "set", &dev, "up"]);
            }
            let scratch = Scratch::new();
            let channels: String = (0..links)
                .map(|k| multicast_block(k, i, k == default_link && links > 1))
                .collect();
            let text = format!(
                "Sync {{\n\tMode {mode}\n{channels}}}\nGeneral {{\n\tSystemd off\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n\tNetlinkBufferSize 8388608\n\tNetlinkBufferSizeMaxGrowth 67108864\n\tFilter {{ Address Ignore {{ IPv4_address 10.0.0.0/8 }} }}\n}}\n",
                scratch.path("log").display(),
                scratch.path("lock").display(),
                scratch.path("sock").display()
            );
            let conf = scratch.write("ct.conf", &text);
            daemons.push(Daemon {
                ns,
                scratch,
                conf,
                imp: Impl::Ours,
            });
        }
        for d in &daemons {
            d.start();
        }
        Cluster {
            nodes: daemons,
            _switch: switch,
        }
    }
}

/// A flow owned by node `node`, number `n`.
fn add_flow(d: &Daemon, node: usize, n: usize) -> String {
    let src = format!("192.168.{}.{}", 100 + node, n + 1);
    d.ns.conntrack(&[
        "-I",
        "-s",
        &src,
        "-d",
        "172.16.0.1",
        "-p",
        "tcp",
        "--sport",
        "4000",
        "--dport",
        "443",
        "--state",
        "ESTABLISHED",
        "-u",
        "ASSURED,SEEN_REPLY",
        "-t",
        "300",
    ]);
    format!("src={src} dst=172.16.0.1 sport=4000 dport=443")
}

#[test]
fn three_ftfw_nodes_each_hold_every_other_nodes_flows() {
    for mode in [
        "FTFW { }",
        "NOTRACK { }",
        "ALARM { RefreshTime 2 CacheTimeout 10 }",
    ] {
        if !netns_available("three_ftfw_nodes_each_hold_every_other_nodes_flows") {
            return;
        }
        let c = Cluster::new(3, 1, mode, 0);
        std::thread::sleep(Duration::from_millis(300));
        let mut owned: Vec<Vec<String>> = vec![Vec::new(); 3];
        for (i, d) in c.nodes.iter().enumerate() {
            for n in 0..20 {
                owned[i].push(add_flow(d, i, n));
            }
        }
        for (i, d) in c.nodes.iter().enumerate() {
            let want: Vec<&String> = (0..3).filter(|&o| o != i).flat_map(|o| &owned[o]).collect();
            let mut ext = String::new();
            let ok = wait_until(Duration::from_secs(10), || {
                ext = d.ctl(&["-e"]);
                want.iter().all(|f| ext.contains(f.as_str()))
            });
            let missing = want.iter().filter(|f| !ext.contains(f.as_str())).count();
            assert!(
                ok,
                "{mode}: node {i} misses {missing} of {} flows:\n{ext}",
                want.len()
            );
            // Its own flows are not echoed back to it.
            assert!(!owned[i].iter().any(|f| ext.contains(f.as_str())));
        }
        if mode.starts_with("FTFW") {
            // Settled, nobody asks anybody for a resync any more (ACKs
            // meant for another node once made every node resend RESYNC
            // requests, and all of them bulk-sent every second).
            let resyncs = || {
                c.nodes
                    .iter()
                    .map(|d| d.log().matches("resync requested by other node").count())
                    .sum::<usize>()
            };
            std::thread::sleep(Duration::from_secs(2));
            let settled = resyncs();
            std::thread::sleep(Duration::from_secs(4));
            assert_eq!(resyncs(), settled, "resync requests while idle");
        }
    }
}

#[test]
fn redundant_links_fail_over_to_the_next_channel() {
    if !netns_available("redundant_links_fail_over_to_the_next_channel") {
        return;
    }
    let c = Cluster::new(2, 2, "FTFW { }", 1);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let link = a.ctl(&["-s", "link"]);
    assert!(
        link.contains("device=sync1 status=RUNNING role=ACTIVE")
            && link.contains("device=sync0 status=RUNNING role=BACKUP"),
        "{link}"
    );
    let first = add_flow(a, 0, 1);
    assert!(wait_until(Duration::from_secs(5), || b
        .ctl(&["-e"])
        .contains(&first)));
    a.ns.ip(&["link", "set", "sync1", "down"]);
    assert!(
        wait_until(Duration::from_secs(5), || a
            .log()
            .contains("device `sync0' becomes dedicated link")),
        "{}",
        a.log()
    );
    let link = a.ctl(&["-s", "link"]);
    assert!(
        link.contains("device=sync1 status=DOWN role=BACKUP")
            && link.contains("device=sync0 status=RUNNING role=ACTIVE"),
        "{link}"
    );
    let second = add_flow(a, 0, 2);
    assert!(
        wait_until(Duration::from_secs(5), || b.ctl(&["-e"]).contains(&second)),
        "{}",
        b.ctl(&["-e"])
    );
    // The peer followed: it now sends on the link it hears from.
    assert!(
        wait_until(Duration::from_secs(5), || b
            .ctl(&["-s", "link"])
            .contains("device=sync0 status=RUNNING role=ACTIVE")),
        "{}",
        b.ctl(&["-s", "link"])
    );
}

#[test]
fn a_crashed_backup_recovers_the_full_state_by_itself() {
    for mode in ["FTFW { }", "NOTRACK { }"] {
        if !netns_available("a_crashed_backup_recovers_the_full_state_by_itself") {
            return;
        }
        let c = Cluster::new(2, 1, mode, 0);
        let (a, b) = (&c.nodes[0], &c.nodes[1]);
        let flows: Vec<String> = (0..50).map(|n| add_flow(a, 0, n)).collect();
        let complete = |d: &Daemon| {
            let ext = d.ctl(&["-e"]);
            flows.iter().all(|f| ext.contains(f.as_str()))
        };
        assert!(wait_until(Duration::from_secs(5), || complete(b)));
        let pid = std::fs::read_to_string(b.scratch.path("lock")).expect("lock holds the pid");
        common::run_ok("kill", &["-9", pid.trim()]);
        std::thread::sleep(Duration::from_millis(200));
        // The restarted daemon starts empty (nothing is persisted); only
        // its start-up RESYNC and the peer's bulk send can refill it.
        b.start();
        assert!(
            wait_until(Duration::from_secs(5), || complete(b)),
            "{mode}: after the restart -e holds:\n{}\nlog:\n{}\nprimary log:\n{}\nprimary -s network:\n{}",
            b.ctl(&["-e"]),
            b.log(),
            a.log(),
            a.ctl(&["-s", "network"])
        );
        assert!(a.log().contains("resync requested by other node"));
    }
}

#[test]
fn scheduled_purge_flushes_the_kernel_after_purge_timeout() {
    if !netns_available("scheduled_purge_flushes_the_kernel_after_purge_timeout") {
        return;
    }
    let c = Cluster::new(1, 1, "FTFW { PurgeTimeout 1 }", 0);
    let d = &c.nodes[0];
    let flow = add_flow(d, 0, 1);
    // Ignored by the filter (10.0.0.0/8): survives the purge.
    d.ns.conntrack(&[
        "-I",
        "-s",
        "10.9.9.9",
        "-d",
        "10.9.9.10",
        "-p",
        "udp",
        "--sport",
        "1",
        "--dport",
        "2",
        "-t",
        "300",
    ]);
    d.ctl(&["-t"]);
    assert!(d.kernel().contains(&flow), "flushed before PurgeTimeout");
    assert!(
        wait_until(Duration::from_secs(4), || !d.kernel().contains(&flow)),
        "{}",
        d.kernel()
    );
    assert!(d.kernel().contains("src=10.9.9.9"), "{}", d.kernel());
    let log = d.log();
    assert!(
        log.contains("flushing conntrack table in 1 secs")
            && log.contains("flushing kernel conntrack table (scheduled)"),
        "{log}"
    );
}

/// FTFW over a link that drops a share of the sync datagrams in both
/// directions (nftables `numgen random`): 2000 flows created, 500 of them
/// deleted, and the backup converges to exactly the primary's state. The
/// time it took is printed (not asserted: that is the benchmark's job).
fn converges_under_loss(percent: u32) {
    let c = Cluster::new(2, 1, "FTFW { }", 0);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    for d in [a, b] {
        let rules = d.scratch.write(
            "loss.nft",
            &format!(
                "table inet loss {{\n chain input {{ type filter hook input priority 0; udp dport 3780 numgen random mod 100 < {percent} drop; }}\n}}\n"
            ),
        );
        d.ns.exec_ok("nft", &["-f", rules.to_str().expect("path")]);
    }
    let add: String = (0..2000)
        .map(|i| {
            format!(
                "-A -t 300 -u ASSURED -s 172.20.{}.{} -d 192.168.77.1 -r 192.168.77.1 -q 172.20.{}.{} -p tcp --sport {} --dport 443 --reply-port-src 443 --reply-port-dst {} --state ESTABLISHED\n",
                i / 250, i % 250 + 1, i / 250, i % 250 + 1, 1000 + i, 1000 + i
            )
        })
        .collect();
    let start = std::time::Instant::now();
    a.ns.conntrack(&[
        "-R",
        a.scratch.write("add.save", &add).to_str().expect("path"),
    ]);
    // The first 500 (172.20.0.x and 172.20.1.x) go again.
    a.ns.conntrack(&["-D", "-s", "172.20.0.0/23"]);
    let mut ext = String::new();
    let converged = wait_until(Duration::from_secs(30), || {
        ext = b.ctl(&["-e"]);
        ext.lines()
            .filter(|l| l.contains("dst=192.168.77.1"))
            .count()
            == 1500
            && !ext.contains("src=172.20.0.")
            && !ext.contains("src=172.20.1.")
    });
    let took = start.elapsed();
    let lost = b
        .ctl(&["-s", "network"])
        .lines()
        .find(|l| l.contains("Packets lost"))
        .map(str::to_string)
        .unwrap_or_default();
    eprintln!(
        "{percent}% loss: converged={converged} after {took:?}; backup {}",
        lost.trim()
    );
    assert!(
        converged,
        "{percent}% loss: backup holds {} flows after 30 s",
        ext.lines()
            .filter(|l| l.contains("dst=192.168.77.1"))
            .count()
    );
}

#[test]
fn ftfw_converges_with_10_percent_loss() {
    if netns_available("ftfw_converges_with_10_percent_loss") {
        converges_under_loss(10);
    }
}

#[test]
fn ftfw_converges_with_30_percent_loss() {
    if netns_available("ftfw_converges_with_30_percent_loss") {
        converges_under_loss(30);
    }
}

/// The original tuples in a `-i`/`-e` listing.
fn tuples(listing: &str) -> std::collections::BTreeSet<String> {
    listing
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| w.starts_with("src="))?;
            Some(words.get(at..at + 4)?.join(" "))
        })
        .collect()
}

/// Soak: minutes of continuous churn over a link losing 10 % of the sync
/// datagrams, then the backup's external cache must equal the primary's
/// internal cache exactly. Not part of CI; run with
/// `CONNTRACKD_SOAK_SECS=600 cargo test -p conntrackd --test cluster soak -- --ignored --nocapture`.
#[test]
#[ignore]
fn soak_churn_with_loss() {
    if !netns_available("soak_churn_with_loss") {
        return;
    }
    let secs: u64 = std::env::var("CONNTRACKD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let c = Cluster::new(2, 1, "FTFW { }", 0);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    for d in [a, b] {
        let rules = d.scratch.write(
            "loss.nft",
            "table inet loss {\n chain input { type filter hook input priority 0; udp dport 3780 numgen random mod 100 < 10 drop; }\n}\n",
        );
        d.ns.exec_ok("nft", &["-f", rules.to_str().expect("path")]);
    }
    let subnet = |r: u64| format!("172.{}.{}", 16 + (r / 250) % 16, r % 250);
    let start = std::time::Instant::now();
    let mut round = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let net = subnet(round);
        let add: String = (1..=200)
            .map(|h| {
                format!(
                    "-A -t 600 -u ASSURED -s {net}.{h} -d 192.168.77.1 -r 192.168.77.1 -q {net}.{h} -p tcp --sport {} --dport 443 --reply-port-src 443 --reply-port-dst {} --state ESTABLISHED\n",
                    2000 + h, 2000 + h
                )
            })
            .collect();
        a.ns.conntrack(&[
            "-R",
            a.scratch.write("round.save", &add).to_str().expect("path"),
        ]);
        if round >= 5 {
            let _ = a.ns.exec(
                "conntrack",
                &["-D", "-s", &format!("{}.0/24", subnet(round - 5))],
            );
        }
        if round.is_multiple_of(3) {
            let _ = a.ns.exec(
                "conntrack",
                &["-U", "-s", &format!("{net}.0/24"), "-m", "7"],
            );
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut want = Default::default();
    let mut got = Default::default();
    let same = wait_until(Duration::from_secs(30), || {
        want = tuples(&a.ctl(&["-i"]));
        got = tuples(&b.ctl(&["-e"]));
        want == got
    });
    eprintln!(
        "soak: {round} rounds in {secs} s; primary {} flows, backup {}; backup {}",
        want.len(),
        got.len(),
        b.ctl(&["-s", "network"])
            .lines()
            .find(|l| l.contains("Packets lost"))
            .unwrap_or_default()
            .trim()
    );
    assert!(
        same,
        "missing on the backup: {:?}\nstale on the backup: {:?}",
        want.difference(&got).take(5).collect::<Vec<_>>(),
        got.difference(&want).take(5).collect::<Vec<_>>()
    );
}

/// The primary is killed; a flow is made and another deleted in its kernel
/// while its daemon is down; it restarts. The backup keeps the rest, gets
/// the new flow (seeing the primary come back, it asks for a resync) and,
/// once the resync had its time, drops the deleted one.
#[test]
fn a_restarted_primary_brings_the_backup_up_to_date() {
    if !netns_available("a_restarted_primary_brings_the_backup_up_to_date") {
        return;
    }
    let c = Cluster::new(2, 1, "FTFW { }", 0);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let before: Vec<String> = (0..20).map(|n| add_flow(a, 0, n)).collect();
    assert!(wait_until(Duration::from_secs(5), || {
        let e = b.ctl(&["-e"]);
        before.iter().all(|f| e.contains(f.as_str()))
    }));
    // Let the idle ACKs settle, so nothing old is still waiting in a
    // resend queue to be sent again by chance.
    std::thread::sleep(Duration::from_millis(2500));
    let pid = std::fs::read_to_string(a.scratch.path("lock")).expect("lock holds the pid");
    common::run_ok("kill", &["-9", pid.trim()]);
    let during = add_flow(a, 0, 99);
    a.ns.conntrack(&["-D", "-s", "192.168.100.1"]);
    let (gone, kept) = before.split_at(1);
    std::thread::sleep(Duration::from_millis(300));
    a.start();
    let ok = wait_until(Duration::from_secs(5), || {
        let e = b.ctl(&["-e"]);
        e.contains(&during) && kept.iter().all(|f| e.contains(f.as_str()))
    });
    assert!(ok, "backup:\n{}\nbackup log:\n{}", b.ctl(&["-e"]), b.log());
    let swept = wait_until(Duration::from_secs(15), || {
        !b.ctl(&["-e"]).contains(&gone[0])
    });
    assert!(swept, "stale flow kept:\n{}", b.ctl(&["-e"]));
    let e = b.ctl(&["-e"]);
    assert!(
        e.contains(&during) && kept.iter().all(|f| e.contains(f.as_str())),
        "{e}"
    );
}

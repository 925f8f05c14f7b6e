//! Syslog, compared with conntrackd 1.4.7: both daemons run in Stats mode
//! with `Syslog` on, each in its own network and mount namespace where
//! /dev/log is a datagram socket of the test's. The datagrams they send
//! (priority, tag, message, down to a record's trailing newline) must be
//! the same once the time stamp and pid are masked.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::{C_DAEMON, Impl, Netns, Scratch, netns_available, wait_until};

/// Runs one daemon, makes two flows and destroys them; returns the syslog
/// datagrams it sent, with `MMM DD HH:MM:SS` and the pid masked.
fn syslog_of(imp: Impl) -> Vec<String> {
    let ns = Netns::new("csl");
    let scratch = Scratch::new();
    let socket_path = scratch.path("log.sock");
    let server = UnixDatagram::bind(&socket_path).expect("bind the fake /dev/log");
    server
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let dir = scratch.dir.path().display().to_string();
    let conf = scratch.write(
        "conf",
        &format!(
            "General {{
\tSyslog local5
\tLogFile {dir}/daemon.log
\tLockFile {dir}/lock
\tUNIX {{ Path {dir}/sock }}
\tNetlinkBufferSize 2097152
\tNetlinkBufferSizeMaxGrowth 8388608
}}
Stats {{
\tLogFile {dir}/stats.log
\tSyslog local5
}}
"
        ),
    );
    // A private /dev holding only what a daemon needs, plus `log`.
    let script = format!(
        "set -e
mount --make-rprivate /
dev={dir}/dev
mkdir $dev
mount -t tmpfs tmpfs $dev
for d in null zero urandom random; do touch $dev/$d; mount --bind /dev/$d $dev/$d; done
ln -s {sock} $dev/log
mount --bind $dev /dev
exec ip netns exec {ns} {bin} -C {conf} -d",
        sock = socket_path.display(),
        ns = ns.name,
        bin = imp.bin(),
        conf = conf.display(),
    );
    let started = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    assert!(
        started.status.success(),
        "{imp:?} did not start: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert!(
        wait_until(Duration::from_secs(5), || scratch.path("sock").exists()),
        "{imp:?}: no control socket"
    );
    for (proto, dst, extra) in [("tcp", "2.2.2.2", "ESTABLISHED"), ("udp", "2.2.2.3", "")] {
        let mut args = vec![
            "-I", "-p", proto, "-s", "1.1.1.1", "-d", dst, "--sport", "10", "--dport", "20", "-t",
            "100",
        ];
        if proto == "tcp" {
            args.extend(["--state", extra, "-u", "ASSURED"]);
        } else {
            args.extend(["-m", "7"]);
        }
        ns.conntrack(&args);
    }
    ns.conntrack(&["-D", "-s", "1.1.1.1"]);
    assert!(
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(scratch.path("stats.log"))
                .is_ok_and(|log| log.lines().count() == 2)
        }),
        "{imp:?}: the destroyed flows were not logged"
    );
    let conf_arg = conf.display().to_string();
    ns.exec(imp.bin(), &["-C", &conf_arg, "-k"]);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the shutdown line, or a quiet spell.
    while let Ok(n) = server.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = text.contains("---- shutdown received ----");
        got.push(mask(&text));
        if done {
            break;
        }
    }
    // Flow records come in the kernel's deletion order, which depends on
    // the namespace's hash seed; daemon lines keep their order.
    got.sort_by_key(|line| match line.contains(" src=") {
        true => (1, line.clone()),
        false => (0, String::new()),
    });
    got
}

/// `<173>Nov 25 08:39:29 conntrack-tools[3738]: text` →
/// `<173>TIME conntrack-tools[PID]: text`.
fn mask(datagram: &str) -> String {
    let Some(close) = datagram.find('>') else {
        return datagram.to_string();
    };
    let (pri, rest) = datagram.split_at(close + 1);
    // The time stamp is 15 characters, then a space.
    let Some(after_time) = rest.get(16..) else {
        return datagram.to_string();
    };
    let tag_end = after_time.find("]: ").map_or(0, |i| i + 3);
    let tag = &after_time[..tag_end];
    let tag = tag.split('[').next().unwrap_or(tag);
    format!("{pri}TIME {tag}[PID]: {}", &after_time[tag_end..])
}

#[test]
fn syslog_datagrams_match_1_4_7() {
    if !netns_available("syslog_datagrams_match_1_4_7") {
        return;
    }
    assert!(
        std::path::Path::new(C_DAEMON).exists(),
        "the C conntrackd is needed (apt-get install conntrackd)"
    );
    let c = syslog_of(Impl::C);
    let ours = syslog_of(Impl::Ours);
    // Not vacuous: daemon lines and both flow records are there.
    assert!(c.len() >= 5, "{c:#?}");
    assert!(
        c.iter()
            .any(|l| l.contains("udp      17 src=1.1.1.1") && l.ends_with("mark=7\n")),
        "{c:#?}"
    );
    assert_eq!(ours, c, "ours (left) differs from 1.4.7 (right)");
}

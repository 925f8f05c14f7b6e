//! Two firewalls in namespaces joined by a veth pair named `sync0` on both
//! sides (10.77.0.1 and .2, fd00:77::1 and ::2), each with a daemon
//! configured for one transport.

use std::path::PathBuf;
use std::time::Duration;

use super::{Daemon, Impl, Netns, Scratch, run_ok, unique, wait_until};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Multicast,
    Udp,
    Tcp,
    Udp6,
    /// The block VyOS writes without `listen-address`: no local address.
    UdpAnyLocal,
    TcpAnyLocal,
}

/// The UDP or TCP port of the transport (the multicast group's port).
pub fn port(t: Transport) -> u16 {
    match t {
        Transport::Multicast | Transport::UdpAnyLocal => 3780,
        Transport::Udp | Transport::Udp6 => 3781,
        Transport::Tcp | Transport::TcpAnyLocal => 3782,
    }
}

pub fn transport_block(t: Transport, me: u8, peer: u8) -> String {
    match t {
        Transport::Multicast => format!(
            "\tMulticast {{\n\t\tIPv4_address 225.0.0.50\n\t\tIPv4_interface 10.77.0.{me}\n\t\tInterface sync0\n\t\tGroup 3780\n\t\tChecksum on\n\t}}\n"
        ),
        Transport::Udp => format!(
            "\tUDP {{\n\t\tIPv4_address 10.77.0.{me}\n\t\tIPv4_Destination_Address 10.77.0.{peer}\n\t\tPort 3781\n\t\tInterface sync0\n\t\tChecksum off\n\t}}\n"
        ),
        Transport::Udp6 => format!(
            "\tUDP {{\n\t\tIPv6_address fd00:77::{me}\n\t\tIPv6_Destination_Address fd00:77::{peer}\n\t\tPort 3781\n\t\tInterface sync0\n\t}}\n"
        ),
        Transport::Tcp => format!(
            "\tTCP {{\n\t\tIPv4_address 10.77.0.{me}\n\t\tIPv4_Destination_Address 10.77.0.{peer}\n\t\tPort 3782\n\t\tInterface sync0\n\t}}\n"
        ),
        Transport::UdpAnyLocal => format!(
            "\tUDP {{\n\t\tIPv4_Destination_Address 10.77.0.{peer}\n\t\tPort 3780\n\t\tInterface sync0\n\t\tSndSocketBuffer 1249280\n\t\tRcvSocketBuffer 1249280\n\t\tChecksum on\n\t}}\n"
        ),
        Transport::TcpAnyLocal => format!(
            "\tTCP {{\n\t\tIPv4_Destination_Address 10.77.0.{peer}\n\t\tPort 3782\n\t\tInterface sync0\n\t}}\n"
        ),
    }
}

pub fn write_conf(s: &Scratch, mode: &str, t: Transport, me: u8, peer: u8) -> PathBuf {
    let text = format!(
        "Sync {{\n\tMode {mode}\n{}\tOptions {{ }}\n}}\nGeneral {{\n\tSystemd off\n\tHashSize 8192\n\tHashLimit 65535\n\tLogFile {}\n\tLockFile {}\n\tUNIX {{ Path {} }}\n\tNetlinkBufferSize 2097152\n\tNetlinkBufferSizeMaxGrowth 8388608\n\tFilter {{ Address Ignore {{ IPv4_address 10.77.0.0/24 }} }}\n}}\n",
        transport_block(t, me, peer),
        s.path("log").display(),
        s.path("lock").display(),
        s.path("sock").display()
    );
    s.write("ct.conf", &text)
}

/// Replaces the empty `Options { }` of a node's configuration.
pub fn set_options(node: &Daemon, with: &str) {
    let conf = std::fs::read_to_string(&node.conf).expect("config");
    std::fs::write(&node.conf, conf.replace("Options { }", with)).expect("config");
}

/// Gives a node `Authentication` with a shared key (and `Encrypt`).
pub fn with_key(node: &Daemon, encrypt: bool) {
    use std::os::unix::fs::PermissionsExt;
    let key = node
        .scratch
        .write("sync.key", "a shared secret of thirty-two by");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    set_options(
        node,
        &format!(
            "Options {{ }}\n\tAuthentication {{ KeyFile {} Encrypt {} }}",
            key.display(),
            if encrypt { "on" } else { "off" }
        ),
    );
}

pub fn words(s: &str) -> Vec<&str> {
    s.split(' ').collect()
}

/// Two namespaces with a veth pair named sync0 on both sides, daemons
/// started (backup first).
pub fn pair(mode: &str, t: Transport, primary: Impl, backup: Impl) -> (Daemon, Daemon) {
    let (primary, backup) = pair_nodes(mode, t, primary, backup);
    backup.start();
    primary.start();
    (primary, backup)
}

/// The same, daemons configured but not started.
pub fn pair_nodes(mode: &str, t: Transport, primary: Impl, backup: Impl) -> (Daemon, Daemon) {
    let a = Netns::new("rpa");
    let b = Netns::new("rpb");
    let (va, vb) = (unique("va"), unique("vb"));
    run_ok(
        "ip",
        &["link", "add", &va, "type", "veth", "peer", "name", &vb],
    );
    run_ok("ip", &["link", "set", &va, "netns", &a.name]);
    run_ok("ip", &["link", "set", &vb, "netns", &b.name]);
    for (ns, dev, n) in [(&a, &va, 1), (&b, &vb, 2)] {
        ns.ip(&["link", "set", dev, "name", "sync0"]);
        ns.ip(&["addr", "add", &format!("10.77.0.{n}/24"), "dev", "sync0"]);
        ns.ip(&[
            "addr",
            "add",
            &format!("fd00:77::{n}/64"),
            "dev",
            "sync0",
            "nodad",
        ]);
        ns.ip(&["link", "set", "sync0", "up"]);
    }
    let node = |ns: Netns, imp: Impl, me: u8, peer: u8| {
        let scratch = Scratch::new();
        let conf = write_conf(&scratch, mode, t, me, peer);
        Daemon {
            ns,
            scratch,
            conf,
            imp,
        }
    };
    let backup = node(b, backup, 2, 1);
    let primary = node(a, primary, 1, 2);
    (primary, backup)
}

/// Creates `count` established TCP flows from `172.{net}.x.y` in the
/// namespace's kernel, in one `conntrack -R` run.
pub fn create_flows(node: &Daemon, net: u8, count: usize) {
    let batch: String = (0..count)
        .map(|i| {
            format!(
                "-I -s 172.{net}.{}.{} -d 192.168.1.1 -p tcp --sport {} --dport 80 --state ESTABLISHED -u ASSURED,SEEN_REPLY -t 3600\n",
                i / 250,
                i % 250 + 1,
                1024 + i % 60_000
            )
        })
        .collect();
    let file = node.scratch.write(&format!("flows-{net}.txt"), &batch);
    node.ns
        .conntrack(&["-R", file.to_str().expect("utf8 path")]);
}

/// A node's `-s --json` document.
pub fn stats(node: &Daemon) -> serde_json::Value {
    serde_json::from_str(&node.ctl(&["-s", "--json"])).unwrap_or_default()
}

/// The external cache's size, from `-s --json`.
pub fn external_flows(node: &Daemon) -> u64 {
    stats(node)["caches"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "external" && c["kind"] == "conntrack")
        .and_then(|c| c["active"].as_u64())
        .unwrap_or(0)
}

/// Waits until the node holds `want` external flows; how many it holds.
pub fn external_reaches(node: &Daemon, want: u64, within: Duration) -> u64 {
    let mut seen = 0;
    wait_until(within, || {
        seen = external_flows(node);
        seen == want
    });
    seen
}

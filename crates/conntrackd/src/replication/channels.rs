//! The sync channels as operators see them: the channel blocks of `-s`,
//! `-s network` and `-s link` (docs/control-and-cli.md §4.1, §4.2, §4.5).

use std::fmt::Write;
use std::net::IpAddr;

use synclink::{Link, LinkState};

use super::Replication;

impl Replication {
    /// The block of the active channel (`-s`, `-s network`).
    pub fn active_channel_block(&self, out: &mut String) {
        if let Some(link) = self.links.get(self.core.active_channel()) {
            channel_block(out, link, None);
        }
    }

    /// TCP connections refused because they did not come from the peer
    /// (our extension of `-s network`; absent while there are none, so
    /// that the report stays 1.4.7's).
    pub fn foreign_connections_block(&self, out: &mut String) {
        let refused: u64 = self
            .links
            .iter()
            .map(|l| l.counters().foreign_connections)
            .sum();
        if refused > 0 {
            let _ = write!(
                out,
                "TCP connections refused (not from the peer):\n\t{refused:>20}\n\n"
            );
        }
    }

    /// `-s link`: every channel with its state and role.
    pub fn link_blocks(&self, out: &mut String) {
        for (i, link) in self.links.iter().enumerate() {
            let role = if i == self.core.active_channel() {
                "ACTIVE"
            } else {
                "BACKUP"
            };
            let state = match link.link_state() {
                LinkState::Down => "DOWN",
                LinkState::NoCarrier => "NO-CARRIER",
                LinkState::Running => "RUNNING",
            };
            channel_block(out, link, Some((state, role)));
        }
    }

    /// `external inject:` block.
    pub fn inject_block(&self, out: &mut String) {
        let c = &self.writer.inject;
        let _ = write!(
            out,
            "external inject:\nconnections created:\t\t{:>12}\tfailed:\t{:>12}\nconnections updated:\t\t{:>12}\tfailed:\t{:>12}\nconnections destroyed:\t\t{:>12}\tfailed:\t{:>12}\n\n",
            c.created, c.create_failed, c.updated, c.update_failed, c.destroyed, c.destroy_failed
        );
    }
}

/// `multicast traffic (active device=IF):` and its counters; with
/// `state`, the `-s link` header instead.
fn channel_block(out: &mut String, link: &Link, state: Option<(&str, &str)>) {
    let name = link.channel().kind.stats_name();
    let device = link.channel().interface.as_deref().unwrap_or("");
    match state {
        Some((status, role)) => {
            let _ = writeln!(
                out,
                "{name} traffic device={device} status={status} role={role}:"
            );
        }
        None => {
            let _ = write!(out, "{name} traffic (active device={device})");
            if let Some((server, client)) = link.tcp_state() {
                let word = |b: bool| if b { "connected" } else { "disconnected" };
                let _ = write!(out, " server={} client={}", word(server), word(client));
            }
            out.push_str(":\n");
        }
    }
    let c = link.counters();
    let _ = write!(
        out,
        "{:>20} Bytes sent {:>20} Bytes recv\n{:>20} Pckts sent {:>20} Pckts recv\n{:>20} Error send {:>20} Error recv\n\n",
        c.bytes_sent, c.bytes_recv, c.pkts_sent, c.pkts_recv, c.send_errors, c.recv_errors
    );
}

/// IPv4 peers seen through an IPv6 socket count as IPv4.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

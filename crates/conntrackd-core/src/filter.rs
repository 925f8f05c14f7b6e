//! The user-space event filter with the semantics of docs/sync-modes.md §10.

use std::collections::HashSet;
use std::net::IpAddr;

use conntrack_model::{Conntrack, consts};

/// Whether listed items pass (Accept) or are dropped (Ignore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Ignore,
}

/// A CIDR network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Network {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            _ => false,
        }
    }
}

/// Host addresses and networks of an `Address` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressSet {
    pub hosts: HashSet<IpAddr>,
    pub networks: Vec<Network>,
}

impl AddressSet {
    /// Adds an entry: a full-length prefix is a host, shorter a network.
    pub fn add(&mut self, addr: IpAddr, prefix_len: u8) {
        let full = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len >= full {
            self.hosts.insert(addr);
        } else {
            self.networks.push(Network { addr, prefix_len });
        }
    }
}

/// The whole filter; a `None` category lets everything pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub protocol: Option<(Policy, HashSet<u8>)>,
    pub address: Option<(Policy, AddressSet)>,
    pub state: Option<(Policy, HashSet<u8>)>,
}

/// Verdict of the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Filtered,
    /// The flow lacks its L3 protocol or original/reply source address.
    Malformed,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.protocol.is_none() && self.address.is_none() && self.state.is_none()
    }

    /// Whether `ct` passes: what dumps of the kernel's table list.
    pub fn accepts(&self, ct: &Conntrack) -> bool {
        self.verdict(ct) == Verdict::Accept
    }

    pub fn verdict(&self, ct: &Conntrack) -> Verdict {
        let (Some(orig), Some(reply)) = (&ct.orig, &ct.reply) else {
            return Verdict::Malformed;
        };
        if let Some((policy, protos)) = &self.protocol
            && protos.contains(&orig.l4proto) != (*policy == Policy::Accept)
        {
            return Verdict::Filtered;
        }
        if let Some((policy, set)) = &self.address {
            let accept = *policy == Policy::Accept;
            let in_network = set
                .networks
                .iter()
                .any(|n| n.contains(&orig.src) || n.contains(&reply.src));
            if in_network {
                if !accept {
                    return Verdict::Filtered;
                }
            } else {
                // Checked per event: skip hashing when there are no hosts.
                let in_hosts = !set.hosts.is_empty()
                    && (set.hosts.contains(&orig.src) || set.hosts.contains(&reply.src));
                if in_hosts != accept {
                    return Verdict::Filtered;
                }
            }
        }
        if let Some((policy, states)) = &self.state
            && orig.l4proto == consts::IPPROTO_TCP
            && let Some(state) = ct.tcp_state()
            && states.contains(&state) != (*policy == Policy::Accept)
        {
            return Verdict::Filtered;
        }
        Verdict::Accept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_model::{TcpInfo, Tuple};
    use proptest::prelude::*;

    fn flow(src: &str, dst: &str, proto: u8, state: Option<u8>) -> Conntrack {
        let orig = Tuple::new(src.parse().expect("ip"), dst.parse().expect("ip"), proto);
        Conntrack {
            reply: Some(orig.inverted()),
            orig: Some(orig),
            tcp: state.map(|s| TcpInfo {
                state: Some(s),
                ..TcpInfo::default()
            }),
            ..Conntrack::default()
        }
    }

    #[test]
    fn seed_style_filter() {
        let mut addrs = AddressSet::default();
        addrs.add("127.0.0.1".parse().expect("ip"), 32);
        addrs.add("192.168.100.100".parse().expect("ip"), 32);
        let f = Filter {
            protocol: Some((Policy::Accept, [6].into_iter().collect())),
            address: Some((Policy::Ignore, addrs)),
            state: None,
        };
        assert_eq!(
            f.verdict(&flow("10.0.0.1", "10.0.0.2", 6, Some(3))),
            Verdict::Accept
        );
        assert_eq!(
            f.verdict(&flow("10.0.0.1", "10.0.0.2", 17, None)),
            Verdict::Filtered
        );
        // Reply source = the server: the firewall's own address is ignored.
        assert_eq!(
            f.verdict(&flow("10.0.0.1", "192.168.100.100", 6, Some(3))),
            Verdict::Filtered
        );
        assert_eq!(f.verdict(&Conntrack::default()), Verdict::Malformed);
    }

    #[test]
    fn networks_and_states() {
        let mut addrs = AddressSet::default();
        addrs.add("10.0.0.0".parse().expect("ip"), 8);
        let f = Filter {
            protocol: None,
            address: Some((Policy::Accept, addrs)),
            state: Some((
                Policy::Accept,
                [consts::tcp_state::ESTABLISHED].into_iter().collect(),
            )),
        };
        assert_eq!(
            f.verdict(&flow("10.1.2.3", "8.8.8.8", 6, Some(3))),
            Verdict::Accept
        );
        assert_eq!(
            f.verdict(&flow("11.1.2.3", "8.8.8.8", 6, Some(3))),
            Verdict::Filtered
        );
        assert_eq!(
            f.verdict(&flow("10.1.2.3", "8.8.8.8", 6, Some(1))),
            Verdict::Filtered
        );
        // State filtering only applies to TCP.
        assert_eq!(
            f.verdict(&flow("10.1.2.3", "8.8.8.8", 17, None)),
            Verdict::Accept
        );
    }

    proptest! {
        #[test]
        fn empty_filter_accepts_every_complete_flow(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), p in any::<u8>()) {
            let orig = Tuple::new(std::net::Ipv4Addr::from(a).into(), std::net::Ipv4Addr::from(b).into(), p);
            let ct = Conntrack { reply: Some(orig.inverted()), orig: Some(orig), ..Conntrack::default() };
            prop_assert_eq!(Filter::default().verdict(&ct), Verdict::Accept);
        }

        #[test]
        fn accept_and_ignore_are_complementary_for_protocols(p in any::<u8>(), listed in any::<u8>()) {
            let orig = Tuple::new("1.1.1.1".parse().expect("ip"), "2.2.2.2".parse().expect("ip"), p);
            let ct = Conntrack { reply: Some(orig.inverted()), orig: Some(orig), ..Conntrack::default() };
            let set: HashSet<u8> = [listed].into_iter().collect();
            let acc = Filter { protocol: Some((Policy::Accept, set.clone())), ..Filter::default() };
            let ign = Filter { protocol: Some((Policy::Ignore, set)), ..Filter::default() };
            prop_assert_ne!(acc.verdict(&ct), ign.verdict(&ct));
        }

        #[test]
        fn network_contains_its_own_addresses(a in any::<u32>(), len in 0u8..=32, host in any::<u32>()) {
            let net = Network { addr: std::net::Ipv4Addr::from(a).into(), prefix_len: len };
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            let inside = std::net::Ipv4Addr::from((a & mask) | (host & !mask));
            prop_assert!(net.contains(&inside.into()));
        }
    }
}

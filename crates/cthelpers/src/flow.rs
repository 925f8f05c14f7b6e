//! The flow a queued packet belongs to, and what a helper keeps with it.
//!
//! With `NETLINK_GLUE_CT` the kernel attaches the packet's conntrack to
//! it and the flow is read from there ([`CtContext`]). Without it (this
//! is the case on kernels built without `CONFIG_NETFILTER_NETLINK_GLUE_CT`)
//! the flow is derived from the packet itself: a table of the flows seen
//! on the queue, keyed by their original direction, which is decided the
//! first time a flow is seen: a TCP SYN is from the client; otherwise a
//! packet to the helper's well-known server port is; otherwise the first
//! packet seen is taken as the original direction. Entries idle longer
//! than the idle timeout are forgotten (the table is bounded), so a flow
//! silent for longer loses its helper state (`docs/helpers.md`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use conntrack_model::Tuple;

use crate::helpers::HelperState;
use crate::kind::IPPROTO_TCP;
use crate::packet::Packet;

/// Addresses and ports of one direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoints {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub l4proto: u8,
}

impl Endpoints {
    /// The endpoints of a packet, as it travels.
    pub fn of(packet: &Packet<'_>) -> Endpoints {
        Endpoints {
            src: packet.src,
            dst: packet.dst,
            sport: packet.sport,
            dport: packet.dport,
            l4proto: packet.l4proto,
        }
    }

    /// The other direction.
    pub fn inverted(&self) -> Endpoints {
        Endpoints {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            l4proto: self.l4proto,
        }
    }

    /// As a conntrack tuple.
    pub fn to_tuple(&self) -> Tuple {
        Tuple::new(self.src, self.dst, self.l4proto).with_ports(self.sport, self.dport)
    }

    /// From a conntrack tuple with ports.
    pub fn from_tuple(tuple: &Tuple) -> Option<Endpoints> {
        Some(Endpoints {
            src: tuple.src,
            dst: tuple.dst,
            sport: tuple.src_port?,
            dport: tuple.dst_port?,
            l4proto: tuple.l4proto,
        })
    }
}

/// Direction of a packet within its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the side that opened the flow.
    Original,
    Reply,
}

/// The conntrack the kernel attached to a queued packet (NFQA_CT and
/// NFQA_CT_INFO), when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtContext {
    pub orig: Endpoints,
    pub reply: Endpoints,
    /// `enum ip_conntrack_info`.
    pub ctinfo: u32,
}

/// `IP_CT_ESTABLISHED` … `IP_CT_RELATED_REPLY` (nf_conntrack_common.h).
pub const IP_CT_ESTABLISHED: u32 = 0;
pub const IP_CT_NEW: u32 = 2;
pub const IP_CT_IS_REPLY: u32 = 3;

/// What a helper sees of the flow of the packet it inspects.
#[derive(Debug, Clone, Copy)]
pub struct FlowView {
    pub orig: Endpoints,
    pub reply: Endpoints,
    pub dir: Direction,
    /// Traffic has been seen both ways (`IP_CT_ESTABLISHED[_REPLY]`).
    pub established: bool,
    /// First packet of the flow (`IP_CT_NEW`).
    pub new: bool,
}

impl FlowView {
    /// The tuple of one direction.
    pub fn tuple(&self, dir: Direction) -> &Endpoints {
        match dir {
            Direction::Original => &self.orig,
            Direction::Reply => &self.reply,
        }
    }

    /// The direction opposite to the packet's.
    pub fn other(&self) -> Direction {
        match self.dir {
            Direction::Original => Direction::Reply,
            Direction::Reply => Direction::Original,
        }
    }

    /// From the conntrack the kernel attached.
    pub fn from_ct(ct: &CtContext) -> FlowView {
        let reply = ct.ctinfo >= IP_CT_IS_REPLY;
        let base = ct.ctinfo % IP_CT_IS_REPLY;
        FlowView {
            orig: ct.orig,
            reply: ct.reply,
            dir: if reply {
                Direction::Reply
            } else {
                Direction::Original
            },
            established: base == IP_CT_ESTABLISHED,
            new: ct.ctinfo == IP_CT_NEW,
        }
    }
}

/// An expectation created for a flow and not yet expired, for ExpectMax.
#[derive(Debug, Clone)]
pub struct LiveExpectation {
    pub expires: Instant,
    pub expect: conntrack_model::Expect,
}

/// What is kept per flow.
#[derive(Debug)]
pub struct FlowEntry {
    pub orig: Endpoints,
    pub seen_reply: bool,
    pub last_seen: Instant,
    pub state: HelperState,
    pub live: Vec<LiveExpectation>,
}

/// The flows seen on the queues, bounded.
#[derive(Debug)]
pub struct FlowTable {
    flows: HashMap<Endpoints, FlowEntry>,
    capacity: usize,
}

/// Most flows remembered at once.
pub const DEFAULT_CAPACITY: usize = 65_536;
/// A TCP flow silent this long is forgotten.
pub const TCP_IDLE: Duration = Duration::from_secs(2 * 3600);
/// A UDP flow silent this long is forgotten.
pub const UDP_IDLE: Duration = Duration::from_secs(600);

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::with_capacity(DEFAULT_CAPACITY)
    }
}

impl FlowTable {
    pub fn with_capacity(capacity: usize) -> FlowTable {
        FlowTable {
            flows: HashMap::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The entry of a packet's flow, created if new; with its view.
    /// `None` when the table is full of live flows: the packet is then
    /// inspected without state.
    pub fn track(
        &mut self,
        now: Instant,
        packet: &Packet<'_>,
        server_port: u16,
        ct: Option<&CtContext>,
    ) -> (FlowView, Option<&mut FlowEntry>) {
        let ends = Endpoints::of(packet);
        if let Some(ct) = ct {
            let view = FlowView::from_ct(ct);
            let entry = self.entry(now, ct.orig, view.dir == Direction::Reply);
            return (view, entry);
        }
        let (orig, dir, new) = if self.flows.contains_key(&ends) {
            (ends, Direction::Original, false)
        } else if self.flows.contains_key(&ends.inverted()) {
            (ends.inverted(), Direction::Reply, false)
        } else if packet.is_tcp_syn() || packet.dport == server_port || packet.sport != server_port
        {
            (ends, Direction::Original, true)
        } else {
            (ends.inverted(), Direction::Reply, true)
        };
        let entry = self.entry(now, orig, dir == Direction::Reply);
        // A TCP segment carrying an ACK means the other side answered.
        let acked = packet.l4proto == IPPROTO_TCP && packet.tcp_flags & crate::packet::TCP_ACK != 0;
        let established = acked || entry.as_ref().is_some_and(|e| e.seen_reply);
        let view = FlowView {
            orig,
            reply: orig.inverted(),
            dir,
            established,
            new: new && dir == Direction::Original,
        };
        (view, entry)
    }

    fn entry(&mut self, now: Instant, orig: Endpoints, reply: bool) -> Option<&mut FlowEntry> {
        if !self.flows.contains_key(&orig) && self.flows.len() >= self.capacity {
            self.expire(now);
            if self.flows.len() >= self.capacity {
                return None;
            }
        }
        let entry = self.flows.entry(orig).or_insert_with(|| FlowEntry {
            orig,
            seen_reply: false,
            last_seen: now,
            state: HelperState::default(),
            live: Vec::new(),
        });
        entry.last_seen = now;
        entry.seen_reply |= reply;
        Some(entry)
    }

    /// Forgets idle flows; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.flows.len();
        self.flows.retain(|ends, entry| {
            let idle = if ends.l4proto == IPPROTO_TCP {
                TCP_IDLE
            } else {
                UDP_IDLE
            };
            now.saturating_duration_since(entry.last_seen) < idle
        });
        before - self.flows.len()
    }
}

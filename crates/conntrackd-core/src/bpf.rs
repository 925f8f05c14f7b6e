//! Kernel-space event filtering (`Filter From Kernelspace`): the same
//! [`Filter`] compiled into a classic BPF program for the ctnetlink event
//! socket, so filtered events never reach user space.
//!
//! The program walks the netlink attributes with the kernel's ancillary
//! loads `SKF_AD_NLATTR` / `SKF_AD_NLATTR_NEST`. Messages it cannot judge
//! (not conntrack, attributes missing) are accepted and left to the
//! user-space sanity checks.

use std::net::IpAddr;

use crate::filter::{Filter, Network, Policy};

/// One classic BPF instruction, laid out like `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const LD_B_ABS: u16 = 0x30;
const LD_W_IND: u16 = 0x40;
const LD_B_IND: u16 = 0x50;
const LD_IMM: u16 = 0x00;
const LDX_IMM: u16 = 0x01;
const TAX: u16 = 0x07;
const ALU_AND_K: u16 = 0x54;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
const ST: u16 = 0x02;
const LD_MEM: u16 = 0x60;

/// `SKF_AD_OFF + SKF_AD_NLATTR`.
pub const SKF_AD_NLATTR: u32 = (-4096i32 + 12) as u32;
/// `SKF_AD_OFF + SKF_AD_NLATTR_NEST`.
pub const SKF_AD_NLATTR_NEST: u32 = (-4096i32 + 16) as u32;

const ACCEPT: u32 = 0xffff_ffff;
const DROP: u32 = 0;
/// Offset of the first attribute: netlink header + nfgenmsg.
const ATTRS: u32 = 20;
/// The kernel limit on program length.
const MAX_INSNS: usize = 4096;

/// Why a filter was not compiled (the caller filters in user space).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BpfError {
    #[error("filter too large for a BPF program")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Accept,
    Drop,
    Label(usize),
    Next,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

/// A tiny assembler with forward labels.
#[derive(Debug, Default)]
struct Asm {
    code: Vec<Pending>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn op(&mut self, code: u16, k: u32) {
        self.code.push(Pending {
            code,
            k,
            jt: Target::Next,
            jf: Target::Next,
        });
    }
    fn jeq(&mut self, k: u32, jt: Target, jf: Target) {
        self.code.push(Pending {
            code: JEQ_K,
            k,
            jt,
            jf,
        });
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }
    fn ret(&mut self, v: u32) {
        self.op(RET_K, v);
    }

    /// Resolves targets; shared accept/drop instructions sit at the end.
    fn finish(mut self) -> Result<Vec<Insn>, BpfError> {
        let accept_at = self.code.len();
        self.ret(ACCEPT);
        let drop_at = self.code.len();
        self.ret(DROP);
        if self.code.len() > MAX_INSNS {
            return Err(BpfError::TooLarge);
        }
        let resolve = |at: usize, t: Target| -> Result<u8, BpfError> {
            let dest = match t {
                Target::Next => return Ok(0),
                Target::Accept => accept_at,
                Target::Drop => drop_at,
                Target::Label(l) => self.labels[l].ok_or(BpfError::TooLarge)?,
            };
            u8::try_from(dest - at - 1).map_err(|_| BpfError::TooLarge)
        };
        self.code
            .iter()
            .enumerate()
            .map(|(at, p)| {
                Ok(Insn {
                    code: p.code,
                    jt: resolve(at, p.jt)?,
                    jf: resolve(at, p.jf)?,
                    k: p.k,
                })
            })
            .collect()
    }
}

/// Scratch memory slots.
const M_ORIG: u32 = 0;
const M_REPLY: u32 = 1;
const M_PROTO: u32 = 2;

/// Compiles `filter` into a BPF program for the event socket.
pub fn compile(filter: &Filter) -> Result<Vec<Insn>, BpfError> {
    let mut a = Asm::default();
    // Only ctnetlink messages are judged: subsystem = high byte of the
    // (little-endian) nlmsg_type at offset 4.
    a.op(LD_B_ABS, 5);
    a.jeq(1, Target::Next, Target::Accept);
    // orig tuple offset -> M[0], reply tuple offset -> M[1]
    find_top(&mut a, 1);
    a.jeq(0, Target::Accept, Target::Next);
    a.op(ST, M_ORIG);
    find_top(&mut a, 2);
    a.jeq(0, Target::Accept, Target::Next);
    a.op(ST, M_REPLY);
    // protocol number -> M[2]
    a.op(LD_MEM, M_ORIG);
    nest(&mut a, 2); // CTA_TUPLE_PROTO
    a.jeq(0, Target::Accept, Target::Next);
    nest(&mut a, 1); // CTA_PROTO_NUM
    a.jeq(0, Target::Accept, Target::Next);
    a.op(TAX, 0);
    a.op(LD_B_IND, 4);
    a.op(ST, M_PROTO);

    if let Some((policy, protos)) = &filter.protocol {
        let mut list: Vec<u8> = protos.iter().copied().collect();
        list.sort_unstable();
        membership(&mut a, &list, *policy);
    }

    if let Some((policy, set)) = &filter.address {
        let accept = *policy == Policy::Accept;
        let hosts_check = a.label();
        let end = a.label();
        // Networks first: a match decides by the policy.
        for slot in [M_ORIG, M_REPLY] {
            for net in &set.networks {
                let skip = a.label();
                load_addr(&mut a, slot, net.addr, skip);
                match_network(
                    &mut a,
                    net,
                    if accept {
                        Target::Label(end)
                    } else {
                        Target::Drop
                    },
                    skip,
                );
                a.bind(skip);
            }
        }
        a.jeq(0, Target::Label(hosts_check), Target::Label(hosts_check));
        a.bind(hosts_check);
        // Hosts: "either address in the set" must equal the policy.
        let found = if accept {
            Target::Label(end)
        } else {
            Target::Drop
        };
        for slot in [M_ORIG, M_REPLY] {
            for host in &set.hosts {
                let skip = a.label();
                load_addr(&mut a, slot, *host, skip);
                let net = Network {
                    addr: *host,
                    prefix_len: if host.is_ipv4() { 32 } else { 128 },
                };
                match_network(&mut a, &net, found, skip);
                a.bind(skip);
            }
        }
        if accept {
            a.jeq(0, Target::Drop, Target::Drop);
        }
        a.bind(end);
    }

    if let Some((policy, states)) = &filter.state {
        // Only TCP flows with a known state are judged.
        a.op(LD_MEM, M_PROTO);
        a.jeq(6, Target::Next, Target::Accept);
        find_top(&mut a, 4); // CTA_PROTOINFO
        a.jeq(0, Target::Accept, Target::Next);
        nest(&mut a, 1); // CTA_PROTOINFO_TCP
        a.jeq(0, Target::Accept, Target::Next);
        nest(&mut a, 1); // CTA_PROTOINFO_TCP_STATE
        a.jeq(0, Target::Accept, Target::Next);
        a.op(TAX, 0);
        a.op(LD_B_IND, 4);
        let mut list: Vec<u8> = states.iter().copied().collect();
        list.sort_unstable();
        membership(&mut a, &list, *policy);
    }
    a.ret(ACCEPT);
    a.finish()
}

/// Tests A against `list`: a listed value passes on (Accept) or is dropped
/// (Ignore); an unlisted one the other way round.
fn membership(a: &mut Asm, list: &[u8], policy: Policy) {
    let pass = a.label();
    let (listed, unlisted) = match policy {
        Policy::Accept => (Target::Label(pass), Target::Drop),
        Policy::Ignore => (Target::Drop, Target::Label(pass)),
    };
    for &v in list {
        a.jeq(u32::from(v), listed, Target::Next);
    }
    a.jeq(0, unlisted, unlisted);
    a.bind(pass);
}

/// A = offset of top-level attribute `kind`, or 0.
fn find_top(a: &mut Asm, kind: u32) {
    a.op(LD_IMM, ATTRS);
    a.op(LDX_IMM, kind);
    a.op(LD_W_ABS, SKF_AD_NLATTR);
}

/// A (a nest's offset) = offset of its inner attribute `kind`, or 0.
fn nest(a: &mut Asm, kind: u32) {
    a.op(LDX_IMM, kind);
    a.op(LD_W_ABS, SKF_AD_NLATTR_NEST);
}

/// X = offset of the source address attribute of the tuple in `slot`
/// (IPv4 or IPv6 as `like`); jumps to `skip` if absent.
fn load_addr(a: &mut Asm, slot: u32, like: IpAddr, skip: usize) {
    a.op(LD_MEM, slot);
    nest(a, 1); // CTA_TUPLE_IP
    a.jeq(0, Target::Label(skip), Target::Next);
    nest(a, if like.is_ipv4() { 1 } else { 3 }); // V4_SRC / V6_SRC
    a.jeq(0, Target::Label(skip), Target::Next);
    a.op(TAX, 0);
}

/// Compares the address at X+4 against `net`; jumps to `hit` on a match
/// and to `skip` otherwise.
fn match_network(a: &mut Asm, net: &Network, hit: Target, skip: usize) {
    let words: Vec<(u32, u32)> = match net.addr {
        IpAddr::V4(v4) => vec![(u32::from(v4), prefix_mask(net.prefix_len, 32))],
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (0..4)
                .map(|i| {
                    let word = (bits >> (96 - 32 * i)) as u32;
                    let len = i32::from(net.prefix_len.min(128)) - 32 * i;
                    let mask = prefix_mask(len.clamp(0, 32) as u8, 32);
                    (word, mask)
                })
                .collect()
        }
    };
    for (i, (word, mask)) in words.iter().enumerate() {
        if *mask == 0 {
            continue;
        }
        a.op(LD_W_IND, 4 + 4 * i as u32);
        if *mask != u32::MAX {
            a.op(ALU_AND_K, *mask);
        }
        a.jeq(word & mask, Target::Next, Target::Label(skip));
    }
    a.jeq(0, hit, hit);
}

fn prefix_mask(len: u8, width: u8) -> u32 {
    let len = len.min(width);
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

#[cfg(test)]
mod tests;

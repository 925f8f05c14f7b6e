//! A classic-BPF interpreter (with the netlink-attribute extensions) runs
//! the compiled program on real ctnetlink messages; its verdict must equal
//! the user-space filter's.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use conntrack_model::{Conntrack, TcpInfo, Tuple};
use proptest::prelude::*;

use super::*;
use crate::filter::{AddressSet, Filter, Policy, Verdict};

fn nla_find(pkt: &[u8], mut off: usize, end: usize, kind: u32) -> u32 {
    while off + 4 <= end {
        let len = usize::from(u16::from_ne_bytes([pkt[off], pkt[off + 1]]));
        let ty = u16::from_ne_bytes([pkt[off + 2], pkt[off + 3]]) & 0x3fff;
        if len < 4 || off + len > end {
            return 0;
        }
        if u32::from(ty) == kind {
            return off as u32;
        }
        off += (len + 3) & !3;
    }
    0
}

/// Runs `prog` on `pkt`; returns the value of the RET.
fn run(prog: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    let load = |off: usize, size: usize| -> Option<u32> {
        let bytes = pkt.get(off..off + size)?;
        Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    };
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS if i.k == SKF_AD_NLATTR => {
                a = if (a as usize) + 4 > pkt.len() {
                    0
                } else {
                    nla_find(pkt, a as usize, pkt.len(), x)
                };
            }
            LD_W_ABS if i.k == SKF_AD_NLATTR_NEST => {
                let off = a as usize;
                a = match pkt.get(off..off + 2) {
                    Some(l) => {
                        let len = usize::from(u16::from_ne_bytes([l[0], l[1]]));
                        if off + len > pkt.len() || len < 4 {
                            0
                        } else {
                            nla_find(pkt, off + 4, off + len, x)
                        }
                    }
                    None => 0,
                };
            }
            LD_W_ABS => match load(i.k as usize, 4) {
                Some(v) => a = v,
                None => return 0,
            },
            LD_B_ABS => match load(i.k as usize, 1) {
                Some(v) => a = v,
                None => return 0,
            },
            LD_W_IND => match load((x + i.k) as usize, 4) {
                Some(v) => a = v,
                None => return 0,
            },
            LD_B_IND => match load((x + i.k) as usize, 1) {
                Some(v) => a = v,
                None => return 0,
            },
            LD_IMM => a = i.k,
            LDX_IMM => x = i.k,
            TAX => x = a,
            ST => mem[i.k as usize] = a,
            LD_MEM => a = mem[i.k as usize],
            ALU_AND_K => a &= i.k,
            JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
            RET_K => return i.k,
            other => panic!("interpreter lacks opcode {other:#x}"),
        }
    }
}

fn event(ct: &Conntrack) -> Vec<u8> {
    let mut buf = Vec::new();
    ctnl::request::update(&mut buf, 1, ct);
    buf
}

const POOL4: [[u8; 4]; 4] = [
    [10, 0, 0, 1],
    [10, 0, 1, 2],
    [192, 168, 0, 1],
    [172, 16, 5, 5],
];

fn addr(i: usize, v6: bool) -> IpAddr {
    let b = POOL4[i % POOL4.len()];
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            u16::from(b[2]),
            0,
            0,
            0,
            u16::from(b[3]),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(b))
    }
}

fn flow() -> impl Strategy<Value = Conntrack> {
    (
        0usize..4,
        0usize..4,
        any::<bool>(),
        prop::sample::select(vec![6u8, 17, 1, 132]),
        proptest::option::of(0u8..10),
        any::<bool>(),
    )
        .prop_map(|(s, d, v6, proto, state, natted)| {
            let orig = Tuple::new(addr(s, v6), addr(d, v6), proto).with_ports(1000, 80);
            let mut reply = orig.inverted();
            if natted {
                reply.src = addr(s + d + 1, v6);
            }
            Conntrack {
                orig: Some(orig),
                reply: Some(reply),
                tcp: if proto == 6 {
                    state.map(|st| TcpInfo {
                        state: Some(st),
                        ..TcpInfo::default()
                    })
                } else {
                    None
                },
                ..Conntrack::default()
            }
        })
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![Just(Policy::Accept), Just(Policy::Ignore)]
}

fn filter() -> impl Strategy<Value = Filter> {
    (
        proptest::option::of((
            policy(),
            prop::collection::hash_set(prop::sample::select(vec![6u8, 17, 1, 132]), 0..3),
        )),
        proptest::option::of((
            policy(),
            prop::collection::vec(
                (
                    0usize..4,
                    any::<bool>(),
                    prop::sample::select(vec![8u8, 16, 24, 32, 64, 128]),
                ),
                0..4,
            ),
        )),
        proptest::option::of((policy(), prop::collection::hash_set(0u8..10, 0..4))),
    )
        .prop_map(|(protocol, address, state)| Filter {
            protocol,
            address: address.map(|(p, items)| {
                let mut set = AddressSet::default();
                for (i, v6, len) in items {
                    let a = addr(i, v6);
                    set.add(a, if v6 { len } else { len.min(32) });
                }
                (p, set)
            }),
            state: state.map(|(p, s)| (p, s.into_iter().collect::<HashSet<u8>>())),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn bpf_agrees_with_the_user_space_filter(f in filter(), ct in flow()) {
        let prog = compile(&f).expect("compiles");
        let bpf_accepts = run(&prog, &event(&ct)) != 0;
        prop_assert_eq!(bpf_accepts, f.verdict(&ct) == Verdict::Accept, "program {:?}", prog);
    }
}

#[test]
fn non_conntrack_messages_pass() {
    let f = Filter {
        protocol: Some((Policy::Accept, [6].into_iter().collect())),
        ..Filter::default()
    };
    let prog = compile(&f).expect("compiles");
    // NLMSG_DONE: type 3, subsystem byte 0.
    let mut done = vec![20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_ne!(run(&prog, &done), 0);
    done.truncate(16);
    assert_ne!(run(&prog, &done), 0);
}

#[test]
fn huge_filters_are_refused_not_miscompiled() {
    let mut set = AddressSet::default();
    for i in 0..3000u32 {
        set.add(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32);
    }
    let f = Filter {
        address: Some((Policy::Ignore, set)),
        ..Filter::default()
    };
    assert_eq!(compile(&f), Err(BpfError::TooLarge));
}

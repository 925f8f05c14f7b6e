//! What the sync core costs per event, without a kernel, a socket or a
//! clock: two FTFW cores, a primary fed N kernel events per wave (create,
//! update, delete) and a backup fed its datagrams, the backup's ACKs going
//! back every 300 events, as they do in `bench/`. Prints the CPU time of
//! each core per event. The daemon's own figures come from `bench/run`;
//! this isolates the core's share, for profiling (`perf record` on it).
//!
//!     cargo run --release -p conntrackd-core --example core_costs [N]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use conntrack_model::Conntrack;
use conntrackd_core::fixtures::tcp_flow as flow;
use conntrackd_core::local::{EventKind, Origin};
use conntrackd_core::sync::{Protocol, SyncCore, SyncSettings};

fn core(now: Instant, seed: u64) -> SyncCore {
    SyncCore::new(
        now,
        SyncSettings {
            initial_seq: seed as u32,
            seed,
            ..SyncSettings::basic(Protocol::Ftfw {
                ack_window: 300,
                resend_queue_size: 131_072,
            })
        },
    )
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let now = Instant::now();
    let (mut primary, mut backup) = (core(now, 1), core(now, 2));
    let from_primary = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let from_backup = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    for (wave, kind) in [EventKind::New, EventKind::Update, EventKind::Destroy]
        .into_iter()
        .enumerate()
    {
        // Built before the clock starts, as the kernel's events would be.
        let events: Vec<Conntrack> = (0..n)
            .map(|i| Conntrack {
                mark: Some(i + wave as u32),
                ..flow(i)
            })
            .collect();
        let (mut on_primary, mut on_backup) = (Duration::ZERO, Duration::ZERO);
        let mut datagrams = 0;
        let mut batch = Vec::new();
        for (i, ct) in events.into_iter().enumerate() {
            let start = Instant::now();
            primary.handle_kernel_event(now, kind, ct, Origin::NotMe);
            if i % 300 != 299 && i + 1 != n as usize {
                on_primary += start.elapsed();
                continue;
            }
            while let Some(tx) = primary.poll_transmit(now) {
                batch.push(tx.bytes);
            }
            let sent = Instant::now();
            on_primary += sent - start;
            datagrams += batch.len();
            for datagram in batch.drain(..) {
                backup.handle_datagram(now, 0, from_primary, &datagram);
            }
            while let Some(tx) = backup.poll_transmit(now) {
                batch.push(tx.bytes);
            }
            let acked = Instant::now();
            on_backup += acked - sent;
            for datagram in batch.drain(..) {
                primary.handle_datagram(now, 0, from_backup, &datagram);
            }
            on_primary += acked.elapsed();
        }
        let per_event = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
        println!(
            "{:7}: primary {:.3} µs/event, backup {:.3} µs/event, {datagrams} datagrams",
            ["create", "update", "delete"][wave],
            per_event(on_primary),
            per_event(on_backup),
        );
    }
}

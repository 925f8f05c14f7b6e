#![no_main]
//! Whole datagrams into a sync core in each mode: never a panic, and no
//! output but control messages (garbage cannot make a node send data).
use std::time::{Duration, Instant};

use conntrackd_core::sync::{Protocol, SyncCore, SyncSettings};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    for protocol in [
        Protocol::Ftfw {
            ack_window: 4,
            resend_queue_size: 16,
        },
        Protocol::Alarm {
            refresh: Duration::from_secs(5),
            cache_timeout: Duration::from_secs(15),
        },
        Protocol::Notrack,
    ] {
        let mut core = SyncCore::new(
            now,
            SyncSettings {
                protocol,
                disable_internal_cache: false,
                disable_external_cache: false,
                commit_timeout: 0,
                tcp_window_tracking: false,
                expectations: None,
                hash_limit: 1024,
                hash_size: 64,
                filter: None,
                kernel_filtering: false,
                batch_sizes: vec![1472],
                default_channel: 0,
                initial_seq: 1,
                seed: 1,
                startup_resync: false,
                flush_delay: Duration::ZERO,
                auth: None,
                replicate_labels: true,
            },
        );
        for chunk in data.split(|b| *b == 0xff) {
            core.handle_datagram(now, 0, "10.0.0.1".parse().expect("ip"), chunk);
        }
        core.handle_timeout(now + Duration::from_secs(2));
        while core.poll_transmit(now).is_some() {}
        while core.poll_event().is_some() {}
    }
});

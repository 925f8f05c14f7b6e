//! The fuzz targets' bodies (`fuzz/`), here so that the ordinary tests
//! replay each corpus through the same code. Each target feeds its
//! helper the payloads of one flow (chunks split at the byte 0xFF, in
//! alternate directions, the first byte of a chunk choosing TCP flags),
//! and checks what must hold beyond "no panic": the verdict is ACCEPT,
//! every expectation names the flow as its master and belongs to the
//! flow's address family, and counters add up.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::engine::{AF_INET, Engine, HelperSetup, Output};
use crate::kind::{HelperKind, IPPROTO_TCP, IPPROTO_UDP};
use crate::packet::build;

/// Runs `kind` over `data` (see the module documentation).
pub fn helper_flow(kind: HelperKind, data: &[u8]) {
    let tcp_only = !kind.serves(IPPROTO_UDP);
    let odd_first = data.first().is_some_and(|b| b & 1 == 1);
    let l4proto = if tcp_only || (odd_first && kind.serves(IPPROTO_TCP)) {
        IPPROTO_TCP
    } else {
        IPPROTO_UDP
    };
    let mut engine = Engine::new(vec![HelperSetup {
        kind,
        family: AF_INET,
        l4proto,
        queue_num: 1,
        policy: kind.default_policy(),
    }]);
    let client: IpAddr = [10, 0, 1, 2].into();
    let server: IpAddr = match kind {
        HelperKind::Ssdp => [239, 255, 255, 250].into(),
        HelperKind::Mdns => [224, 0, 0, 251].into(),
        HelperKind::Slp => [239, 255, 255, 253].into(),
        _ => [10, 0, 2, 1].into(),
    };
    let (cport, sport) = (40000, kind.server_port());
    let start = Instant::now();
    let mut seq = [1000u32, 5000u32];
    let mut count = 0u64;
    for (i, chunk) in data.split(|b| *b == 0xff).enumerate() {
        let from_client = i % 2 == 0;
        let (src, sp, dst, dp) = if from_client {
            (client, cport, server, sport)
        } else {
            (server, sport, client, cport)
        };
        let bytes = if l4proto == IPPROTO_TCP {
            let flags = chunk
                .first()
                .map_or(0x10, |b| if b & 0x80 != 0 { 0x02 } else { 0x18 });
            let s = &mut seq[usize::from(!from_client)];
            let bytes = build::tcp(src, sp, dst, dp, *s, flags, chunk);
            *s = s.wrapping_add(u32::try_from(chunk.len()).unwrap_or(0));
            bytes
        } else {
            build::udp(src, sp, dst, dp, chunk)
        };
        let now = start + Duration::from_millis(i as u64);
        let verdict = engine.handle_packet(now, 1, i as u32, &bytes, None);
        assert!(verdict.accept, "a helper never drops");
        count += 1;
        // Also the raw chunk as a whole packet: hostile IP headers.
        let verdict = engine.handle_packet(now, 1, 0, chunk, None);
        assert!(verdict.accept);
        count += 1;
        engine.handle_timeout(now);
    }
    let mut creates = 0;
    while let Some(out) = engine.poll_output() {
        if let Output::Create { expect, .. } = out {
            creates += 1;
            let master = expect.master.as_ref().expect("a master");
            let tuple = expect.tuple.as_ref().expect("a tuple");
            assert_eq!(master.family(), tuple.family(), "one address family");
            let ends = [master.src, master.dst];
            assert!(ends.contains(&client) || ends.contains(&server));
        }
    }
    let (_, counters) = engine.counters().next().expect("one helper");
    assert_eq!(counters.packets, count);
    assert_eq!(counters.expectations, creates);
    assert!(counters.parse_errors <= counters.packets);
}

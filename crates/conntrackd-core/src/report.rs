//! The text of the `-s` reports, byte for byte as conntrackd 1.4.7 prints
//! them (docs/control-and-cli.md §4).

use std::fmt::Write;

use crate::cache::{Cache, CacheCounters};
use crate::local::NetlinkCounters;

/// The `cache NAME:` block of `-s` (§4.1).
pub fn cache_block(out: &mut String, cache: &Cache) {
    counters_block(out, cache.name(), cache.active(), &cache.counters);
}

/// The same block from raw numbers (expectation caches use it too).
pub fn counters_block(out: &mut String, name: &str, active: usize, c: &CacheCounters) {
    let _ = write!(
        out,
        "cache {}:\ncurrent active connections:\t{:>12}\nconnections created:\t\t{:>12}\tfailed:\t{:>12}\nconnections updated:\t\t{:>12}\tfailed:\t{:>12}\nconnections destroyed:\t\t{:>12}\tfailed:\t{:>12}\n\n",
        name,
        active,
        c.created,
        c.create_failed,
        c.updated,
        c.update_failed,
        c.destroyed,
        c.destroy_failed
    );
}

/// The `cache:NAME` block of `-s cache` (§4.3).
pub fn cache_detail_block(out: &mut String, cache: &Cache) {
    let c = &cache.counters;
    let _ = write!(
        out,
        "cache:{}\tactive objects:\t\t{:>12}\n\tactive/total entries:\t\t{:>12}/{:>12}\n\tcreation OK/failed:\t\t{:>12}/{:>12}\n\t\tno memory available:\t{:>12}\n\t\tno space left in cache:\t{:>12}\n\tupdate OK/failed:\t\t{:>12}/{:>12}\n\t\tentry not found:\t{:>12}\n\tdeletion created/failed:\t{:>12}/{:>12}\n\t\tentry not found:\t{:>12}\n\n",
        cache.name(),
        cache.len(),
        cache.active(),
        cache.len(),
        c.created,
        c.create_failed,
        c.no_memory,
        c.no_space,
        c.updated,
        c.update_failed,
        0,
        c.destroyed,
        c.destroy_failed,
        0
    );
}

/// `traffic processed:` (§4.1).
pub fn traffic_block(out: &mut String, bytes: u64, packets: u64) {
    let _ = write!(
        out,
        "traffic processed:\n{bytes:>20} Bytes      {packets:>20} Pckts\n\n"
    );
}

/// `netlink stats:` of `-s runtime` (§4.4).
pub fn netlink_block(out: &mut String, n: &NetlinkCounters) {
    let _ = write!(
        out,
        "netlink stats:\n\tevents received:\t{:>20}\n\tevents filtered:\t{:>20}\n\tevents unknown type:\t\t{:>12}\n\tcatch event failed:\t\t{:>12}\n\tdump unknown type:\t\t{:>12}\n\tnetlink overrun:\t\t{:>12}\n\tflush kernel table:\t\t{:>12}\n\tresync with kernel table:\t{:>12}\n\tcurrent buffer size (in bytes):\t{:>12}\n\n",
        n.events_received,
        n.events_filtered,
        n.unknown_type,
        n.catch_failed,
        n.dump_unknown,
        n.overrun,
        n.flush_kernel,
        n.resync_kernel,
        n.buffer_size
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn cache_block_matches_the_spec_capture() {
        let mut cache = Cache::new("internal", 10);
        let orig = conntrack_model::Tuple::new(
            "1.1.1.1".parse().expect("ip"),
            "2.2.2.2".parse().expect("ip"),
            6,
        );
        cache
            .insert_new(
                Instant::now(),
                conntrack_model::Conntrack {
                    orig: Some(orig),
                    ..Default::default()
                },
            )
            .expect("insert");
        let mut out = String::new();
        cache_block(&mut out, &cache);
        assert_eq!(
            out,
            "cache internal:\ncurrent active connections:\t           1\nconnections created:\t\t           1\tfailed:\t           0\nconnections updated:\t\t           0\tfailed:\t           0\nconnections destroyed:\t\t           0\tfailed:\t           0\n\n"
        );
        let mut out = String::new();
        traffic_block(&mut out, 0, 0);
        assert_eq!(
            out,
            "traffic processed:\n                   0 Bytes                         0 Pckts\n\n"
        );
        let mut out = String::new();
        cache_detail_block(&mut out, &cache);
        assert!(out.starts_with("cache:internal\tactive objects:\t\t           1\n\tactive/total entries:\t\t           1/           1\n\tcreation OK/failed:\t\t           1/           0\n"), "{out}");
    }

    #[test]
    fn netlink_block_layout() {
        let mut out = String::new();
        netlink_block(
            &mut out,
            &NetlinkCounters {
                events_received: 1,
                buffer_size: 2097152,
                ..NetlinkCounters::default()
            },
        );
        assert_eq!(
            out,
            "netlink stats:\n\tevents received:\t                   1\n\tevents filtered:\t                   0\n\tevents unknown type:\t\t           0\n\tcatch event failed:\t\t           0\n\tdump unknown type:\t\t           0\n\tnetlink overrun:\t\t           0\n\tflush kernel table:\t\t           0\n\tresync with kernel table:\t           0\n\tcurrent buffer size (in bytes):\t     2097152\n\n"
        );
    }
}

//! The queue path's throughput and latency (a bench, not a test):
//! `bench/helpers-queue` runs it in a namespace whose OUTPUT chain queues
//! UDP to port 9 on queue 7 (`iptables-legacy -j NFQUEUE`).
//!
//! A runner serves queue 7 with the tftp helper (each packet is parsed:
//! a TFTP DATA packet, which expects nothing). A sender thread sends
//! COUNT datagrams to 127.0.0.1:9, each carrying its send time; a
//! receiver takes them after their verdict. Printed as JSON, at full
//! speed and paced: verdicts per second (of the runner's busy time and
//! of the wall clock), the verdict latency (from the read of a batch of
//! packets to their verdict sent) and the latency from send to delivery
//! (which adds the queue's wait and the scheduling of three threads on
//! the machine's cores).
//!
//! `queue_bench COUNT PACED_RATE`

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use helperd::{QueueRunner, RunnerOptions, plan};

const CONFIG: &str =
    "Helper {\n\tType tftp inet udp {\n\t\tQueueNum 7\n\t\tQueueLen 65536\n\t}\n}\n";

struct Round {
    sent: u64,
    received: u64,
    verdicts: u64,
    busy: Duration,
    wall: Duration,
    latencies_us: Vec<u64>,
    verdict_us: Vec<u64>,
}

fn round(runner: &mut QueueRunner, count: u64, rate: Option<u64>) -> Round {
    let receiver = UdpSocket::bind("127.0.0.1:9").expect("bind :9");
    receiver
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size_force(&receiver, 64 << 20);
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let recv_stop = Arc::clone(&stop);
    let recv_thread = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(count as usize);
        let mut buf = [0u8; 64];
        while !recv_stop.load(Ordering::Relaxed) {
            if let Ok(n) = receiver.recv(&mut buf)
                && n >= 12
            {
                let sent = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
                let now = epoch.elapsed().as_nanos() as u64;
                lat.push(now.saturating_sub(sent) / 1000);
            }
        }
        lat
    });
    let send_thread = std::thread::spawn(move || {
        let sender = UdpSocket::bind("127.0.0.1:0").expect("sender");
        let mut payload = [0u8; 32];
        payload[1] = 3; // TFTP DATA
        let start = Instant::now();
        for i in 0..count {
            if let Some(rate) = rate {
                // Sleeps while ahead of the schedule (bursts of about a
                // millisecond): the sender must not take a core of two.
                let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            let now = epoch.elapsed().as_nanos() as u64;
            payload[4..12].copy_from_slice(&now.to_be_bytes());
            let _ = sender.send_to(&payload, "127.0.0.1:9");
        }
        count
    });
    let before = runner.stats.verdicts;
    let mut busy = Duration::ZERO;
    let mut verdict_us = Vec::new();
    let mut idle_since = Instant::now();
    let wall = Instant::now();
    loop {
        // Waits for the queue as the daemon does (poll, not a spin).
        let fd = runner.fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
        let t = Instant::now();
        // One read (up to 16 packets) at a time: its duration is the
        // verdict latency of the packets it read, once they were read.
        let n = runner.handle_readable(t, 1).expect("read");
        if n > 0 {
            let took = t.elapsed();
            busy += took;
            verdict_us.push(took.as_micros() as u64);
            idle_since = Instant::now();
        } else if send_thread.is_finished() && idle_since.elapsed() > Duration::from_millis(200) {
            break;
        }
    }
    let wall = wall.elapsed().saturating_sub(Duration::from_millis(200));
    let sent = send_thread.join().expect("sender");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = recv_thread.join().expect("receiver");
    latencies_us.sort_unstable();
    verdict_us.sort_unstable();
    Round {
        verdict_us,
        sent,
        received: latencies_us.len() as u64,
        verdicts: runner.stats.verdicts - before,
        busy,
        wall,
        latencies_us,
    }
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let paced: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let parsed = conntrackd_config::parse_str(CONFIG);
    let config = parsed.config.expect("config");
    let planned = plan(config.helper.as_ref().expect("helper")).expect("plan");
    let options = RunnerOptions {
        configure_stubs: false,
        create_expectations: false,
        recv_buffer: 64 << 20,
        ..RunnerOptions::default()
    };
    let mut runner =
        QueueRunner::start(&planned, options).expect("runner (in the bench namespace?)");
    let mut out = Vec::new();
    for (name, rate) in [("full speed", None), ("paced", Some(paced))] {
        let r = round(&mut runner, count, rate);
        let per_busy_sec = r.verdicts as f64 / r.busy.as_secs_f64().max(1e-9);
        let per_wall_sec = r.verdicts as f64 / r.wall.as_secs_f64().max(1e-9);
        out.push(format!(
            "{{\"round\": \"{name}\", \"rate_asked\": {}, \"sent\": {}, \"verdicts\": {}, \"delivered\": {}, \"runner_busy_s\": {:.3}, \"wall_s\": {:.3}, \"verdicts_per_busy_s\": {:.0}, \"verdicts_per_wall_s\": {:.0}, \"read_to_verdict_us\": {{\"p50\": {}, \"p99\": {}, \"max\": {}}}, \"send_to_delivery_us\": {{\"p50\": {}, \"p99\": {}, \"max\": {}}}}}",
            rate.map_or("null".to_owned(), |r| r.to_string()),
            r.sent,
            r.verdicts,
            r.received,
            r.busy.as_secs_f64(),
            r.wall.as_secs_f64(),
            per_busy_sec,
            per_wall_sec,
            pct(&r.verdict_us, 0.5),
            pct(&r.verdict_us, 0.99),
            r.verdict_us.last().copied().unwrap_or(0),
            pct(&r.latencies_us, 0.5),
            pct(&r.latencies_us, 0.99),
            r.latencies_us.last().copied().unwrap_or(0)
        ));
    }
    runner.refresh_queue_drops();
    let (_, c) = runner.engine().counters().next().expect("helper");
    println!(
        "{{\"rounds\": [{}], \"helper\": {{\"packets\": {}, \"parse_errors\": {}, \"queue_drops\": {}}}, \"batch_verdict_messages\": {}}}",
        out.join(", "),
        c.packets,
        c.parse_errors,
        c.queue_drops,
        runner.stats.verdict_messages
    );
}

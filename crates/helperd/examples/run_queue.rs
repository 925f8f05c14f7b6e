//! Runs the queue path alone for a while and prints what it counted:
//! `run_queue CONFIG SECONDS [--no-stubs]`, in the namespace where the
//! NFQUEUE rules are (the bench uses it).

use std::time::{Duration, Instant};

use helperd::{QueueRunner, RunnerOptions, plan};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: run_queue CONFIG SECONDS [--no-stubs]")?;
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let stubs = !args.any(|a| a == "--no-stubs");
    let (_, parsed) = conntrackd_config::load(path.as_ref()).map_err(|e| e.to_string())?;
    let config = parsed.config.ok_or("configuration rejected")?;
    let section = config.helper.ok_or("no Helper section")?;
    let planned = plan(&section).map_err(|e| e.to_string())?;
    let options = RunnerOptions {
        configure_stubs: stubs,
        create_expectations: stubs,
        ..RunnerOptions::default()
    };
    let mut runner = QueueRunner::start(&planned, options).map_err(|e| e.to_string())?;
    if let Some(note) = runner.conntrack_note() {
        eprintln!("{note}");
    }
    println!("ready");
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        let n = runner.handle_readable(t, 64).map_err(|e| e.to_string())?;
        if n == 0 {
            std::thread::sleep(Duration::from_micros(50));
        } else {
            latencies.push((t.elapsed(), n));
        }
        runner.handle_timeout(Instant::now());
    }
    runner.refresh_queue_drops();
    println!("{:?}", runner.stats);
    for (setup, c) in runner.engine().counters() {
        println!("{} queue {}: {c:?}", setup.kind.name(), setup.queue_num);
    }
    Ok(())
}

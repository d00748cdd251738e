//! Simulator speed and memory on the standard seed: 5 nodes, heavy faults, 60 virtual
//! seconds (6,000 base ticks) plus the liveness phase, one thread.
//!
//! `cargo bench -p sim --bench standard_seed` runs 200 standard seeds and reports
//! events per second, wall time per seed (mean, p50, p99) and peak resident memory.
//! `-- --seeds N` changes the count; `-- --one` runs one seed only, to read the peak
//! memory of a single run. Peak memory comes from VmHWM in /proc/self/status (Linux).

use sim::{run_seed, FaultProfile, RunOptions, Verdict};
use std::time::Instant;

fn peak_resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let mut seeds: u64 = 200;
    if let Some(position) = arguments.iter().position(|argument| argument == "--seeds") {
        seeds = arguments.get(position + 1).and_then(|count| count.parse().ok()).expect("--seeds N");
    }
    if arguments.iter().any(|argument| argument == "--one") {
        seeds = 1;
    }
    let mut wall_ms = Vec::with_capacity(seeds as usize);
    let mut events = 0;
    let mut peak_after_first = None;
    let started = Instant::now();
    for seed in 0..seeds {
        let options = RunOptions::new(seed, 5, FaultProfile::Heavy);
        let run_started = Instant::now();
        let (_, report) = run_seed(&options, None).expect("no trace output");
        wall_ms.push(run_started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(report.verdict, Verdict::Pass, "seed {seed} failed: {:?}", report.violation);
        events += report.events;
        if seed == 0 {
            peak_after_first = peak_resident_kib();
        }
    }
    let total = started.elapsed().as_secs_f64();
    wall_ms.sort_by(f64::total_cmp);
    let percentile = |fraction: f64| wall_ms[((wall_ms.len() - 1) as f64 * fraction).round() as usize];
    println!("standard seed (5 nodes, heavy, 6000 ticks = 60 virtual s + liveness), {seeds} seeds, 1 thread");
    println!("  events/s:        {:.2} M", events as f64 / total / 1e6);
    println!("  events per seed: {}", events / seeds);
    println!(
        "  wall per seed:   mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms",
        total * 1e3 / seeds as f64,
        percentile(0.5),
        percentile(0.99)
    );
    println!("  seeds/s:         {:.1}", seeds as f64 / total);
    if let (Some(first), Some(end)) = (peak_after_first, peak_resident_kib()) {
        println!("  peak RSS:        {first} KiB after the first seed, {end} KiB after {seeds} seeds");
    }
}

//! Linearizability checker speed.
//!
//! `cargo bench -p sim --bench linearizability` checks (1) a synthetic history of
//! 10,000 operations over 100 keys from 20 overlapping clients (the yardstick),
//! (2) the same with a tenth of the writes indeterminate, (3) one hot key of 2,000
//! operations, (4) the real histories of simulated runs (heavy and swarm, 5 nodes),
//! reporting the time per check and, for the runs, the worst one, and (5) the history of
//! a heavy run with 100 clients on 5 keys (high concurrency, the search's hard case).

use kv::{Operation, Query, Response};
use sim::checkers::linearizability::{check, Linearizability};
use sim::history::{ClientOp, Outcome};
use sim::{draw_plan, run_with_history, FaultProfile, RunOptions};
use std::time::Instant;

/// `operations` over `keys` keys: 20 clients, each operation overlapping its
/// neighbours; reads see the latest write; every `indeterminate_every`-th write timed out
/// (and took effect).
fn synthetic(operations: u64, keys: u64, indeterminate_every: u64) -> Vec<ClientOp> {
    let mut values = vec![None::<kv::Bytes>; keys as usize];
    let mut history = Vec::with_capacity(operations as usize);
    for step in 0..operations {
        let key = (step * 37 % keys) as usize;
        let (invoke_us, return_us) = (step * 10, Some(step * 10 + 25));
        let client = step % 20 + 1;
        let op = if step % 3 == 0 {
            let value = kv::Bytes::from(format!("v{step}"));
            values[key] = Some(value.clone());
            let timed_out = indeterminate_every > 0 && step % (3 * indeterminate_every) == 0;
            ClientOp {
                client,
                operation: Operation::Set { key: format!("k{key}").into(), value },
                invoke_us,
                return_us: if timed_out { None } else { return_us },
                outcome: if timed_out { Outcome::Indeterminate } else { Outcome::Ok(Response::Done) },
            }
        } else {
            ClientOp {
                client,
                operation: Operation::Read(Query::Get { key: format!("k{key}").into() }),
                invoke_us,
                return_us,
                outcome: Outcome::Ok(Response::Value(values[key].clone())),
            }
        };
        history.push(op);
    }
    history
}

fn time_check(name: &str, history: &[ClientOp], repeats: u32) {
    let started = Instant::now();
    let mut verdict = None;
    for _ in 0..repeats {
        verdict = Some(check(history));
    }
    let per_check = started.elapsed().as_secs_f64() * 1e3 / f64::from(repeats);
    let verdict = verdict.expect("checked at least once");
    assert!(matches!(verdict, Linearizability::Linearizable { .. }), "{name}: {verdict:?}");
    println!("  {name}: {} operations, {per_check:.2} ms per check", history.len());
}

fn main() {
    println!("linearizability checker");
    time_check("10,000 operations over 100 keys", &synthetic(10_000, 100, 0), 20);
    time_check("same, 1 in 10 writes indeterminate", &synthetic(10_000, 100, 10), 20);
    time_check("2,000 operations on one key", &synthetic(2_000, 1, 0), 20);
    for profile in [FaultProfile::Heavy, FaultProfile::Swarm] {
        let (mut total_ms, mut worst_ms, mut operations, mut worst_operations) = (0.0, 0.0f64, 0, 0);
        let seeds = 50;
        for seed in 0..seeds {
            let options = RunOptions::new(seed, 5, profile);
            let (_, history) = run_with_history(&options, &draw_plan(&options), None).expect("no trace");
            let started = Instant::now();
            let verdict = check(&history);
            let elapsed = started.elapsed().as_secs_f64() * 1e3;
            assert!(matches!(verdict, Linearizability::Linearizable { .. }), "seed {seed}: {verdict:?}");
            total_ms += elapsed;
            operations += history.len();
            if elapsed > worst_ms {
                (worst_ms, worst_operations) = (elapsed, history.len());
            }
        }
        println!(
            "  {profile} runs, 5 nodes: {seeds} histories, {} operations on average, {:.2} ms per check on average, worst {worst_ms:.2} ms ({worst_operations} operations)",
            operations / seeds as usize,
            total_ms / seeds as f64
        );
    }
    let mut options = RunOptions::new(5, 5, FaultProfile::Heavy);
    options.clients = 100;
    options.ticks = 1_000;
    let (_, history) = run_with_history(&options, &draw_plan(&options), None).expect("no trace");
    time_check("100 clients, heavy, 10 virtual s", &history, 3);
}

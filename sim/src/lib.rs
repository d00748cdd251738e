//! # sim: a deterministic simulation testbed for `raft-core`
//!
//! One `u64` seed decides everything a run does. From it, independent ChaCha streams
//! (one per purpose: fault plan, network, node seeds, workload, storage) drive a
//! cluster of nodes on a virtual clock, through an event queue ordered by (time,
//! sequence number). Each node is the production node driver, `raft_host::Driver`,
//! around a [`raft_core::RaftNode`]: the simulator tests the host code a real server
//! runs, and supplies only the world around it. No wall clock, thread timing or
//! hash-map order reaches a run: the same seed and options give the same run, byte for
//! byte, on any machine and under any `--jobs`.
//!
//! ## What a run simulates
//! - **Network** ([`network`]): per-message delay (which reorders), loss, duplication,
//!   symmetric and one-way cuts, an isolated node, majority/minority splits, flapping links.
//! - **Nodes** ([`cluster`]): the [`cluster::Cluster`] calls each node's driver behind a
//!   few doors (tick, deliver, submit, sync done, crash, restart, resume) and carries out
//!   what it asks in order: writes into the production storage engine (`raft_storage`)
//!   on the node's own in-memory file system (`raft_storage::MemFs`), syncs completed
//!   after the disk's latency, sends into the network, answers to the clients. Bytes and
//!   names become durable when a sync completes; a crash loses what was not synced, or
//!   keeps an unsynced tail torn at any byte; a restart recovers from those bytes, and
//!   what it returns is held to the model [`cluster::Disk`] (what was durable, plus a
//!   prefix of what was in flight). Flipped bits in durable files and failed syncs are
//!   fault classes. Pauses and clock skew (nodes ticking at different rates) too.
//! - **Clients** (`clients`, [`history`]): `--clients N` closed-loop key-value clients
//!   (get, list, set, delete, compare-and-set over a few contended keys) find the leader
//!   by following refusal hints, retry after a timeout with the same sequence number (the
//!   [`kv`] store's sessions apply a write once), and read through ReadIndex, or with
//!   [`ReadMode::Local`] from whatever node they ask (stale on purpose). Every
//!   operation is recorded with its invocation and return times and an ok / fail /
//!   indeterminate outcome. Each node runs the [`kv`] store ([`state_machine`]).
//! - **Faults** ([`faults`]): the profiles `none`, `light`, `heavy` and `swarm` (each seed
//!   draws its own mix); the drawn plan is printed before the run and saved in repro files.
//! - **Checkers** ([`checkers`], one per file, fed every [`checkers::Observed`] event at
//!   one dispatch point): election safety, log matching, leader
//!   completeness, state machine safety (snapshots included), monotonic term / commit /
//!   applied / durable term, durable vote, durable promises (what a message promises is
//!   on disk when it leaves), committed-is-durable, read freshness, stale term (a message
//!   from an older term changes nothing), the host contract (writes the disk can make
//!   sense of, a durable state a node can restart from), log image (the core's log is
//!   the log its writes describe), restart (recovery returns what was durable; damage is
//!   refused or never needed), the core's own assertions (a panic in the core is a
//!   verdict, not a crash of the simulator), and protocol rules checked where they are
//!   applied: the Figure 8 commit rule, the vote rule (grants only to logs at least as
//!   up to date) and the membership change rule. Availability ([`availability`]): a
//!   healthy majority commits, a leader cut off from a quorum steps down, and no
//!   unprovoked election happens in the healed cluster's quiet tail. At the end of the
//!   run, linearizability of the client history ([`checkers::linearizability`]): per key,
//!   Wing-Gong/Lowe search with indeterminate operations optional and a bounded budget
//!   ("unknown", [`Verdict::Unknown`], is never a pass), violations shrunk to a small
//!   witness.
//! - **Phases** ([`simulation`]): a safety phase with faults, then a liveness phase in
//!   which everything heals and the cluster must elect a leader every voter follows,
//!   commit and apply a new entry on every voter, answer or refuse every read, and finish
//!   every client operation in flight, within [`simulation::LIVENESS_BOUND_MICROS`];
//!   then a quiet tail ([`availability::QUIET_MICROS`]) on a calmed network.
//! - **Scripts** ([`scenario`]): a transcript drives the same cluster message by
//!   message (the `sim-scenarios` crate holds them); [`shrink`] cuts a failing repro
//!   down.
//!
//! ## Using it
//! [`run_seed`] runs one seed; [`sweep::sweep`] runs many in parallel; [`repro`] reads
//! and writes repro files. The `sim` binary wraps them: `sim run`, `sim sweep`,
//! `sim replay`, `sim shrink`, `sim scenario` (see README.md, and ARCHITECTURE.md for the
//! command line and exit codes).
//!
//! ```
//! use sim::{run_seed, FaultProfile, RunOptions, Verdict};
//!
//! let mut options = RunOptions::new(7, 3, FaultProfile::Heavy);
//! options.ticks = 500; // five virtual seconds of faults
//! let (_plan, report) = run_seed(&options, None).unwrap();
//! assert_eq!(report.verdict, Verdict::Pass);
//! let (_plan, again) = run_seed(&options, None).unwrap();
//! assert_eq!(report.trace_hash, again.trace_hash);
//! ```

pub mod availability;
pub mod checkers;
mod clients;
pub mod cluster;
mod connections;
pub mod control;
pub mod event;
pub mod event_queue;
pub mod faults;
pub mod history;
mod liveness;
mod naming;
mod nemesis;
pub mod network;
mod operator;
pub mod options;
pub mod output;
pub mod random;
pub mod repro;
mod resp_link;
pub mod scenario;
pub mod shrink;
pub mod simulation;
pub mod state_machine;
pub mod sweep;
pub mod trace;
mod world;

pub use faults::{FaultPlan, FaultProfile};
pub use options::{Failure, HostBug, ReadMode, RunOptions, RunReport, Verdict};

/// Draws the fault plan of `options` from its seed.
pub fn draw_plan(options: &RunOptions) -> FaultPlan {
    FaultPlan::draw(options.seed, options.faults, options.nodes, options.ticks * faults::BASE_TICK_MICROS)
}

/// Runs `options` under `plan`; writes the trace as JSON lines to `trace` if given.
/// Fails only if writing the trace fails.
pub fn run(
    options: &RunOptions,
    plan: &FaultPlan,
    trace: Option<&mut dyn std::io::Write>,
) -> std::io::Result<RunReport> {
    simulation::Simulation::new(options, plan, trace).run()
}

/// Runs `options` under `plan` like [`run_with_history`], stopped and watched by `control`.
pub fn run_controlled<'t>(
    options: &RunOptions,
    plan: &FaultPlan,
    trace: Option<&'t mut dyn std::io::Write>,
    control: control::RunControl<'t>,
) -> std::io::Result<(RunReport, Vec<history::ClientOp>)> {
    simulation::Simulation::new(options, plan, trace).with_control(control).run_with_history()
}

/// Runs `options` under `plan` like [`run`], and returns the client history too.
pub fn run_with_history(
    options: &RunOptions,
    plan: &FaultPlan,
    trace: Option<&mut dyn std::io::Write>,
) -> std::io::Result<(RunReport, Vec<history::ClientOp>)> {
    simulation::Simulation::new(options, plan, trace).run_with_history()
}

/// Draws the plan of `options` and runs it.
pub fn run_seed(
    options: &RunOptions,
    trace: Option<&mut dyn std::io::Write>,
) -> std::io::Result<(FaultPlan, RunReport)> {
    let plan = draw_plan(options);
    let report = run(options, &plan, trace)?;
    Ok((plan, report))
}

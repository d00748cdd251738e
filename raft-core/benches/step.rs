//! How fast the core steps, measured on a 3-node in-memory cluster with instant,
//! lossless delivery (the host does nothing but move actions around).
//!
//! Run: cargo bench -p raft-core --bench step
//! Reports steps per second and committed proposals per second for steady-state
//! replication, and the cost of one election round.

use raft_core::{Action, Config, DurableState, Input, Message, RaftNode, Role};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

struct Cluster {
    nodes: Vec<RaftNode>,
    queue: VecDeque<Message>,
    actions: Vec<Action>,
    steps: u64,
}

impl Cluster {
    fn new(size: u64) -> Cluster {
        let ids: Vec<u64> = (1..=size).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                RaftNode::new(Config::new(id, ids.clone()), DurableState::default(), id).expect("valid")
            })
            .collect();
        Cluster { nodes, queue: VecDeque::new(), actions: Vec::new(), steps: 0 }
    }

    /// Steps a node; its writes count as durable at once, so when it wrote any, the
    /// host reports its log persisted in a second step.
    fn step(&mut self, index: usize, input: Input) {
        if self.step_once(index, input) {
            let node = &self.nodes[index];
            let report = Input::LogPersisted { index: node.last_index(), term: node.last_term() };
            self.step_once(index, report);
        }
    }

    /// Steps a node; returns whether it wrote to its log.
    fn step_once(&mut self, index: usize, input: Input) -> bool {
        self.steps += 1;
        self.actions.clear();
        self.nodes[index].step_into(input, &mut self.actions);
        let mut wrote = false;
        for action in self.actions.drain(..) {
            match action {
                Action::Send(message) | Action::SendAhead(message) => self.queue.push_back(message),
                Action::PersistEntries { .. } | Action::TruncateLog { .. } => wrote = true,
                other => {
                    black_box(other);
                }
            }
        }
        wrote
    }

    fn deliver_all(&mut self) {
        while let Some(message) = self.queue.pop_front() {
            let index = (message.to - 1) as usize;
            self.step(index, Input::Message(message));
        }
    }

    fn elect_first_node(&mut self) {
        while self.nodes[0].role() != Role::Leader {
            self.step(0, Input::Tick);
            self.deliver_all();
        }
    }
}

fn replication(size: u64, batch: u64, rounds: u64) -> (Duration, u64, u64) {
    let mut cluster = Cluster::new(size);
    cluster.elect_first_node();
    let start_steps = cluster.steps;
    let start = Instant::now();
    let mut id = 0;
    for round in 0..rounds {
        for _ in 0..batch {
            id += 1;
            cluster.step(0, Input::Propose { id, command: id.to_le_bytes().to_vec() });
        }
        cluster.deliver_all();
        if round % 10 == 0 {
            for index in 0..size as usize {
                cluster.step(index, Input::Tick);
            }
            cluster.deliver_all();
        }
    }
    let elapsed = start.elapsed();
    assert!(cluster.nodes[0].commit_index() > id, "everything proposed commits");
    (elapsed, cluster.steps - start_steps, id)
}

fn elections(rounds: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..rounds {
        let mut cluster = Cluster::new(5);
        cluster.elect_first_node();
        black_box(cluster.nodes[0].term());
    }
    start.elapsed()
}

fn main() {
    if std::env::args().any(|argument| argument == "--profile") {
        // A short fixed workload for instruction-count profilers (valgrind --tool=callgrind).
        let (_, steps, proposals) = replication(3, 1, 20_000);
        println!("profile run: {proposals} proposals, {steps} steps");
        return;
    }
    // Warm up, then measure.
    replication(3, 8, 1_000);
    for (size, batch) in [(3, 1), (3, 16), (5, 16)] {
        let (elapsed, steps, proposals) = replication(size, batch, 200_000 / batch);
        let seconds = elapsed.as_secs_f64();
        println!(
            "replication nodes={size} batch={batch}: {proposals} proposals, {steps} steps in {:.3}s: \
             {:.2} M steps/s, {:.0} k proposals/s, {:.0} ns/step",
            seconds,
            steps as f64 / seconds / 1e6,
            proposals as f64 / seconds / 1e3,
            seconds * 1e9 / steps as f64,
        );
    }
    let rounds = 20_000;
    let elapsed = elections(rounds);
    println!(
        "election of a 5-node cluster (build + ticks to a leader): {:.1} us each",
        elapsed.as_secs_f64() * 1e6 / rounds as f64
    );
}

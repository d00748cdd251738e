//! How fast the core steps, measured on a 3-node in-memory cluster with instant,
//! lossless delivery (the host does nothing but move actions around).
//!
//! Run: cargo bench -p raft-core --bench step
//! Reports steps per second and committed proposals per second for steady-state
//! replication (proposals stepped one by one, and as one `ProposeBatch` per round),
//! the messages the leader sends each follower per round, and the cost of one
//! election round. `--profile` and `--profile-batched` run a short fixed workload (3
//! voters, rounds of 64 proposals of 16 bytes) for `valgrind --tool=callgrind`.

use raft_core::{Action, Config, DurableState, Input, Message, RaftNode, Role};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

struct Cluster {
    nodes: Vec<RaftNode>,
    queue: VecDeque<Message>,
    actions: Vec<Action>,
    steps: u64,
    /// Messages the first node (the leader) sent.
    leader_messages: u64,
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
        Cluster { nodes, queue: VecDeque::new(), actions: Vec::new(), steps: 0, leader_messages: 0 }
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
                Action::Send(message) | Action::SendAhead(message) => {
                    self.leader_messages += u64::from(message.from == 1);
                    self.queue.push_back(message)
                }
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

/// What a replication run measured.
struct Run {
    elapsed: Duration,
    steps: u64,
    proposals: u64,
    /// Messages the leader sent per follower per round.
    messages_per_follower_round: f64,
}

/// `rounds` rounds of `batch` proposals of 16 bytes on `size` voters, proposed one by
/// one or as one `ProposeBatch` per round.
fn replication(size: u64, batch: u64, rounds: u64, batched: bool) -> Run {
    let mut cluster = Cluster::new(size);
    cluster.elect_first_node();
    let start_steps = cluster.steps;
    let start_messages = cluster.leader_messages;
    let start = Instant::now();
    let mut id: u64 = 0;
    for round in 0..rounds {
        let mut proposals = Vec::with_capacity(batch as usize);
        for _ in 0..batch {
            id += 1;
            let mut command = id.to_le_bytes().to_vec();
            command.resize(16, 0);
            if batched {
                proposals.push((id, command));
            } else {
                cluster.step(0, Input::Propose { id, command });
            }
        }
        if batched {
            cluster.step(0, Input::ProposeBatch { proposals });
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
    let messages = (cluster.leader_messages - start_messages) as f64;
    Run {
        elapsed,
        steps: cluster.steps - start_steps,
        proposals: id,
        messages_per_follower_round: messages / (size - 1) as f64 / rounds as f64,
    }
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
    for (flag, batched) in [("--profile", false), ("--profile-batched", true)] {
        if std::env::args().any(|argument| argument == flag) {
            // A short fixed workload for instruction-count profilers: divide the
            // instructions by the proposals printed.
            let run = replication(3, 64, 300, batched);
            println!(
                "profile run ({}): {} proposals, {} steps, {:.2} messages per follower per round of 64",
                if batched { "batched" } else { "one by one" },
                run.proposals,
                run.steps,
                run.messages_per_follower_round
            );
            return;
        }
    }
    // Warm up, then measure.
    replication(3, 8, 1_000, false);
    for (size, batch, batched) in
        [(3, 1, false), (3, 16, false), (3, 64, false), (3, 64, true), (5, 64, true)]
    {
        let run = replication(size, batch, 200_000 / batch, batched);
        let seconds = run.elapsed.as_secs_f64();
        println!(
            "replication nodes={size} batch={batch}{}: {} proposals, {} steps in {:.3}s: \
             {:.2} M steps/s, {:.0} k proposals/s, {:.0} ns/step, {:.2} messages per follower per round",
            if batched { " (one ProposeBatch)" } else { " (one by one)" },
            run.proposals,
            run.steps,
            seconds,
            run.steps as f64 / seconds / 1e6,
            run.proposals as f64 / seconds / 1e3,
            seconds * 1e9 / run.steps as f64,
            run.messages_per_follower_round,
        );
    }
    let rounds = 20_000;
    let elapsed = elections(rounds);
    println!(
        "election of a 5-node cluster (build + ticks to a leader): {:.1} us each",
        elapsed.as_secs_f64() * 1e6 / rounds as f64
    );
}

//! Drives an in-memory cluster of `raft-core` nodes from one seed: a stand-in for
//! `sim run` until the `sim` crate lands. Messages get a random delay and a 5% loss,
//! the leader is crashed once, and at the end every node's applied log must agree.
//!
//! Usage: cargo run --release -p raft-core --example cluster -- [--seed N] [--nodes N] [--ticks T]
//! Exit codes: 0 the run held; 1 the nodes disagree or no leader was elected; 2 bad usage.

use raft_core::{Action, Config, DurableState, Entry, Input, Message, RaftNode, Role};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

struct Options {
    seed: u64,
    nodes: u64,
    ticks: u64,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options { seed: 1, nodes: 3, ticks: 5_000 };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: u64 =
            value.parse().map_err(|_| format!("{flag} expects a whole number, got `{value}`"))?;
        match flag.as_str() {
            "--seed" => options.seed = number,
            "--nodes" if (1..=9).contains(&number) => options.nodes = number,
            "--nodes" => return Err("--nodes must be between 1 and 9".into()),
            "--ticks" if number >= 1 => options.ticks = number,
            "--ticks" => return Err("--ticks must be at least 1".into()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(options)
}

/// One node and what its host keeps for it.
struct Host {
    node: RaftNode,
    durable: DurableState,
    applied: Vec<Entry>,
    up: bool,
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}\nusage: cluster [--seed N] [--nodes 1..9] [--ticks T]");
            return ExitCode::from(2);
        }
    };
    println!(
        "seed {} nodes {} ticks {} (5% loss, 1-5 tick delays, one leader crash)",
        options.seed, options.nodes, options.ticks
    );
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let ids: Vec<u64> = (1..=options.nodes).collect();
    let mut hosts: BTreeMap<u64, Host> = BTreeMap::new();
    for &id in &ids {
        let node = RaftNode::new(Config::new(id, ids.clone()), DurableState::default(), rng.next_u64())
            .expect("valid config");
        hosts.insert(id, Host { node, durable: DurableState::default(), applied: Vec::new(), up: true });
    }
    // In-flight messages keyed by (delivery tick, sequence) so delivery order is deterministic.
    let mut in_flight: BTreeMap<(u64, u64), Message> = BTreeMap::new();
    let mut sequence = 0u64;
    let mut leaders: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut crashed_leader: Option<(u64, u64)> = None;
    let mut proposals = 0u64;
    for now in 0..options.ticks {
        let mut inputs: Vec<(u64, Input)> = Vec::new();
        while let Some(entry) = in_flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let message = entry.remove();
            inputs.push((message.to, Input::Message(message)));
        }
        for &id in &ids {
            inputs.push((id, Input::Tick));
        }
        if now % 20 == 0 {
            if let Some((&id, _)) = hosts.iter().find(|(_, host)| host.up && host.node.role() == Role::Leader)
            {
                proposals += 1;
                inputs
                    .push((id, Input::Propose { id: proposals, command: proposals.to_le_bytes().to_vec() }));
            }
        }
        for (id, input) in inputs {
            let host = hosts.get_mut(&id).expect("known node");
            if !host.up {
                continue;
            }
            for action in host.node.step(input) {
                match action {
                    Action::PersistHardState(hard_state) => host.durable.hard_state = hard_state,
                    Action::TruncateLog { from } => host.durable.entries.retain(|entry| entry.index < from),
                    Action::PersistEntries { entries } => host.durable.entries.extend(entries),
                    Action::Apply { entries } => host.applied.extend(entries),
                    Action::RoleChanged { role: Role::Leader, term, .. } => {
                        leaders.insert((term, id));
                    }
                    Action::Send(message) if rng.next_u64() % 100 >= 5 => {
                        let delay = 1 + rng.next_u64() % 5;
                        sequence += 1;
                        in_flight.insert((now + delay, sequence), message);
                    }
                    _ => {}
                }
            }
        }
        // Crash the first leader a third of the way in; restart it from durable state later.
        if now == options.ticks / 3 && options.nodes > 1 {
            if let Some((&id, _)) = hosts.iter().find(|(_, host)| host.node.role() == Role::Leader) {
                hosts.get_mut(&id).expect("known").up = false;
                crashed_leader = Some((id, now));
                println!("tick {now}: crashed leader {id}");
            }
        }
        if let Some((id, at)) = crashed_leader {
            if now == at + 500 {
                let host = hosts.get_mut(&id).expect("known");
                host.node = RaftNode::new(Config::new(id, ids.clone()), host.durable.clone(), rng.next_u64())
                    .expect("restores");
                host.applied.clear();
                host.up = true;
                println!("tick {now}: restarted node {id} from its durable state");
            }
        }
    }
    let terms: BTreeSet<u64> = leaders.iter().map(|&(term, _)| term).collect();
    if terms.len() != leaders.len() {
        println!("FAIL: two leaders in one term: {leaders:?}");
        return ExitCode::from(1);
    }
    let longest = hosts.values().map(|host| host.applied.len()).max().unwrap_or(0);
    let reference = hosts
        .values()
        .find(|host| host.applied.len() == longest)
        .map(|host| host.applied.clone())
        .unwrap_or_default();
    for (id, host) in &hosts {
        if host.applied[..] != reference[..host.applied.len()] {
            println!("FAIL: node {id} applied a different sequence");
            return ExitCode::from(1);
        }
        println!(
            "node {id}: {:?} term {} commit {} applied {}",
            host.node.role(),
            host.node.term(),
            host.node.commit_index(),
            host.applied.len()
        );
    }
    if leaders.is_empty() || longest == 0 {
        println!("FAIL: nothing was committed");
        return ExitCode::from(1);
    }
    println!(
        "OK: {} leaders over {} terms, {proposals} proposals, {longest} entries applied everywhere agree",
        leaders.len(),
        terms.len()
    );
    ExitCode::SUCCESS
}

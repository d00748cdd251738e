//! The world a scenario script drives: the simulator's own cluster (every node the
//! production driver over a simulated disk, every checker on), with the network
//! replaced by a queue of held messages that the script delivers, drops or duplicates
//! one by one, and cuts that drop what crosses them.
//!
//! Syncs complete at once, after each step; time moves only when nodes tick (10 ms a
//! tick). Every command prints what changed: messages delivered or dropped, roles and
//! terms, answers to requests, and a violation if a checker fired.

use super::describe;
use crate::cluster::Cluster;
use crate::event::Event;
use crate::event_queue::{EventQueue, Micros};
use crate::faults::{FaultPlan, FaultProfile, BASE_TICK_MICROS};
use crate::options::RunOptions;
use crate::random::{Purpose, Random};
use kv::{Command, Operation, Query, Response};
use raft_core::{MembershipChange, Message, NodeId, RequestId, Role, Term};
use raft_host::{Answer, Request};
use std::collections::{BTreeMap, BTreeSet};

/// The most ticks `campaign` gives a node, and messages `stabilize` delivers.
const CAMPAIGN_TICKS_MAX: u64 = 500;
const STABILIZE_MESSAGES_MAX: usize = 100_000;

/// A command's arguments: positional words and `key=value` options.
struct Arguments<'a> {
    words: Vec<&'a str>,
    options: BTreeMap<&'a str, &'a str>,
}

impl<'a> Arguments<'a> {
    fn parse(text: &'a str) -> Arguments<'a> {
        let mut words = Vec::new();
        let mut options = BTreeMap::new();
        for token in text.split_whitespace() {
            match token.split_once('=') {
                Some((key, value)) => {
                    options.insert(key, value);
                }
                None => words.push(token),
            }
        }
        Arguments { words, options }
    }

    fn number(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.options.get(key) {
            Some(text) => text.parse().map_err(|_| format!("{key}={text}: not a number")),
            None => Ok(default),
        }
    }

    fn word(&self, at: usize, what: &str) -> Result<&'a str, String> {
        self.words.get(at).copied().ok_or_else(|| format!("missing {what}"))
    }
}

/// Which held messages a command means.
struct Filter {
    from: Option<NodeId>,
    to: Option<NodeId>,
    kind: Option<String>,
    count: usize,
}

impl Filter {
    /// `position` resolves a node's name (an id, or `leader`) to its position.
    fn of(
        arguments: &Arguments<'_>,
        position: impl Fn(&str) -> Result<usize, String>,
    ) -> Result<Filter, String> {
        let node = |key: &str| -> Result<Option<NodeId>, String> {
            arguments.options.get(key).map(|text| position(text).map(|at| at as NodeId + 1)).transpose()
        };
        Ok(Filter {
            from: node("from")?,
            to: node("to")?,
            kind: arguments.options.get("kind").map(|kind| kind.to_string()),
            count: arguments.number("count", u64::MAX)? as usize,
        })
    }

    fn matches(&self, message: &Message) -> bool {
        self.from.is_none_or(|from| message.from == from)
            && self.to.is_none_or(|to| message.to == to)
            && self.kind.as_deref().is_none_or(|kind| kind == describe::kind(message))
    }
}

/// A scripted cluster.
pub struct World {
    cluster: Cluster,
    queue: EventQueue<Event>,
    /// Directed links that drop what crosses them: (from, to) node ids.
    cuts: BTreeSet<(NodeId, NodeId)>,
    next_request: RequestId,
    requests: BTreeMap<RequestId, String>,
    seen: Vec<Option<(Role, Term)>>,
    failure_reported: bool,
    /// The unreliable network of `run loss=...` and a perturbed run's choices.
    random: Random,
    /// Set for a perturbed run (`sim sweep --scenario`).
    perturbation: Option<Perturbation>,
    /// Nodes a perturbation crashed, with the commands left before they restart.
    perturbed_crashes: Vec<(usize, u32)>,
}

/// How a perturbed run departs from its script: the neighbourhood of a scripted
/// schedule, for `sim sweep --scenario`. Probabilities are parts per million.
#[derive(Clone, Copy, Debug)]
pub struct Perturbation {
    /// The seed of every choice (and of the nodes' election timers).
    pub seed: u64,
    /// A message a command delivers is lost instead.
    pub loss_ppm: u32,
    /// A message a command delivers is put back, to arrive after the others.
    pub delay_ppm: u32,
    /// A node told to tick once does not tick, or ticks twice (timer jitter).
    pub jitter_ppm: u32,
    /// After a command, a running node crashes (and restarts a few commands later).
    pub crash_ppm: u32,
}

impl Perturbation {
    /// The default neighbourhood: 5% loss, 10% delay, 5% jitter, a crash every 50 commands.
    pub fn around(seed: u64) -> Perturbation {
        Perturbation { seed, loss_ppm: 50_000, delay_ppm: 100_000, jitter_ppm: 50_000, crash_ppm: 20_000 }
    }
}

impl World {
    /// `cluster nodes=N [seed=S] [compact-every=K] [max-entries=M]`: a cluster with no
    /// faults of its own (the script is the nemesis); `max-entries` caps the entries one
    /// AppendEntries carries, to split a replication into steps.
    pub fn new(arguments: &str, perturbation: Option<Perturbation>) -> Result<World, String> {
        let arguments = Arguments::parse(arguments);
        let nodes = arguments.number("nodes", 3)? as usize;
        if !(1..=9).contains(&nodes) {
            return Err(format!("nodes={nodes}: a scenario has 1 to 9 nodes"));
        }
        let seed = match perturbation {
            Some(perturbation) => perturbation.seed,
            None => arguments.number("seed", 1)?,
        };
        let mut options = RunOptions::new(seed, nodes, FaultProfile::None);
        options.clients = 0;
        let mut plan = FaultPlan::draw(seed, FaultProfile::None, nodes, BASE_TICK_MICROS);
        plan.schedule.clear();
        plan.tick_micros = vec![BASE_TICK_MICROS; nodes];
        plan.storage.sync_min_micros = 0;
        plan.storage.sync_max_micros = 0;
        plan.storage.torn_write_ppm = 0;
        plan.workload.compaction_threshold_entries = arguments.number("compact-every", 1 << 40)?;
        let mut cluster = Cluster::new(&options, &plan);
        cluster.held = Some(Default::default());
        let max_entries = arguments.number("max-entries", 0)?;
        let chunk_bytes = arguments.number("snapshot-chunk", 0)?;
        for position in 0..nodes {
            if max_entries > 0 {
                cluster.hosts[position].config_mut().raft.max_entries_per_message = max_entries;
            }
            if chunk_bytes > 0 {
                cluster.hosts[position].config_mut().raft.max_snapshot_chunk_bytes = chunk_bytes;
            }
            cluster.start(position, 0);
        }
        let mut world = World {
            cluster,
            queue: EventQueue::default(),
            cuts: BTreeSet::new(),
            next_request: 1,
            requests: BTreeMap::new(),
            seen: vec![None; nodes],
            failure_reported: false,
            random: Random::new(seed, Purpose::Scenario),
            perturbation,
            perturbed_crashes: Vec::new(),
        };
        world.seen = world.states();
        Ok(world)
    }

    /// The cluster in one line, the `cluster` command's output.
    pub fn describe(&self) -> String {
        let config = self.cluster.hosts[0].core().map(|core| core.config().clone());
        match config {
            Some(config) => format!(
                "{} nodes; elections after {} to {} ticks, heartbeats every {} ticks{}{}, at most {} entries an append",
                self.nodes(),
                config.election_timeout_min_ticks,
                config.election_timeout_max_ticks - 1,
                config.heartbeat_interval_ticks,
                if config.pre_vote { ", pre-vote" } else { "" },
                if config.check_quorum { ", check-quorum" } else { "" },
                config.max_entries_per_message,
            ),
            None => format!("{} nodes", self.nodes()),
        }
    }

    fn nodes(&self) -> usize {
        self.cluster.hosts.len()
    }

    /// A node named by id, or `leader`: the running leader of the highest term.
    fn position(&self, text: &str) -> Result<usize, String> {
        if text == "leader" {
            return self
                .cluster
                .hosts
                .iter()
                .enumerate()
                .filter_map(|(position, host)| host.core().map(|core| (position, core)))
                .filter(|(_, core)| core.role() == Role::Leader)
                .max_by_key(|(_, core)| core.term())
                .map(|(position, _)| position)
                .ok_or_else(|| "no node is leader".to_string());
        }
        let id: usize = text.parse().map_err(|_| format!("{text:?} is not a node id"))?;
        if id == 0 || id > self.nodes() {
            return Err(format!("node {id} is not in this {}-node cluster", self.nodes()));
        }
        Ok(id - 1)
    }

    fn states(&self) -> Vec<Option<(Role, Term)>> {
        self.cluster.hosts.iter().map(|host| host.core().map(|core| (core.role(), core.term()))).collect()
    }

    fn now(&self) -> Micros {
        self.queue.now()
    }

    /// Completes every sync that is due (all of them: disks are instant here).
    fn settle(&mut self) {
        while let Some((_, event)) = self.queue.pop() {
            if let Event::SyncDone { node, incarnation, through, group } = event {
                self.cluster.sync_done(node, incarnation, through, group, &mut self.queue);
            }
        }
    }

    /// Runs one command line and returns what it printed.
    pub fn run(&mut self, line: &str) -> Vec<String> {
        let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut output = Vec::new();
        if let Err(error) = self.command(name, rest, &mut output) {
            output.push(format!("error: {error}"));
        }
        self.settle();
        self.perturb_after_command(&mut output);
        self.settle();
        self.report(&mut output);
        output
    }

    fn command(&mut self, name: &str, rest: &str, output: &mut Vec<String>) -> Result<(), String> {
        let arguments = Arguments::parse(rest);
        match name {
            "tick" => {
                let times = arguments.number("times", 1)?;
                let positions = self.positions(arguments.word(0, "the node to tick (or all)")?)?;
                for _ in 0..times {
                    self.tick(&positions);
                }
            }
            "campaign" => {
                let position = self.position(arguments.word(0, "the node")?)?;
                // Until it starts a campaign: a follower's or a candidate's timer runs out.
                let state = |world: &World| {
                    world.cluster.hosts[position].core().map(|core| (core.role(), core.term()))
                };
                let before = state(self);
                let mut ticks = 0;
                while ticks < CAMPAIGN_TICKS_MAX
                    && state(self).is_some_and(|now| Some(now) == before || now.0 == Role::Follower)
                {
                    self.tick(&[position]);
                    ticks += 1;
                }
                output.push(format!("node {} campaigned after {ticks} ticks", position + 1));
            }
            "deliver" | "drop" | "duplicate" => {
                let filter = Filter::of(&arguments, |text| self.position(text))?;
                let chosen = self.take_held(&filter, name == "duplicate");
                if chosen.is_empty() {
                    output.push("no such message".to_string());
                }
                for message in chosen {
                    match name {
                        "deliver" => self.deliver(message, output),
                        "drop" => output.push(format!("dropped {}", describe::message(&message))),
                        _ => {
                            output.push(format!("duplicated {}", describe::message(&message)));
                            self.held().push_back(message);
                        }
                    }
                }
            }
            "run" => self.run_unattended(&arguments, output)?,
            "append" => self.inject_append(&arguments, output)?,
            "set-log" => {
                let position = self.position(arguments.word(0, "the node")?)?;
                let term = arguments.number("term", 0)?;
                let runs: Vec<&str> = arguments.words[1..].to_vec();
                let mut entries = Vec::new();
                for run in runs {
                    let (indexes, entry_term) = run
                        .split_once('@')
                        .ok_or_else(|| format!("{run:?}: entries are INDEX@TERM or FIRST-LAST@TERM"))?;
                    let entry_term: Term = entry_term.parse().map_err(|_| format!("{run:?}: bad term"))?;
                    let (first, last) = indexes.split_once('-').unwrap_or((indexes, indexes));
                    let (first, last): (u64, u64) = (
                        first.parse().map_err(|_| format!("{run:?}: bad index"))?,
                        last.parse().map_err(|_| format!("{run:?}: bad index"))?,
                    );
                    for index in first..=last {
                        if index != entries.len() as u64 + 1 {
                            return Err(format!("{run:?}: entries must run 1, 2, 3, ... without gaps"));
                        }
                        entries.push(raft_core::Entry {
                            term: entry_term,
                            index,
                            payload: raft_core::EntryPayload::Noop,
                        });
                    }
                }
                if entries.last().is_some_and(|entry| entry.term > term) {
                    return Err(format!("term={term} is below the last entry's term"));
                }
                let host = &mut self.cluster.hosts[position];
                if host.is_up() {
                    self.cluster.crash(position, self.now());
                }
                let state = raft_core::DurableState {
                    hard_state: raft_core::HardState { term, voted_for: None },
                    snapshot: None,
                    entries,
                };
                self.cluster.hosts[position].restore_disk(state)?;
                self.cluster.restart(position, self.now());
            }
            "stabilize" => {
                let mut delivered = 0;
                while let Some(message) = self.held().pop_front() {
                    if delivered == STABILIZE_MESSAGES_MAX {
                        output.push(format!("stopped after {delivered} messages: they never stop coming"));
                        break;
                    }
                    self.deliver(message, output);
                    delivered += 1;
                }
            }
            "pending" => {
                let held: Vec<String> = self.held().iter().map(describe::message).collect();
                if held.is_empty() {
                    output.push("no messages pending".to_string());
                }
                output.extend(held);
            }
            "cut" | "heal" => self.cut_or_heal(name == "cut", &arguments, output)?,
            "isolate" => {
                let node = self.position(arguments.word(0, "the node")?)? as NodeId + 1;
                for other in 1..=self.nodes() as NodeId {
                    if other != node {
                        self.cuts.insert((node, other));
                        self.cuts.insert((other, node));
                    }
                }
            }
            "crash" => {
                let position = self.position(arguments.word(0, "the node")?)?;
                if !self.cluster.hosts[position].is_up() {
                    return Err(format!("node {} is down already", position + 1));
                }
                let kept = self.cluster.crash(position, self.now());
                output.push(format!("node {} crashed ({kept} unsynced writes in flight)", position + 1));
            }
            "restart" => {
                let which = arguments.word(0, "the node (or all: every node that is down)")?;
                if which == "all" {
                    for position in 0..self.nodes() {
                        if !self.cluster.hosts[position].is_up() {
                            self.cluster.restart(position, self.now());
                        }
                    }
                    return Ok(());
                }
                let position = self.position(which)?;
                if self.cluster.hosts[position].is_up() {
                    return Err(format!("node {} is running", position + 1));
                }
                self.cluster.restart(position, self.now());
            }
            "pause" => {
                let position = self.position(arguments.word(0, "the node")?)?;
                self.cluster.hosts[position].paused = true;
            }
            "resume" => {
                let position = self.position(arguments.word(0, "the node")?)?;
                let handled = self.cluster.resume(position, &mut self.queue);
                output.push(format!("node {} resumed and handled {handled} messages", position + 1));
            }
            "propose" => {
                let position = self.position(arguments.word(0, "the node")?)?;
                let (key, value) = (arguments.word(1, "the key")?, arguments.word(2, "the value")?);
                let operation = Operation::Set { key: key.into(), value: value.into() };
                let command = Command { client: 0, sequence: 0, operation };
                self.submit(position, Request::Write(command.encode()), format!("propose {key}={value}"))?;
            }
            "read" => {
                let position = self.position(arguments.word(0, "the node")?)?;
                let key = arguments.word(1, "the key")?;
                self.submit(position, Request::Read(Query::Get { key: key.into() }), format!("read {key}"))?;
            }
            "add-voter" | "remove-voter" | "add-learner" => {
                let position = self.position(arguments.word(0, "the node asked")?)?;
                let target = self.position(arguments.word(1, "the member")?)? as NodeId + 1;
                let change = match name {
                    "add-voter" => MembershipChange::AddVoter(target),
                    "add-learner" => MembershipChange::AddLearner(target),
                    _ => MembershipChange::RemoveNode(target),
                };
                self.submit(
                    position,
                    Request::ChangeMembership { change, context: Vec::new() },
                    format!("{name} {target}"),
                )?;
            }
            "set-members" => {
                // `set-members 1 voters=1,4,5 learners=2`: any change at once.
                let position = self.position(arguments.word(0, "the node asked")?)?;
                let voters = self.node_list(&arguments, "voters")?;
                let learners = self.node_list(&arguments, "learners")?;
                let what = format!("set-members voters={voters:?} learners={learners:?}");
                let change = MembershipChange::SetMembers { voters, learners };
                self.submit(position, Request::ChangeMembership { change, context: Vec::new() }, what)?;
            }
            "transfer" => {
                let position = self.position(arguments.word(0, "the node asked")?)?;
                let target = self.position(arguments.word(1, "the new leader")?)? as NodeId + 1;
                self.submit(position, Request::TransferLeadership(target), format!("transfer to {target}"))?;
            }
            "status" => {
                for (position, host) in self.cluster.hosts.iter().enumerate() {
                    let state = match (host.core(), host.driver.as_ref()) {
                        (Some(core), Some(driver)) => {
                            let paused = if host.paused { " (paused)" } else { "" };
                            format!("{}{paused}", describe::node(core, driver.applied_index()))
                        }
                        _ => "down".to_string(),
                    };
                    output.push(format!("node {}: {state}", position + 1));
                }
            }
            other => return Err(format!("unknown command {other:?}")),
        }
        Ok(())
    }

    /// `run ticks=N [loss=P%] [reorder=P%] [delay=T]`: every node ticks N times and
    /// every message is delivered as it is sent, except that a share is lost and a share
    /// arrives 1 to T ticks late (default 20: twice the heartbeat interval, so replies
    /// overtake one another), like MIT 6.5840's unreliable network. Messages still late
    /// at the end stay pending.
    /// The nodes a `key=1,2,3` option names (none if absent).
    fn node_list(&self, arguments: &Arguments<'_>, key: &str) -> Result<Vec<NodeId>, String> {
        let Some(text) = arguments.options.get(key) else { return Ok(Vec::new()) };
        text.split(',')
            .filter(|name| !name.is_empty())
            .map(|name| self.position(name).map(|position| position as NodeId + 1))
            .collect()
    }

    fn run_unattended(&mut self, arguments: &Arguments<'_>, output: &mut Vec<String>) -> Result<(), String> {
        let ticks = arguments.number("ticks", 1)?;
        let percent = |key: &str| -> Result<u32, String> {
            let Some(text) = arguments.options.get(key) else { return Ok(0) };
            let value: u32 =
                text.trim_end_matches('%').parse().map_err(|_| format!("{key}={text}: not a percentage"))?;
            if value > 100 {
                return Err(format!("{key}={text}: more than 100%"));
            }
            Ok(value * 10_000)
        };
        let (loss_ppm, reorder_ppm) = (percent("loss")?, percent("reorder")?);
        let max_delay = arguments.number("delay", 20)?.max(1);
        let mut delivered: BTreeMap<&'static str, u64> = BTreeMap::new();
        let (mut cut, mut lost, mut late) = (0, 0, 0);
        let mut later: Vec<(u64, Message)> = Vec::new();
        let all: Vec<usize> = (0..self.nodes()).collect();
        for tick in 0..ticks {
            self.tick(&all);
            let (due, waiting): (Vec<_>, Vec<_>) = later.into_iter().partition(|(at, _)| *at <= tick);
            later = waiting;
            self.held().extend(due.into_iter().map(|(_, message)| message));
            let mut budget = STABILIZE_MESSAGES_MAX;
            while let Some(message) = self.held().pop_front() {
                budget -= 1;
                if budget == 0 {
                    return Err("messages never stop coming".to_string());
                }
                if self.cuts.contains(&(message.from, message.to)) {
                    cut += 1;
                } else if self.random.chance(loss_ppm) {
                    lost += 1;
                } else if self.random.chance(reorder_ppm) {
                    late += 1;
                    later.push((tick + self.random.between(1, max_delay + 1), message));
                } else {
                    *delivered.entry(describe::kind(&message)).or_insert(0) += 1;
                    self.cluster.deliver(message, &mut self.queue);
                    self.settle();
                }
            }
        }
        let still_late = later.len();
        self.held().extend(later.into_iter().map(|(_, message)| message));
        let kinds: Vec<String> = delivered.iter().map(|(kind, count)| format!("{count} {kind}")).collect();
        let total: u64 = delivered.values().sum();
        let mut line = format!("{ticks} ticks: {total} messages delivered");
        if !kinds.is_empty() {
            line.push_str(&format!(" ({})", kinds.join(", ")));
        }
        for (count, what) in [(cut, "dropped at cuts"), (lost, "lost"), (late, "delivered late")] {
            if count > 0 {
                line.push_str(&format!(", {count} {what}"));
            }
        }
        if still_late > 0 {
            line.push_str(&format!(", {still_late} still in flight"));
        }
        output.push(line);
        Ok(())
    }

    /// `append from=L to=F prev=I [entries=A-B] [commit=C]`: delivers an AppendEntries
    /// that leader L could send: its term, the term it holds at I, its own entries A..=B
    /// (none by default), and a commit index no higher than its own (its own by default).
    /// Scripts use it for appends a real leader sends only in rare schedules, such as one
    /// that stops short of the follower's stale tail.
    fn inject_append(&mut self, arguments: &Arguments<'_>, output: &mut Vec<String>) -> Result<(), String> {
        let node = |key: &str| -> Result<usize, String> {
            self.position(arguments.options.get(key).ok_or_else(|| format!("missing {key}="))?)
        };
        let (from, to) = (node("from")?, node("to")?);
        let leader = self.cluster.hosts[from].core().ok_or_else(|| format!("node {} is down", from + 1))?;
        if leader.role() != Role::Leader {
            return Err(format!("node {} is not a leader", from + 1));
        }
        let prev_log_index = arguments.number("prev", 0)?;
        let prev_log_term = leader
            .term_at(prev_log_index)
            .ok_or_else(|| format!("node {} holds no entry {prev_log_index}", from + 1))?;
        let mut entries = Vec::new();
        if let Some(range) = arguments.options.get("entries") {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            let bad = || format!("entries={range}: expected A-B");
            let (first, last): (u64, u64) =
                (first.parse().map_err(|_| bad())?, last.parse().map_err(|_| bad())?);
            if first != prev_log_index + 1 || last < first {
                return Err(format!("entries={range}: must start at prev+1 = {}", prev_log_index + 1));
            }
            for index in first..=last {
                let entry =
                    leader.entry(index).ok_or_else(|| format!("node {} holds no entry {index}", from + 1))?;
                entries.push(entry.clone());
            }
        }
        let leader_commit = arguments.number("commit", leader.commit_index())?;
        if leader_commit > leader.commit_index() {
            return Err(format!(
                "commit={leader_commit}: node {} has committed only {}",
                from + 1,
                leader.commit_index()
            ));
        }
        let message = Message {
            from: from as NodeId + 1,
            to: to as NodeId + 1,
            term: leader.term(),
            body: raft_core::MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            },
        };
        self.deliver(message, output);
        Ok(())
    }

    /// In a perturbed run: restart the nodes whose time has come, and perhaps crash one.
    fn perturb_after_command(&mut self, output: &mut Vec<String>) {
        let Some(perturbation) = self.perturbation else { return };
        let mut restarts = Vec::new();
        self.perturbed_crashes.retain_mut(|(position, commands)| {
            *commands -= 1;
            if *commands == 0 {
                restarts.push(*position);
            }
            *commands > 0
        });
        for position in restarts {
            if !self.cluster.hosts[position].is_up() {
                self.cluster.restart(position, self.now());
                output.push(format!("perturbation: node {} restarted", position + 1));
            }
        }
        if self.random.chance(perturbation.crash_ppm) {
            let position = self.random.index(self.nodes());
            if self.cluster.hosts[position].is_up() {
                self.cluster.crash(position, self.now());
                let commands = self.random.between(1, 6) as u32;
                self.perturbed_crashes.push((position, commands));
                output.push(format!("perturbation: node {} crashed", position + 1));
            }
        }
    }

    fn positions(&self, which: &str) -> Result<Vec<usize>, String> {
        if which == "all" {
            return Ok((0..self.nodes()).collect());
        }
        which.split(',').map(|node| self.position(node)).collect()
    }

    fn held(&mut self) -> &mut std::collections::VecDeque<Message> {
        self.cluster.held.as_mut().expect("a scenario holds every message")
    }

    /// Removes (or, for a duplicate, copies) the held messages `filter` names, oldest first.
    fn take_held(&mut self, filter: &Filter, copy: bool) -> Vec<Message> {
        let held = self.held();
        let mut chosen = Vec::new();
        let mut kept = std::collections::VecDeque::with_capacity(held.len());
        for message in held.drain(..) {
            if chosen.len() < filter.count && filter.matches(&message) {
                if copy {
                    kept.push_back(message.clone());
                }
                chosen.push(message);
            } else {
                kept.push_back(message);
            }
        }
        *held = kept;
        chosen
    }

    fn tick(&mut self, positions: &[usize]) {
        let next = self.now() + BASE_TICK_MICROS;
        self.settle();
        self.queue.advance_to(next);
        for &position in positions {
            let times = match self.perturbation {
                Some(perturbation) if self.random.chance(perturbation.jitter_ppm) => self.random.below(3),
                _ => 1,
            };
            for _ in 0..times {
                self.cluster.tick(position, &mut self.queue);
                self.settle();
            }
        }
    }

    fn deliver(&mut self, message: Message, output: &mut Vec<String>) {
        let line = describe::message(&message);
        if self.cuts.contains(&(message.from, message.to)) {
            output.push(format!("{line} (dropped: the link is cut)"));
            return;
        }
        if let Some(perturbation) = self.perturbation {
            if self.random.chance(perturbation.loss_ppm) {
                output.push(format!("{line} (lost: perturbation)"));
                return;
            }
            if self.random.chance(perturbation.delay_ppm) {
                output.push(format!("{line} (delayed: perturbation)"));
                self.held().push_back(message);
                return;
            }
        }
        output.push(line);
        self.cluster.deliver(message, &mut self.queue);
        self.settle();
    }

    fn cut_or_heal(
        &mut self,
        cut: bool,
        arguments: &Arguments<'_>,
        output: &mut Vec<String>,
    ) -> Result<(), String> {
        if !cut && arguments.words.is_empty() {
            self.cuts.clear();
            output.push("every link heals".to_string());
            return Ok(());
        }
        let link = arguments.word(0, "a link (A B, or A->B)")?;
        let (a, b, both) = match link.split_once("->") {
            Some((a, b)) => (a, b, false),
            None => (link, arguments.word(1, "the other end of the link")?, true),
        };
        let (a, b) = (self.position(a)? as NodeId + 1, self.position(b)? as NodeId + 1);
        let mut links = vec![(a, b)];
        if both {
            links.push((b, a));
        }
        for link in links {
            if cut {
                self.cuts.insert(link);
            } else {
                self.cuts.remove(&link);
            }
        }
        Ok(())
    }

    fn submit(&mut self, position: usize, request: Request<Query>, what: String) -> Result<(), String> {
        let host = &self.cluster.hosts[position];
        if !host.is_responsive() {
            return Err(format!("node {} cannot take requests now (down or paused)", position + 1));
        }
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(id, format!("{what} at node {}", position + 1));
        self.cluster.submit(position, id, request, &mut self.queue);
        Ok(())
    }

    /// What changed: roles and terms, answers, a violation.
    fn report(&mut self, output: &mut Vec<String>) {
        let now = self.states();
        for (position, (before, after)) in self.seen.iter().zip(&now).enumerate() {
            if before == after {
                continue;
            }
            let state = |state: &Option<(Role, Term)>| match state {
                Some((role, term)) => format!("{} t{term}", describe::role(*role)),
                None => "down".to_string(),
            };
            output.push(format!("node {}: {} -> {}", position + 1, state(before), state(after)));
        }
        self.seen = now;
        for answered in std::mem::take(&mut self.cluster.answers) {
            let what = self.requests.get(&answered.request).cloned().unwrap_or_default();
            let answer = match answered.answer {
                Answer::Applied { index, .. } => format!("applied at index {index}"),
                Answer::Read(Response::Value(value)) => format!("read {value:?}"),
                Answer::Read(other) => format!("read {other:?}"),
                Answer::Done { index } => format!("done at index {index}"),
                Answer::Started => "started".to_string(),
                Answer::Refused { reason, leader_hint } => match leader_hint {
                    Some(leader) => format!("refused: {reason} (leader {leader})"),
                    None => format!("refused: {reason}"),
                },
                Answer::Unknown { .. } => "outcome unknown".to_string(),
            };
            output.push(format!("request {} ({what}): {answer}", answered.request));
        }
        if let Some((verdict, failure)) = &self.cluster.failure {
            if !self.failure_reported {
                self.failure_reported = true;
                output.push(format!("VIOLATION ({verdict}): {}", failure.violation));
            }
        }
    }

    /// The violation a checker found, if any.
    pub fn violation(&self) -> Option<String> {
        self.cluster.failure.as_ref().map(|(_, failure)| failure.violation.to_string())
    }
}

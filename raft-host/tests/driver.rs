//! The driver's contract, end to end on a small in-memory cluster: what leaves before
//! the disk and what waits for it, how every client request is answered, compaction,
//! bad frames, and the deliberate misbehaviours the simulator must catch.

use raft_core::{Config, DurableState, MessageBody, NodeId, RejectReason, Role};
use raft_host::{
    durable_image, Answer, Driver, DriverConfig, MemorySnapshots, Misbehaviour, Output, Request,
    SnapshotStore, StateMachine, Write,
};
use std::collections::VecDeque;

/// A state machine that keeps every command: enough to see what was applied.
#[derive(Debug, Default, PartialEq)]
struct Journal(Vec<Vec<u8>>);

impl StateMachine for Journal {
    type Query = ();
    type Response = usize;
    fn apply(&mut self, _index: u64, command: &[u8]) -> usize {
        self.0.push(command.to_vec());
        self.0.len()
    }
    fn query(&self, _query: &()) -> usize {
        self.0.len()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.iter().flat_map(|command| [&[command.len() as u8][..], command].concat()).collect()
    }
    /// The time of the latest clock command applied.
    fn log_time_ms(&self) -> u64 {
        self.0.iter().rev().find_map(|command| clock_time(command)).unwrap_or(0)
    }
    fn housekeeping(&self, now_ms: u64) -> Option<Vec<u8>> {
        Some(format!("clock:{now_ms}").into_bytes())
    }
    /// A command `at:` and eight bytes gets the leader's time in them.
    fn stamp(&self, command: &mut [u8], now_ms: u64) {
        if command.len() == 11 && command.starts_with(b"at:") {
            command[3..].copy_from_slice(&now_ms.to_le_bytes());
        }
    }
    fn restore(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        let mut commands = Vec::new();
        while let Some((&length, rest)) = bytes.split_first() {
            if rest.len() < length as usize {
                return Err("truncated".to_string());
            }
            commands.push(rest[..length as usize].to_vec());
            bytes = &rest[length as usize..];
        }
        self.0 = commands;
        Ok(())
    }
}

fn clock_time(command: &[u8]) -> Option<u64> {
    std::str::from_utf8(command.strip_prefix(b"clock:")?).ok()?.parse().ok()
}

type JournalOutput = Output<usize>;

/// Nodes 1..=n with their disks; syncs complete when the test says (or at once).
struct Cluster {
    drivers: Vec<Driver<Journal>>,
    /// What each node wrote, and what of it is durable.
    written: Vec<DurableState>,
    /// Writes not yet synced, per node, with their ids.
    unsynced: Vec<Vec<(u64, Write)>>,
    durable: Vec<DurableState>,
    /// Syncs asked for and not yet completed, per node.
    syncs: Vec<Option<u64>>,
    /// Nodes whose syncs complete at once.
    auto_sync: Vec<bool>,
    network: VecDeque<raft_core::Message>,
    /// Everything each node output, in order.
    seen: Vec<Vec<JournalOutput>>,
    answers: Vec<(NodeId, u64, Answer<usize>)>,
}

fn config(id: NodeId, nodes: u64, configure: &impl Fn(&mut DriverConfig)) -> DriverConfig {
    let mut raft = Config::new(id, (1..=nodes).collect());
    raft.election_timeout_min_ticks = 5;
    raft.election_timeout_max_ticks = 10;
    raft.heartbeat_interval_ticks = 1;
    let mut config = DriverConfig::new(raft);
    // No housekeeping unless a test asks: it would add entries to every count.
    config.housekeeping_interval_ticks = 0;
    configure(&mut config);
    config
}

impl Cluster {
    fn new(nodes: u64, configure: impl Fn(&mut DriverConfig)) -> Cluster {
        let drivers = (1..=nodes)
            .map(|id| {
                Driver::start(
                    config(id, nodes, &configure),
                    DurableState::default(),
                    id,
                    Journal::default(),
                    MemorySnapshots::default(),
                )
                .unwrap()
            })
            .collect();
        let count = nodes as usize;
        Cluster {
            drivers,
            written: vec![DurableState::default(); count],
            unsynced: vec![Vec::new(); count],
            durable: vec![DurableState::default(); count],
            syncs: vec![None; count],
            auto_sync: vec![true; count],
            network: VecDeque::new(),
            seen: vec![Vec::new(); count],
            answers: Vec::new(),
        }
    }

    fn driver(&self, id: NodeId) -> &Driver<Journal> {
        &self.drivers[id as usize - 1]
    }

    /// Performs what node `id` asked for, as an IO layer would.
    fn collect(&mut self, id: NodeId) {
        let position = id as usize - 1;
        let mut outputs = Vec::new();
        self.drivers[position].take_outputs(&mut outputs);
        for output in outputs {
            self.seen[position].push(output.clone());
            match output {
                Output::Write { id: write_id, write } => {
                    durable_image::apply(&mut self.written[position], &write).expect("a sensible write");
                    self.unsynced[position].push((write_id, write));
                }
                Output::Sync { through } => {
                    assert!(self.syncs[position].is_none(), "one sync at a time");
                    self.syncs[position] = Some(through);
                }
                Output::Send(message) => self.network.push_back(message),
                Output::Answer { request, answer } => self.answers.push((id, request, answer)),
                Output::Failed(reason) => panic!("node {id} failed: {reason}"),
                Output::Event(_) => {}
            }
        }
        if self.auto_sync[position] {
            self.complete_sync(id);
        }
    }

    /// Node `id`'s sync under way completes.
    fn complete_sync(&mut self, id: NodeId) {
        let position = id as usize - 1;
        let Some(through) = self.syncs[position].take() else { return };
        for (_, write) in self.unsynced[position].iter().filter(|(write_id, _)| *write_id <= through) {
            durable_image::apply(&mut self.durable[position], write).unwrap();
        }
        self.unsynced[position].retain(|(write_id, _)| *write_id > through);
        self.drivers[position].durable(through);
        self.collect(id);
    }

    fn tick(&mut self, id: NodeId) {
        self.drivers[id as usize - 1].tick();
        self.collect(id);
    }

    fn submit(&mut self, id: NodeId, request: u64, what: Request<()>) {
        self.drivers[id as usize - 1].submit(request, what);
        self.collect(id);
    }

    fn deliver_all(&mut self) {
        let mut bound = 100_000;
        while let Some(message) = self.network.pop_front() {
            bound -= 1;
            assert!(bound > 0, "message storm");
            let to = message.to;
            self.drivers[to as usize - 1].receive(message);
            self.collect(to);
        }
    }

    /// Ticks node 1 until it leads, then settles the cluster.
    fn elect_first(&mut self) {
        for _ in 0..100 {
            if self.driver(1).node().role() == Role::Leader {
                break;
            }
            self.tick(1);
            self.deliver_all();
        }
        assert_eq!(self.driver(1).node().role(), Role::Leader);
        self.deliver_all();
    }

    fn answers_to(&self, request: u64) -> Vec<&Answer<usize>> {
        self.answers.iter().filter(|(_, id, _)| *id == request).map(|(_, _, answer)| answer).collect()
    }
}

fn is_append(output: &JournalOutput) -> bool {
    matches!(output, Output::Send(message) if matches!(message.body, MessageBody::AppendEntries { ref entries, .. } if !entries.is_empty()))
}

fn is_acknowledgement(output: &JournalOutput) -> bool {
    matches!(output, Output::Send(message) if matches!(message.body, MessageBody::AppendEntriesResponse { success: true, .. }))
}

#[test]
fn the_leaders_appends_leave_before_its_own_sync_completes() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    cluster.auto_sync[0] = false;
    cluster.seen[0].clear();
    cluster.submit(1, 1, Request::Write(b"x".to_vec()));
    let seen = &cluster.seen[0];
    let write =
        seen.iter().position(|output| matches!(output, Output::Write { write: Write::Entries(_), .. }));
    let sync = seen.iter().position(|output| matches!(output, Output::Sync { .. }));
    let appends = seen.iter().filter(|output| is_append(output)).count();
    assert!(write.is_some() && sync.is_some(), "{seen:?}");
    assert_eq!(appends, 2, "both followers get the entry while the leader's sync is under way: {seen:?}");
    // The followers acknowledge; a quorum of durable copies (theirs) commits it even
    // before the leader's own sync completes, but the client hears only once the
    // leader's writes are durable (its apply waits for them).
    cluster.deliver_all();
    assert_eq!(cluster.driver(1).node().commit_index(), 2);
    assert!(cluster.answers_to(1).is_empty(), "{:?}", cluster.answers);
    cluster.complete_sync(1);
    assert_eq!(cluster.answers_to(1), vec![&Answer::Applied { index: 2, response: 1 }]);
}

#[test]
fn writes_submitted_together_are_proposed_together_and_answered_each() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    cluster.seen[0].clear();
    // An IO layer that takes the outputs once per round, after a round's requests.
    for request in 1..=32 {
        cluster.drivers[0].submit(request, Request::Write(vec![request as u8]));
    }
    cluster.collect(1);
    let seen = &cluster.seen[0];
    let writes: Vec<usize> = seen
        .iter()
        .filter_map(|output| match output {
            Output::Write { write: Write::Entries(entries), .. } => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(writes, [32], "one write for the round's proposals: {seen:?}");
    assert_eq!(seen.iter().filter(|output| is_append(output)).count(), 2, "one append per follower");
    assert_eq!(seen.iter().filter(|output| matches!(output, Output::Sync { .. })).count(), 1, "one sync");
    cluster.deliver_all();
    for request in 1..=32u64 {
        assert_eq!(
            cluster.answers_to(request),
            vec![&Answer::Applied { index: 1 + request, response: request as usize }],
            "request {request}"
        );
    }
}

#[test]
fn a_queued_write_reaches_the_core_before_a_later_input() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    // A write, then a read, with no outputs taken between: the read is stepped after
    // the write is proposed, so it waits for it.
    cluster.drivers[0].submit(1, Request::Write(b"w".to_vec()));
    cluster.drivers[0].submit(2, Request::Read(()));
    cluster.collect(1);
    cluster.deliver_all();
    assert_eq!(cluster.answers_to(2), vec![&Answer::Read(1)], "the read sees the write");
    // Another kind of input steps what was queued before it.
    cluster.drivers[0].submit(3, Request::Write(b"x".to_vec()));
    cluster.drivers[0].submit(4, Request::LocalRead(()));
    assert_eq!(cluster.driver(1).node().last_index(), 3, "the write was proposed first");
}

#[test]
fn reads_submitted_together_share_one_heartbeat_round() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    cluster.seen[0].clear();
    for request in 1..=16 {
        cluster.drivers[0].submit(request, Request::Read(()));
    }
    cluster.collect(1);
    let heartbeats = cluster.seen[0]
        .iter()
        .filter(|output| matches!(output, Output::Send(message) if matches!(message.body, MessageBody::Heartbeat { .. })))
        .count();
    assert_eq!(heartbeats, 2, "one heartbeat per follower for the 16 reads");
    cluster.deliver_all();
    for request in 1..=16 {
        assert_eq!(cluster.answers_to(request), vec![&Answer::Read(0)], "read {request}");
    }
}

#[test]
fn one_sync_releases_one_acknowledgement_for_the_appends_it_covered() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    cluster.auto_sync[1] = false;
    cluster.seen[1].clear();
    // Three appends reach node 2 one at a time; its disk syncs them all at once.
    for request in 1..=3 {
        cluster.submit(1, request, Request::Write(vec![request as u8]));
        cluster.deliver_all();
    }
    let before = cluster.seen[1].iter().filter(|output| is_acknowledgement(output)).count();
    cluster.complete_sync(2);
    while cluster.syncs[1].is_some() {
        cluster.complete_sync(2);
    }
    let acknowledgements: Vec<u64> = cluster.seen[1]
        .iter()
        .filter_map(|output| match output {
            Output::Send(message) => match message.body {
                MessageBody::AppendEntriesResponse { success: true, index, .. } => Some(index),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(before, 0, "nothing acknowledged before the sync");
    assert_eq!(*acknowledgements.last().expect("acknowledged"), 4, "the last covers all");
    assert!(acknowledgements.len() < 3, "one per sync, not one per append: {acknowledgements:?}");
    cluster.deliver_all();
    assert_eq!(cluster.driver(1).node().commit_index(), 4);
}

#[test]
fn an_acknowledgement_waits_for_the_followers_sync() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    cluster.auto_sync[1] = false;
    cluster.submit(1, 1, Request::Write(b"x".to_vec()));
    cluster.seen[1].clear();
    cluster.deliver_all();
    assert!(
        !cluster.seen[1].iter().any(is_acknowledgement),
        "no acknowledgement before the sync: {:?}",
        cluster.seen[1]
    );
    let follower_durable = cluster.durable[1].entries.len();
    cluster.complete_sync(2);
    assert!(cluster.seen[1].iter().any(is_acknowledgement));
    assert_eq!(cluster.durable[1].entries.len(), follower_durable + 1, "the acknowledged entry is on disk");
}

#[test]
fn a_follower_refuses_with_the_leaders_id_and_reads_are_answered() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    cluster.submit(2, 1, Request::Write(b"x".to_vec()));
    assert_eq!(
        cluster.answers_to(1),
        vec![&Answer::Refused { reason: RejectReason::NotLeader, leader_hint: Some(1) }]
    );
    cluster.submit(1, 2, Request::Write(b"y".to_vec()));
    cluster.deliver_all();
    cluster.submit(1, 3, Request::Read(()));
    cluster.deliver_all();
    assert_eq!(cluster.answers_to(3), vec![&Answer::Read(1)], "a linearizable read after a quorum round");
    cluster.submit(3, 4, Request::LocalRead(()));
    assert_eq!(cluster.answers_to(4).len(), 1, "a local read is answered at once");
}

#[test]
fn a_deposed_leader_answers_its_waiting_writes_unknown() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    // The leader appends a write nobody hears of, then a newer term deposes it.
    cluster.submit(1, 1, Request::Write(b"lost?".to_vec()));
    cluster.network.clear();
    for _ in 0..60 {
        cluster.tick(2);
        cluster.tick(3);
        cluster.network.retain(|message| message.to != 1 && message.from != 1);
        cluster.deliver_all();
        if [2, 3].iter().any(|&id| cluster.driver(id).node().role() == Role::Leader) {
            break;
        }
    }
    let new_leader = [2, 3].into_iter().find(|&id| cluster.driver(id).node().role() == Role::Leader);
    let new_leader = new_leader.expect("a new leader");
    cluster.tick(new_leader);
    cluster.deliver_all();
    assert_ne!(cluster.driver(1).node().role(), Role::Leader);
    assert_eq!(cluster.answers_to(1), vec![&Answer::Unknown { leader_hint: Some(new_leader) }]);
}

#[test]
fn a_request_that_waits_too_long_is_answered_unknown() {
    let mut cluster = Cluster::new(3, |config| config.request_timeout_ticks = 3);
    cluster.elect_first();
    // Cut the leader off (without CheckQuorum's step-down getting there first).
    cluster.submit(1, 1, Request::Write(b"x".to_vec()));
    cluster.network.clear();
    for _ in 0..3 {
        cluster.tick(1);
        cluster.network.clear();
    }
    assert_eq!(cluster.answers_to(1), vec![&Answer::Unknown { leader_hint: Some(1) }]);
    assert_eq!(cluster.driver(1).pending_requests(), 0);
}

#[test]
fn a_transfer_is_started_or_refused_at_once() {
    let mut cluster = Cluster::new(3, |_| {});
    cluster.elect_first();
    cluster.submit(1, 1, Request::TransferLeadership(2));
    assert_eq!(cluster.answers_to(1), vec![&Answer::Started]);
    cluster.deliver_all();
    assert_eq!(cluster.driver(2).node().role(), Role::Leader);
    cluster.submit(1, 2, Request::TransferLeadership(3));
    assert!(matches!(cluster.answers_to(2)[..], [Answer::Refused { reason: RejectReason::NotLeader, .. }]));
}

#[test]
fn the_leader_alone_proposes_housekeeping_stamped_with_log_time_that_never_goes_back() {
    let mut cluster = Cluster::new(3, |config| {
        config.housekeeping_interval_ticks = 4;
        config.tick_millis = 10;
    });
    cluster.elect_first();
    let clocks = |cluster: &Cluster, id: NodeId| -> Vec<u64> {
        cluster.driver(id).machine().0.iter().filter_map(|command| clock_time(command)).collect()
    };
    // 13 ticks: the 13th's heartbeat tells the followers the last commit.
    for _ in 0..13 {
        for id in 1..=3 {
            cluster.tick(id);
        }
        cluster.deliver_all();
    }
    // Every 4 ticks of 10 ms on the leader, counting whole ticks since its election
    // (the first may come at once): 30, 70, 110 ms of log time, applied everywhere.
    assert_eq!(clocks(&cluster, 1), [30, 70, 110]);
    assert_eq!(clocks(&cluster, 2), clocks(&cluster, 1));
    assert_eq!(cluster.driver(2).counters().housekeeping_proposals, 0, "followers propose none");
    assert!(cluster.answers.is_empty(), "nobody waits for housekeeping: {:?}", cluster.answers);
    // A client's write carries the leader's time: 12 whole ticks since its election.
    cluster.submit(1, 1, Request::Write(b"at:\0\0\0\0\0\0\0\0".to_vec()));
    cluster.deliver_all();
    let stamped = cluster.driver(1).machine().0.iter().find(|command| command.starts_with(b"at:")).cloned();
    assert_eq!(stamped.map(|command| u64::from_le_bytes(command[3..].try_into().unwrap())), Some(120));
    cluster.answers.clear();
    // A new leader starts its clock from the log's time, so it never goes back.
    cluster.submit(1, 2, Request::TransferLeadership(2));
    cluster.deliver_all();
    assert_eq!(cluster.driver(2).node().role(), Role::Leader);
    for _ in 0..9 {
        for id in 1..=3 {
            cluster.tick(id);
        }
        cluster.deliver_all();
    }
    // Node 2's clock starts at the 110 ms it had applied: 140, 180.
    let after = clocks(&cluster, 3);
    assert_eq!(after, [30, 70, 110, 140, 180]);
    assert!(after.windows(2).all(|pair| pair[0] < pair[1]), "log time moves forward only: {after:?}");
    assert_eq!(cluster.driver(3).machine().log_time_ms(), *after.last().unwrap());
}

#[test]
fn the_log_is_compacted_once_enough_entries_are_applied() {
    let mut cluster = Cluster::new(1, |config| config.compaction_threshold_entries = 5);
    cluster.elect_first();
    for request in 1..=6 {
        cluster.submit(1, request, Request::Write(vec![request as u8]));
    }
    let snapshot = cluster.durable[0].snapshot.clone().expect("a snapshot on disk");
    assert!(snapshot.meta.last_included_index >= 5);
    let mut store = cluster.drivers[0].snapshots().clone();
    let mut bytes = vec![0; snapshot.size_bytes as usize];
    assert_eq!(store.read_at(snapshot.meta, 0, &mut bytes).unwrap(), bytes.len());
    let mut restored = Journal::default();
    restored.restore(&bytes).unwrap();
    assert_eq!(
        restored.0.len() as u64 + 1,
        snapshot.meta.last_included_index,
        "the no-op, then the commands"
    );
    // A node restarted from that disk starts from the snapshot.
    let image = cluster.durable[0].clone();
    let restarted = Driver::start(config(1, 1, &|_| {}), image, 9, Journal::default(), store).unwrap();
    assert_eq!(restarted.applied_index(), snapshot.meta.last_included_index);
    assert_eq!(restarted.machine().0.len(), restored.0.len());
}

#[test]
fn a_frame_that_does_not_decode_is_counted_and_dropped() {
    let mut cluster = Cluster::new(3, |_| {});
    let driver = &mut cluster.drivers[0];
    assert!(driver.receive_bytes(b"not a message").is_err());
    assert!(driver.receive_bytes(&[0xff; 64]).is_err());
    assert_eq!(driver.counters().bad_frames, 2);
    let heartbeat = raft_core::Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::Heartbeat { commit: 0, read_round: 0, leader_tick: 0 },
    };
    driver.receive_bytes(&raft_core::encode_message(&heartbeat)).unwrap();
    assert_eq!(driver.node().leader(), Some(2));
}

#[test]
fn a_snapshot_the_state_machine_cannot_read_fails_the_start() {
    let mut image = DurableState::default();
    image.hard_state.term = 1;
    image.snapshot = Some(raft_core::Snapshot {
        meta: raft_core::SnapshotMeta { last_included_index: 3, last_included_term: 1 },
        configuration: raft_core::Configuration::voters([1]).unwrap(),
        size_bytes: 1,
    });
    let meta = image.snapshot.as_ref().unwrap().meta;
    let mut store = MemorySnapshots::default();
    store.receive(meta, 0, &[9]).unwrap();
    store.received(meta, 1).unwrap();
    let started = Driver::start(config(1, 1, &|_| {}), image, 1, Journal::default(), store);
    assert!(matches!(started, Err(raft_host::StartError::StateMachine(_))));
}

#[test]
fn misbehaving_drivers_break_the_rules_they_name() {
    // Sending before the sync: the follower acknowledges before its write is durable.
    let mut cluster = Cluster::new(3, |config| config.misbehaviour = Some(Misbehaviour::SendBeforeSync));
    cluster.elect_first();
    cluster.auto_sync[1] = false;
    cluster.submit(1, 1, Request::Write(b"x".to_vec()));
    cluster.seen[1].clear();
    cluster.deliver_all();
    assert!(cluster.seen[1].iter().any(is_acknowledgement));
    assert!(cluster.syncs[1].is_some(), "while its sync is still under way");
    // Ignoring ticks: nobody ever campaigns.
    let mut cluster = Cluster::new(3, |config| config.misbehaviour = Some(Misbehaviour::IgnoreTicks));
    for _ in 0..50 {
        cluster.tick(1);
        cluster.deliver_all();
    }
    assert_eq!(cluster.driver(1).node().role(), Role::Follower);
    // Reporting before the sync: a leader counts its own unsynced entry.
    let mut cluster = Cluster::new(3, |config| config.misbehaviour = Some(Misbehaviour::ReportBeforeSync));
    cluster.elect_first();
    cluster.auto_sync[0] = false;
    cluster.submit(1, 1, Request::Write(b"x".to_vec()));
    let leader = cluster.driver(1).node();
    assert_eq!(leader.persisted_index(), leader.last_index(), "reported durable before any sync completed");
}

//! Crash safety of the real server, checked by the simulator's own checker.
//!
//! Concurrent clients write and read while the test kills the leader and followers
//! with SIGKILL again and again and restarts them, pauses the leader with SIGSTOP, and
//! cuts links with a proxy between the nodes. Every operation is recorded in the
//! simulator's history format and checked for linearizability by `sim`'s checker; at
//! the end every acknowledged write of a key written once must still be readable.
//!
//! `KV_CRASH_SECONDS` sets how long the faults go on (default 25).

mod support;

use kv::{Bytes, Operation, Query, Response};
use kv_server::client::{Client, Value};
use sim::checkers::linearizability::{self, Linearizability};
use sim::history::{ClientOp, Outcome};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Cluster, ClusterOptions};

const CLIENTS: u64 = 4;
const KEYS: u64 = 4;

/// A small deterministic generator: the test's choices need no cryptography.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

struct Recorder {
    start: Instant,
    history: Mutex<Vec<ClientOp>>,
    /// Keys written once, with the value, whose write was acknowledged.
    acknowledged_once: Mutex<Vec<(Bytes, Bytes)>>,
}

impl Recorder {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

fn bulk(value: &Value) -> Option<Option<Bytes>> {
    match value {
        Value::Bulk(bytes) => Some(bytes.as_ref().map(|bytes| Bytes::from(bytes.as_slice()))),
        _ => None,
    }
}

/// What a reply says about the operation, or a panic if it says something impossible.
fn response_of(operation: &Operation, value: &Value) -> Response {
    fn impossible(operation: &Operation, value: &Value) -> ! {
        panic!("{operation:?} answered {value:?}")
    }
    match (operation, value) {
        (Operation::Set { .. }, Value::Simple(ok)) if ok == "OK" => Response::Done,
        (Operation::Delete { .. }, Value::Integer(count)) => Response::Deleted { existed: *count == 1 },
        (Operation::CompareAndSet { .. }, Value::Array(Some(pair))) => match pair.as_slice() {
            [Value::Integer(swapped), previous] => Response::Swapped {
                swapped: *swapped == 1,
                previous: bulk(previous).unwrap_or_else(|| impossible(operation, value)),
            },
            _ => impossible(operation, value),
        },
        (Operation::Read(Query::Get { .. }), value) => {
            Response::Value(bulk(value).unwrap_or_else(|| impossible(operation, value)))
        }
        _ => impossible(operation, value),
    }
}

fn run_client(index: u64, addresses: Vec<String>, stop: Arc<AtomicBool>, recorder: Arc<Recorder>) {
    let mut client = Client::new(addresses);
    client.set_patience(Duration::from_secs(6));
    let mut random = Random(0x9e37_79b9_7f4a_7c15 ^ ((index + 1) * 0x1000_0001));
    let mut known: BTreeMap<Bytes, Option<Bytes>> = BTreeMap::new();
    let mut writes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key: Bytes = format!("k{}", random.below(KEYS)).into();
        writes += 1;
        let value: Bytes = format!("{index}.{writes}").into();
        let choice = random.below(100);
        let operation = match choice {
            0..=29 => Operation::Read(Query::Get { key: key.clone() }),
            30..=54 => Operation::Set { key: key.clone(), value: value.clone() },
            55..=69 => match known.get(&key).cloned().flatten() {
                Some(expected) => Operation::CompareAndSet {
                    key: key.clone(),
                    expected: Some(expected),
                    new: Some(value.clone()),
                },
                None => Operation::Set { key: key.clone(), value: value.clone() },
            },
            70..=79 => Operation::Delete { key: key.clone() },
            _ => Operation::Set { key: format!("once.{index}.{writes}").into(), value: value.clone() },
        };
        let invoke_us = recorder.now_us();
        let result = match &operation {
            Operation::Read(Query::Get { key }) => client.command(&[b"GET", key]),
            Operation::Set { key, value } => client.write(&[b"SET", key, value]),
            Operation::Delete { key } => client.write(&[b"DEL", key]),
            Operation::CompareAndSet { key, expected: Some(expected), new: Some(new) } => {
                client.write(&[b"KV.CAS", key, expected, new])
            }
            _ => unreachable!("the mix above"),
        };
        let return_us = recorder.now_us();
        let is_read = matches!(operation, Operation::Read(_));
        let (outcome, return_us) = match result {
            Ok(Value::Error(error)) => panic!("client {index}: {operation:?} failed: {error}"),
            Ok(reply) => {
                let response = response_of(&operation, &reply);
                match (&operation, &response) {
                    (Operation::Read(Query::Get { key }), Response::Value(value)) => {
                        known.insert(key.clone(), value.clone());
                    }
                    (Operation::Set { key, value }, _) => {
                        known.insert(key.clone(), Some(value.clone()));
                        if key.starts_with(b"once.") {
                            recorder.acknowledged_once.lock().unwrap().push((key.clone(), value.clone()));
                        }
                    }
                    (Operation::Delete { key }, _) => {
                        known.insert(key.clone(), None);
                    }
                    (Operation::CompareAndSet { key, .. }, Response::Swapped { previous, swapped }) => {
                        let now = if *swapped { Some(value.clone()) } else { previous.clone() };
                        known.insert(key.clone(), now);
                    }
                    _ => {}
                }
                (Outcome::Ok(response), Some(return_us))
            }
            // Every attempt was refused before reaching a log: certainly not applied.
            Err(gave_up) if !gave_up.maybe_applied && !is_read => (Outcome::Fail, Some(return_us)),
            Err(_) => {
                known.remove(&key);
                (Outcome::Indeterminate, None)
            }
        };
        recorder.history.lock().unwrap().push(ClientOp {
            client: index + 1,
            operation,
            invoke_us,
            return_us,
            outcome,
        });
    }
}

#[derive(Default, Debug)]
struct Faults {
    leader_kills: u32,
    other_kills: u32,
    whole_cluster_kills: u32,
    pauses: u32,
    link_cuts: u32,
    isolations: u32,
}

/// The leader a majority of running nodes names right now, if any.
fn current_leader(cluster: &Cluster) -> Option<u64> {
    let mut votes = BTreeMap::new();
    for node in cluster.nodes.iter().filter(|node| node.is_running() && !node.paused) {
        let leader = support::raft_info(node.port).and_then(|info| support::info_field(&info, "leader"));
        if let Some(leader) = leader.and_then(|leader| leader.parse::<u64>().ok()) {
            *votes.entry(leader).or_insert(0) += 1;
        }
    }
    votes.into_iter().find(|&(_, count)| count * 2 > cluster.nodes.len()).map(|(leader, _)| leader)
}

fn sleep_ms(random: &mut Random, low: u64, high: u64) {
    std::thread::sleep(Duration::from_millis(low + random.below(high - low)));
}

/// Faults, one after another, for `seconds`; a whole-cluster crash (every node killed at
/// once, as a power cut would) one time in `whole_cluster_every`.
fn inject_faults(cluster: &mut Cluster, seconds: u64, whole_cluster_every: u64) -> Faults {
    let mut faults = Faults::default();
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let end = Instant::now() + Duration::from_secs(seconds);
    let count = cluster.nodes.len() as u64;
    while Instant::now() < end {
        sleep_ms(&mut random, 300, 900);
        if random.below(whole_cluster_every) == 0 {
            for id in 1..=count {
                cluster.node(id).kill();
            }
            faults.whole_cluster_kills += 1;
            sleep_ms(&mut random, 100, 800);
            for id in 1..=count {
                cluster.restart(id);
            }
            continue;
        }
        let leader = current_leader(cluster);
        match (random.below(5), leader) {
            (0, Some(leader)) => {
                cluster.node(leader).kill();
                faults.leader_kills += 1;
                sleep_ms(&mut random, 200, 1500);
                cluster.restart(leader);
            }
            (1, _) => {
                let victim = 1 + random.below(count);
                cluster.node(victim).kill();
                faults.other_kills += 1;
                sleep_ms(&mut random, 100, 1000);
                cluster.restart(victim);
            }
            (2, Some(leader)) => {
                cluster.node(leader).pause();
                faults.pauses += 1;
                sleep_ms(&mut random, 300, 1500);
                cluster.node(leader).resume();
            }
            (3, _) => {
                let a = 1 + random.below(count);
                let b = 1 + (a + random.below(count - 1)) % count;
                cluster.set_link(a, b, true);
                faults.link_cuts += 1;
                sleep_ms(&mut random, 300, 2000);
                cluster.set_link(a, b, false);
            }
            (_, Some(leader)) => {
                for other in (1..=count).filter(|&other| other != leader) {
                    cluster.set_link(leader, other, true);
                }
                faults.isolations += 1;
                sleep_ms(&mut random, 500, 2000);
                cluster.heal_all();
            }
            (_, None) => {}
        }
    }
    faults
}

/// What one crash test run found.
struct Findings {
    faults: Faults,
    history: Vec<ClientOp>,
    verdict: Linearizability,
    /// Keys written once whose acknowledged value was not there at the end.
    lost: Vec<(Bytes, Bytes)>,
    acknowledged_once: usize,
}

impl Findings {
    fn acknowledged_writes(&self) -> usize {
        self.history
            .iter()
            .filter(|op| !matches!(op.operation, Operation::Read(_)) && matches!(op.outcome, Outcome::Ok(_)))
            .count()
    }

    fn summary(&self, seconds: u64) -> String {
        let count =
            |wanted: fn(&Outcome) -> bool| self.history.iter().filter(|op| wanted(&op.outcome)).count();
        let faults = &self.faults;
        format!(
            "{seconds} s of faults: {} leader kills, {} other kills, {} whole-cluster kills, {} leader pauses, \
             {} link cuts, {} leader isolations; {} operations ({} ok, {} failed, {} indeterminate), \
             {} acknowledged writes, {} keys written once and acknowledged, {} lost; history {}",
            faults.leader_kills,
            faults.other_kills,
            faults.whole_cluster_kills,
            faults.pauses,
            faults.link_cuts,
            faults.isolations,
            self.history.len(),
            count(|outcome| matches!(outcome, Outcome::Ok(_))),
            count(|outcome| matches!(outcome, Outcome::Fail)),
            count(|outcome| matches!(outcome, Outcome::Indeterminate)),
            self.acknowledged_writes(),
            self.acknowledged_once,
            self.lost.len(),
            match self.verdict {
                Linearizability::Linearizable { .. } => "linearizable",
                Linearizability::Violated { .. } => "NOT linearizable",
                Linearizability::Unknown { .. } => "undecided",
            },
        )
    }

    /// Writes the history where a person can look at it, and says where.
    fn save(&self, label: &str) -> String {
        let saved =
            std::env::temp_dir().join(format!("kv-crash-{label}-{}.history.jsonl", std::process::id()));
        let mut file = std::fs::File::create(&saved).unwrap();
        sim::history::write_json_lines(&self.history, &mut file).unwrap();
        saved.display().to_string()
    }
}

/// Runs clients against a cluster under faults for `seconds`, then reads everything back.
fn crash_test(label: &str, seconds: u64, whole_cluster_every: u64, extra_arguments: &[&str]) -> Findings {
    // Compaction every 200 entries: snapshots, checkpoints and snapshot installs happen
    // under the kills too.
    let options = ClusterOptions {
        nodes: 3,
        tick_ms: 5,
        proxies: true,
        compact_every: 200,
        extra_arguments: extra_arguments.iter().map(|argument| argument.to_string()).collect(),
    };
    let mut cluster = Cluster::start(label, options);
    cluster.wait_for_leader(Duration::from_secs(20));
    let recorder = Arc::new(Recorder {
        start: Instant::now(),
        history: Mutex::new(Vec::new()),
        acknowledged_once: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let (addresses, stop, recorder) = (cluster.addresses(), stop.clone(), recorder.clone());
            std::thread::spawn(move || run_client(index, addresses, stop, recorder))
        })
        .collect();

    let faults = inject_faults(&mut cluster, seconds, whole_cluster_every);
    cluster.heal_all();
    for id in 1..=cluster.nodes.len() as u64 {
        if !cluster.node(id).is_running() {
            cluster.restart(id);
        }
    }
    cluster.wait_for_leader(Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a client thread panicked");
    }

    // Final linearizable reads of every key, recorded like the rest.
    let mut reader = Client::new(cluster.addresses());
    let mut read_final = |key: &Bytes| -> Option<Bytes> {
        let invoke_us = recorder.now_us();
        let value = reader
            .command(&[b"GET", key])
            .unwrap_or_else(|error| panic!("final read of {key:?}: {}", error.why));
        let value = bulk(&value).unwrap_or_else(|| panic!("final read of {key:?}: {value:?}"));
        let op = ClientOp {
            client: 999,
            operation: Operation::Read(Query::Get { key: key.clone() }),
            invoke_us,
            return_us: Some(recorder.now_us()),
            outcome: Outcome::Ok(Response::Value(value.clone())),
        };
        recorder.history.lock().unwrap().push(op);
        value
    };
    for key in 0..KEYS {
        read_final(&format!("k{key}").into());
    }
    let acknowledged = recorder.acknowledged_once.lock().unwrap().clone();
    let lost: Vec<(Bytes, Bytes)> =
        acknowledged.iter().filter(|(key, value)| read_final(key).as_ref() != Some(value)).cloned().collect();
    let mut history = recorder.history.lock().unwrap().clone();
    history.sort_by_key(|op| op.invoke_us);
    let verdict = linearizability::check(&history);
    Findings { faults, history, verdict, lost, acknowledged_once: acknowledged.len() }
}

#[test]
fn acknowledged_writes_survive_kills_pauses_and_cuts_and_the_history_is_linearizable() {
    let seconds: u64 = std::env::var("KV_CRASH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(25);
    let findings = crash_test("safe", seconds, 8, &[]);
    eprintln!("crash test: {}", findings.summary(seconds));
    if !matches!(findings.verdict, Linearizability::Linearizable { .. }) || !findings.lost.is_empty() {
        let report = findings.verdict.violation().map(|violation| violation.to_string()).unwrap_or_default();
        panic!(
            "lost acknowledged writes: {:?}\n{report}\nhistory saved to {}",
            findings.lost,
            findings.save("safe")
        );
    }
    assert!(
        findings.faults.leader_kills + findings.faults.other_kills > 0,
        "nothing was killed: {:?}",
        findings.faults
    );
    let acknowledged = findings.acknowledged_writes();
    assert!(acknowledged > 100, "too few writes got through to mean anything: {acknowledged}");
}

/// The test of the test: servers that acknowledge writes before their disk has them
/// lose some when the whole cluster is killed, and this harness must see it. A killed
/// process loses only what it had not yet handed to the kernel, so the disk is made
/// slow (20 ms a sync) to hold acknowledged writes in the server for longer.
#[test]
fn a_cluster_that_acknowledges_before_its_fsync_is_caught_losing_writes() {
    let seconds = 8;
    let broken = ["--host-bug", "send-before-sync", "--slow-disk-ms", "20"];
    let findings = crash_test("unsafe", seconds, 3, &broken);
    eprintln!("crash test of a broken server: {}", findings.summary(seconds));
    let caught =
        !findings.lost.is_empty() || !matches!(findings.verdict, Linearizability::Linearizable { .. });
    assert!(caught, "acknowledging before fsync went unnoticed");
}

/// The control for the test above: the same slow disk and the same whole-cluster kills,
/// with a correct server, lose nothing.
#[test]
fn a_correct_cluster_on_the_same_slow_disk_loses_nothing() {
    let seconds = 8;
    let findings = crash_test("slow", seconds, 3, &["--slow-disk-ms", "20"]);
    eprintln!("crash test on a slow disk: {}", findings.summary(seconds));
    assert!(findings.lost.is_empty(), "lost {:?}; history saved to {}", findings.lost, findings.save("slow"));
    assert!(
        matches!(findings.verdict, Linearizability::Linearizable { .. }),
        "{}\nhistory saved to {}",
        findings.verdict.violation().map(|violation| violation.to_string()).unwrap_or_default(),
        findings.save("slow")
    );
}

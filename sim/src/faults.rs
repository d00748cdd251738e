//! Fault profiles and the fault plan a seed draws from one of them.
//!
//! A plan holds every parameter of a run's faults: the network's delay, loss and
//! duplication, storage sync latency and torn writes, each node's clock rate, the
//! workload's pace, and a schedule of timed faults (crashes, pauses, partitions,
//! flapping links) for the safety phase. The plan is drawn once, before the run, from
//! the seed's fault-plan stream, printed in full, and saved in repro files, so a run
//! is a function of (seed, options, plan).

use crate::event_queue::Micros;
use crate::random::{Purpose, Random, PARTS_PER_MILLION};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One tick of a node with a perfect clock, in virtual microseconds.
pub const BASE_TICK_MICROS: Micros = 10_000;

/// How hostile a run's environment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultProfile {
    /// A perfect network and no node faults: small fixed-range delays only.
    None,
    /// Occasional loss, crashes and partitions.
    Light,
    /// Frequent loss, duplication, long delays, crashes with torn writes, partitions
    /// of every shape, pauses and clock skew.
    Heavy,
    /// Each seed draws its own mix: every fault class is on or off at random, with
    /// random weights, so rare combinations get exercised (swarm testing).
    Swarm,
}

impl FaultProfile {
    /// The profile's name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            FaultProfile::None => "none",
            FaultProfile::Light => "light",
            FaultProfile::Heavy => "heavy",
            FaultProfile::Swarm => "swarm",
        }
    }
}

impl fmt::Display for FaultProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultProfile {
    type Err = String;
    fn from_str(text: &str) -> Result<FaultProfile, String> {
        match text {
            "none" => Ok(FaultProfile::None),
            "light" => Ok(FaultProfile::Light),
            "heavy" => Ok(FaultProfile::Heavy),
            "swarm" => Ok(FaultProfile::Swarm),
            other => Err(format!("unknown fault profile {other:?}: expected none, light, heavy or swarm")),
        }
    }
}

/// How messages travel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkParams {
    /// Every message takes at least this long.
    pub delay_min_micros: Micros,
    /// Plus a uniform extra delay up to this much (this is what reorders messages).
    pub delay_jitter_micros: Micros,
    /// The chance that a message is held up much longer (a congested path).
    pub delay_tail_ppm: u32,
    /// The most such a held-up message waits on top of its normal delay.
    pub delay_tail_micros: Micros,
    /// The chance that a message is lost.
    pub loss_ppm: u32,
    /// The chance that a message is delivered twice (each copy with its own delay).
    pub duplicate_ppm: u32,
    /// A duplicate may arrive up to this much later than a normal delay: an old packet
    /// replayed long after the sender moved on, which is what stale-term checks are for.
    pub duplicate_late_micros: Micros,
}

/// How simulated disks behave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageParams {
    /// The shortest time a sync takes.
    pub sync_min_micros: Micros,
    /// The longest time a sync takes.
    pub sync_max_micros: Micros,
    /// The chance that a crash keeps a prefix of the unsynced bytes of each file (cut
    /// at any byte) rather than none of them.
    pub torn_write_ppm: u32,
    /// The chance that a crash also flips a bit in the node's durable files (latent
    /// sector damage): its recovery must refuse the damage or never need the bytes.
    /// Never on more than a minority of the nodes in a run.
    #[serde(default)]
    pub bit_flip_ppm: u32,
    /// The chance that a sync fails: the node must stop rather than go on.
    #[serde(default)]
    pub sync_failure_ppm: u32,
}

/// What the simulated clients do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadParams {
    /// The mean pause between a client's answer and its next operation (uniform in
    /// 1..=2×mean).
    pub think_micros: Micros,
    /// The share of client operations that read (get or list), in parts per million.
    pub read_ppm: u32,
    /// How many keys the clients share (fewer keys, more contention on each).
    pub keys: u32,
    /// How long a client waits for an answer before it retries (with the same
    /// sequence number); it gives up after `GIVE_UP_AFTER_TIMEOUTS` (4) timeouts.
    pub request_timeout_micros: Micros,
    /// The mean gap between leadership transfer requests; 0 for none.
    pub transfer_interval_micros: Micros,
    /// The mean gap between membership changes (remove a voter, add one back); 0 for none.
    #[serde(default)]
    pub membership_interval_micros: Micros,
    /// A host compacts its log once this many applied entries follow its snapshot.
    pub compaction_threshold_entries: u64,
    /// The most entries one AppendEntries carries; 0 for the core's default (64).
    /// Small values split a follower's repair into many steps, each an append that
    /// ends before the follower's own tail.
    #[serde(default)]
    pub max_entries_per_append: u64,
    /// Pipelining connections besides the clients: each sends a write and reads of its
    /// key in one batch through the server's protocol session (`connections`).
    #[serde(default)]
    pub pipelined_connections: u32,
    /// A node gathers the client requests that reach it within this long and hands
    /// them to its driver together, as the server's loop does with what arrives in one
    /// round (writes then share one append per follower, one write and one sync);
    /// 0: each at once.
    #[serde(default)]
    pub request_round_micros: Micros,
    /// The most snapshot bytes one InstallSnapshot carries; 0 for the core's default
    /// (1 MiB, more than any simulated snapshot). Small values send every snapshot in
    /// several chunks, some lost and resumed.
    #[serde(default)]
    pub snapshot_chunk_bytes: u64,
    /// Client sessions unused for this much log time expire (the leaders' clock entries
    /// drop them); 0 never. Short enough that a client waiting out a partition loses its
    /// session and must open a new one.
    #[serde(default)]
    pub session_idle_micros: Micros,
    /// The most client sessions the store keeps (the least recently used go); 0 no bound.
    /// Below the number of clients, active sessions are evicted too.
    #[serde(default)]
    pub max_sessions: u64,
    /// The share of client sets that give their key a time to live (`SET k v PX ms`),
    /// in parts per million; 0 none.
    #[serde(default)]
    pub key_ttl_ppm: u32,
    /// The longest time to live a client sets, in log milliseconds (each is uniform in
    /// 1..=this).
    #[serde(default)]
    pub key_ttl_max_ms: u64,
}

/// Picks a node when the fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The node at this position (0-based).
    Node(usize),
    /// The newest leader if it is up, otherwise the node at `fallback`.
    Leader {
        /// Used when no leader is up.
        fallback: usize,
    },
}

/// A cut of the network. Node positions are 0-based.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partition {
    /// One node can neither send nor receive.
    Isolate {
        /// The node cut off.
        node: Target,
    },
    /// Two sides that cannot talk to each other in either direction.
    Split {
        /// One side; the rest of the cluster is the other.
        side: Vec<usize>,
    },
    /// Messages from `from` to `to` are lost; the other direction works.
    OneWay {
        /// Senders whose messages are lost.
        from: Vec<usize>,
        /// Receivers that do not get them.
        to: Vec<usize>,
    },
}

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The node crashes, losing unsynced writes, and restarts after `down_micros`.
    Crash {
        /// Which node.
        node: Target,
        /// How long it stays down.
        down_micros: Micros,
    },
    /// The node's process stops (no ticks, no message handling) and resumes later,
    /// handling what arrived meanwhile.
    Pause {
        /// Which node.
        node: Target,
        /// How long it stays paused.
        pause_micros: Micros,
    },
    /// The network is cut, replacing any earlier cut, and heals after `heal_after_micros`.
    Partition {
        /// The cut.
        partition: Partition,
        /// How long it lasts.
        heal_after_micros: Micros,
    },
    /// The link between two nodes goes down and up every `period_micros`, for `duration_micros`.
    Flap {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
        /// How long each down or up phase lasts.
        period_micros: Micros,
        /// How long the flapping lasts.
        duration_micros: Micros,
    },
}

/// A fault and when it fires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Virtual time of the fault.
    pub at_micros: Micros,
    /// The fault.
    pub fault: Fault,
}

/// Everything a run's faults depend on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The network model.
    pub network: NetworkParams,
    /// The storage model.
    pub storage: StorageParams,
    /// Each node's tick period in microseconds (clock skew: nodes tick at different rates).
    pub tick_micros: Vec<Micros>,
    /// The client workload.
    pub workload: WorkloadParams,
    /// Node and network faults of the safety phase, by time.
    pub schedule: Vec<ScheduledFault>,
}

/// How often each kind of scheduled fault happens; 0 turns it off.
#[derive(Clone, Copy, Debug)]
struct FaultRates {
    crash_every_micros: Micros,
    crash_down_max_micros: Micros,
    pause_every_micros: Micros,
    pause_max_micros: Micros,
    partition_every_micros: Micros,
    partition_max_micros: Micros,
    flap_every_micros: Micros,
    clock_skew_max_ppm: u32,
}

const SECOND: Micros = 1_000_000;
const MILLISECOND: Micros = 1_000;

impl FaultPlan {
    /// Draws the plan for a run of `nodes` nodes whose safety phase lasts `safety_micros`.
    pub fn draw(seed: u64, profile: FaultProfile, nodes: usize, safety_micros: Micros) -> FaultPlan {
        assert!(nodes > 0);
        let mut random = Random::new(seed, Purpose::FaultPlan);
        let (network, storage, workload, rates) = match profile {
            FaultProfile::None => none_profile(),
            FaultProfile::Light => light_profile(),
            FaultProfile::Heavy => heavy_profile(),
            FaultProfile::Swarm => swarm_profile(&mut random),
        };
        let tick_micros = (0..nodes)
            .map(|_| {
                let skew = random.below(2 * u64::from(rates.clock_skew_max_ppm) + 1);
                // BASE × (1 ± skew), in integer arithmetic.
                BASE_TICK_MICROS * (u64::from(PARTS_PER_MILLION) + skew - u64::from(rates.clock_skew_max_ppm))
                    / u64::from(PARTS_PER_MILLION)
            })
            .collect();
        let schedule = draw_schedule(&mut random, &rates, nodes, safety_micros);
        let mut storage = storage;
        if profile == FaultProfile::Swarm {
            // A stream of their own, so the disk faults leave every other draw as it was.
            let mut disk_faults = Random::new(seed, Purpose::DiskFaults);
            let mut maybe = |max: u64| {
                if disk_faults.chance(SWARM_CLASS_ON_PPM) {
                    disk_faults.between(0, max) as u32
                } else {
                    0
                }
            };
            storage.bit_flip_ppm = maybe(300_000);
            storage.sync_failure_ppm = maybe(2_000);
        }
        // Pipelining connections, from a stream of their own too.
        let mut workload = workload;
        workload.pipelined_connections = match profile {
            FaultProfile::None | FaultProfile::Light => 0,
            FaultProfile::Heavy => 1,
            FaultProfile::Swarm => Random::new(seed, Purpose::Connections).below(3) as u32,
        };
        // Request rounds, from a stream of their own too.
        let mut rounds = Random::new(seed, Purpose::Rounds);
        workload.request_round_micros = match profile {
            FaultProfile::None | FaultProfile::Light => 0,
            FaultProfile::Heavy => rounds.between(0, 2 * MILLISECOND),
            FaultProfile::Swarm if rounds.chance(500_000) => 0,
            FaultProfile::Swarm => rounds.between(0, 5 * MILLISECOND),
        };
        // Snapshot chunks, from a stream of their own.
        let mut chunks = Random::new(seed, Purpose::SnapshotChunks);
        workload.snapshot_chunk_bytes = match profile {
            FaultProfile::None | FaultProfile::Light => 0,
            FaultProfile::Heavy | FaultProfile::Swarm if chunks.chance(500_000) => 0,
            FaultProfile::Heavy | FaultProfile::Swarm => chunks.between(16, 512),
        };
        // Session expiry and bounds, from a stream of their own.
        let mut sessions = Random::new(seed, Purpose::Sessions);
        let expiring = matches!(profile, FaultProfile::Heavy | FaultProfile::Swarm);
        workload.session_idle_micros = match expiring && sessions.chance(500_000) {
            true => sessions.between(50 * MILLISECOND, 2_000 * MILLISECOND),
            false => 0,
        };
        workload.max_sessions = match expiring && sessions.chance(300_000) {
            true => sessions.between(1, 4),
            false => 0,
        };
        // Keys' times to live, from a stream of their own.
        let mut expiry = Random::new(seed, Purpose::KeyExpiry);
        if expiring && expiry.chance(600_000) {
            workload.key_ttl_ppm = expiry.between(50_000, 700_000) as u32;
            workload.key_ttl_max_ms = expiry.between(20, 2_000);
        }
        FaultPlan { network, storage, tick_micros, workload, schedule }
    }
}

fn none_profile() -> (NetworkParams, StorageParams, WorkloadParams, FaultRates) {
    (
        NetworkParams {
            delay_min_micros: 200,
            delay_jitter_micros: 800,
            delay_tail_ppm: 0,
            delay_tail_micros: 0,
            loss_ppm: 0,
            duplicate_ppm: 0,
            duplicate_late_micros: 0,
        },
        StorageParams {
            sync_min_micros: 50,
            sync_max_micros: 200,
            torn_write_ppm: 0,
            bit_flip_ppm: 0,
            sync_failure_ppm: 0,
        },
        standard_workload(),
        FaultRates {
            crash_every_micros: 0,
            crash_down_max_micros: 0,
            pause_every_micros: 0,
            pause_max_micros: 0,
            partition_every_micros: 0,
            partition_max_micros: 0,
            flap_every_micros: 0,
            clock_skew_max_ppm: 0,
        },
    )
}

fn light_profile() -> (NetworkParams, StorageParams, WorkloadParams, FaultRates) {
    (
        NetworkParams {
            delay_min_micros: 200,
            delay_jitter_micros: 3 * MILLISECOND,
            delay_tail_ppm: 1_000,
            delay_tail_micros: 50 * MILLISECOND,
            loss_ppm: 5_000,
            duplicate_ppm: 2_000,
            duplicate_late_micros: 200 * MILLISECOND,
        },
        StorageParams {
            sync_min_micros: 100,
            sync_max_micros: 1_000,
            torn_write_ppm: 100_000,
            bit_flip_ppm: 0,
            sync_failure_ppm: 0,
        },
        standard_workload(),
        FaultRates {
            crash_every_micros: 15 * SECOND,
            crash_down_max_micros: 2 * SECOND,
            pause_every_micros: 20 * SECOND,
            pause_max_micros: 300 * MILLISECOND,
            partition_every_micros: 15 * SECOND,
            partition_max_micros: 3 * SECOND,
            flap_every_micros: 0,
            clock_skew_max_ppm: 10_000,
        },
    )
}

fn heavy_profile() -> (NetworkParams, StorageParams, WorkloadParams, FaultRates) {
    (
        NetworkParams {
            delay_min_micros: 500,
            delay_jitter_micros: 15 * MILLISECOND,
            delay_tail_ppm: 20_000,
            delay_tail_micros: 250 * MILLISECOND,
            loss_ppm: 50_000,
            duplicate_ppm: 20_000,
            duplicate_late_micros: 2 * SECOND,
        },
        StorageParams {
            sync_min_micros: 100,
            sync_max_micros: 3 * MILLISECOND,
            torn_write_ppm: 300_000,
            bit_flip_ppm: 100_000,
            sync_failure_ppm: 300,
        },
        WorkloadParams {
            transfer_interval_micros: 8 * SECOND,
            membership_interval_micros: 6 * SECOND,
            ..standard_workload()
        },
        FaultRates {
            crash_every_micros: 3 * SECOND,
            crash_down_max_micros: 3 * SECOND,
            pause_every_micros: 6 * SECOND,
            pause_max_micros: SECOND,
            partition_every_micros: 4 * SECOND,
            partition_max_micros: 4 * SECOND,
            flap_every_micros: 12 * SECOND,
            clock_skew_max_ppm: 50_000,
        },
    )
}

/// The chance that a swarm seed turns one class of fault on.
const SWARM_CLASS_ON_PPM: u32 = 850_000;

/// Swarm testing: each class of fault is on with probability one half, at a random
/// intensity up to about twice the heavy profile's.
fn swarm_profile(random: &mut Random) -> (NetworkParams, StorageParams, WorkloadParams, FaultRates) {
    // Each class is on with probability SWARM_CLASS_ON_PPM.
    fn maybe(random: &mut Random, max: u64) -> u64 {
        if random.chance(SWARM_CLASS_ON_PPM) {
            random.between(0, max)
        } else {
            0
        }
    }
    // Gaps are drawn from a floor so a swarm seed never asks for a fault every microsecond.
    fn every(random: &mut Random, floor: Micros, max: Micros) -> Micros {
        if random.chance(SWARM_CLASS_ON_PPM) {
            random.between(floor, max)
        } else {
            0
        }
    }
    let network = NetworkParams {
        delay_min_micros: 100 + maybe(random, 2 * MILLISECOND),
        delay_jitter_micros: 100 + maybe(random, 40 * MILLISECOND),
        // Half the time a congested tail as heavy's; else MIT 6.5840's long reordering:
        // up to a fifth of the messages 200 ms to 2.2 s late, so replies and old appends
        // arrive long after the sender moved on.
        delay_tail_ppm: maybe(random, 200_000) as u32,
        delay_tail_micros: if random.chance(500_000) {
            random.between(200 * MILLISECOND, 2_200 * MILLISECOND)
        } else {
            maybe(random, 500 * MILLISECOND)
        },
        loss_ppm: maybe(random, 150_000) as u32,
        duplicate_ppm: maybe(random, 100_000) as u32,
        duplicate_late_micros: maybe(random, 5 * SECOND),
    };
    let sync_min_micros = 10 + maybe(random, MILLISECOND);
    let storage = StorageParams {
        sync_min_micros,
        sync_max_micros: sync_min_micros + maybe(random, 10 * MILLISECOND),
        torn_write_ppm: maybe(random, u64::from(PARTS_PER_MILLION)) as u32,
        // Drawn in `FaultPlan::draw`, from a stream of their own.
        bit_flip_ppm: 0,
        sync_failure_ppm: 0,
    };
    let rates = FaultRates {
        crash_every_micros: every(random, 500 * MILLISECOND, 10 * SECOND),
        crash_down_max_micros: 100 * MILLISECOND + random.below(5 * SECOND),
        pause_every_micros: every(random, SECOND, 10 * SECOND),
        pause_max_micros: 10 * MILLISECOND + random.below(2 * SECOND),
        partition_every_micros: every(random, 500 * MILLISECOND, 10 * SECOND),
        partition_max_micros: 100 * MILLISECOND + random.below(6 * SECOND),
        flap_every_micros: every(random, 2 * SECOND, 20 * SECOND),
        clock_skew_max_ppm: if random.chance(500_000) { random.below(100_000) as u32 } else { 0 },
    };
    let workload = WorkloadParams {
        think_micros: random.between(MILLISECOND, 100 * MILLISECOND),
        read_ppm: random.below(900_001) as u32,
        keys: random.between(1, 16) as u32,
        request_timeout_micros: random.between(100 * MILLISECOND, 2 * SECOND),
        transfer_interval_micros: if random.chance(SWARM_CLASS_ON_PPM) {
            random.between(SECOND, 20 * SECOND)
        } else {
            0
        },
        membership_interval_micros: if random.chance(SWARM_CLASS_ON_PPM) {
            random.between(200 * MILLISECOND, 20 * SECOND)
        } else {
            0
        },
        // Often small, so snapshots reach lagging followers (and their stale tails).
        compaction_threshold_entries: if random.chance(500_000) {
            random.between(8, 64)
        } else {
            random.between(64, 1_024)
        },
        max_entries_per_append: if random.chance(500_000) { random.between(1, 8) } else { 0 },
        // Drawn in `FaultPlan::draw`, from streams of their own.
        pipelined_connections: 0,
        request_round_micros: 0,
        snapshot_chunk_bytes: 0,
        session_idle_micros: 0,
        max_sessions: 0,
        key_ttl_ppm: 0,
        key_ttl_max_ms: 0,
    };
    (network, storage, workload, rates)
}

fn standard_workload() -> WorkloadParams {
    WorkloadParams {
        think_micros: 20 * MILLISECOND,
        read_ppm: 400_000,
        keys: 5,
        request_timeout_micros: 500 * MILLISECOND,
        transfer_interval_micros: 0,
        membership_interval_micros: 0,
        compaction_threshold_entries: 256,
        max_entries_per_append: 0,
        pipelined_connections: 0,
        request_round_micros: 0,
        snapshot_chunk_bytes: 0,
        session_idle_micros: 0,
        max_sessions: 0,
        key_ttl_ppm: 0,
        key_ttl_max_ms: 0,
    }
}

fn draw_schedule(
    random: &mut Random,
    rates: &FaultRates,
    nodes: usize,
    safety_micros: Micros,
) -> Vec<ScheduledFault> {
    let mut schedule = Vec::new();
    let mut add_every = |every: Micros, random: &mut Random, make: &dyn Fn(&mut Random) -> Fault| {
        if every == 0 {
            return;
        }
        let mut at = random.between(0, 2 * every);
        while at < safety_micros {
            schedule.push(ScheduledFault { at_micros: at, fault: make(random) });
            at += random.between(every / 2, every * 3 / 2).max(1);
        }
    };
    let target = move |random: &mut Random| {
        // Half the crashes and pauses go to the leader: that is where the interesting bugs are.
        let node = random.index(nodes);
        if random.chance(500_000) {
            Target::Leader { fallback: node }
        } else {
            Target::Node(node)
        }
    };
    add_every(rates.crash_every_micros, random, &|random| Fault::Crash {
        node: target(random),
        down_micros: random.between(MILLISECOND, rates.crash_down_max_micros.max(MILLISECOND)),
    });
    add_every(rates.pause_every_micros, random, &|random| Fault::Pause {
        node: target(random),
        pause_micros: random.between(MILLISECOND, rates.pause_max_micros.max(MILLISECOND)),
    });
    if nodes > 1 {
        add_every(rates.partition_every_micros, random, &|random| Fault::Partition {
            partition: {
                let isolated = target(random);
                draw_partition(random, nodes, isolated)
            },
            heal_after_micros: random
                .between(10 * MILLISECOND, rates.partition_max_micros.max(10 * MILLISECOND)),
        });
        add_every(rates.flap_every_micros, random, &|random| {
            let a = random.index(nodes);
            let b = (a + 1 + random.index(nodes - 1)) % nodes;
            Fault::Flap {
                a,
                b,
                period_micros: random.between(5 * MILLISECOND, 500 * MILLISECOND),
                duration_micros: random.between(500 * MILLISECOND, 5 * SECOND),
            }
        });
    }
    // Stable sort: faults drawn for the same microsecond keep their drawing order.
    schedule.sort_by_key(|fault| fault.at_micros);
    schedule
}

fn draw_partition(random: &mut Random, nodes: usize, isolated: Target) -> Partition {
    let random_side = |random: &mut Random, size: usize| {
        let mut positions: Vec<usize> = (0..nodes).collect();
        // Fisher-Yates prefix: the first `size` positions become the side.
        for slot in 0..size {
            let pick = slot + random.index(nodes - slot);
            positions.swap(slot, pick);
        }
        let mut side = positions[..size].to_vec();
        side.sort_unstable();
        side
    };
    match random.below(4) {
        0 => Partition::Isolate { node: isolated },
        // A minority cut off from the majority (possibly with the leader in it).
        1 => {
            let size = 1 + random.index(nodes / 2);
            Partition::Split { side: random_side(random, size) }
        }
        // Any two-sided cut.
        2 => {
            let size = 1 + random.index(nodes - 1);
            Partition::Split { side: random_side(random, size) }
        }
        _ => {
            let size = 1 + random.index(nodes - 1);
            let from = random_side(random, size);
            let to = (0..nodes).filter(|node| !from.contains(node)).collect();
            Partition::OneWay { from, to }
        }
    }
}

fn percent(ppm: u32) -> String {
    format!("{}%", f64::from(ppm) / 10_000.0)
}

fn millis(micros: Micros) -> String {
    format!("{}ms", micros as f64 / 1_000.0)
}

/// A plan's schedule is printed in full up to this many faults; a longer one (a long
/// run) is summarised, since the repro file and `--json` keep it whole.
pub const SCHEDULE_PRINTED_IN_FULL: usize = 64;
/// How many faults of a summarised schedule are printed, from the start.
const SCHEDULE_PRINTED_WHEN_SUMMARISED: usize = 16;

impl FaultPlan {
    /// The plan as [`fmt::Display`] prints it, but with a long schedule summarised:
    /// how many faults of each kind, and the first few.
    pub fn summary(&self) -> String {
        if self.schedule.len() <= SCHEDULE_PRINTED_IN_FULL {
            return self.to_string();
        }
        let mut text = String::new();
        self.write_parameters(&mut text).expect("writing to a string");
        let count = |kind: fn(&Fault) -> bool| {
            self.schedule.iter().filter(|scheduled| kind(&scheduled.fault)).count()
        };
        text.push_str(&format!(
            "schedule: {} faults ({} crashes, {} pauses, {} partitions, {} flapping links); the first {}:\n",
            self.schedule.len(),
            count(|fault| matches!(fault, Fault::Crash { .. })),
            count(|fault| matches!(fault, Fault::Pause { .. })),
            count(|fault| matches!(fault, Fault::Partition { .. })),
            count(|fault| matches!(fault, Fault::Flap { .. })),
            SCHEDULE_PRINTED_WHEN_SUMMARISED,
        ));
        for scheduled in self.schedule.iter().take(SCHEDULE_PRINTED_WHEN_SUMMARISED) {
            text.push_str(&format!(
                "  at {}: {}\n",
                millis(scheduled.at_micros),
                describe_fault(&scheduled.fault)
            ));
        }
        text.push_str(&format!(
            "  ... and {} more, the last at {} (the repro file and --json hold them all)\n",
            self.schedule.len() - SCHEDULE_PRINTED_WHEN_SUMMARISED,
            millis(self.schedule.last().map_or(0, |scheduled| scheduled.at_micros))
        ));
        text
    }

    /// Every line of the plan but the schedule.
    fn write_parameters(&self, f: &mut impl fmt::Write) -> fmt::Result {
        let network = &self.network;
        writeln!(
            f,
            "network: delay {}+U(0,{}), {} of messages delayed up to {} more; loss {}, duplication {} (copies up to {} late)",
            millis(network.delay_min_micros),
            millis(network.delay_jitter_micros),
            percent(network.delay_tail_ppm),
            millis(network.delay_tail_micros),
            percent(network.loss_ppm),
            percent(network.duplicate_ppm),
            millis(network.duplicate_late_micros),
        )?;
        writeln!(
            f,
            "storage: sync {}..{}, torn writes on {} of crashes, a bit flipped on {} of crashes, {} of syncs fail",
            millis(self.storage.sync_min_micros),
            millis(self.storage.sync_max_micros),
            percent(self.storage.torn_write_ppm),
            percent(self.storage.bit_flip_ppm),
            percent(self.storage.sync_failure_ppm),
        )?;
        let ticks: Vec<String> = self.tick_micros.iter().map(|micros| millis(*micros)).collect();
        writeln!(f, "clocks: tick period per node {}", ticks.join(" "))?;
        let workload = &self.workload;
        let every = |micros: Micros| {
            if micros == 0 {
                "off".to_string()
            } else {
                format!("every ~{}", millis(micros))
            }
        };
        writeln!(
            f,
            "workload: clients think ~{} between operations, {} reads, {} keys, retry after {}; leadership transfers {}, membership changes {}, compaction after {} entries{}{}{}{}{}{}{}",
            millis(workload.think_micros),
            percent(workload.read_ppm),
            workload.keys,
            millis(workload.request_timeout_micros),
            every(workload.transfer_interval_micros),
            every(workload.membership_interval_micros),
            workload.compaction_threshold_entries,
            match workload.max_entries_per_append {
                0 => String::new(),
                most => format!(", at most {most} entries an append"),
            },
            match workload.pipelined_connections {
                0 => String::new(),
                count => format!("; {count} pipelining connection(s) through the RESP session"),
            },
            match workload.request_round_micros {
                0 => String::new(),
                round => format!("; nodes take requests in rounds of {}", millis(round)),
            },
            match workload.snapshot_chunk_bytes {
                0 => String::new(),
                bytes => format!("; snapshots in chunks of {bytes} bytes"),
            },
            match workload.session_idle_micros {
                0 => String::new(),
                idle => format!("; sessions expire after {} idle", millis(idle)),
            },
            match workload.max_sessions {
                0 => String::new(),
                bound => format!("; at most {bound} sessions"),
            },
            match workload.key_ttl_ppm {
                0 => String::new(),
                share => format!(
                    "; {}% of sets with a time to live of up to {} ms",
                    share / 10_000,
                    workload.key_ttl_max_ms
                ),
            },
        )
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_parameters(f)?;
        writeln!(f, "schedule: {} faults", self.schedule.len())?;
        for scheduled in &self.schedule {
            writeln!(f, "  at {}: {}", millis(scheduled.at_micros), describe_fault(&scheduled.fault))?;
        }
        Ok(())
    }
}

fn describe_target(target: Target) -> String {
    match target {
        Target::Node(position) => format!("node {}", position + 1),
        Target::Leader { fallback } => format!("the leader (else node {})", fallback + 1),
    }
}

fn describe_nodes(positions: &[usize]) -> String {
    let ids: Vec<String> = positions.iter().map(|position| (position + 1).to_string()).collect();
    format!("{{{}}}", ids.join(","))
}

fn describe_fault(fault: &Fault) -> String {
    match fault {
        Fault::Crash { node, down_micros } => {
            format!("crash {} for {}", describe_target(*node), millis(*down_micros))
        }
        Fault::Pause { node, pause_micros } => {
            format!("pause {} for {}", describe_target(*node), millis(*pause_micros))
        }
        Fault::Partition { partition, heal_after_micros } => {
            let cut = match partition {
                Partition::Isolate { node } => format!("isolate {}", describe_target(*node)),
                Partition::Split { side } => format!("split off {}", describe_nodes(side)),
                Partition::OneWay { from, to } => {
                    format!("drop messages from {} to {}", describe_nodes(from), describe_nodes(to))
                }
            };
            format!("{cut} for {}", millis(*heal_after_micros))
        }
        Fault::Flap { a, b, period_micros, duration_micros } => format!(
            "flap link {}-{} every {} for {}",
            a + 1,
            b + 1,
            millis(*period_micros),
            millis(*duration_micros)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_plan() {
        for profile in [FaultProfile::None, FaultProfile::Light, FaultProfile::Heavy, FaultProfile::Swarm] {
            assert_eq!(
                FaultPlan::draw(9, profile, 5, 60 * SECOND),
                FaultPlan::draw(9, profile, 5, 60 * SECOND)
            );
        }
    }

    #[test]
    fn heavy_plans_carry_every_kind_of_fault_and_none_plans_carry_none() {
        let heavy = FaultPlan::draw(1, FaultProfile::Heavy, 5, 60 * SECOND);
        let has = |kind: fn(&Fault) -> bool| heavy.schedule.iter().any(|scheduled| kind(&scheduled.fault));
        assert!(has(|fault| matches!(fault, Fault::Crash { .. })));
        assert!(has(|fault| matches!(fault, Fault::Pause { .. })));
        assert!(has(|fault| matches!(fault, Fault::Partition { .. })));
        assert!(has(|fault| matches!(fault, Fault::Flap { .. })));
        assert!(heavy.schedule.windows(2).all(|pair| pair[0].at_micros <= pair[1].at_micros));
        assert!(heavy.schedule.iter().all(|scheduled| scheduled.at_micros < 60 * SECOND));
        let none = FaultPlan::draw(1, FaultProfile::None, 5, 60 * SECOND);
        assert!(none.schedule.is_empty());
        assert_eq!(none.network.loss_ppm, 0);
        assert!(none.tick_micros.iter().all(|tick| *tick == BASE_TICK_MICROS));
    }

    #[test]
    fn long_schedules_are_summarised_and_short_ones_printed_in_full() {
        let short = FaultPlan::draw(1, FaultProfile::Heavy, 5, 60 * SECOND);
        assert!(short.schedule.len() <= SCHEDULE_PRINTED_IN_FULL);
        assert_eq!(short.summary(), short.to_string());
        let long = FaultPlan::draw(1, FaultProfile::Heavy, 5, 3_600 * SECOND);
        let summary = long.summary();
        assert!(long.schedule.len() > 1_000, "{}", long.schedule.len());
        assert!(summary.lines().count() < 30, "{summary}");
        assert!(summary.contains(&format!("schedule: {} faults (", long.schedule.len())), "{summary}");
        assert!(summary.contains("the repro file and --json hold them all"), "{summary}");
        assert!(long.to_string().lines().count() > long.schedule.len(), "Display stays complete");
    }

    #[test]
    fn swarm_seeds_draw_different_mixes() {
        let plans: Vec<FaultPlan> =
            (0..20).map(|seed| FaultPlan::draw(seed, FaultProfile::Swarm, 3, 10 * SECOND)).collect();
        let lossy = plans.iter().filter(|plan| plan.network.loss_ppm > 0).count();
        assert!(lossy > 0 && lossy < plans.len(), "loss should be on for some seeds and off for others");
    }

    #[test]
    fn partitions_name_real_nodes_and_both_sides_are_non_empty() {
        for seed in 0..50 {
            let plan = FaultPlan::draw(seed, FaultProfile::Heavy, 3, 30 * SECOND);
            for scheduled in &plan.schedule {
                match &scheduled.fault {
                    Fault::Partition { partition: Partition::Split { side }, .. } => {
                        assert!(!side.is_empty() && side.len() < 3 && side.iter().all(|node| *node < 3));
                    }
                    Fault::Partition { partition: Partition::OneWay { from, to }, .. } => {
                        assert!(!from.is_empty() && !to.is_empty());
                    }
                    Fault::Flap { a, b, .. } => assert!(a != b && *a < 3 && *b < 3),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn profiles_parse_by_name_and_refuse_others() {
        assert_eq!("swarm".parse::<FaultProfile>(), Ok(FaultProfile::Swarm));
        assert!("extreme".parse::<FaultProfile>().unwrap_err().contains("none, light, heavy or swarm"));
    }
}

//! What `RAFT.INFO` and `INFO` report: the node's Raft state and the server's counters.

use super::Shared;
use crate::machine::ServerMachine;
use kv::resp::InfoSections;
use raft_core::{LogIndex, NodeId, Role};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// A peer as the node sees it.
#[derive(Clone, Debug)]
pub(crate) struct PeerStatus {
    /// Its id.
    pub(crate) id: NodeId,
    /// Where it listens, if known.
    pub(crate) address: Option<String>,
    /// On a leader: how far its log is known to match.
    pub(crate) match_index: Option<LogIndex>,
    /// Whether it is a voter.
    pub(crate) voter: bool,
    /// Whether it is a learner (gets the log, never votes).
    pub(crate) learner: bool,
    /// Whether it is a learner the leader promotes once it has caught up.
    pub(crate) catching_up: bool,
}

/// The node's state at one instant.
#[derive(Clone, Debug)]
pub(crate) struct NodeStatus {
    /// This node.
    pub(crate) id: NodeId,
    /// Its role.
    pub(crate) role: Role,
    /// Its term.
    pub(crate) term: u64,
    /// The leader it knows of.
    pub(crate) leader: Option<NodeId>,
    /// The commit index.
    pub(crate) commit_index: LogIndex,
    /// The applied index.
    pub(crate) applied_index: LogIndex,
    /// Where the snapshot ends.
    pub(crate) snapshot_index: LogIndex,
    /// The last log index.
    pub(crate) last_index: LogIndex,
    /// Every node it knows of, voters and addresses.
    pub(crate) peers: Vec<PeerStatus>,
    /// The voters (the incoming ones during a joint change).
    pub(crate) voters: Vec<NodeId>,
    /// During a joint change, the voters being left (empty otherwise).
    pub(crate) leaving: Vec<NodeId>,
    /// Keys in the store, those with a time to live, and how many ran out (since this
    /// node started).
    pub(crate) keys: usize,
    pub(crate) expires: usize,
    /// The store's data size (`KvStore::used_bytes`).
    pub(crate) used_bytes: u64,
    pub(crate) expired_keys: u64,
    /// Client sessions in the store, and how many have expired in all.
    pub(crate) sessions: usize,
    pub(crate) sessions_expired: u64,
    /// The session policy of the latest clock entry applied, and its log time.
    pub(crate) session_policy: kv::session::SessionPolicy,
    pub(crate) log_time_ms: u64,
    /// Client requests waiting.
    pub(crate) pending_requests: usize,
    /// Writes issued to the disk and made durable.
    pub(crate) writes_issued: u64,
    /// Writes the disk reported durable.
    pub(crate) writes_durable: u64,
}

impl NodeStatus {
    /// The node's status, read in its loop between rounds; `None` once it has stopped.
    pub(crate) async fn read(shared: &Shared) -> Option<NodeStatus> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let addresses = shared.node.addresses();
        let look = Box::new(move |driver: &raft_runtime::NodeDriver<ServerMachine>| {
            let _ = sender.send(NodeStatus::of(driver, addresses));
        });
        if !shared.node.inspect_with(look).await {
            return None;
        }
        receiver.await.ok()
    }

    /// The status of `driver`'s node.
    pub(crate) fn of(
        driver: &raft_runtime::NodeDriver<ServerMachine>,
        addresses: BTreeMap<NodeId, String>,
    ) -> NodeStatus {
        let node = driver.node();
        let configuration = node.configuration();
        let mut ids: Vec<NodeId> =
            addresses.keys().copied().chain(configuration.members().iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        NodeStatus {
            id: node.id(),
            role: node.role(),
            term: node.term(),
            leader: node.leader(),
            commit_index: node.commit_index(),
            applied_index: driver.applied_index(),
            snapshot_index: node.snapshot_meta().last_included_index,
            last_index: node.last_index(),
            peers: ids
                .into_iter()
                .map(|id| PeerStatus {
                    id,
                    address: addresses.get(&id).cloned(),
                    match_index: node.match_index(id),
                    voter: configuration.is_voter(id),
                    learner: configuration.is_learner(id),
                    catching_up: configuration.catching_up().contains(&id),
                })
                .collect(),
            voters: configuration.incoming_voters().to_vec(),
            leaving: configuration.outgoing_voters().to_vec(),
            keys: driver.machine().store().len(),
            expires: driver.machine().store().keys_with_deadline(),
            used_bytes: driver.machine().store().used_bytes(),
            expired_keys: driver.machine().store().expired_keys(),
            sessions: driver.machine().store().sessions().len(),
            sessions_expired: driver.machine().store().sessions().expired_total(),
            session_policy: driver.machine().store().sessions().policy(),
            log_time_ms: driver.machine().store().log_time_ms(),
            pending_requests: driver.pending_requests(),
            writes_issued: driver.issued(),
            writes_durable: driver.durable_through(),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "precandidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

/// `RAFT.INFO`: `name:value` lines.
pub(crate) fn raft_info_text(status: &NodeStatus) -> String {
    let mut text = String::new();
    let mut line = |name: &str, value: &dyn std::fmt::Display| {
        let _ = write!(text, "{name}:{value}\r\n");
    };
    line("id", &status.id);
    line("role", &role_name(status.role));
    line("term", &status.term);
    line("leader", &status.leader.map_or("none".to_string(), |leader| leader.to_string()));
    let leader_address =
        status.peers.iter().find(|peer| Some(peer.id) == status.leader).and_then(|peer| peer.address.clone());
    line("leader_address", &leader_address.unwrap_or_else(|| "none".into()));
    line("commit_index", &status.commit_index);
    line("applied_index", &status.applied_index);
    line("snapshot_index", &status.snapshot_index);
    line("last_index", &status.last_index);
    line("log_entries", &(status.last_index - status.snapshot_index));
    // The voters of the configuration in force (the incoming ones during a joint change).
    let voters: Vec<String> = status.voters.iter().map(NodeId::to_string).collect();
    line("voters", &voters.join(","));
    let learners: Vec<String> =
        status.peers.iter().filter(|peer| peer.learner).map(|peer| peer.id.to_string()).collect();
    line("learners", &learners.join(","));
    let catching_up: Vec<String> =
        status.peers.iter().filter(|peer| peer.catching_up).map(|peer| peer.id.to_string()).collect();
    line("catching_up", &catching_up.join(","));
    // `joint:1` while a change of several voters is under way: decisions then need a
    // majority of `voters` and of `leaving_voters` both.
    line("joint", &u8::from(!status.leaving.is_empty()));
    let leaving: Vec<String> = status.leaving.iter().map(NodeId::to_string).collect();
    line("leaving_voters", &leaving.join(","));
    for peer in &status.peers {
        let match_index = peer.match_index.map_or("unknown".to_string(), |index| index.to_string());
        // On the leader, how many entries the member's log is known to lack.
        let lag = peer
            .match_index
            .map_or("unknown".to_string(), |index| status.last_index.saturating_sub(index).to_string());
        let address = peer.address.clone().unwrap_or_else(|| "unknown".into());
        line(
            &format!("node{}", peer.id),
            &format!(
                "address={address},voter={},learner={},catching_up={},match_index={match_index},lag={lag}",
                u8::from(peer.voter),
                u8::from(peer.learner),
                u8::from(peer.catching_up)
            ),
        );
    }
    line("pending_requests", &status.pending_requests);
    line("writes_issued", &status.writes_issued);
    line("writes_durable", &status.writes_durable);
    text
}

/// `INFO [section ...]`: Redis's sections with Redis's field names for what this server
/// has, then its own (`# Sessions`, `# Raft`).
pub(crate) fn info_text(status: &NodeStatus, shared: &Shared, sections: InfoSections) -> String {
    let (stats, links) = (&shared.stats, shared.node.link_counters());
    let mut text = String::new();
    let mut section = |name: &str, selected: InfoSections, fields: &dyn Fn(&mut String)| {
        if sections.contains(selected) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            let _ = write!(text, "# {name}\r\n");
            fields(&mut text);
        }
    };
    section("Server", InfoSections::SERVER, &|text| {
        let uptime = shared.started.elapsed().as_secs();
        let _ = write!(
            text,
            "redis_version:7.0.0\r\nkv_server_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            shared.port,
            uptime / 86_400
        );
    });
    section("Clients", InfoSections::CLIENTS, &|text| {
        let _ = write!(
            text,
            "connected_clients:{}\r\nmaxclients:{}\r\n",
            stats.clients.load(Ordering::Relaxed),
            shared.max_clients.load(Ordering::Relaxed)
        );
    });
    section("Memory", InfoSections::MEMORY, &|text| {
        // No allocator counter: used_memory is the resident set, as the OS sees it;
        // used_memory_dataset is the store's own measure, which maxmemory bounds.
        let (resident, peak) = process_memory();
        let _ = write!(
            text,
            "used_memory:{resident}\r\nused_memory_rss:{resident}\r\nused_memory_peak:{peak}\r\nused_memory_dataset:{}\r\nmaxmemory:{}\r\nmaxmemory_policy:noeviction\r\n",
            status.used_bytes,
            shared.max_memory.load(Ordering::Relaxed)
        );
    });
    section("Stats", InfoSections::STATS, &|text| {
        let _ = write!(
            text,
            "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\nrejected_connections:{}\r\nidle_clients_closed:{}\r\nclient_protocol_errors:{}\r\ntls_handshakes_failed:{}\r\npeer_frames_rejected:{}\r\npeer_connections_refused:{}\r\nsends_dropped:{}\r\nexpired_keys:{}\r\n",
            stats.total_connections_received.load(Ordering::Relaxed),
            stats.total_commands_processed.load(Ordering::Relaxed),
            operations_per_second(stats),
            stats.rejected_connections.load(Ordering::Relaxed),
            stats.idle_clients_closed.load(Ordering::Relaxed),
            stats.client_protocol_errors.load(Ordering::Relaxed),
            stats.tls_handshakes_failed.load(Ordering::Relaxed),
            links.frames_rejected.load(Ordering::Relaxed),
            links.connections_refused.load(Ordering::Relaxed),
            links.sends_dropped.load(Ordering::Relaxed),
            status.expired_keys,
        );
    });
    section("Replication", InfoSections::REPLICATION, &|text| {
        let role = if status.role == Role::Leader { "master" } else { "slave" };
        let _ = write!(text, "role:{role}\r\n");
    });
    section("CPU", InfoSections::CPU, &|text| {
        let (system, user) = process_cpu_seconds();
        let _ = write!(text, "used_cpu_sys:{system:.6}\r\nused_cpu_user:{user:.6}\r\n");
    });
    // Exactly-once sessions: how many the store holds, the policy the log last set
    // (0: no expiry / no bound), and the log's time.
    section("Sessions", InfoSections::SESSIONS, &|text| {
        let policy = status.session_policy;
        let _ = write!(
            text,
            "sessions:{}\r\nsessions_expired:{}\r\nsession_idle_timeout_ms:{}\r\nmax_sessions:{}\r\nlog_time_ms:{}\r\n",
            status.sessions, status.sessions_expired, policy.idle_timeout_ms, policy.max_sessions, status.log_time_ms
        );
    });
    section("Keyspace", InfoSections::KEYSPACE, &|text| {
        let _ = write!(text, "db0:keys={},expires={},avg_ttl=0\r\n", status.keys, status.expires);
    });
    section("Raft", InfoSections::RAFT, &|text| text.push_str(&raft_info_text(status)));
    text
}

/// Commands a second over the sampled window (about the last 1.6 s).
fn operations_per_second(stats: &super::Stats) -> u64 {
    let samples = stats.command_samples.lock().expect("not poisoned");
    match (samples.front(), samples.back()) {
        (Some((first_time, first)), Some((last_time, last))) if last_time > first_time => {
            ((last - first) as f64 / (*last_time - *first_time).as_secs_f64()).round() as u64
        }
        _ => 0,
    }
}

/// This process's resident and peak resident memory in bytes (Linux's
/// `/proc/self/status`; 0 where it is not there).
fn process_memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// This process's system and user CPU time in seconds (Linux's `/proc/self/stat`, in
/// clock ticks of 1/100 s; 0 where it is not there).
fn process_cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces, so split after its ')').
    let fields: Vec<&str> =
        stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks =
        |position: usize| fields.get(position).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name (state is 0).
    (ticks(12) as f64 / 100.0, ticks(11) as f64 / 100.0)
}

//! The server process: the Redis front end on a `raft_runtime` node.
//!
//! ```text
//!  clients (RESP) ──> connection: RespSession ──┐    raft_runtime::Node
//!                                               ├──> node loop: Driver ──> disk thread, peer links
//!  peers (frames) ──> one shared port ──────────┘
//! ```
//!
//! The node (its loop, disk thread and links) is `raft_runtime`'s, the one any state
//! machine runs on; this module adds the shared port, the client connections, and
//! `INFO`.

mod connection;
mod listener;
mod metrics;
mod status;

pub use raft_runtime::transport;

use crate::machine::{self, ServerMachine, ServerResponse};
use kv::resp::SessionRequestId;
use raft_core::NodeId;
use raft_host::Answer;
use raft_runtime::{AddressBook, Handle, Node, NodeConfig, PeerListener};
use raft_storage::StorageOptions;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How a server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// This node's id.
    pub id: NodeId,
    /// Every member (this node included) and its address.
    pub members: BTreeMap<NodeId, String>,
    /// Where the node's state lives.
    pub data_dir: PathBuf,
    /// Where to listen, if not at this node's member address (e.g. `0.0.0.0:8001`).
    pub listen: Option<String>,
    /// One tick of the Raft clock: heartbeats every 10 ticks, elections after 100 to 200.
    pub tick: Duration,
    /// Snapshot and compact the log after this many applied entries.
    pub compaction_entries: u64,
    /// How long client sessions live and how many there may be; this node's clock
    /// entries carry it while it leads.
    pub sessions: kv::session::SessionPolicy,
    /// Storage settings.
    pub storage: StorageOptions,
    /// A rule of the driver broken on purpose, to see the crash test catch it. Never
    /// set outside tests of the testers.
    pub misbehaviour: Option<raft_host::Misbehaviour>,
    /// Extra time every sync takes, as on a slow disk (tests only).
    pub slow_sync: Duration,
    /// Join a running cluster as a learner (`--join`).
    pub joining: bool,
    /// The largest value (any bulk string) a client may send (`--max-value-bytes`).
    pub max_value_bytes: usize,
    /// Client connections served at once (`--max-clients`, Redis's `maxclients`).
    pub max_clients: u64,
    /// Seconds a client may stay idle before it is closed; 0 never (`--client-idle-timeout`,
    /// Redis's `timeout`).
    pub client_idle_timeout_secs: u64,
    /// The passwords clients authenticate with (`--requirepass`, `--admin-password`).
    pub access: kv::resp::access::Access,
    /// Refuse writes that add data once the data passes this many bytes; 0 no bound.
    pub max_memory: u64,
    /// Serve Prometheus metrics here (`GET /metrics`), if given.
    pub metrics_addr: Option<String>,
    /// Refuse to listen beyond loopback without a password and a cluster secret
    /// (Redis's protected mode).
    pub protected_mode: bool,
    /// The secret peers prove to each other (`--cluster-secret`); `None`: none.
    pub cluster_secret: Option<Vec<u8>>,
    /// TLS for clients and peers on the node's port (`--tls-cert/--tls-key/--tls-ca`).
    pub tls: Option<raft_runtime::Tls>,
}

/// Where the node loop sends what a connection asked for: the connection's channel, and
/// the connection's own number for the request.
pub(crate) struct ReplyTo {
    pub(crate) channel: mpsc::UnboundedSender<(SessionRequestId, NodeReply)>,
    pub(crate) id: SessionRequestId,
}

impl ReplyTo {
    /// Sends `reply`; the connection may have gone, and then it goes nowhere.
    pub(crate) fn send(self, reply: NodeReply) {
        let _ = self.channel.send((self.id, reply));
    }
}

/// What the node loop answers a connection.
pub(crate) enum NodeReply {
    /// The driver's answer to a request.
    Answer(Answer<ServerResponse>),
    /// The node's state.
    Status(Box<status::NodeStatus>),
}

/// Counters the connections keep.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Client connections open (from their first byte to their close).
    pub(crate) clients: AtomicUsize,
    /// Connections accepted that have not sent their first byte yet.
    pub(crate) silent_connections: AtomicUsize,
    /// Client connections served since the start.
    pub(crate) total_connections_received: AtomicU64,
    /// Client connections refused for `maxclients`.
    pub(crate) rejected_connections: AtomicU64,
    /// Clients closed for staying idle past `timeout`.
    pub(crate) idle_clients_closed: AtomicU64,
    /// Client commands received since the start.
    pub(crate) total_commands_processed: AtomicU64,
    /// Client writes and reads handed to the node, and answers that sent the client to
    /// the leader (`MOVED`) or asked it to retry.
    pub(crate) writes_submitted: AtomicU64,
    pub(crate) reads_submitted: AtomicU64,
    pub(crate) redirects: AtomicU64,
    /// The command count sampled every 100 ms over the last 1.6 s, for
    /// `instantaneous_ops_per_sec` (oldest first).
    pub(crate) command_samples: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>,
    /// Client connections closed for breaking RESP.
    pub(crate) client_protocol_errors: AtomicU64,
    /// Connections closed because they did not complete TLS (a plain-text client on a
    /// TLS port, a certificate the client refused, a stall).
    pub(crate) tls_handshakes_failed: AtomicU64,
}

/// What the connections share.
pub(crate) struct Shared {
    /// The port this node listens on.
    pub(crate) port: u16,
    /// The node.
    pub(crate) node: Handle<ServerMachine>,
    /// Counters.
    pub(crate) stats: Stats,
    /// What a client's commands must keep.
    pub(crate) limits: kv::resp::Limits,
    /// The passwords clients authenticate with.
    pub(crate) access: kv::resp::access::Access,
    /// `maxclients`: client connections served at once (`CONFIG SET` changes it).
    pub(crate) max_clients: AtomicU64,
    /// `timeout`: seconds a client may stay idle before it is closed; 0 never.
    pub(crate) idle_timeout_secs: AtomicU64,
    /// `maxmemory`: past it, writes that add data are refused; 0 no bound.
    pub(crate) max_memory: AtomicU64,
    /// The store's data size (`KvStore::used_bytes`) as last sampled (every 100 ms).
    pub(crate) used_bytes: AtomicU64,
    /// When the server started, for `uptime_in_seconds`.
    pub(crate) started: std::time::Instant,
}

impl Shared {
    /// The settings as they are now, for `CONFIG GET`.
    pub(crate) fn settings(&self) -> kv::resp::Settings {
        kv::resp::Settings {
            max_clients: self.max_clients.load(Ordering::Relaxed),
            idle_timeout_secs: self.idle_timeout_secs.load(Ordering::Relaxed),
            max_value_bytes: self.limits.max_bulk_bytes as u64,
            max_memory: self.max_memory.load(Ordering::Relaxed),
        }
    }

    /// `CONFIG SET`: takes effect for the next connection accepted (`maxclients`) and
    /// every connection's next wait for input (`timeout`).
    pub(crate) fn change(&self, setting: kv::resp::Setting) {
        match setting {
            kv::resp::Setting::MaxClients(count) => self.max_clients.store(count, Ordering::Relaxed),
            kv::resp::Setting::IdleTimeoutSecs(secs) => self.idle_timeout_secs.store(secs, Ordering::Relaxed),
            kv::resp::Setting::MaxMemory(bytes) => self.max_memory.store(bytes, Ordering::Relaxed),
        }
    }

    /// Whether the data is past `maxmemory` (as last sampled).
    pub(crate) fn memory_full(&self) -> bool {
        let bound = self.max_memory.load(Ordering::Relaxed);
        bound > 0 && self.used_bytes.load(Ordering::Relaxed) > bound
    }
}

/// Samples the command count every 100 ms, keeping the last 16, as Redis does for
/// `instantaneous_ops_per_sec`, and the data's size, for `maxmemory`.
async fn sample_commands(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        ticks.tick().await;
        let count = shared.stats.total_commands_processed.load(Ordering::Relaxed);
        {
            let mut samples = shared.stats.command_samples.lock().expect("not poisoned");
            samples.push_back((std::time::Instant::now(), count));
            if samples.len() > 16 {
                samples.pop_front();
            }
        }
        // The data's size, for maxmemory: read in the node loop, between rounds, and
        // only while there is a bound to hold it to.
        if shared.max_memory.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let look = Box::new(move |driver: &raft_runtime::NodeDriver<ServerMachine>| {
            let _ = sender.send(driver.machine().store().used_bytes());
        });
        if shared.node.inspect_with(look).await {
            if let Ok(used) = receiver.await {
                shared.used_bytes.store(used, Ordering::Relaxed);
            }
        }
    }
}

/// The addresses the log recorded, for the runtime to dial.
fn recorded_addresses(machine: &ServerMachine) -> (u64, &BTreeMap<NodeId, String>) {
    (machine.addresses_version(), machine.addresses())
}

/// Why a server stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// It would not start: bad options, a damaged or foreign data directory, a port in use.
    Refused(String),
    /// It had to stop: its disk failed, or the driver gave up.
    Failed(String),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Refused(why) | ServerError::Failed(why) => f.write_str(why),
        }
    }
}

/// Runs a server until Ctrl-C or SIGTERM (`Ok`), or until it cannot go on. The port is
/// bound first (a port in use is refused before the data directory is touched), then
/// storage opened: a damaged data directory is refused before any connection is served.
pub async fn run(options: ServerOptions) -> Result<(), ServerError> {
    let refused = ServerError::Refused;
    let Some(own_address) = options.members.get(&options.id).cloned() else {
        return Err(refused(format!(
            "node {} is not among the --node members; list every member, this one included",
            options.id
        )));
    };
    let listen = options.listen.clone().unwrap_or(own_address);
    if options.protected_mode && !is_loopback(&listen) {
        if options.access.default_password.is_none() {
            return Err(refused(format!(
                "protected mode: refusing to listen on {listen}, beyond loopback, with no password: anyone who reaches it could read, write and reconfigure the cluster. Set a password (--requirepass-file FILE, or --requirepass), listen on 127.0.0.1 (--listen 127.0.0.1:PORT), or, on a network you trust, pass --protected-mode no"
            )));
        }
        if options.cluster_secret.is_none() {
            return Err(refused(format!(
                "protected mode: refusing to listen on {listen}, beyond loopback, with no cluster secret: anyone who reaches it could pose as a peer and overwrite the log. Give every node the same secret (--cluster-secret-file FILE, or --cluster-secret), listen on 127.0.0.1 (--listen 127.0.0.1:PORT), or, on a network you trust, pass --protected-mode no"
            )));
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|error| refused(format!("cannot listen on {listen}: {error}")))?;
    let metrics_listener = match &options.metrics_addr {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|error| refused(format!("cannot serve metrics on {address}: {error}")))?,
        ),
        None => None,
    };
    let port = listener.local_addr().map_err(|error| refused(error.to_string()))?.port();
    let mut config = NodeConfig::new(options.id, options.members.clone(), options.data_dir.clone());
    config.peer_listener = PeerListener::Caller;
    config.tick = options.tick;
    config.compaction_entries = options.compaction_entries;
    config.storage = options.storage;
    config.misbehaviour = options.misbehaviour;
    config.slow_sync = options.slow_sync;
    config.joining = options.joining;
    if let Some(secret) = &options.cluster_secret {
        config.cluster_secret = raft_runtime::ClusterSecret::new(secret);
    }
    config.tls = options.tls.clone();
    // The core takes any command the protocol lets through: two values and the rest.
    config.max_command_bytes = kv::resp::Limits::for_values(options.max_value_bytes).max_command_bytes as u64;
    let mut node = Node::start_with_address_book(
        config,
        ServerMachine::with_session_policy(options.sessions),
        Some(AddressBook { recorded: recorded_addresses, in_context: machine::addresses_in_context }),
    )
    .await
    .map_err(refused)?;
    let recovered = node.recovered();
    eprintln!(
        "kv server: node {} listening on {listen} for peers and clients; data in {} ({}, {} log entries, term {})",
        options.id,
        options.data_dir.display(),
        if recovered.fresh { "new" } else { "recovered" },
        recovered.entries,
        recovered.term,
    );
    let limits = kv::resp::Limits::for_values(options.max_value_bytes);
    let shared = Arc::new(Shared {
        port,
        node: node.handle(),
        stats: Stats::default(),
        limits,
        access: options.access.clone(),
        max_clients: AtomicU64::new(options.max_clients),
        max_memory: AtomicU64::new(options.max_memory),
        used_bytes: AtomicU64::new(0),
        idle_timeout_secs: AtomicU64::new(options.client_idle_timeout_secs),
        started: std::time::Instant::now(),
    });
    let sampler = tokio::spawn(sample_commands(shared.clone()));
    let metrics = metrics_listener.map(|listener| tokio::spawn(metrics::serve(listener, shared.clone())));
    let accept = tokio::spawn(listener::accept_loop(listener, shared, options.tls.clone()));
    let outcome = tokio::select! {
        _ = wait_for_signal() => Ok(()),
        stopped = node.stopped() => stopped,
    };
    accept.abort();
    sampler.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    // The disk syncs what it holds and lets go of the data directory.
    let shutdown = node.shutdown().await;
    outcome.and(shutdown).map_err(ServerError::Failed)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// Whether `address` (`host:port`) is a loopback address: 127.0.0.0/8, ::1, or
/// `localhost`. Anything else (a private or public address, 0.0.0.0, a name) is not.
fn is_loopback(address: &str) -> bool {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_addresses_count_as_loopback() {
        for address in ["127.0.0.1:7001", "127.9.9.9:1", "[::1]:7001", "localhost:7001"] {
            assert!(super::is_loopback(address), "{address}");
        }
        for address in
            ["0.0.0.0:7001", "127.0.0.1.example.com:1", "[::]:7001", "192.168.1.2:7001", "kv-1:7001"]
        {
            assert!(!super::is_loopback(address), "{address}");
        }
    }
}

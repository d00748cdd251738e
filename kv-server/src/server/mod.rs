//! The server process: storage, the node loop, the transport and the client port.
//!
//! ```text
//!  clients (RESP) ─┐                      ┌─> disk thread: WAL writes, fsync ─┐
//!                  ├─> node loop: Driver ─┤                                   │
//!  peers (frames) ─┘      ^               └─> transport: one link per peer    │
//!                         └──────────── "durable through N" ──────────────────┘
//! ```

mod connection;
mod leadership;
mod listener;
mod node;
mod status;

pub use raft_runtime::transport;
use raft_runtime::{disk, transport::LinkCounters};

use crate::machine::{ServerMachine, ServerQuery, ServerResponse};
use kv::resp::SessionRequestId;
use raft_core::NodeId;
use raft_host::{Answer, Driver, DriverConfig, Request};
use raft_storage::{StdFs, Storage, StorageOptions};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Requests and messages waiting for the node loop before senders wait.
const INBOX_CAPACITY: usize = 8192;

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
    /// Storage settings.
    pub storage: StorageOptions,
    /// A rule of the driver broken on purpose, to see the crash test catch it. Never
    /// set outside tests of the testers.
    pub misbehaviour: Option<raft_host::Misbehaviour>,
    /// Extra time every sync takes, as on a slow disk (tests only).
    pub slow_sync: Duration,
}

/// What the node loop takes in, besides ticks and the disk's reports.
pub(crate) enum NodeInput {
    /// A client request, and where to send its answer.
    Request {
        /// The request.
        request: Request<ServerQuery>,
        /// Its answer goes here.
        reply: ReplyTo,
    },
    /// A snapshot of the node's state, for `RAFT.INFO` and `INFO`.
    Status(ReplyTo),
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

/// Counters the IO layer keeps.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Client connections open.
    pub(crate) clients: AtomicUsize,
    /// Client connections closed for breaking RESP.
    pub(crate) client_protocol_errors: AtomicU64,
    /// What the peer links count.
    pub(crate) links: Arc<LinkCounters>,
}

/// What the node loop, the transport and the connections share.
pub(crate) struct Shared {
    /// This node.
    pub(crate) id: NodeId,
    /// The port it listens on.
    pub(crate) port: u16,
    /// Where each node listens (the command line's, then the log's).
    pub(crate) addresses: Mutex<BTreeMap<NodeId, String>>,
    /// The node loop's inbox.
    pub(crate) inbox: mpsc::Sender<NodeInput>,
    /// Counters.
    pub(crate) stats: Stats,
}

impl Shared {
    /// Where node `id` listens, if known.
    pub(crate) fn address_of(&self, id: NodeId) -> Option<String> {
        self.addresses.lock().expect("addresses lock").get(&id).cloned()
    }
}

/// A seed for the election timer from the OS's randomness (std's hasher keys come from
/// it), mixed with the process id and the time: nodes of one cluster must differ.
fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    hasher.finish()
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
    // The port is bound before the data directory is touched: a port in use leaves no
    // new directory behind. Nothing is accepted until storage is open.
    let listen = options.listen.clone().unwrap_or(own_address.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|error| refused(format!("cannot listen on {listen}: {error}")))?;
    let port = listener.local_addr().map_err(|error| refused(error.to_string()))?.port();
    let (storage, image, report) = {
        let (dir, id, storage_options) = (options.data_dir.clone(), options.id, options.storage);
        tokio::task::spawn_blocking(move || Storage::open(StdFs, &dir, id, storage_options))
            .await
            .map_err(|error| ServerError::Failed(error.to_string()))?
            .map_err(|error| refused(error.to_string()))?
    };
    if let Some((path, kept, cut, why)) = &report.torn_tail {
        tracing::warn!("{}: cut a torn tail of {cut} bytes at offset {kept} ({why})", path.display());
    }
    let voters: Vec<NodeId> = options.members.keys().copied().collect();
    let mut raft = raft_core::Config::new(options.id, voters);
    raft.election_timeout_min_ticks = 100;
    raft.election_timeout_max_ticks = 200;
    raft.validate().map_err(|error| refused(error.to_string()))?;
    let mut config = DriverConfig::new(raft);
    config.compaction_threshold_entries = options.compaction_entries;
    config.misbehaviour = options.misbehaviour;
    // Answer a stuck request within 5 election timeouts: clients retry sooner anyway.
    config.request_timeout_ticks = 5 * config.raft.election_timeout_max_ticks;
    let entries = image.entries.len();
    let driver = Driver::start(config, image, random_seed(), ServerMachine::default())
        .map_err(|error| refused(format!("cannot start from {}: {error:?}", options.data_dir.display())))?;

    let (inbox, inbox_rx) = mpsc::channel(INBOX_CAPACITY);
    let (peer_messages, peer_messages_rx) = mpsc::channel(INBOX_CAPACITY);
    let links = Arc::new(LinkCounters::default());
    let shared = Arc::new(Shared {
        id: options.id,
        port,
        addresses: Mutex::new(BTreeMap::new()),
        inbox,
        stats: Stats { links: links.clone(), ..Stats::default() },
    });
    let transport = transport::Transport::new(options.id, links, peer_messages);

    let (disk, disk_rx) = std_mpsc::channel();
    let (disk_events, disk_events_rx) = mpsc::unbounded_channel();
    let disk_thread = std::thread::Builder::new()
        .name("disk".into())
        .spawn({
            let slow_sync = options.slow_sync;
            move || disk::run(storage, disk_rx, disk_events, slow_sync)
        })
        .map_err(|error| ServerError::Failed(error.to_string()))?;

    eprintln!(
        "kv server: node {} listening on {listen} for peers and clients; data in {} ({}, {} log entries, term {})",
        options.id,
        options.data_dir.display(),
        if report.fresh { "new" } else { "recovered" },
        entries,
        driver.node().term(),
    );
    let accept = tokio::spawn(listener::accept_loop(listener, shared.clone(), transport.clone()));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop.send(true);
    });
    let node = node::NodeLoop {
        driver,
        shared,
        transport,
        disk,
        disk_batch: Vec::new(),
        configured: options.members.clone(),
        pending: HashMap::new(),
        next_request: 1,
        addresses_version: None,
        leadership: None,
    };
    let outcome = node.run(inbox_rx, peer_messages_rx, disk_events_rx, options.tick, stopped).await;
    accept.abort();
    // The node loop dropped its sender: the disk thread syncs what is left and ends.
    let _ = tokio::task::spawn_blocking(move || disk_thread.join()).await;
    outcome.map_err(ServerError::Failed)
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

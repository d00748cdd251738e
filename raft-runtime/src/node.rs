//! A node for any state machine: [`Node::start`] opens the node's storage, listens for
//! its peers (or lets the caller), and runs the node loop; the [`Node`] it returns
//! gives [`Handle`]s that submit requests and tell the node's role and leader.

use crate::config::{NodeConfig, PeerListener};
use crate::disk;
use crate::handle::{Handle, Shared, Status};
use crate::node_loop::{Inputs, NodeLoop};
use crate::transport::{LinkCounters, Security, Transport};
use crate::NodeDriver;
use raft_core::{Config, NodeId, Term};
use raft_host::{Answer, Driver, DriverConfig, Request, StateMachine};
use raft_storage::{SnapshotFiles, StdFs, Storage};
use std::collections::BTreeMap;
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Requests waiting for the loop before submitters wait.
const INBOX_CAPACITY: usize = 8192;

/// Where members listen, for a state machine that records addresses from the contexts
/// of its membership changes (as `kv-server`'s does). Its entries override the
/// configured members.
pub struct AddressBook<M> {
    /// What the machine recorded from committed changes: a version that changes
    /// whenever the book does, and the book.
    pub recorded: fn(&M) -> (u64, &BTreeMap<NodeId, String>),
    /// The addresses a membership change's context names. Used for the change in the
    /// log not yet committed: a change that makes new nodes voters can commit only once
    /// they answer, so they are dialed from the moment it is appended (and forgotten if
    /// it is truncated away).
    pub in_context: fn(&[u8]) -> Vec<(NodeId, String)>,
}

// By hand: derived, they would ask `M: Copy`, and two function pointers always are.
impl<M> Clone for AddressBook<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for AddressBook<M> {}

impl<M> std::fmt::Debug for AddressBook<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressBook")
    }
}

/// What the node found in its data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Whether the directory was new.
    pub fresh: bool,
    /// Log entries recovered.
    pub entries: usize,
    /// The term recovered.
    pub term: Term,
}

/// A running node (see the module docs). Dropping it stops the node's tasks; call
/// [`Node::shutdown`] to stop it in order.
pub struct Node<M: StateMachine> {
    handle: Handle<M>,
    recovered: Recovered,
    tasks: Vec<JoinHandle<()>>,
    disk_thread: Option<std::thread::JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    finished: Option<oneshot::Receiver<Result<(), String>>>,
}

impl<M> Node<M>
where
    M: StateMachine + Send + 'static,
    M::Query: Send + 'static,
    M::Response: Send + 'static,
{
    /// Starts node `config.id` with `machine` (empty: the node restores it from its
    /// snapshot and log). Fails with a message if the port cannot be bound, the data
    /// directory is damaged or another node's, or the configuration is not valid.
    pub async fn start(config: NodeConfig, machine: M) -> Result<Node<M>, String> {
        Node::start_with_address_book(config, machine, None).await
    }

    /// [`Node::start`] for a state machine that records where members listen: peers
    /// are dialled at the addresses `book` gives, over the configured ones.
    pub async fn start_with_address_book(
        config: NodeConfig,
        machine: M,
        book: Option<AddressBook<M>>,
    ) -> Result<Node<M>, String> {
        let own = config.members.get(&config.id).cloned().ok_or_else(|| {
            format!("node {} is not among the members; list every member, this one included", config.id)
        })?;
        // The port is bound before the data directory is touched: a port in use leaves
        // no new directory behind.
        let listener = match config.peer_listener {
            PeerListener::Own => Some(
                TcpListener::bind(&own).await.map_err(|error| format!("cannot listen on {own}: {error}"))?,
            ),
            PeerListener::Caller => None,
        };
        let (dir, id, options) = (config.data_dir.clone(), config.id, config.storage);
        let opened = tokio::task::spawn_blocking(move || Storage::open(StdFs, &dir, id, options))
            .await
            .map_err(|error| error.to_string())?;
        let (storage, image, report) = opened.map_err(|error| error.to_string())?;
        if let Some((path, kept, cut, why)) = &report.torn_tail {
            tracing::warn!("{}: cut a torn tail of {cut} bytes at offset {kept} ({why})", path.display());
        }
        let entries = image.entries.len();
        let driver_config = driver_config(&config)?;
        let max_message_bytes = driver_config.raft.max_message_bytes();
        let snapshots = SnapshotFiles::new(StdFs, &config.data_dir);
        let driver = Driver::start(driver_config, image, random_seed(config.id), machine, snapshots)
            .map_err(|error| format!("cannot start from {}: {error:?}", config.data_dir.display()))?;
        let recovered = Recovered { fresh: report.fresh, entries, term: driver.node().term() };

        let counters = Arc::new(LinkCounters::default());
        let (peer_messages, peer_messages_rx) = mpsc::channel(INBOX_CAPACITY);
        let security = Security { secret: config.cluster_secret.clone(), tls: config.tls.clone() };
        let transport =
            Transport::new(config.id, counters.clone(), peer_messages, max_message_bytes, security);
        let disk_stats = Arc::new(crate::stats::DiskStats::default());
        let shared = Arc::new(Shared {
            id: config.id,
            transport,
            counters,
            addresses: Mutex::new(BTreeMap::new()),
            disk_stats: disk_stats.clone(),
        });
        let (disk, disk_rx) = std_mpsc::channel();
        let (disk_events, disk_events_rx) = mpsc::unbounded_channel();
        let slow_sync = config.slow_sync;
        let disk_thread = std::thread::Builder::new()
            .name(format!("disk-{}", config.id))
            .spawn(move || {
                let _span = tracing::info_span!("disk", node = id).entered();
                disk::run(storage, disk_rx, disk_events, slow_sync, disk_stats)
            })
            .map_err(|error| error.to_string())?;
        let (work, work_rx) = mpsc::channel(INBOX_CAPACITY);
        let (status_tx, status) = watch::channel(status_of(&driver));
        let (stop, stop_rx) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        let looping = NodeLoop::new(driver, shared.clone(), disk, config.members.clone(), book, status_tx);
        let handle = Handle { work, status, shared };
        let inputs = Inputs {
            work: work_rx,
            peer_messages: peer_messages_rx,
            disk_events: disk_events_rx,
            stop: stop_rx,
        };
        let tick = config.tick;
        let node_span = tracing::info_span!("node", node = id);
        let mut tasks = vec![tokio::spawn(tracing::Instrument::instrument(
            async move {
                let _ = done.send(looping.run(inputs, tick).await);
            },
            node_span,
        ))];
        if let Some(listener) = listener {
            tasks.push(tokio::spawn(accept_peers(listener, handle.shared.transport.clone())));
        }
        Ok(Node {
            handle,
            recovered,
            tasks,
            disk_thread: Some(disk_thread),
            stop: Some(stop),
            finished: Some(finished),
        })
    }

    /// A handle to the node, for other tasks.
    pub fn handle(&self) -> Handle<M> {
        self.handle.clone()
    }

    /// What the node found in its data directory at start.
    pub fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    /// Submits `request` and waits for its answer; `None` if the node has stopped.
    pub async fn submit(&self, request: Request<M::Query>) -> Option<Answer<M::Response>> {
        self.handle.submit(request).await
    }

    /// The node's role, term and leader as of its last round.
    pub fn status(&self) -> Status {
        self.handle.status()
    }

    /// What the peer links count.
    pub fn link_counters(&self) -> &LinkCounters {
        self.handle.link_counters()
    }

    /// Waits until the node stops on its own: `Err` says why (its disk failed, or the
    /// driver gave up). Cancel-safe: a caller may select on it and then shut down.
    pub async fn stopped(&mut self) -> Result<(), String> {
        let Some(finished) = self.finished.as_mut() else { return Ok(()) };
        let outcome = finished.await.unwrap_or(Ok(()));
        self.finished = None;
        self.stop = None;
        outcome
    }

    /// Stops the node: the loop ends, the disk syncs what it holds and lets go of the
    /// data directory (a node may start on it again at once). Returns why the node had
    /// stopped on its own, if it had.
    pub async fn shutdown(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = match self.finished.take() {
            Some(finished) => finished.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let Some(disk_thread) = self.disk_thread.take() {
            // The loop has ended and dropped its sender: the thread syncs and ends.
            let _ = tokio::task::spawn_blocking(move || disk_thread.join()).await;
        }
        outcome
    }
}

impl<M: StateMachine> Drop for Node<M> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn driver_config(config: &NodeConfig) -> Result<DriverConfig, String> {
    let mut raft = Config::new(config.id, config.members.keys().copied().collect());
    if config.joining {
        raft.voters.retain(|&member| member != config.id);
        raft.learners = vec![config.id];
    }
    raft.election_timeout_min_ticks = 100;
    raft.election_timeout_max_ticks = 200;
    raft.max_command_bytes = config.max_command_bytes;
    raft.validate().map_err(|error| error.to_string())?;
    let mut driver = DriverConfig::new(raft);
    driver.compaction_threshold_entries = config.compaction_entries;
    // Log time advances with the ticks; the machine is asked for housekeeping (clock
    // entries, proposed only when something is due) every 100 ms, so a key whose time
    // to live ran out leaves every replica's reads within about 100 ms of its deadline
    // even when nothing else is written.
    driver.tick_millis = (config.tick.as_millis() as u64).max(1);
    driver.housekeeping_interval_ticks = (100 / driver.tick_millis).max(1);
    driver.misbehaviour = config.misbehaviour;
    // Answer a stuck request within 5 election timeouts: clients retry sooner anyway.
    driver.request_timeout_ticks = 5 * driver.raft.election_timeout_max_ticks;
    Ok(driver)
}

fn status_of<M: StateMachine>(driver: &NodeDriver<M>) -> Status {
    let node = driver.node();
    Status { role: node.role(), term: node.term(), leader: node.leader() }
}

/// A seed for the election timer from the OS's randomness (std's hasher keys come from
/// it), mixed with the node's id, the process id and the time: nodes must differ.
fn random_seed(id: NodeId) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(id);
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    hasher.finish()
}

/// Accepts the connections peers dial and hands them to the links (which open TLS if
/// the node has it, then run the handshake).
async fn accept_peers(listener: TcpListener, transport: Arc<Transport>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let transport = transport.clone();
        tokio::spawn(async move { transport.accept_tcp(stream).await });
    }
}

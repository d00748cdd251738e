//! A node for any state machine: [`Node::start`] opens the node's storage, listens for
//! its peers, and runs the driver's loop; the [`Node`] it returns submits requests and
//! tells the node's role and leader.
//!
//! The loop is the only place the driver lives. It feeds it ticks (from a monotonic
//! timer; a paused process resumes with one tick, not a burst), peer messages, requests
//! and the disk's "durable through N", and carries out its outputs in order: writes and
//! syncs to the disk thread, messages to the links, answers to whoever asked. What to
//! do and when is the driver's; the loop only moves things.

use crate::disk::{self, DiskCommand, DiskEvent};
use crate::transport::{LinkCounters, Transport, HANDSHAKE_BYTES, PEER_MAGIC};
use raft_core::{Config, Message, NodeId, RequestId, Role, Term};
use raft_host::{Answer, Driver, DriverConfig, Output, Request, StateMachine};
use raft_storage::{StdFs, Storage, StorageOptions};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Requests waiting for the loop before submitters wait.
const INBOX_CAPACITY: usize = 4096;
/// How long a peer has to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// Every member (this node included) and where it listens for its peers.
    pub members: BTreeMap<NodeId, String>,
    /// Where the node keeps its log, hard state and snapshots.
    pub data_dir: PathBuf,
    /// One tick of the Raft clock: heartbeats every 10 ticks, elections after 100 to 200.
    pub tick: Duration,
    /// Snapshot and compact the log after this many applied entries.
    pub compaction_entries: u64,
}

impl NodeConfig {
    /// Node `id` of a cluster of `members`, its data in `data_dir`, ticking every 10 ms.
    pub fn new(id: NodeId, members: BTreeMap<NodeId, String>, data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            members,
            data_dir: data_dir.into(),
            tick: Duration::from_millis(10),
            compaction_entries: 10_000,
        }
    }
}

/// What the node is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
}

type Submitted<M> =
    (Request<<M as StateMachine>::Query>, oneshot::Sender<Answer<<M as StateMachine>::Response>>);

/// A running node (see the module docs). Dropping it stops the node.
pub struct Node<M: StateMachine> {
    requests: mpsc::Sender<Submitted<M>>,
    status: watch::Receiver<Status>,
    counters: Arc<LinkCounters>,
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
        let own = config.members.get(&config.id).cloned().ok_or("this node is not among the members")?;
        let listener =
            TcpListener::bind(&own).await.map_err(|error| format!("cannot listen on {own}: {error}"))?;
        let (dir, id) = (config.data_dir.clone(), config.id);
        let opened =
            tokio::task::spawn_blocking(move || Storage::open(StdFs, &dir, id, StorageOptions::default()))
                .await
                .map_err(|error| error.to_string())?;
        let (storage, image, _) = opened.map_err(|error| error.to_string())?;
        let mut raft = Config::new(config.id, config.members.keys().copied().collect());
        raft.election_timeout_min_ticks = 100;
        raft.election_timeout_max_ticks = 200;
        raft.validate().map_err(|error| error.to_string())?;
        let mut driver_config = DriverConfig::new(raft);
        driver_config.compaction_threshold_entries = config.compaction_entries;
        driver_config.request_timeout_ticks = 5 * driver_config.raft.election_timeout_max_ticks;
        let seed = std::collections::hash_map::RandomState::new();
        let seed = std::hash::BuildHasher::hash_one(&seed, (config.id, std::process::id()));
        let driver =
            Driver::start(driver_config, image, seed, machine).map_err(|error| format!("{error:?}"))?;

        let counters = Arc::new(LinkCounters::default());
        let (peer_messages, peer_messages_rx) = mpsc::channel(INBOX_CAPACITY);
        let transport = Transport::new(config.id, counters.clone(), peer_messages);
        transport.set_peers(&config.members);
        let (disk, disk_rx) = std_mpsc::channel();
        let (disk_events, disk_events_rx) = mpsc::unbounded_channel();
        let disk_thread = std::thread::Builder::new()
            .name(format!("disk-{}", config.id))
            .spawn(move || disk::run(storage, disk_rx, disk_events, Duration::ZERO))
            .map_err(|error| error.to_string())?;
        let (requests, requests_rx) = mpsc::channel(INBOX_CAPACITY);
        let node = driver.node();
        let (status_tx, status) =
            watch::channel(Status { role: node.role(), term: node.term(), leader: node.leader() });
        let (stop, stopped) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        let accept = tokio::spawn(accept_peers(listener, config.id, transport.clone(), counters.clone()));
        let looping =
            NodeLoop { driver, transport, disk, pending: HashMap::new(), next_request: 1, status: status_tx };
        let run = tokio::spawn(async move {
            let outcome =
                looping.run(requests_rx, peer_messages_rx, disk_events_rx, config.tick, stopped).await;
            let _ = done.send(outcome);
        });
        Ok(Node {
            requests,
            status,
            counters,
            tasks: vec![accept, run],
            disk_thread: Some(disk_thread),
            stop: Some(stop),
            finished: Some(finished),
        })
    }

    /// Submits `request` and waits for its answer; `None` if the node has stopped.
    pub async fn submit(&self, request: Request<M::Query>) -> Option<Answer<M::Response>> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((request, reply)).await.ok()?;
        answer.await.ok()
    }

    /// The node's role, term and leader as of its last round.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// What the peer links count.
    pub fn link_counters(&self) -> &LinkCounters {
        &self.counters
    }

    /// Stops the node: the loop ends, the disk syncs what it holds and lets go of the
    /// data directory (a node may start on it again at once). Returns why the node had
    /// stopped on its own, if it had (its disk failed).
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

/// Accepts the connections peers dial, checks their handshake and hands them to the links.
async fn accept_peers(
    listener: TcpListener,
    id: NodeId,
    transport: Arc<Transport>,
    counters: Arc<LinkCounters>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (transport, counters) = (transport.clone(), counters.clone());
        tokio::spawn(async move {
            match read_handshake(stream, id).await {
                Some((from, stream)) => transport.accept(from, stream),
                None => {
                    counters.connections_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
}

/// The dialer's id if `stream` opens with a valid handshake addressed to `id`.
pub async fn read_handshake(mut stream: TcpStream, id: NodeId) -> Option<(NodeId, TcpStream)> {
    let mut handshake = [0u8; HANDSHAKE_BYTES];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut handshake)).await.ok()?.ok()?;
    let from = u64::from_le_bytes(handshake[8..16].try_into().expect("8 bytes"));
    let to = u64::from_le_bytes(handshake[16..24].try_into().expect("8 bytes"));
    (handshake[..8] == PEER_MAGIC && to == id && from != id).then_some((from, stream))
}

struct NodeLoop<M: StateMachine> {
    driver: Driver<M>,
    transport: Arc<Transport>,
    disk: std_mpsc::Sender<Vec<DiskCommand>>,
    pending: HashMap<RequestId, oneshot::Sender<Answer<M::Response>>>,
    next_request: RequestId,
    status: watch::Sender<Status>,
}

impl<M: StateMachine> NodeLoop<M> {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Submitted<M>>,
        mut peer_messages: mpsc::Receiver<Message>,
        mut disk_events: mpsc::UnboundedReceiver<DiskEvent>,
        tick: Duration,
        mut stopped: oneshot::Receiver<()>,
    ) -> Result<(), String> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut outputs = Vec::new();
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => return Ok(()),
                event = disk_events.recv() => match event {
                    Some(DiskEvent::Durable(through)) => self.driver.durable(through),
                    Some(DiskEvent::Failed(why)) => return Err(why),
                    None => return Err("the disk thread stopped".into()),
                },
                _ = ticker.tick() => self.driver.tick(),
                message = peer_messages.recv() => {
                    let Some(message) = message else { return Ok(()) };
                    self.driver.receive(message);
                }
                submitted = requests.recv() => {
                    let Some((request, reply)) = submitted else { return Ok(()) };
                    let id = self.next_request;
                    self.next_request += 1;
                    self.pending.insert(id, reply);
                    self.driver.submit(id, request);
                }
            }
            self.driver.take_outputs(&mut outputs);
            for output in outputs.drain(..) {
                match output {
                    Output::Write { write, .. } => batch.push(DiskCommand::Write(write)),
                    Output::Sync { through } => batch.push(DiskCommand::Sync(through)),
                    Output::Send(message) => self.transport.send(&message),
                    Output::Answer { request, answer } => {
                        if let Some(reply) = self.pending.remove(&request) {
                            let _ = reply.send(answer);
                        }
                    }
                    Output::Failed(reason) => return Err(format!("the node cannot go on: {reason}")),
                    Output::Event(_) => {}
                }
            }
            if !batch.is_empty() {
                self.disk
                    .send(std::mem::take(&mut batch))
                    .map_err(|_| "the disk thread stopped".to_string())?;
            }
            let node = self.driver.node();
            let now = Status { role: node.role(), term: node.term(), leader: node.leader() };
            self.status.send_if_modified(|status| std::mem::replace(status, now) != now);
        }
    }
}

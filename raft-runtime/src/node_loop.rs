//! The node loop: the only place the driver lives. It feeds the driver its inputs
//! (ticks from a monotonic timer, peer messages, requests, the disk's "durable through
//! N") and carries out its outputs in order: writes and syncs to the disk thread,
//! messages to the links, answers to whoever asked. What to do and when is the
//! driver's; the loop only moves things between it and the world.

use crate::disk::{DiskCommand, DiskEvent};
use crate::handle::{Reply, Shared, Status, Work};
use crate::leadership::Leadership;
use crate::node::AddressBook;
use crate::NodeDriver;
use raft_core::{LogIndex, Message, RequestId};
use raft_host::{Output, StateMachine};
use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

/// Inputs handled before the outputs are carried out, so a burst of requests or
/// messages shares one round of sends and one sync.
const INPUTS_PER_ROUND: usize = 256;

/// The loop's state.
pub(crate) struct NodeLoop<M: StateMachine> {
    pub(crate) driver: NodeDriver<M>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) disk: std_mpsc::Sender<Vec<DiskCommand>>,
    /// The members configured; a state machine's address book overrides them.
    pub(crate) configured: BTreeMap<raft_core::NodeId, String>,
    pub(crate) address_book: Option<AddressBook<M>>,
    pub(crate) status: watch::Sender<Status>,
    pending: HashMap<RequestId, Reply<M>>,
    next_request: RequestId,
    /// The disk commands of this round, sent together at its end.
    disk_batch: Vec<DiskCommand>,
    /// What the book was built from: the machine's book version and the index of the
    /// configuration in force.
    book_version: Option<(u64, LogIndex)>,
    leadership: Leadership,
}

/// The channels the loop reads.
pub(crate) struct Inputs<M: StateMachine> {
    pub(crate) work: mpsc::Receiver<Work<M>>,
    pub(crate) peer_messages: mpsc::Receiver<Message>,
    pub(crate) disk_events: mpsc::UnboundedReceiver<DiskEvent>,
    pub(crate) stop: oneshot::Receiver<()>,
}

impl<M: StateMachine> NodeLoop<M> {
    pub(crate) fn new(
        driver: NodeDriver<M>,
        shared: Arc<Shared>,
        disk: std_mpsc::Sender<Vec<DiskCommand>>,
        configured: BTreeMap<raft_core::NodeId, String>,
        address_book: Option<AddressBook<M>>,
        status: watch::Sender<Status>,
    ) -> NodeLoop<M> {
        let leadership = Leadership::of(driver.node());
        let mut looping = NodeLoop {
            driver,
            shared,
            disk,
            configured,
            address_book,
            status,
            pending: HashMap::new(),
            next_request: 1,
            disk_batch: Vec::new(),
            book_version: None,
            leadership,
        };
        looping.refresh_addresses();
        looping
    }

    /// Runs until told to stop (`Ok`) or the node cannot go on (`Err`: the disk failed,
    /// or the driver gave up).
    pub(crate) async fn run(mut self, mut inputs: Inputs<M>, tick: Duration) -> Result<(), String> {
        let mut ticker = tokio::time::interval(tick);
        // A paused process (SIGSTOP) resumes with one tick, not a burst of them.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut outputs = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = &mut inputs.stop => return Ok(()),
                event = inputs.disk_events.recv() => match event {
                    Some(DiskEvent::Durable(through)) => self.driver.durable(through),
                    Some(DiskEvent::Failed(why)) => return Err(why),
                    None => return Err("the disk thread stopped".into()),
                },
                _ = ticker.tick() => {
                    // The leader's log time never falls behind the wall clock, so
                    // times to live and EXPIREAT read as Unix time on a server.
                    self.driver.set_wall_clock_ms(wall_clock_ms());
                    self.driver.tick()
                }
                message = inputs.peer_messages.recv() => {
                    let Some(message) = message else { return Ok(()) };
                    self.driver.receive(message);
                    // Messages that arrived meanwhile share this round's outputs.
                    for _ in 1..INPUTS_PER_ROUND {
                        match inputs.peer_messages.try_recv() {
                            Ok(message) => self.driver.receive(message),
                            Err(_) => break,
                        }
                    }
                }
                work = inputs.work.recv() => {
                    let Some(work) = work else { return Ok(()) };
                    self.handle(work);
                    for _ in 1..INPUTS_PER_ROUND {
                        match inputs.work.try_recv() {
                            Ok(work) => self.handle(work),
                            Err(_) => break,
                        }
                    }
                }
            }
            self.driver.take_outputs(&mut outputs);
            for output in outputs.drain(..) {
                self.perform(output)?;
            }
            if !self.disk_batch.is_empty() {
                let batch = std::mem::take(&mut self.disk_batch);
                self.disk.send(batch).map_err(|_| "the disk thread stopped".to_string())?;
            }
            self.refresh_addresses();
            self.note_leadership();
        }
    }

    fn handle(&mut self, work: Work<M>) {
        match work {
            Work::Submit(request, reply) => {
                let id = self.next_request;
                self.next_request += 1;
                self.pending.insert(id, reply);
                self.driver.submit(id, request);
            }
            Work::Look(look) => look(&self.driver),
        }
    }

    fn perform(&mut self, output: Output<M::Response>) -> Result<(), String> {
        match output {
            Output::Write { write, .. } => self.disk_batch.push(DiskCommand::Write(write)),
            Output::Sync { through } => self.disk_batch.push(DiskCommand::Sync(through)),
            Output::Send(message) => self.shared.transport.send(&message),
            Output::Answer { request, answer } => {
                if let Some(reply) = self.pending.remove(&request) {
                    reply(answer);
                }
            }
            Output::Failed(reason) => return Err(format!("the node cannot go on: {reason}")),
            Output::Event(_) => {}
        }
        Ok(())
    }

    /// Logs an election won or lost, a step-down or a new leader (one line each), and
    /// publishes the node's status.
    fn note_leadership(&mut self) {
        let now = Leadership::of(self.driver.node());
        if let Some(line) = self.leadership.change(&now) {
            tracing::info!("{line}");
        }
        self.leadership = now;
        let status = Status { role: now.role, term: now.term, leader: now.leader };
        self.status.send_if_modified(|published| std::mem::replace(published, status) != status);
    }

    /// The address book: the configured members, then what the state machine recorded,
    /// then the addresses of a membership change appended but not yet committed;
    /// rebuilt whenever the machine's book or the configuration in force changed.
    fn refresh_addresses(&mut self) {
        let node = self.driver.node();
        let book = self.address_book.map(|book| (book, (book.recorded)(self.driver.machine())));
        let version = (book.map_or(0, |(_, (version, _))| version), node.configuration_index());
        if self.book_version == Some(version) {
            return;
        }
        self.book_version = Some(version);
        let mut addresses = self.configured.clone();
        if let Some((book, (_, recorded))) = book {
            addresses.extend(recorded.iter().map(|(id, address)| (*id, address.clone())));
            let pending = (node.configuration_index() > node.commit_index())
                .then(|| node.entry(node.configuration_index()))
                .flatten();
            if let Some(raft_core::EntryPayload::MembershipChange { configuration, context }) =
                pending.map(|entry| &entry.payload)
            {
                let named = (book.in_context)(context);
                addresses.extend(named.into_iter().filter(|(id, _)| configuration.contains(*id)));
            }
        }
        self.shared.transport.set_peers(&addresses);
        *self.shared.addresses.lock().expect("addresses lock") = addresses;
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is set before it).
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

//! The node loop: the only place the driver lives. It feeds the driver its inputs (ticks,
//! peer messages, client requests, the disk's durability reports) and carries out its
//! outputs in order: writes and syncs to the disk thread, messages to the transport,
//! answers to the waiting clients. What to do and when is the driver's; this loop only
//! moves things between it and the world.

use super::leadership::Leadership;
use super::status::NodeStatus;
use super::{NodeInput, NodeReply, ReplyTo, Shared};
use crate::machine::{ServerMachine, ServerResponse};
use raft_core::Message;
use raft_core::{NodeId, RequestId};
use raft_host::{Driver, Output};
use raft_runtime::disk::{DiskCommand, DiskEvent};
use raft_runtime::transport::Transport;
use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

/// Inputs handled before the outputs are carried out, so a burst of requests shares
/// one round of sends and one sync.
const INPUTS_PER_ROUND: usize = 256;

/// The loop's state.
pub(crate) struct NodeLoop {
    pub(super) driver: Driver<ServerMachine>,
    pub(super) shared: Arc<Shared>,
    pub(super) transport: Arc<Transport>,
    pub(super) disk: std_mpsc::Sender<Vec<DiskCommand>>,
    /// The disk commands of this round, sent together at its end.
    pub(super) disk_batch: Vec<DiskCommand>,
    /// The members the command line named; the log's address book overrides them.
    pub(super) configured: BTreeMap<NodeId, String>,
    pub(super) pending: HashMap<RequestId, ReplyTo>,
    pub(super) next_request: RequestId,
    pub(super) addresses_version: Option<u64>,
    /// Role, term and leader as of the last round, to log their changes.
    pub(super) leadership: Option<Leadership>,
}

impl NodeLoop {
    /// Runs until `shutdown` changes (`Ok`) or the node cannot go on (`Err`: the disk
    /// failed, or the driver gave up).
    pub(crate) async fn run(
        mut self,
        mut inbox: mpsc::Receiver<NodeInput>,
        mut peer_messages: mpsc::Receiver<Message>,
        mut disk_events: mpsc::UnboundedReceiver<DiskEvent>,
        tick: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), String> {
        let mut ticker = tokio::time::interval(tick);
        // A paused process (SIGSTOP) resumes with one tick, not a burst of them.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut outputs = Vec::new();
        self.refresh_addresses();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => return Ok(()),
                event = disk_events.recv() => match event {
                    Some(DiskEvent::Durable(through)) => self.driver.durable(through),
                    Some(DiskEvent::Failed(why)) => return Err(why),
                    None => return Err("the disk thread stopped".into()),
                },
                _ = ticker.tick() => self.driver.tick(),
                message = peer_messages.recv() => {
                    let Some(message) = message else { return Ok(()) };
                    self.driver.receive(message);
                    // Messages that arrived meanwhile share this round's outputs.
                    for _ in 1..INPUTS_PER_ROUND {
                        match peer_messages.try_recv() {
                            Ok(message) => self.driver.receive(message),
                            Err(_) => break,
                        }
                    }
                }
                input = inbox.recv() => {
                    let Some(input) = input else { return Ok(()) };
                    self.handle(input);
                    for _ in 1..INPUTS_PER_ROUND {
                        match inbox.try_recv() {
                            Ok(input) => self.handle(input),
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
            if Some(self.driver.machine().addresses_version()) != self.addresses_version {
                self.refresh_addresses();
            }
            self.log_leadership();
        }
    }

    /// Logs an election won or lost, a step-down or a new leader (one line each).
    fn log_leadership(&mut self) {
        let node = self.driver.node();
        let now = Leadership { role: node.role(), term: node.term(), leader: node.leader() };
        if let Some(line) = self.leadership.and_then(|before| before.change(&now)) {
            tracing::info!("{line}");
        }
        self.leadership = Some(now);
    }

    fn handle(&mut self, input: NodeInput) {
        match input {
            NodeInput::Request { request, reply } => {
                let id = self.next_request;
                self.next_request += 1;
                self.pending.insert(id, reply);
                self.driver.submit(id, request);
            }
            NodeInput::Status(reply) => {
                reply.send(NodeReply::Status(Box::new(NodeStatus::of(&self.driver, &self.shared))));
            }
        }
    }

    fn perform(&mut self, output: Output<ServerResponse>) -> Result<(), String> {
        match output {
            Output::Write { write, .. } => self.disk_batch.push(DiskCommand::Write(write)),
            Output::Sync { through } => self.disk_batch.push(DiskCommand::Sync(through)),
            Output::Send(message) => self.transport.send(&message),
            Output::Answer { request, answer } => {
                if let Some(reply) = self.pending.remove(&request) {
                    reply.send(NodeReply::Answer(answer));
                }
            }
            Output::Failed(reason) => return Err(format!("the node cannot go on: {reason}")),
            Output::Event(_) => {}
        }
        Ok(())
    }

    /// The address book: the command line's members, then what the log recorded.
    fn refresh_addresses(&mut self) {
        let machine = self.driver.machine();
        self.addresses_version = Some(machine.addresses_version());
        let mut addresses = self.configured.clone();
        addresses.extend(machine.addresses().iter().map(|(id, address)| (*id, address.clone())));
        self.transport.set_peers(&addresses);
        *self.shared.addresses.lock().expect("addresses lock") = addresses;
    }
}

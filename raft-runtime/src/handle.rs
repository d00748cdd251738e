//! [`Handle`]: what the rest of a program holds to talk to a running node. It clones
//! cheaply; every clone reaches the same node loop.

use crate::tls::BoxedStream;
use crate::transport::{LinkCounters, Transport};
use crate::NodeDriver;
use raft_core::{NodeId, Role, Term};
use raft_host::{Answer, Request, StateMachine};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

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

/// Where an answer goes: called once, on the node loop, so it must be quick (send it
/// on a channel).
pub type Reply<M> = Box<dyn FnOnce(Answer<<M as StateMachine>::Response>) + Send>;

/// A look at the driver, run on the node loop between rounds.
pub type Look<M> = Box<dyn FnOnce(&NodeDriver<M>) + Send>;

/// What the node loop takes from handles.
pub(crate) enum Work<M: StateMachine> {
    /// A request and where its answer goes.
    Submit(Request<M::Query>, Reply<M>),
    /// A look at the driver.
    Look(Look<M>),
}

/// What every handle of one node shares.
pub(crate) struct Shared {
    pub(crate) id: NodeId,
    pub(crate) transport: Arc<Transport>,
    pub(crate) counters: Arc<LinkCounters>,
    /// Where each member listens: the configured members, then the state machine's book.
    pub(crate) addresses: Mutex<BTreeMap<NodeId, String>>,
    /// What the disk thread measured.
    pub(crate) disk_stats: Arc<crate::stats::DiskStats>,
}

/// A running node's handle (see the module docs).
pub struct Handle<M: StateMachine> {
    pub(crate) work: mpsc::Sender<Work<M>>,
    pub(crate) status: watch::Receiver<Status>,
    pub(crate) shared: Arc<Shared>,
}

impl<M: StateMachine> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle { work: self.work.clone(), status: self.status.clone(), shared: self.shared.clone() }
    }
}

impl<M: StateMachine> Handle<M> {
    /// What the disk thread measured: fsync latency and writes per fsync.
    pub fn disk_stats(&self) -> &crate::stats::DiskStats {
        &self.shared.disk_stats
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// Submits `request` and waits for its answer; `None` if the node has stopped.
    pub async fn submit(&self, request: Request<M::Query>) -> Option<Answer<M::Response>>
    where
        M::Response: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let reply: Reply<M> = Box::new(move |answer| {
            let _ = reply.send(answer);
        });
        if !self.submit_with(request, reply).await {
            return None;
        }
        answer.await.ok()
    }

    /// Submits `request`; `reply` gets its answer (a pipelining caller keeps many in
    /// flight this way). `false`, and `reply` dropped uncalled, if the node has stopped.
    pub async fn submit_with(&self, request: Request<M::Query>, reply: Reply<M>) -> bool {
        self.work.send(Work::Submit(request, reply)).await.is_ok()
    }

    /// Runs `look` on the node loop between two rounds, and returns what it returns;
    /// `None` if the node has stopped.
    pub async fn inspect<R: Send + 'static>(
        &self,
        look: impl FnOnce(&NodeDriver<M>) -> R + Send + 'static,
    ) -> Option<R> {
        let (result, answer) = oneshot::channel();
        let look: Look<M> = Box::new(move |driver| {
            let _ = result.send(look(driver));
        });
        if !self.inspect_with(look).await {
            return None;
        }
        answer.await.ok()
    }

    /// Runs `look` on the node loop between two rounds without waiting for it; `false`
    /// if the node has stopped.
    pub async fn inspect_with(&self, look: Look<M>) -> bool {
        self.work.send(Work::Look(look)).await.is_ok()
    }

    /// The node's role, term and leader as of its last round.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Where node `id` listens, if known.
    pub fn address_of(&self, id: NodeId) -> Option<String> {
        self.shared.addresses.lock().expect("addresses lock").get(&id).cloned()
    }

    /// Where every member known listens.
    pub fn addresses(&self) -> BTreeMap<NodeId, String> {
        self.shared.addresses.lock().expect("addresses lock").clone()
    }

    /// What the peer links count.
    pub fn link_counters(&self) -> &LinkCounters {
        &self.shared.counters
    }

    /// Takes a connection a peer dialled (with [`crate::PeerListener::Caller`], after
    /// TLS if the node has it): see [`Transport::accept`].
    pub async fn accept_peer(&self, stream: BoxedStream) {
        self.shared.transport.accept(stream).await;
    }
}

//! One client connection: bytes between the socket and a [`RespSession`], requests to
//! the node, answers back.
//!
//! Every protocol decision (parsing, what a command asks, in which order requests may
//! go, what each reply says, when to close) is the session's, in the `kv` crate, where
//! the simulator drives it too. This task reads, writes, submits what the session
//! releases and translates the driver's answers (a leader's id becomes its address).

use super::status::{self, NodeStatus};
use super::{NodeReply, ReplyTo, Shared};
use crate::machine::{self, ServerMachine, ServerQuery, ServerResponse};
use kv::resp::{
    Answer as SessionAnswer, MembershipCommand, Request as SessionRequest, RespSession, SessionRequestId,
    StatusKind,
};
use raft_core::{MembershipChange, NodeId};
use raft_host::{Answer, Request};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes read from the socket at a time.
const READ_BYTES: usize = 16 << 10;

/// What the connection remembers about a status request it submitted: which.
type Submitted = StatusKind;

/// The connection's side of the node: submits requests, turns answers into the
/// session's.
struct Link<'a> {
    shared: &'a Arc<Shared>,
    answers: mpsc::UnboundedSender<(SessionRequestId, NodeReply)>,
    submitted: BTreeMap<SessionRequestId, Submitted>,
}

/// Serves one client (over TCP, or TLS over it) until it quits, disconnects or breaks
/// the protocol.
pub(crate) async fn serve(stream: impl AsyncRead + AsyncWrite + Unpin, shared: &Arc<Shared>) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (answers, mut answered) = mpsc::unbounded_channel();
    let mut link = Link { shared, answers, submitted: BTreeMap::new() };
    let mut session = RespSession::with_access(shared.limits, shared.access.clone());
    let mut buffer = vec![0u8; READ_BYTES];
    let mut last_input = tokio::time::Instant::now();
    loop {
        while let Some((id, request)) = session.next_request() {
            link.submit(id, request, &mut session).await;
        }
        if !session.output().is_empty() {
            if writer.write_all(session.output()).await.is_err() {
                return;
            }
            session.output_sent();
        }
        if session.is_finished() {
            if session.broke_protocol() {
                shared.stats.client_protocol_errors.fetch_add(1, Ordering::Relaxed);
            }
            let _ = writer.shutdown().await;
            return;
        }
        // Redis's `timeout`: a client with nothing under way and silent this long goes.
        // The setting is looked at again at least once a second, so a `CONFIG SET
        // timeout` reaches clients already waiting.
        let idle_secs = shared.idle_timeout_secs.load(Ordering::Relaxed);
        let idle = idle_secs > 0 && session.commands_waiting() == 0;
        let idle_deadline = last_input + std::time::Duration::from_secs(idle_secs);
        let recheck = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        let wake = if idle { idle_deadline.min(recheck) } else { recheck };
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {
                if idle && tokio::time::Instant::now() >= idle_deadline {
                    shared.stats.idle_clients_closed.fetch_add(1, Ordering::Relaxed);
                    let _ = writer.shutdown().await;
                    return;
                }
            }
            Some((id, reply)) = answered.recv() => {
                link.answer(id, reply, &mut session).await;
                // Answers that arrived meanwhile share this round's write.
                while let Ok((id, reply)) = answered.try_recv() {
                    link.answer(id, reply, &mut session).await;
                }
            }
            read = reader.read(&mut buffer), if session.wants_input() => match read {
                Ok(0) | Err(_) => session.end_of_input(),
                Ok(read) => {
                    last_input = tokio::time::Instant::now();
                    let before = session.commands_received();
                    session.set_memory_full(shared.memory_full());
                    session.receive(&buffer[..read]);
                    let commands = session.commands_received() - before;
                    shared.stats.total_commands_processed.fetch_add(commands, Ordering::Relaxed);
                }
            },
        }
    }
}

impl Link<'_> {
    fn reply_to(&self, id: SessionRequestId) -> ReplyTo {
        ReplyTo { channel: self.answers.clone(), id }
    }

    /// Hands `request` to the node loop; if the node has stopped, answers it so.
    async fn send(&self, id: SessionRequestId, request: Request<ServerQuery>, session: &mut RespSession) {
        let reply_to = self.reply_to(id);
        let reply = Box::new(move |answer| reply_to.send(NodeReply::Answer(answer)));
        if !self.shared.node.submit_with(request, reply).await {
            session.answer(id, node_stopped());
        }
    }

    async fn submit(&mut self, id: SessionRequestId, request: SessionRequest, session: &mut RespSession) {
        let read = |query: ServerQuery, local: bool| {
            if local {
                Request::LocalRead(query)
            } else {
                Request::Read(query)
            }
        };
        match &request {
            SessionRequest::Write(_) => self.shared.stats.writes_submitted.fetch_add(1, Ordering::Relaxed),
            SessionRequest::Read { .. } | SessionRequest::ReadMany { .. } => {
                self.shared.stats.reads_submitted.fetch_add(1, Ordering::Relaxed)
            }
            _ => 0,
        };
        let request = match request {
            SessionRequest::Write(command) => Request::Write(machine::kv_entry(&command)),
            SessionRequest::Read { query, local } => read(ServerQuery::Kv(query), local),
            SessionRequest::ReadMany { keys, local } => read(ServerQuery::Many(keys), local),
            SessionRequest::Status(kind) => {
                self.submitted.insert(id, kind);
                let (reply_to, addresses) = (self.reply_to(id), self.shared.node.addresses());
                let look = Box::new(move |driver: &raft_runtime::NodeDriver<ServerMachine>| {
                    reply_to.send(NodeReply::Status(Box::new(NodeStatus::of(driver, addresses))));
                });
                if !self.shared.node.inspect_with(look).await {
                    self.submitted.remove(&id);
                    session.answer(id, node_stopped());
                }
                return;
            }
            SessionRequest::Settings => {
                return session.answer(id, SessionAnswer::Settings(self.shared.settings()))
            }
            SessionRequest::ChangeSetting(setting) => {
                self.shared.change(setting);
                return session.answer(id, SessionAnswer::Done);
            }
            SessionRequest::Transfer(node) => Request::TransferLeadership(node),
            SessionRequest::Membership(command) => {
                if let Some(refusal) = missing_address(&command, &self.shared.node.addresses()) {
                    session.answer(id, refusal);
                    return;
                }
                membership_request(command)
            }
        };
        self.send(id, request, session).await;
    }

    async fn answer(&mut self, id: SessionRequestId, reply: NodeReply, session: &mut RespSession) {
        let answer = match (self.submitted.remove(&id), reply) {
            (Some(kind), NodeReply::Status(status)) => status_answer(kind, &status, self.shared),
            (_, NodeReply::Answer(answer)) => self.translate(answer),
            (_, NodeReply::Status(_)) => {
                SessionAnswer::Unavailable("a status where an answer was due".into())
            }
        };
        session.answer(id, answer);
    }

    /// The driver's answer in the session's terms: a leader's id becomes its address.
    fn translate(&self, answer: Answer<ServerResponse>) -> SessionAnswer {
        let address = |hint: Option<NodeId>| hint.and_then(|leader| self.shared.node.address_of(leader));
        match answer {
            Answer::Applied { response, .. } | Answer::Read(response) => match response {
                ServerResponse::Kv(response) => SessionAnswer::Response(response),
                ServerResponse::Values(values) => SessionAnswer::Values(values),
                ServerResponse::AddressRecorded => SessionAnswer::Done,
            },
            Answer::Done { .. } | Answer::Started => SessionAnswer::Done,
            Answer::Refused { reason, leader_hint } => {
                self.shared.stats.redirects.fetch_add(1, Ordering::Relaxed);
                SessionAnswer::Refused { reason, leader_address: address(leader_hint) }
            }
            Answer::Unknown { leader_hint } => {
                SessionAnswer::Unknown { leader_address: address(leader_hint) }
            }
        }
    }
}

fn node_stopped() -> SessionAnswer {
    SessionAnswer::Unavailable("the node is shutting down".into())
}

fn status_answer(kind: StatusKind, status: &NodeStatus, shared: &Shared) -> SessionAnswer {
    match kind {
        StatusKind::Info(sections) => SessionAnswer::Text(status::info_text(status, shared, sections)),
        StatusKind::RaftInfo => SessionAnswer::Text(status::raft_info_text(status)),
        StatusKind::DbSize => SessionAnswer::Count(status.keys as u64),
    }
}

/// The change a membership command asks for. Addresses travel in the change's own entry:
/// recorded by every member when the change commits, and never if it is refused.
fn membership_request(command: MembershipCommand) -> Request<ServerQuery> {
    let (change, addresses) = match command {
        MembershipCommand::Add { node, address, voter } => {
            let change = if voter {
                MembershipChange::AddVoter(node)
            } else {
                MembershipChange::AddVoterWhenCaughtUp(node)
            };
            (change, vec![(node, address)])
        }
        MembershipCommand::Promote(node) => (MembershipChange::AddVoter(node), Vec::new()),
        MembershipCommand::Remove(node) => (MembershipChange::RemoveNode(node), Vec::new()),
        MembershipCommand::Set { voters, learners, addresses } => {
            (MembershipChange::SetMembers { voters, learners }, addresses)
        }
    };
    Request::ChangeMembership { change, context: machine::address_context(&addresses) }
}

/// A `RAFT.MEMBERS` that names a node nobody knows the address of is refused before it
/// reaches the log: the cluster could not reach that node.
fn missing_address(command: &MembershipCommand, known: &BTreeMap<NodeId, String>) -> Option<SessionAnswer> {
    let MembershipCommand::Set { voters, learners, addresses } = command else { return None };
    let given = |node: &NodeId| known.contains_key(node) || addresses.iter().any(|(id, _)| id == node);
    let unknown = voters.iter().chain(learners).find(|node| !given(node))?;
    Some(SessionAnswer::Unavailable(format!(
        "node {unknown} has no known address: name it as {unknown}=host:port"
    )))
}

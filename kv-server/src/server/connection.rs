//! One client connection: RESP in, requests to the node, RESP out.
//!
//! Commands are pipelined: every whole command in the buffer is submitted to the node
//! before the first answer is awaited, and the replies go out in order in one write.
//! A protocol error is answered and closes the connection (after the replies of the
//! commands before it); an unknown or malformed command is answered with an error and
//! the connection goes on.

use super::status::{self, NodeStatus};
use super::{NodeInput, Shared};
use crate::commands::{self, ClientCommand, WriteCommand};
use crate::machine::{self, ServerQuery, ServerResponse};
use crate::resp::{self, Parsed, Reply};
use kv::{Command, Query, Response};
use raft_core::{MembershipChange, NodeId, RejectReason};
use raft_host::{Answer, Request};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Most commands taken from one read before their replies are written.
const BATCH_COMMANDS: usize = 512;

type Answered = oneshot::Receiver<Answer<ServerResponse>>;

/// How the answer of a submitted command becomes its reply.
enum Pending {
    /// The reply is known already.
    Ready(Vec<u8>),
    /// `SET` (`+OK`), or `SET ... NX` (`+OK` or null).
    Set { answer: Answered, only_if_absent: bool },
    /// `DEL`: the number of keys that existed.
    Delete(Vec<Answered>),
    /// `KV.CAS` / `KV.CAD`: `[swapped, previous]`.
    CompareAndSet(Answered),
    /// `GET`.
    Get(Answered),
    /// `MGET` (`count: false`) or `EXISTS` (`count: true`).
    Many { answer: Answered, count: bool },
    /// `KV.LIST`.
    List(Answered),
    /// `RAFT.TRANSFER`, `RAFT.REMOVE`: `+OK` once started or in force.
    Done(Answered),
    /// `RAFT.ADD`: the address through the log, then the change.
    AddNode { id: NodeId, address: String },
    /// `INFO`, `RAFT.INFO`, `DBSIZE`.
    Status { receiver: oneshot::Receiver<NodeStatus>, kind: StatusKind },
}

#[derive(Clone, Copy)]
enum StatusKind {
    Info,
    RaftInfo,
    DbSize,
}

/// Serves one client until it quits, disconnects or breaks the protocol.
pub(crate) async fn serve(stream: TcpStream, shared: &Arc<Shared>) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer: Vec<u8> = Vec::with_capacity(16 << 10);
    let mut read_only = false;
    let mut reply = Reply::default();
    loop {
        let mut consumed = 0;
        let mut batch = Vec::new();
        let mut closing = false;
        while batch.len() < BATCH_COMMANDS {
            match resp::parse(&buffer[consumed..]) {
                Parsed::Command(arguments, used) => {
                    consumed += used;
                    if arguments.is_empty() {
                        continue;
                    }
                    match commands::parse(&arguments) {
                        Ok(ClientCommand::Quit) => {
                            batch.push(Pending::Ready(b"+OK\r\n".to_vec()));
                            closing = true;
                            break;
                        }
                        Ok(command) => batch.push(start(command, shared, &mut read_only).await),
                        Err(error) => {
                            let mut line = Reply::default();
                            line.error(&error);
                            batch.push(Pending::Ready(line.bytes));
                        }
                    }
                }
                Parsed::Incomplete => break,
                Parsed::Error(error) => {
                    shared.stats.client_protocol_errors.fetch_add(1, Ordering::Relaxed);
                    let mut line = Reply::default();
                    line.error(&format!("ERR {error}"));
                    batch.push(Pending::Ready(line.bytes));
                    closing = true;
                    break;
                }
            }
        }
        buffer.drain(..consumed);
        for pending in batch {
            finish(pending, shared, &mut reply).await;
        }
        if !reply.bytes.is_empty() {
            if writer.write_all(&reply.bytes).await.is_err() {
                return;
            }
            reply.bytes.clear();
        }
        if closing {
            let _ = writer.shutdown().await;
            return;
        }
        if consumed > 0 && !buffer.is_empty() {
            continue; // more whole commands may be buffered already
        }
        match reader.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return, // gone, perhaps mid-command: nothing to answer
            Ok(_) => {}
        }
    }
}

async fn submit(shared: &Shared, request: Request<ServerQuery>) -> Answered {
    let (reply, answer) = oneshot::channel();
    // If the node has stopped, the dropped sender answers "node stopped" in `finish`.
    let _ = shared.inbox.send(NodeInput::Request { request, reply }).await;
    answer
}

fn write_request(write: &WriteCommand, client: u64, sequence: u64) -> Request<ServerQuery> {
    let command = Command { client, sequence, operation: write.operation() };
    Request::Write(machine::kv_entry(&command))
}

fn ready(write: impl FnOnce(&mut Reply)) -> Pending {
    let mut reply = Reply::default();
    write(&mut reply);
    Pending::Ready(reply.bytes)
}

/// Starts a command: answers it at once, or submits it to the node.
async fn start(command: ClientCommand, shared: &Arc<Shared>, read_only: &mut bool) -> Pending {
    let read = |query: ServerQuery, read_only: bool| {
        if read_only {
            Request::LocalRead(query)
        } else {
            Request::Read(query)
        }
    };
    match command {
        ClientCommand::Ping(None) => ready(|reply| reply.simple("PONG")),
        ClientCommand::Ping(Some(text)) | ClientCommand::Echo(text) => ready(|reply| reply.bulk(Some(&text))),
        ClientCommand::Quit | ClientCommand::Ok => ready(|reply| reply.simple("OK")),
        ClientCommand::Command(query) => ready(|reply| query.reply(reply)),
        ClientCommand::Integer(number) => ready(|reply| reply.integer(number)),
        ClientCommand::Null => ready(|reply| reply.bulk(None)),
        ClientCommand::Hello => ready(|reply| reply.error("NOPROTO this server speaks RESP2 only")),
        ClientCommand::ConfigGet(pattern) => ready(|reply| config_get(&pattern, reply)),
        ClientCommand::ReadOnly(flag) => {
            *read_only = flag;
            ready(|reply| reply.simple("OK"))
        }
        ClientCommand::Info => status_request(shared, StatusKind::Info).await,
        ClientCommand::RaftInfo => status_request(shared, StatusKind::RaftInfo).await,
        ClientCommand::DbSize => status_request(shared, StatusKind::DbSize).await,
        ClientCommand::Get(key) => {
            Pending::Get(submit(shared, read(ServerQuery::Kv(Query::Get { key }), *read_only)).await)
        }
        ClientCommand::MultiGet(keys) => Pending::Many {
            answer: submit(shared, read(ServerQuery::Many(keys), *read_only)).await,
            count: false,
        },
        ClientCommand::Exists(keys) => Pending::Many {
            answer: submit(shared, read(ServerQuery::Many(keys), *read_only)).await,
            count: true,
        },
        ClientCommand::List { from, to, limit } => Pending::List(
            submit(shared, read(ServerQuery::Kv(Query::List { from, to, limit }), *read_only)).await,
        ),
        // Without a session (client 0): applied each time it reaches the log, as Redis does.
        ClientCommand::Write(writes) => start_writes(writes, 0, 0, shared).await,
        ClientCommand::SessionWrite { client, sequence, write } => {
            start_writes(vec![write], client, sequence, shared).await
        }
        ClientCommand::Transfer(id) => Pending::Done(submit(shared, Request::TransferLeadership(id)).await),
        ClientCommand::AddNode(id, address) => Pending::AddNode { id, address },
        ClientCommand::RemoveNode(id) => {
            Pending::Done(submit(shared, Request::ChangeMembership(MembershipChange::RemoveVoter(id))).await)
        }
    }
}

async fn start_writes(writes: Vec<WriteCommand>, client: u64, sequence: u64, shared: &Shared) -> Pending {
    match writes.as_slice() {
        [write @ WriteCommand::Set { only_if_absent, .. }] => Pending::Set {
            answer: submit(shared, write_request(write, client, sequence)).await,
            only_if_absent: *only_if_absent,
        },
        [write @ WriteCommand::CompareAndSet { .. }] => {
            Pending::CompareAndSet(submit(shared, write_request(write, client, sequence)).await)
        }
        deletes => {
            let mut answers = Vec::with_capacity(deletes.len());
            for write in deletes {
                answers.push(submit(shared, write_request(write, client, sequence)).await);
            }
            Pending::Delete(answers)
        }
    }
}

async fn status_request(shared: &Shared, kind: StatusKind) -> Pending {
    let (reply, receiver) = oneshot::channel();
    let _ = shared.inbox.send(NodeInput::Status(reply)).await;
    Pending::Status { receiver, kind }
}

/// `CONFIG GET`: what redis-benchmark and redis-cli ask about, answered truthfully.
fn config_get(pattern: &[u8], reply: &mut Reply) {
    const KNOWN: [(&str, &str); 4] =
        [("appendonly", "yes"), ("appendfsync", "always"), ("save", ""), ("databases", "1")];
    let matching: Vec<_> = KNOWN
        .iter()
        .filter(|(name, _)| pattern == b"*" || pattern.eq_ignore_ascii_case(name.as_bytes()))
        .collect();
    reply.array(matching.len() * 2);
    for (name, value) in matching {
        reply.bulk(Some(name.as_bytes()));
        reply.bulk(Some(value.as_bytes()));
    }
}

/// Waits for a command's answer and writes its reply.
async fn finish(pending: Pending, shared: &Arc<Shared>, reply: &mut Reply) {
    match pending {
        Pending::Ready(bytes) => reply.bytes.extend_from_slice(&bytes),
        Pending::Set { answer, only_if_absent } => match outcome(answer).await {
            Ok(ServerResponse::Kv(Response::Done)) => reply.simple("OK"),
            Ok(ServerResponse::Kv(Response::Swapped { swapped, .. })) if only_if_absent => {
                if swapped {
                    reply.simple("OK")
                } else {
                    reply.bulk(None)
                }
            }
            other => unexpected(other, shared, reply),
        },
        Pending::Delete(answers) => {
            let mut existed = 0;
            for answer in answers {
                match outcome(answer).await {
                    Ok(ServerResponse::Kv(Response::Deleted { existed: true })) => existed += 1,
                    Ok(ServerResponse::Kv(Response::Deleted { existed: false })) => {}
                    other => return unexpected(other, shared, reply),
                }
            }
            reply.integer(existed);
        }
        Pending::CompareAndSet(answer) => match outcome(answer).await {
            Ok(ServerResponse::Kv(Response::Swapped { swapped, previous })) => {
                reply.array(2);
                reply.integer(i64::from(swapped));
                reply.bulk(previous.as_deref());
            }
            other => unexpected(other, shared, reply),
        },
        Pending::Get(answer) => match outcome(answer).await {
            Ok(ServerResponse::Kv(Response::Value(value))) => reply.bulk(value.as_deref()),
            other => unexpected(other, shared, reply),
        },
        Pending::Many { answer, count } => match outcome(answer).await {
            Ok(ServerResponse::Values(values)) if count => {
                reply.integer(values.iter().filter(|value| value.is_some()).count() as i64)
            }
            Ok(ServerResponse::Values(values)) => {
                reply.array(values.len());
                for value in &values {
                    reply.bulk(value.as_deref());
                }
            }
            other => unexpected(other, shared, reply),
        },
        Pending::List(answer) => match outcome(answer).await {
            Ok(ServerResponse::Kv(Response::Entries(entries))) => {
                reply.array(entries.len() * 2);
                for (key, value) in &entries {
                    reply.bulk(Some(key));
                    reply.bulk(Some(value));
                }
            }
            other => unexpected(other, shared, reply),
        },
        Pending::Done(answer) => match answer_of(answer).await {
            Some(Answer::Started | Answer::Done { .. }) => reply.simple("OK"),
            Some(other) => refusal(other, shared, reply),
            None => node_stopped(reply),
        },
        Pending::AddNode { id, address } => add_node(id, &address, shared, reply).await,
        Pending::Status { receiver, kind } => match receiver.await {
            Ok(status) => match kind {
                StatusKind::Info => reply.bulk(Some(status::info_text(&status, shared).as_bytes())),
                StatusKind::RaftInfo => reply.bulk(Some(status::raft_info_text(&status).as_bytes())),
                StatusKind::DbSize => reply.integer(status.keys as i64),
            },
            Err(_) => node_stopped(reply),
        },
    }
}

/// `RAFT.ADD`: every member must know where the new node listens before it is a
/// voter, so its address goes through the log first, then the membership change.
async fn add_node(id: NodeId, address: &str, shared: &Arc<Shared>, reply: &mut Reply) {
    let recorded = submit(shared, Request::Write(machine::address_entry(id, address))).await;
    match answer_of(recorded).await {
        Some(Answer::Applied { .. }) => {}
        Some(other) => return refusal(other, shared, reply),
        None => return node_stopped(reply),
    }
    let change = submit(shared, Request::ChangeMembership(MembershipChange::AddVoter(id))).await;
    match answer_of(change).await {
        Some(Answer::Done { .. }) => reply.simple("OK"),
        Some(other) => refusal(other, shared, reply),
        None => node_stopped(reply),
    }
}

async fn answer_of(answer: Answered) -> Option<Answer<ServerResponse>> {
    answer.await.ok()
}

/// The response of an applied write or a served read, or the answer that is not one.
async fn outcome(answer: Answered) -> Result<ServerResponse, Option<Answer<ServerResponse>>> {
    match answer.await {
        Ok(Answer::Applied { response, .. } | Answer::Read(response)) => Ok(response),
        Ok(other) => Err(Some(other)),
        Err(_) => Err(None),
    }
}

fn unexpected(
    outcome: Result<ServerResponse, Option<Answer<ServerResponse>>>,
    shared: &Shared,
    reply: &mut Reply,
) {
    match outcome {
        Ok(ServerResponse::Kv(Response::Error(error))) => reply.error(&format!("ERR {error}")),
        Ok(other) => reply.error(&format!("ERR unexpected response {other:?}")),
        Err(Some(answer)) => refusal(answer, shared, reply),
        Err(None) => node_stopped(reply),
    }
}

fn node_stopped(reply: &mut Reply) {
    reply.error("ERR the node is shutting down");
}

/// A request that was not done: where to go instead (`MOVED 0 host:port`, the Redis
/// Cluster redirect), or why not.
fn refusal(answer: Answer<ServerResponse>, shared: &Shared, reply: &mut Reply) {
    let redirect = |hint: Option<NodeId>, reply: &mut Reply, fallback: &str| match hint
        .and_then(|leader| shared.address_of(leader))
    {
        Some(address) => reply.error(&format!("MOVED 0 {address}")),
        None => reply.error(fallback),
    };
    match answer {
        Answer::Refused { reason: RejectReason::NotLeader, leader_hint } => {
            redirect(leader_hint, reply, "TRYAGAIN no leader is known yet; retry shortly")
        }
        Answer::Refused { reason: RejectReason::LeadershipLost, leader_hint } => {
            redirect(leader_hint, reply, "TRYAGAIN leadership changed; retry")
        }
        Answer::Refused {
            reason:
                reason @ (RejectReason::TransferInProgress
                | RejectReason::TooManyUncommitted
                | RejectReason::TooManyPendingReads
                | RejectReason::MembershipChangeInProgress),
            ..
        } => reply.error(&format!("TRYAGAIN {reason}")),
        Answer::Refused { reason, .. } => reply.error(&format!("ERR {reason}")),
        Answer::Unknown { .. } => reply.error(
            "TRYAGAIN outcome unknown: leadership changed or the write waited too long; it may or may not be applied (a KV.EXEC retry with the same sequence applies once)",
        ),
        other => reply.error(&format!("ERR unexpected answer {other:?}")),
    }
}

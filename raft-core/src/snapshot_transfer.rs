//! Snapshots sent in chunks (Raft paper §7, Figure 13).
//!
//! The leader sends the chunk a follower asks for, one at a time: the first from offset
//! 0 when the follower needs the snapshot, then, on each `SnapshotChunkResponse`, the one
//! that starts where the follower's bytes end. A lost chunk or answer stalls the transfer
//! until the leader's usual snapshot retry (an election timeout without an answer), whose
//! first chunk the follower answers with how much it already holds: the transfer resumes
//! there rather than from the start. A newer snapshot on the leader, or a new leader,
//! starts over (the follower keeps only the snapshot whose first chunk it saw last).
//! The follower installs once it holds every byte, and answers as it always did, with
//! the `AppendEntriesResponse` that moves the leader past the snapshot.
//!
//! Neither side's core holds the snapshot's bytes: the leader's host reads each chunk
//! from its own snapshot (`Action::SendSnapshotChunk`), the follower's host keeps each
//! chunk as it arrives (`Action::StoreSnapshotChunk`) and the core counts them. No
//! message is bigger than `Config::max_snapshot_chunk_bytes`.

use crate::configuration::Configuration;
use crate::io::Action;
use crate::message::MessageBody;
use crate::node::RaftNode;
use crate::progress::ReplicationState;
use crate::types::{LogIndex, NodeId, Snapshot, SnapshotMeta};

/// One `InstallSnapshot` message's contents.
pub(crate) struct Chunk {
    pub(crate) meta: SnapshotMeta,
    pub(crate) configuration: Configuration,
    pub(crate) total_bytes: u64,
    pub(crate) offset: u64,
    pub(crate) chunk: Vec<u8>,
}

/// A snapshot a follower is receiving: what its first chunk said, and how many of its
/// bytes the host holds.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    meta: SnapshotMeta,
    configuration: Configuration,
    total_bytes: u64,
    received: u64,
}

impl RaftNode {
    /// Sends `peer` the chunk of the leader's snapshot that starts at `offset`.
    pub(crate) fn send_snapshot_chunk(&mut self, peer: NodeId, offset: u64, actions: &mut Vec<Action>) {
        let snapshot = self.snapshot.as_ref().expect("a leader sending a snapshot has one");
        let total_bytes = snapshot.size_bytes;
        let offset = offset.min(total_bytes);
        let end = offset.saturating_add(self.config.max_snapshot_chunk_bytes).min(total_bytes);
        let body = MessageBody::InstallSnapshot {
            meta: snapshot.meta,
            configuration: snapshot.configuration.clone(),
            total_bytes,
            offset,
            chunk: Vec::new(),
        };
        debug_assert_eq!(self.role, crate::Role::Leader);
        self.flush_hard_state(actions);
        let message = crate::message::Message { from: self.config.id, to: peer, term: self.term, body };
        actions.push(Action::SendSnapshotChunk { message, length: end - offset });
    }

    /// A follower holds `received_bytes` of the snapshot ending at `index`: send the next
    /// chunk, or start the newer snapshot if ours changed since.
    pub(crate) fn handle_snapshot_chunk_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        received_bytes: u64,
        actions: &mut Vec<Action>,
    ) {
        let now_tick = self.now_tick;
        let current = self.snapshot.as_ref().map(|snapshot| snapshot.meta.last_included_index);
        let Some(progress) = self.answering_follower(from) else { return };
        let ReplicationState::Snapshot { pending_index, .. } = progress.state else {
            self.counters.ignored_stale_response += 1;
            return;
        };
        if index != pending_index {
            self.counters.ignored_stale_response += 1;
            return;
        }
        if current != Some(pending_index) {
            // We compacted again meanwhile: the follower gets the newer snapshot.
            self.send_snapshot(from, actions);
            return;
        }
        // Progress: the retry timer counts from now.
        progress.become_snapshot(pending_index, now_tick);
        self.send_snapshot_chunk(from, received_bytes, actions);
    }

    /// A chunk of the leader's snapshot arrived: keep it, and install once complete.
    pub(crate) fn handle_snapshot_chunk(&mut self, leader: NodeId, chunk: Chunk, actions: &mut Vec<Action>) {
        let index = chunk.meta.last_included_index;
        if index <= self.log.commit_index {
            // Already have everything it covers; say how far we are.
            self.incoming_snapshot = None;
            let commit_index = self.log.commit_index;
            self.respond_append(leader, true, commit_index, 0, 0, actions);
            return;
        }
        let same = self
            .incoming_snapshot
            .as_ref()
            .is_some_and(|incoming| incoming.meta == chunk.meta && incoming.total_bytes == chunk.total_bytes);
        if !same {
            if chunk.offset != 0 {
                // A chunk of a snapshot whose start we never saw: ask for the start.
                let body =
                    MessageBody::SnapshotChunkResponse { last_included_index: index, received_bytes: 0 };
                self.send(leader, body, actions);
                return;
            }
            self.incoming_snapshot = Some(IncomingSnapshot {
                meta: chunk.meta,
                configuration: chunk.configuration,
                total_bytes: chunk.total_bytes,
                received: 0,
            });
        }
        let incoming = self.incoming_snapshot.as_mut().expect("set above");
        // A chunk we hold already (a resend) or one past a gap adds nothing.
        if chunk.offset == incoming.received && !chunk.chunk.is_empty() {
            incoming.received += chunk.chunk.len() as u64;
            let store =
                Action::StoreSnapshotChunk { meta: chunk.meta, offset: chunk.offset, bytes: chunk.chunk };
            actions.push(store);
        }
        if incoming.received < incoming.total_bytes {
            let received_bytes = incoming.received;
            let body = MessageBody::SnapshotChunkResponse { last_included_index: index, received_bytes };
            self.send(leader, body, actions);
            return;
        }
        let IncomingSnapshot { meta, configuration, total_bytes, .. } =
            self.incoming_snapshot.take().expect("set above");
        self.install_snapshot(leader, Snapshot { meta, configuration, size_bytes: total_bytes }, actions);
    }
}

//! The replicated state machine behind the driver.

use crate::snapshots::{ByteSink, ByteSource};
use raft_core::{Entry, EntryPayload, LogIndex};

/// What the driver replicates: commands applied in log order, queries answered from
/// the current state, and snapshots that stand for a prefix of the log.
///
/// Every replica applies the same committed commands in the same order, so `apply`
/// must be deterministic: no clock, no randomness, no IO. It must not panic on bytes
/// that are not a command either (a buggy or hostile client can propose anything):
/// answer them with an error response instead.
pub trait StateMachine {
    /// A read a client can ask.
    type Query;
    /// What a command or a query answers.
    type Response;

    /// Applies the command a committed entry carries, at `index`, and answers it.
    fn apply(&mut self, index: LogIndex, command: &[u8]) -> Self::Response;

    /// Answers a read from the current state.
    fn query(&self, query: &Self::Query) -> Self::Response;

    /// The state as bytes, to be restored by [`StateMachine::restore`] (on this node
    /// after a restart, or on a follower the leader sends it to).
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with the one a snapshot holds, or says why the bytes are not
    /// one (the state is then unspecified: the driver gives up on the node). Whatever
    /// the machine carries besides its state (a cache, a handle to shared context)
    /// stays: the driver starts from an empty machine the host supplies.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;

    /// [`StateMachine::snapshot`] written into `sink` as it is made, so a machine that
    /// streams (item by item) never holds its whole snapshot in memory. The default
    /// writes `snapshot()`'s bytes.
    fn snapshot_to(&self, sink: &mut dyn ByteSink) -> Result<(), String> {
        sink.write(&self.snapshot())
    }

    /// [`StateMachine::restore`] from `source` as it is read. The default reads every
    /// byte, then calls `restore`.
    fn restore_from(&mut self, source: &mut dyn ByteSource) -> Result<(), String> {
        let mut bytes = Vec::new();
        crate::snapshots::read_to_end(source, &mut bytes)?;
        self.restore(&bytes)
    }

    /// The log time (milliseconds) the latest applied entry that carries one set: the
    /// time a leader stamped ([`StateMachine::stamp`], [`StateMachine::housekeeping`]). A new leader's
    /// clock starts from it, so log time never goes backwards across leaders. 0 (the
    /// default): the machine keeps no log time.
    fn log_time_ms(&self) -> u64 {
        0
    }

    /// Writes the leader's log time into a command it is about to propose (the driver
    /// calls it on the leader for every client write, with the same clock
    /// [`StateMachine::housekeeping`] gets), so the time travels in the entry: a
    /// machine whose commands depend on time (expiry) reads it from there, and every
    /// replica applies the same one. The default leaves the command as it is.
    fn stamp(&self, _command: &mut [u8], _now_ms: u64) {}

    /// Asked on the leader every `DriverConfig::housekeeping_interval_ticks`, with the
    /// leader's log time: a command to put through the log, if the machine wants one
    /// (to expire sessions or keys on every replica at once, by the log's time rather
    /// than any replica's clock). The driver proposes it with no client waiting; it may
    /// fail to commit (leadership lost), and the next interval asks again. The
    /// default: none.
    fn housekeeping(&self, _now_ms: u64) -> Option<Vec<u8>> {
        None
    }

    /// A fingerprint of `response`, for observers that check replicas agree: a
    /// deterministic machine answers the entry at an index alike on every replica, so
    /// a difference means their states diverged (a clock read, an unordered map, a
    /// field a snapshot forgot). 0 (the default): not fingerprinted.
    fn answer_fingerprint(&self, _response: &Self::Response) -> u64 {
        0
    }

    /// Every committed entry passes here, in order, no-ops and membership changes
    /// included. The default applies commands and skips the rest; a state machine
    /// that fingerprints the whole log (the simulator's) overrides it.
    fn apply_entry(&mut self, entry: &Entry) -> Option<Self::Response> {
        match &entry.payload {
            EntryPayload::Command(command) => Some(self.apply(entry.index, command)),
            EntryPayload::Noop | EntryPayload::MembershipChange { .. } => None,
        }
    }
}

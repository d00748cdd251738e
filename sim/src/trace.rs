//! The run's trace: one record per simulated event, folded into a hash that two runs
//! can compare, and optionally written as JSON lines (`--trace FILE`).
//!
//! The hash is always on and cheap (a multiply-xorshift per field), so every report
//! carries it; determinism tests compare hashes instead of files.

use crate::event_queue::Micros;
use serde::Serialize;
use std::io::{self, Write};

/// What happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceEvent {
    /// A node's clock ticked.
    #[default]
    Tick,
    /// A message arrived.
    Deliver,
    /// A sync completed.
    Sync,
    /// A network cut healed.
    Heal,
    /// A scheduled fault fired (`kind` says which).
    Fault,
    /// A node crashed.
    Crash,
    /// A node restarted.
    Restart,
    /// A paused node resumed.
    Resume,
    /// A client proposed.
    Propose,
    /// A client read.
    Read,
    /// A client's operation ended (`count` 1: answered; 0: given up).
    Reply,
    /// An operator asked for a leadership transfer.
    Transfer,
    /// An operator asked for a membership change: `count` 0 removes `peer`, 1 makes it a
    /// voter, 2 a learner, 4 a learner promoted once caught up; 3 sets the members at
    /// once, `peer` the new voters as a bit set.
    ChangeMembership,
    /// The liveness phase started: everything healed.
    HealAll,
    /// The liveness bound was reached.
    LivenessDeadline,
    /// The cluster recovered in the liveness phase.
    Recovered,
}

/// The kind of message delivered, or of fault fired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum TraceKind {
    /// Nothing to say.
    #[default]
    #[serde(rename = "")]
    None,
    /// A pre-vote request.
    PreVote,
    /// A pre-vote answer.
    PreVoteResponse,
    /// A vote request.
    RequestVote,
    /// A vote answer.
    RequestVoteResponse,
    /// Entries (or a probe).
    AppendEntries,
    /// An answer to entries or a snapshot.
    AppendEntriesResponse,
    /// A leader heartbeat.
    Heartbeat,
    /// A heartbeat answer.
    HeartbeatResponse,
    /// A snapshot.
    InstallSnapshot,
    /// A leadership hand-over.
    TimeoutNow,
    /// A crash fault.
    #[serde(rename = "crash")]
    CrashFault,
    /// A pause fault.
    #[serde(rename = "pause")]
    PauseFault,
    /// One node cut off.
    #[serde(rename = "isolate")]
    Isolate,
    /// A two-sided cut.
    #[serde(rename = "split")]
    Split,
    /// A one-way cut.
    #[serde(rename = "one-way")]
    OneWay,
    /// A flapping link.
    #[serde(rename = "flap")]
    Flap,
    /// A notice that a committed configuration left the receiver out.
    Removed,
    /// A follower's answer to a snapshot chunk: how many bytes it holds.
    SnapshotChunkResponse,
}

/// One simulated event, as the trace records it. Fields that do not apply are 0 or "".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceRecord {
    /// Virtual time of the event.
    pub time_us: Micros,
    /// What happened.
    pub event: TraceEvent,
    /// The node it happened to (1-based id; 0 for the whole cluster).
    pub node: u64,
    /// The other node involved (the sender of a delivered message), if any.
    pub peer: u64,
    /// A term: the message's term for a delivery, the node's term otherwise.
    pub term: u64,
    /// The kind of message delivered, or the kind of fault.
    pub kind: TraceKind,
    /// An index: the log position a message refers to, or how far a sync reached.
    pub index: u64,
    /// A count: entries in a message, writes that survived a crash.
    pub count: u64,
}

/// Folds records into a hash and, if asked, writes them out.
pub struct Trace<'a> {
    hash: u64,
    output: Option<&'a mut dyn Write>,
    write_error: Option<io::Error>,
}

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

fn fold(hash: u64, word: u64) -> u64 {
    let mixed = (hash ^ word).wrapping_mul(MULTIPLIER);
    mixed ^ (mixed >> 29)
}

impl<'a> Trace<'a> {
    /// A trace that writes JSON lines to `output`, if given.
    pub fn new(output: Option<&'a mut dyn Write>) -> Trace<'a> {
        Trace { hash: 0, output, write_error: None }
    }

    /// Records one event.
    pub fn record(&mut self, record: TraceRecord) {
        // Event, kind, node and peer share a word (ids and peers are far below 2^24).
        let mut hash = self.hash;
        hash = fold(hash, record.time_us);
        hash = fold(
            hash,
            record.event as u64 | (record.kind as u64) << 8 | record.node << 16 | record.peer << 40,
        );
        hash = fold(hash, record.term);
        hash = fold(hash, record.index);
        hash = fold(hash, record.count);
        self.hash = hash;
        if let Some(output) = self.output.as_mut() {
            if self.write_error.is_none() {
                let written = serde_json::to_writer(&mut *output, &record)
                    .map_err(io::Error::from)
                    .and_then(|()| output.write_all(b"\n"));
                if let Err(error) = written {
                    self.write_error = Some(error);
                }
            }
        }
    }

    /// The hash of everything recorded so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Flushes the output; reports the first write error, if any.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some(error) = self.write_error.take() {
            return Err(error);
        }
        if let Some(output) = self.output.as_mut() {
            output.flush()?;
        }
        Ok(self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_every_field_and_the_order() {
        let record = TraceRecord { time_us: 5, event: TraceEvent::Tick, node: 1, ..TraceRecord::default() };
        let hash_of = |records: &[TraceRecord]| {
            let mut trace = Trace::new(None);
            records.iter().for_each(|record| trace.record(*record));
            trace.hash()
        };
        let base = hash_of(&[record]);
        assert_eq!(base, hash_of(&[record]));
        assert_ne!(base, hash_of(&[TraceRecord { node: 2, ..record }]));
        assert_ne!(
            base,
            hash_of(&[TraceRecord { event: TraceEvent::Tick, kind: TraceKind::Heartbeat, ..record }])
        );
        assert_ne!(base, hash_of(&[TraceRecord { count: 1, ..record }]));
        let other = TraceRecord { time_us: 6, ..record };
        assert_ne!(hash_of(&[record, other]), hash_of(&[other, record]));
    }

    #[test]
    fn records_are_written_as_json_lines() {
        let mut output = Vec::new();
        let mut trace = Trace::new(Some(&mut output));
        trace.record(TraceRecord { time_us: 5, event: TraceEvent::Crash, node: 3, ..TraceRecord::default() });
        trace.finish().unwrap();
        let text = String::from_utf8(output).unwrap();
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(value["event"], "crash");
        assert_eq!(value["node"], 3);
    }
}

//! Linearizability of the client history (Herlihy & Wing), checked once at the end of
//! a run.
//!
//! The history is split per key (`register`: P-compositionality), and each key's
//! operations are searched for a linearization (`search`: Wing & Gong with Lowe's
//! memoisation), with indeterminate operations free to take effect or not. Every search
//! has a step budget: when it runs out the verdict is [`Linearizability::Unknown`],
//! never a pass. A key with no linearization is shrunk (`shrink`) to a small
//! sub-history that still has none, which the violation prints.

mod register;
mod search;
mod shrink;

use super::{Invariant, Violation};
use crate::history::{ClientOp, Outcome};
use kv::{Bytes, Operation, Query, Response};
use search::{Memory, SearchResult};

/// The search steps every key may take before the verdict is "unknown", whatever its
/// length. A step is one visit of a call, return or deadline: a linearizable key of n
/// operations with c of them in flight at a time needs about n·c.
pub const SEARCH_STEPS_PER_KEY: u64 = 20_000_000;

/// Further steps a key may take per operation on it, so a long, busy key (hundreds of
/// thousands of operations from dozens of clients) is not cut short for its length.
pub const SEARCH_STEPS_PER_OPERATION: u64 = 400;

/// The step budget of a key with `operations` operations.
pub fn steps_for(operations: usize) -> u64 {
    SEARCH_STEPS_PER_KEY.saturating_add(SEARCH_STEPS_PER_OPERATION.saturating_mul(operations as u64))
}

/// How many search steps shrinking a violation may spend in all.
pub const SHRINK_STEPS: u64 = 20_000_000;

pub use register::TimeModel;
pub use search::MAX_EXPLORED_BYTES;

/// The checker's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability {
    /// Every key has a linearization.
    Linearizable {
        /// Keys checked.
        keys: usize,
        /// Search steps taken.
        steps: u64,
    },
    /// A key has none.
    Violated {
        /// The key.
        key: Bytes,
        /// How many operations touched it.
        operations_on_key: usize,
        /// The operations of the witness, as recorded, in invocation order: with the
        /// `weakened` writes taken as indeterminate, they have no linearization, and
        /// weakening any one of them (dropping a read, taking a write as indeterminate)
        /// gives one. A weakening of the history, so the history has none either.
        witness: Vec<ClientOp>,
        /// The writes the witness takes as indeterminate (each may have taken effect
        /// between its invocation and its return, or never) that overlap it in time, as
        /// recorded, in invocation order (the first few).
        overlapping: Vec<ClientOp>,
        /// The latest writes before the witness of each value it read, also taken as
        /// indeterminate, as recorded, in invocation order: where what it read came from.
        sources: Vec<ClientOp>,
    },
    /// A search ran out of steps: the history may or may not be linearizable.
    Unknown {
        /// The key whose search ran out.
        key: Bytes,
        /// How many operations touched it.
        operations_on_key: usize,
        /// The step budget it had.
        steps: u64,
    },
}

impl Linearizability {
    /// The verdict as a violation, for a run that must fail on it (`None` if linearizable).
    pub fn violation(&self) -> Option<Violation> {
        match self {
            Linearizability::Linearizable { .. } => None,
            Linearizability::Violated { key, operations_on_key, witness, overlapping, sources } => {
                let mut lines: Vec<String> = witness.iter().map(describe).collect();
                lines.push(describe_weakened(overlapping, sources));
                // Clients, not nodes, observed it: the violation names no node.
                Some(Violation::new(
                    Invariant::Linearizability,
                    Vec::new(),
                    format!(
                        "the {operations_on_key} operations on key {key:?} have no linearization; neither have these {}, even if every other write on the key took effect at any time between its invocation and its return, or never:\n{}",
                        witness.len(),
                        lines.join("\n")
                    ),
                ))
            }
            Linearizability::Unknown { key, operations_on_key, steps } => Some(Violation::new(
                Invariant::LinearizabilityUnknown,
                Vec::new(),
                format!(
                    "the search over the {operations_on_key} operations on key {key:?} hit its bound ({steps} steps or {} MiB of explored configurations); the history may or may not be linearizable (fewer clients make the search easier)",
                    MAX_EXPLORED_BYTES >> 20
                ),
            )),
        }
    }
}

/// Checks `history`, giving each key [`steps_for`] its length, with clocks as
/// [`TimeModel::default`] says.
pub fn check(history: &[ClientOp]) -> Linearizability {
    check_keys(history, TimeModel::default(), steps_for)
}

/// [`check`] with clocks as `time` says: how early a time to live can run out.
pub fn check_with_time(history: &[ClientOp], time: TimeModel) -> Linearizability {
    check_keys(history, time, steps_for)
}

/// Checks `history`, giving each key's search at most `steps_per_key` steps.
pub fn check_with_budget(history: &[ClientOp], steps_per_key: u64) -> Linearizability {
    check_keys(history, TimeModel::default(), |_| steps_per_key)
}

/// Checks every key of `history` with the budget `budget_for` gives its length. A
/// violation anywhere outranks an unknown elsewhere.
fn check_keys(history: &[ClientOp], time: TimeModel, budget_for: impl Fn(usize) -> u64) -> Linearizability {
    let mut unknown = None;
    let mut steps = 0;
    let keys = register::partition_with(history, time);
    for key in &keys {
        let key_budget = budget_for(key.ops.len());
        let mut budget = key_budget;
        let result = search::search(&key.ops, &mut budget, Memory::Fingerprint);
        steps += key_budget - budget;
        let unknown_here = || Linearizability::Unknown {
            key: Bytes::from(key.key),
            operations_on_key: key.ops.len(),
            steps: key_budget,
        };
        match result {
            SearchResult::Linearizable => {}
            SearchResult::Unknown => {
                unknown.get_or_insert_with(unknown_here);
            }
            SearchResult::NotLinearizable => {
                let mut budget = SHRINK_STEPS;
                let witness = shrink::shrink(&key.ops, &mut budget);
                // The witness is confirmed with exact memory: no fingerprint collision
                // can make a violation up.
                let mut budget = key_budget;
                if search::search(&witness.ops(), &mut budget, Memory::Exact) != SearchResult::NotLinearizable
                {
                    unknown.get_or_insert_with(unknown_here);
                    continue;
                }
                let (overlapping, sources) = witness.named_weakened();
                let recorded = |ops: &[register::KeyOp]| {
                    let mut sources: Vec<usize> = ops.iter().map(|op| op.source).collect();
                    sources.sort_unstable();
                    sources.dedup();
                    let mut recorded: Vec<ClientOp> =
                        sources.iter().map(|&source| history[source].clone()).collect();
                    recorded.sort_by_key(|op| op.invoke_us);
                    recorded
                };
                return Linearizability::Violated {
                    key: Bytes::from(key.key),
                    operations_on_key: key.ops.len(),
                    witness: recorded(&witness.core),
                    overlapping: recorded(&overlapping),
                    sources: recorded(&sources),
                };
            }
        }
    }
    unknown.unwrap_or(Linearizability::Linearizable { keys: keys.len(), steps })
}

/// The other writes of a witness, in words: which overlap it, and where what it read
/// came from.
fn describe_weakened(overlapping: &[ClientOp], sources: &[ClientOp]) -> String {
    let mut text = String::new();
    if overlapping.is_empty() {
        text.push_str("  no other write on the key overlaps them in time");
    } else {
        text.push_str("  the other writes on the key that overlap them in time:");
        for op in overlapping {
            text.push('\n');
            text.push_str(&describe(op));
        }
    }
    if !sources.is_empty() {
        text.push_str("\n  the latest writes before them of what they read:");
        for op in sources {
            text.push('\n');
            text.push_str(&describe(op));
        }
    }
    text
}

fn seconds(micros: u64) -> String {
    format!("{:.6} s", micros as f64 / 1e6)
}

/// One operation as a line of a witness: who, what, when, and what it saw.
pub fn describe(op: &ClientOp) -> String {
    let asked = match &op.operation {
        Operation::Set { key, value } => format!("set {key} = {value:?}"),
        Operation::Delete { key } => format!("delete {key}"),
        Operation::CompareAndSet { key, expected, new } => format!("cas {key} {expected:?} -> {new:?}"),
        Operation::Read(Query::Get { key }) => format!("get {key}"),
        Operation::Read(Query::List { from, to, .. }) => format!("list [{from:?}, {to:?})"),
        Operation::Clock { now_ms, .. } => format!("clock {now_ms} ms"),
        Operation::OpenSession => "open a session".to_string(),
        Operation::SetWith { key, value, expiry: kv::Expiry::In(ttl_ms), .. } => {
            format!("set {key} = {value:?} with a time to live of {ttl_ms} ms")
        }
        other => format!("{other:?}"),
    };
    let answered = match &op.outcome {
        Outcome::Ok(Response::Done) => "ok".to_string(),
        Outcome::Ok(Response::Deleted { existed }) => format!("ok, existed: {existed}"),
        Outcome::Ok(Response::Swapped { swapped, previous }) => {
            format!("ok, swapped: {swapped}, previous: {previous:?}")
        }
        Outcome::Ok(Response::Value(value)) => format!("ok, read {value:?}"),
        Outcome::Ok(Response::Entries(entries)) => format!("ok, read {entries:?}"),
        Outcome::Ok(Response::SessionOpened { client }) => format!("ok, session {client}"),
        Outcome::Ok(Response::Error(error)) => format!("error: {error}"),
        Outcome::Ok(Response::Stored { applied, .. }) => format!("ok, applied: {applied}"),
        Outcome::Ok(other) => format!("ok, {other:?}"),
        Outcome::Fail => "failed".to_string(),
        Outcome::Indeterminate => "indeterminate".to_string(),
    };
    let returned = op.return_us.map_or("never".to_string(), seconds);
    format!(
        "  client {} {asked}: {answered}  [invoked {}, returned {returned}]",
        op.client,
        seconds(op.invoke_us)
    )
}

#[cfg(test)]
mod tests;

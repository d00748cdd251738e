//! P-compositionality: a history is linearizable if and only if its projection on
//! every key is (Herlihy & Wing, locality). This file projects a key-value history onto
//! each key as operations on a register whose state is "absent" or one value.
//!
//! A `list` reads many keys at one instant; it is projected as a read of every key in
//! its range. That keeps only part of what it says (the instant is shared), so the
//! check stays sound (a violation on a key is a violation of the history) but may miss
//! a torn list. Failed operations and reads without an answer constrain nothing and are
//! left out; indeterminate writes stay in, optional.

use crate::event_queue::Micros;
use crate::history::{ClientOp, Outcome};
use kv::{Bytes, Expiry, Operation, Query, Response, SetCondition};
use std::collections::{BTreeMap, BTreeSet};

/// A value, interned per key; values are compared only for equality.
pub(crate) type ValueId = u32;

/// A register's state: absent or one value.
pub(crate) type State = Option<ValueId>;

/// An operation on one key, with what the client saw (`None`: it did not see it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RegisterOp {
    /// A read that returned this state.
    Read(State),
    /// An unconditional write (`set`).
    Write(State),
    /// A delete, and whether it reported the key existed.
    Delete { existed: Option<bool> },
    /// A compare-and-set, and whether it swapped and what it saw.
    CompareAndSet { expected: State, new: State, observed: Option<(bool, State)> },
    /// The value's time to live running out: a write with a time to live brings this
    /// along, as an operation that may take effect (from the earliest time the log's
    /// clock can have reached the deadline, see [`TimeModel`]) or never (log time
    /// stands still without a leader, so no latest time is known).
    Expire(State),
    /// A response that does not fit its request: no state explains it.
    Impossible,
}

impl RegisterOp {
    /// The state after this operation takes effect in `state`, or `None` if what the
    /// client saw cannot have happened in `state`.
    pub(crate) fn step(self, state: State) -> Option<State> {
        match self {
            RegisterOp::Read(seen) => (seen == state).then_some(state),
            RegisterOp::Write(value) => Some(value),
            RegisterOp::Delete { existed } => match existed {
                Some(existed) if existed != state.is_some() => None,
                _ => Some(None),
            },
            RegisterOp::CompareAndSet { expected, new, observed } => {
                let swaps = state == expected;
                if let Some((swapped, previous)) = observed {
                    if swapped != swaps || previous != state {
                        return None;
                    }
                }
                Some(if swaps { new } else { state })
            }
            RegisterOp::Expire(value) => (state == value && value.is_some()).then_some(None),
            RegisterOp::Impossible => None,
        }
    }

    /// Whether the operation leaves the state as it is wherever it can take effect: a
    /// read, a delete that found nothing, a compare-and-set seen failing.
    pub(crate) fn is_read_only(self) -> bool {
        matches!(
            self,
            RegisterOp::Read(_)
                | RegisterOp::Delete { existed: Some(false) }
                | RegisterOp::CompareAndSet { observed: Some((false, _)), .. }
        )
    }

    /// The state this operation saw and needs to find when it takes effect, if it saw a
    /// particular one.
    pub(crate) fn needs(self) -> Option<State> {
        match self {
            RegisterOp::Expire(value) => Some(value),
            RegisterOp::Read(seen) => Some(seen),
            RegisterOp::Delete { existed: Some(false) } => Some(None),
            RegisterOp::CompareAndSet { observed: Some((_, previous)), .. } => Some(previous),
            _ => None,
        }
    }

    /// The state this operation may leave behind when it changes the state, if any.
    pub(crate) fn may_produce(self) -> Option<State> {
        match self {
            RegisterOp::Write(value) => Some(value),
            RegisterOp::Delete { .. } | RegisterOp::Expire(_) => Some(None),
            RegisterOp::CompareAndSet { new, observed: None | Some((true, _)), .. } => Some(new),
            _ => None,
        }
    }
}

/// One operation on a key, placed in real time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyOp {
    pub(crate) op: RegisterOp,
    pub(crate) invoke_us: Micros,
    /// `None`: indeterminate, may take effect at any time after its invocation (before
    /// `deadline_us`, if any), or never.
    pub(crate) return_us: Option<Micros>,
    /// For an indeterminate write: the latest time it can have taken effect, if known.
    pub(crate) deadline_us: Option<Micros>,
    /// The position of the client operation it came from in the history.
    pub(crate) source: usize,
}

/// Every operation on one key. Keys and values are borrowed from the history: the
/// partition allocates nothing per operation but the operation itself.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyHistory<'h> {
    pub(crate) key: &'h [u8],
    pub(crate) ops: Vec<KeyOp>,
    values: BTreeMap<&'h [u8], ValueId>,
}

impl<'h> KeyHistory<'h> {
    fn intern(&mut self, value: Option<&'h Bytes>) -> State {
        let value = value?;
        let next = self.values.len() as ValueId;
        Some(*self.values.entry(value.as_slice()).or_insert(next))
    }

    fn push(&mut self, op: RegisterOp, client_op: &ClientOp, source: usize, deadline_us: Option<Micros>) {
        let (invoke_us, return_us) = (client_op.invoke_us, client_op.return_us);
        self.ops.push(KeyOp {
            op,
            invoke_us,
            return_us,
            deadline_us: deadline_us.filter(|_| return_us.is_none()),
            source,
        });
    }
}

/// For each indeterminate write of the history, the latest time it can have taken
/// effect: the return of its client's next acknowledged write. A client numbers its
/// writes and the store's session refuses a number older than one it applied, so a
/// write the client gave up on either took effect before the next one did (and so
/// before that one returned), or never. This is the exactly-once contract of `kv`
/// sessions, checked along with linearizability. It keeps a timed-out write from
/// staying a candidate to the end of the run, where it multiplies the configurations
/// the search must visit. (The bound is a time, not "before that write", because the
/// next write may be on another key; the order itself is not checked.)
fn write_deadlines(history: &[ClientOp]) -> Vec<Option<Micros>> {
    let mut deadlines = vec![None; history.len()];
    let mut given_up: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (position, op) in history.iter().enumerate() {
        if matches!(op.operation, Operation::Read(_)) {
            continue;
        }
        match &op.outcome {
            Outcome::Indeterminate => given_up.entry(op.client).or_default().push(position),
            Outcome::Ok(Response::Error(_)) | Outcome::Fail => {}
            Outcome::Ok(_) => {
                for earlier in given_up.remove(&op.client).unwrap_or_default() {
                    deadlines[earlier] = op.return_us;
                }
            }
        }
    }
    deadlines
}

/// How fast log time can run against the history's (virtual) time: what bounds how
/// early a time to live can run out. Log time advances with the leader's ticks, a
/// tick's worth at a time, and a leader's clock may run fast (clock skew); so a time
/// to live of `d` cannot run out before `d × min_fraction_ppm / 10⁶ − slack_us` of
/// history time has passed since its write was invoked. (Nothing bounds how late:
/// without a leader, log time stands still.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeModel {
    /// The least history time per unit of log time, in parts per million, with a fifth
    /// set aside for the ticks a leader change adds (its clock starts between ticks).
    pub min_fraction_ppm: u64,
    /// History time a stamp can be ahead by: two ticks (the write's stamp taken just
    /// before a tick, a later one just after the next).
    pub slack_us: Micros,
}

impl TimeModel {
    /// Clocks that tick every `tick_us` and run at most `fast_ppm` parts per million
    /// fast.
    pub fn new(tick_us: Micros, fast_ppm: u64) -> TimeModel {
        let fraction = 1_000_000u64 * 1_000_000 / (1_000_000 + fast_ppm);
        TimeModel { min_fraction_ppm: fraction * 4 / 5, slack_us: 2 * tick_us }
    }

    /// The earliest history time a time to live of `ttl_ms`, set by a write invoked at
    /// `invoked_us`, can have run out.
    pub fn earliest_expiry(&self, invoked_us: Micros, ttl_ms: i64) -> Micros {
        let ttl_us = (ttl_ms.max(0) as u64).saturating_mul(1_000);
        let at_least =
            (ttl_us.saturating_mul(self.min_fraction_ppm) / 1_000_000).saturating_sub(self.slack_us);
        invoked_us.saturating_add(at_least)
    }
}

impl Default for TimeModel {
    /// The simulator's clocks: ticks of 10 ms, up to 10 % fast (see `faults`).
    fn default() -> TimeModel {
        TimeModel::new(10_000, 100_000)
    }
}

/// The keys an operation touches, and whether the register model covers it. The
/// model covers what the simulator's clients send: get, list, set (with a relative
/// time to live or none), delete, compare-and-set.
fn touched(operation: &Operation) -> (Vec<&Bytes>, bool) {
    match operation {
        Operation::Set { key, .. } | Operation::Delete { key } | Operation::CompareAndSet { key, .. } => {
            (vec![key], true)
        }
        Operation::Read(Query::Get { key }) => (vec![key], true),
        Operation::Read(Query::List { .. }) | Operation::Clock { .. } | Operation::OpenSession => {
            (Vec::new(), true)
        }
        Operation::SetWith {
            key,
            condition: SetCondition::Always,
            expiry: Expiry::Clear | Expiry::In(_),
            get: false,
            ..
        } => (vec![key], true),
        Operation::SetWith { key, .. }
        | Operation::IncrementBy { key, .. }
        | Operation::IncrementByFloat { key, .. }
        | Operation::Append { key, .. }
        | Operation::SetRange { key, .. }
        | Operation::GetDelete { key }
        | Operation::GetExpire { key, .. }
        | Operation::Expire { key, .. }
        | Operation::Read(Query::TimeToLive { key }) => (vec![key], false),
        Operation::Rename { from, to, .. } => (vec![from, to], false),
        Operation::SetMany { pairs, .. } => (pairs.iter().map(|(key, _)| key).collect(), false),
        Operation::DeleteMany { keys } | Operation::Read(Query::GetMany { keys }) => {
            (keys.iter().collect(), false)
        }
        Operation::Read(Query::Keys { .. }) => (Vec::new(), true),
        Operation::Transaction(operations) => {
            (operations.iter().flat_map(|operation| touched(operation).0).collect(), false)
        }
        Operation::FlushAll => (Vec::new(), false),
    }
}

/// The history's projection on each key it mentions, in key order, with clocks as
/// `time` says. Keys an operation the model does not cover touches are left out (a
/// flush leaves every key out): checked, they could be reported wrongly.
pub(crate) fn partition_with(history: &[ClientOp], time: TimeModel) -> Vec<KeyHistory<'_>> {
    let mut keys: BTreeMap<&[u8], KeyHistory> = BTreeMap::new();
    let mut uncovered: BTreeSet<&[u8]> = BTreeSet::new();
    // Every key any operation names, so a list can be read as a read of each.
    for op in history {
        if matches!(op.operation, Operation::FlushAll) {
            return Vec::new();
        }
        let (named, covered) = touched(&op.operation);
        for key in named {
            key_history(&mut keys, key);
            if !covered {
                uncovered.insert(key);
            }
        }
        if let (Operation::Read(Query::List { .. }), Outcome::Ok(Response::Entries(entries))) =
            (&op.operation, &op.outcome)
        {
            entries.iter().for_each(|(key, _)| {
                key_history(&mut keys, key);
            });
        }
    }
    let universe: Vec<&[u8]> = keys.keys().copied().collect();
    let deadlines = write_deadlines(history);
    for (source, client_op) in history.iter().enumerate() {
        let response = match &client_op.outcome {
            Outcome::Ok(Response::Error(_)) | Outcome::Fail => continue,
            Outcome::Ok(response) => Some(response),
            Outcome::Indeterminate => None,
        };
        match &client_op.operation {
            Operation::Set { key, value } => {
                let keyed = key_history(&mut keys, key);
                let op = match response {
                    None | Some(Response::Done) => RegisterOp::Write(keyed.intern(Some(value))),
                    Some(_) => RegisterOp::Impossible,
                };
                keyed.push(op, client_op, source, deadlines[source]);
            }
            Operation::Delete { key } => {
                let op = match response {
                    None => RegisterOp::Delete { existed: None },
                    Some(Response::Deleted { existed }) => RegisterOp::Delete { existed: Some(*existed) },
                    Some(_) => RegisterOp::Impossible,
                };
                key_history(&mut keys, key).push(op, client_op, source, deadlines[source]);
            }
            Operation::CompareAndSet { key, expected, new } => {
                let keyed = key_history(&mut keys, key);
                let (expected, new) = (keyed.intern(expected.as_ref()), keyed.intern(new.as_ref()));
                let op = match response {
                    None => RegisterOp::CompareAndSet { expected, new, observed: None },
                    Some(Response::Swapped { swapped, previous }) => {
                        let previous = keyed.intern(previous.as_ref());
                        RegisterOp::CompareAndSet { expected, new, observed: Some((*swapped, previous)) }
                    }
                    Some(_) => RegisterOp::Impossible,
                };
                keyed.push(op, client_op, source, deadlines[source]);
            }
            Operation::Read(Query::Get { key }) => {
                let keyed = key_history(&mut keys, key);
                match response {
                    None => {}
                    Some(Response::Value(value)) => {
                        let op = RegisterOp::Read(keyed.intern(value.as_ref()));
                        keyed.push(op, client_op, source, deadlines[source]);
                    }
                    Some(_) => keyed.push(RegisterOp::Impossible, client_op, source, None),
                }
            }
            Operation::Read(Query::List { from, to, limit }) => {
                let Some(Response::Entries(entries)) = response else {
                    continue;
                };
                // A full page says nothing about keys past its last entry.
                let last_covered = match entries.last() {
                    Some((last, _)) if *limit > 0 && entries.len() >= *limit as usize => Some(last),
                    _ => None,
                };
                let seen: BTreeMap<&[u8], &Bytes> =
                    entries.iter().map(|(key, value)| (key.as_slice(), value)).collect();
                for &key in &universe {
                    let in_range = key >= from.as_slice()
                        && to.as_ref().is_none_or(|to| key < to.as_slice())
                        && last_covered.is_none_or(|last| key <= last.as_slice());
                    if in_range {
                        let keyed = key_history(&mut keys, key);
                        let op = RegisterOp::Read(keyed.intern(seen.get(key).copied()));
                        keyed.push(op, client_op, source, deadlines[source]);
                    }
                }
            }
            Operation::SetWith { key, value, expiry, .. } if !uncovered.contains(key.as_slice()) => {
                let keyed = key_history(&mut keys, key);
                let value = keyed.intern(Some(value));
                let op = match response {
                    None | Some(Response::Stored { applied: true, previous: None }) => {
                        RegisterOp::Write(value)
                    }
                    Some(_) => RegisterOp::Impossible,
                };
                keyed.push(op, client_op, source, deadlines[source]);
                if let (Expiry::In(ttl_ms), false) = (expiry, op == RegisterOp::Impossible) {
                    keyed.ops.push(KeyOp {
                        op: RegisterOp::Expire(value),
                        invoke_us: time.earliest_expiry(client_op.invoke_us, *ttl_ms),
                        return_us: None,
                        deadline_us: None,
                        source,
                    });
                }
            }
            // Neither touches a key, or the model does not cover it (its keys go).
            _ => {}
        }
    }
    keys.into_values().filter(|key| !uncovered.contains(key.key)).collect()
}

fn key_history<'k, 'h>(
    keys: &'k mut BTreeMap<&'h [u8], KeyHistory<'h>>,
    key: &'h [u8],
) -> &'k mut KeyHistory<'h> {
    keys.entry(key).or_insert_with(|| KeyHistory { key, ..KeyHistory::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_set_must_agree_with_the_state_it_saw() {
        let cas = |observed| RegisterOp::CompareAndSet { expected: Some(1), new: Some(2), observed };
        assert_eq!(cas(None).step(Some(1)), Some(Some(2)));
        assert_eq!(cas(None).step(Some(3)), Some(Some(3)), "an unknown failed swap changes nothing");
        assert_eq!(cas(Some((true, Some(1)))).step(Some(1)), Some(Some(2)));
        assert_eq!(cas(Some((true, Some(1)))).step(Some(3)), None);
        assert_eq!(cas(Some((false, Some(3)))).step(Some(3)), Some(Some(3)));
        assert_eq!(cas(Some((false, Some(3)))).step(None), None, "it saw 3, not absent");
    }

    #[test]
    fn delete_must_agree_with_whether_the_key_existed() {
        assert_eq!(RegisterOp::Delete { existed: Some(true) }.step(None), None);
        assert_eq!(RegisterOp::Delete { existed: Some(true) }.step(Some(1)), Some(None));
        assert_eq!(RegisterOp::Delete { existed: None }.step(None), Some(None));
    }
}

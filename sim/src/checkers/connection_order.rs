//! Connection order: a connection's commands take effect in the order it sent them, as
//! Redis promises a pipeline. Linearizability cannot see it: pipelined commands overlap
//! in time, so any order between them linearizes. This checker reads the history of
//! each pipelining connection (`connections`) in the order it sent its commands and
//! holds every successful read of a key to the writes of that key sent before and
//! after it on the same connection:
//!
//! - a read sent after a write must not see a state from before it: its value is the
//!   write's own, or one some write of the key may have left later (a write that had
//!   not returned when this one was sent, or whose outcome is unknown); absent, only if
//!   such a delete exists;
//! - a read sent before a write must not see that write.
//!
//! Values are unique per write (client id and sequence), so a value names its write.
//! The check only uses what the history proves, so it never fires on a correct run.

use super::{Invariant, Violation};
use crate::history::{ClientOp, Outcome};
use kv::{Bytes, ClientId, Operation, Query, Response};
use std::collections::BTreeMap;

/// What a write of a key leaves it holding.
fn written(operation: &Operation) -> Option<(&Bytes, Option<&Bytes>)> {
    match operation {
        Operation::Set { key, value } => Some((key, Some(value))),
        Operation::Delete { key } => Some((key, None)),
        Operation::CompareAndSet { key, new, .. } => Some((key, new.as_ref())),
        Operation::SetWith { key, value, .. } => Some((key, Some(value))),
        // The simulator's clients send none of the others.
        _ => None,
    }
}

/// Whether a write may leave its key absent later, on its own: a time to live.
fn may_expire(operation: &Operation) -> Option<&Bytes> {
    match operation {
        Operation::SetWith { key, expiry: kv::Expiry::In(_) | kv::Expiry::At(_), .. } => Some(key),
        _ => None,
    }
}

fn describe(value: Option<&Bytes>) -> String {
    value.map_or("absent".to_string(), |value| format!("{:?}", String::from_utf8_lossy(value)))
}

/// Checks the connections whose client ids are `connections`.
pub fn check(history: &[ClientOp], connections: impl Fn(ClientId) -> bool) -> Result<(), Violation> {
    // Writes that may have taken effect, by what they left: the key, its value (absent
    // after a delete), and the latest return among them (`None`: one may still be
    // taking effect, as late as can be).
    let mut writes: BTreeMap<(&Bytes, Option<&Bytes>), Option<u64>> = BTreeMap::new();
    for op in history {
        if matches!(op.outcome, Outcome::Fail) {
            continue;
        }
        if let Some(left) = written(&op.operation) {
            let latest = writes.entry(left).or_insert(Some(0));
            *latest = match (*latest, op.return_us) {
                (Some(latest), Some(returned)) => Some(latest.max(returned)),
                _ => None,
            };
        }
        // A time to live running out is a delete whose time nothing bounds.
        if let Some(key) = may_expire(&op.operation) {
            writes.insert((key, None), None);
        }
    }
    let mut by_connection: Vec<(ClientId, Vec<&ClientOp>)> = Vec::new();
    for op in history.iter().filter(|op| connections(op.client)) {
        match by_connection.iter_mut().find(|(client, _)| *client == op.client) {
            Some((_, ops)) => ops.push(op),
            None => by_connection.push((op.client, vec![op])),
        }
    }
    for (client, ops) in &by_connection {
        // Forward: each read against the latest successful write of its key sent before it.
        let mut latest: BTreeMap<&Bytes, &ClientOp> = BTreeMap::new();
        for op in ops {
            if let (Some((key, _)), Outcome::Ok(_)) = (written(&op.operation), &op.outcome) {
                latest.insert(key, op);
                continue;
            }
            let (Operation::Read(Query::Get { key }), Outcome::Ok(Response::Value(seen))) =
                (&op.operation, &op.outcome)
            else {
                continue;
            };
            let Some(write) = latest.get(key) else { continue };
            let own = written(&write.operation).is_some_and(|(_, value)| value == seen.as_ref());
            let later = writes
                .get(&(key, seen.as_ref()))
                .is_some_and(|latest| latest.is_none_or(|returned| returned >= write.invoke_us));
            if !own && !later {
                return Err(Violation::new(
                    Invariant::ConnectionOrder,
                    Vec::new(),
                    format!(
                        "connection {client}: GET {} read {}, a state from before the write it sent earlier on the same connection ({:?}, invoked at {} us, ok): a pipelined read must see the writes before it",
                        String::from_utf8_lossy(key),
                        describe(seen.as_ref()),
                        write.operation,
                        write.invoke_us
                    ),
                ));
            }
        }
        // Backward: no read may see a value written by a command sent after it.
        let mut later_values: BTreeMap<(&Bytes, &Bytes), ()> = BTreeMap::new();
        for op in ops.iter().rev() {
            if let Some((key, Some(value))) = written(&op.operation) {
                later_values.insert((key, value), ());
                continue;
            }
            if let (Operation::Read(Query::Get { key }), Outcome::Ok(Response::Value(Some(seen)))) =
                (&op.operation, &op.outcome)
            {
                if later_values.contains_key(&(key, seen)) {
                    return Err(Violation::new(
                        Invariant::ConnectionOrder,
                        Vec::new(),
                        format!(
                            "connection {client}: GET {} read {}, written by a command it sent after the read",
                            String::from_utf8_lossy(key),
                            describe(Some(seen))
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        client: ClientId,
        operation: Operation,
        invoke_us: u64,
        return_us: Option<u64>,
        outcome: Outcome,
    ) -> ClientOp {
        ClientOp { client, operation, invoke_us, return_us, outcome }
    }

    fn set(key: &str, value: &str) -> Operation {
        Operation::Set { key: key.into(), value: value.into() }
    }

    fn get(key: &str) -> Operation {
        Operation::Read(Query::Get { key: key.into() })
    }

    fn read(value: Option<&str>) -> Outcome {
        Outcome::Ok(Response::Value(value.map(Bytes::from)))
    }

    const C: ClientId = 9;

    fn all(_: ClientId) -> bool {
        true
    }

    #[test]
    fn a_pipelined_read_that_misses_the_write_before_it_fires() {
        // SET p v then GET p on one connection, overlapping: the read saw nothing.
        let history = [
            op(C, set("p", "v"), 10, Some(30), Outcome::Ok(Response::Done)),
            op(C, get("p"), 10, Some(20), read(None)),
        ];
        let violation = check(&history, all).unwrap_err();
        assert_eq!(violation.invariant, Invariant::ConnectionOrder);
        assert!(violation.detail.contains("absent"), "{violation}");
        // An older value, written and returned before the SET was sent, fires too.
        let history = [
            op(1, set("p", "old"), 0, Some(5), Outcome::Ok(Response::Done)),
            op(C, set("p", "v"), 10, Some(30), Outcome::Ok(Response::Done)),
            op(C, get("p"), 10, Some(20), read(Some("old"))),
        ];
        assert!(check(&history, all).is_err());
    }

    #[test]
    fn a_read_that_sees_its_write_or_a_later_one_passes() {
        let history = [
            op(1, set("p", "old"), 0, Some(5), Outcome::Ok(Response::Done)),
            op(C, set("p", "v"), 10, Some(30), Outcome::Ok(Response::Done)),
            op(C, get("p"), 10, Some(40), read(Some("v"))),
            // Another client's write that overlapped: it may come after ours.
            op(2, set("p", "other"), 12, Some(35), Outcome::Ok(Response::Done)),
            op(C, get("p"), 10, Some(40), read(Some("other"))),
        ];
        assert_eq!(check(&history, all), Ok(()));
        // Connections the predicate leaves out are not checked.
        let history = [
            op(C, set("p", "v"), 10, Some(30), Outcome::Ok(Response::Done)),
            op(C, get("p"), 10, Some(20), read(None)),
        ];
        assert_eq!(check(&history, |_| false), Ok(()));
    }

    #[test]
    fn a_read_that_sees_a_write_sent_after_it_fires() {
        let history = [
            op(C, get("p"), 10, Some(30), read(Some("v"))),
            op(C, set("p", "v"), 10, Some(20), Outcome::Ok(Response::Done)),
        ];
        let violation = check(&history, all).unwrap_err();
        assert!(violation.detail.contains("after the read"), "{violation}");
    }
}

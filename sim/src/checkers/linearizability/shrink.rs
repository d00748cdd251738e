//! Shrinking a non-linearizable key history to a small witness a person can read, by
//! steps that only ever *weaken* the history, so the witness's anomaly is the history's.
//!
//! A step weakens a history when every linearization of the history before it gives
//! one of the history after it. Then a witness with no linearization proves the
//! original has none, and what it shows went wrong really went wrong. Three kinds:
//!
//! - **Drop a read-only operation** (a read, a delete that found nothing, a
//!   compare-and-set seen failing). It changed no state wherever it took effect, so
//!   the same order without it is still legal.
//! - **Weaken a write**: forget what its client saw and when it returned; it becomes
//!   indeterminate, taking effect at any point from its invocation to its old return
//!   (its deadline), or never. Its old place in a linearization is still allowed.
//!   A write is never dropped: the value it left may be what explains a later read
//!   (dropping one is how an earlier shrinker turned a real stale read into a
//!   different, made-up anomaly).
//! - **Cut the tail**: drop the weakened writes invoked after every remaining
//!   determinate operation returned. In any linearization they come after all of
//!   those, so the prefix before them is a linearization, with the weakened writes
//!   after it left out (each may never have happened).
//! - **Cut the front** (`cut_front`): the weakened writes that must all take effect
//!   (or not) before anything else begins only decide the state the rest starts from.
//!   Keep the writers of every value the rest mentions (and, for a kept
//!   compare-and-set, of the value it expects), and one writer of a value it does not
//!   mention: values the rest never names are alike to it. Whatever state a
//!   linearization reached before the rest began, these reach it (or one alike).
//!
//! Delta debugging chooses which determinate operations stay as recorded (the *core*):
//! it removes chunks of the core, from its end backwards, halving the chunk size, and keeps a removal whenever
//! what remains still has no linearization. The core is then 1-minimal when the budget
//! allows: weakening any one of its operations leaves a linearizable history.

use super::register::{KeyOp, RegisterOp, State, ValueId};
use super::search::{search, Memory, SearchResult};
use std::collections::BTreeSet;

/// A non-linearizable weakening of a key history: the operations kept as recorded, and
/// the writes taken as indeterminate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Witness {
    /// Determinate operations kept exactly as recorded, in history order.
    pub(crate) core: Vec<KeyOp>,
    /// Writes weakened to indeterminate, in history order (for an indeterminate write
    /// of the history, as it was).
    pub(crate) weakened: Vec<KeyOp>,
}

impl Witness {
    /// The witness as one history: the core and the weakened writes, in history order.
    pub(crate) fn ops(&self) -> Vec<KeyOp> {
        let mut ops: Vec<KeyOp> = self.core.iter().chain(&self.weakened).copied().collect();
        ops.sort_by_key(|op| op.source);
        ops
    }
}

/// `op` with its response and return forgotten: it may take effect from its invocation
/// up to its old return (or its deadline, if it never returned), or never.
pub(crate) fn weaken(op: &KeyOp) -> KeyOp {
    let weakened = match op.op {
        RegisterOp::Delete { .. } => RegisterOp::Delete { existed: None },
        RegisterOp::CompareAndSet { expected, new, .. } => {
            RegisterOp::CompareAndSet { expected, new, observed: None }
        }
        other => other,
    };
    KeyOp { op: weakened, return_us: None, deadline_us: op.return_us.or(op.deadline_us), ..*op }
}

/// Whether an operation can only be dropped, never weakened: it changes no state
/// wherever it takes effect (or takes effect nowhere, as a response that fits no request).
fn droppable(op: &KeyOp) -> bool {
    op.op.is_read_only() || matches!(op.op, RegisterOp::Impossible)
}

/// The history with the operations at `core` (positions in `ops`, ascending) kept as
/// recorded, every other write weakened, every other read-only operation dropped, the
/// weakened writes invoked after the core's last return cut off, and the front cut.
pub(crate) fn weakening(ops: &[KeyOp], core: &[usize]) -> Witness {
    cut_front(weaken_all_but(ops, core))
}

/// [`weakening`] without the front cut.
fn weaken_all_but(ops: &[KeyOp], core: &[usize]) -> Witness {
    let last_return = core.iter().filter_map(|&position| ops[position].return_us).max().unwrap_or(0);
    let mut witness = Witness { core: Vec::new(), weakened: Vec::new() };
    let mut core = core.iter().peekable();
    for (position, op) in ops.iter().enumerate() {
        if core.next_if_eq(&&position).is_some() {
            witness.core.push(*op);
        } else if op.invoke_us > last_return {
            // The tail: after everything kept, whatever it is.
        } else if op.return_us.is_none() {
            // Indeterminate already: as weak as it gets.
            witness.weakened.push(*op);
        } else if !droppable(op) {
            witness.weakened.push(weaken(op));
        }
    }
    witness
}

/// The values an operation names: what it read, wrote, expected or saw.
fn named_values(op: &KeyOp) -> [State; 3] {
    match op.op {
        RegisterOp::Read(seen) | RegisterOp::Write(seen) | RegisterOp::Expire(seen) => [seen, None, None],
        RegisterOp::CompareAndSet { expected, new, observed } => {
            [expected, new, observed.and_then(|(_, previous)| previous)]
        }
        RegisterOp::Delete { .. } | RegisterOp::Impossible => [None, None, None],
    }
}

/// Drops the weakened writes before everything else that cannot matter (see the module
/// docs): those that must take effect, if at all, before any other operation begins,
/// and write a value nothing after them names, but for one such write.
pub(crate) fn cut_front(mut witness: Witness) -> Witness {
    // Everything else begins at `start`: the earliest invocation of the core and of the
    // weakened writes that may still take effect then. Taking deadlines from the
    // latest down, each write that may still be pending at `start` moves `start` back
    // to its invocation; the first that cannot ends the search.
    let mut start = witness.core.iter().map(|op| op.invoke_us).min().unwrap_or(0);
    let mut by_deadline: Vec<usize> = (0..witness.weakened.len()).collect();
    by_deadline
        .sort_by_key(|&index| std::cmp::Reverse(witness.weakened[index].deadline_us.unwrap_or(u64::MAX)));
    let mut early = vec![true; witness.weakened.len()];
    for index in by_deadline {
        let op = &witness.weakened[index];
        if op.deadline_us.is_some_and(|deadline| deadline < start) {
            break;
        }
        early[index] = false;
        start = start.min(op.invoke_us);
    }
    if !early.contains(&true) {
        return witness;
    }
    // The values the rest names, and (closing over the early compare-and-sets that
    // produce one) the values those expect.
    let mut named: BTreeSet<ValueId> = BTreeSet::new();
    let later = witness
        .core
        .iter()
        .chain(witness.weakened.iter().zip(&early).filter(|(_, &early)| !early).map(|(op, _)| op));
    named.extend(later.flat_map(named_values).flatten());
    let produces = |op: &KeyOp| match op.op {
        RegisterOp::Write(value) | RegisterOp::CompareAndSet { new: value, .. } => value,
        _ => None,
    };
    // One early plain write of a value nothing names stands for all such values.
    let representative = (0..witness.weakened.len()).rev().find(|&index| {
        let op = &witness.weakened[index];
        early[index] && matches!(op.op, RegisterOp::Write(Some(value)) if !named.contains(&value))
    });
    let mut keep = vec![false; witness.weakened.len()];
    loop {
        let mut changed = false;
        for (index, op) in witness.weakened.iter().enumerate() {
            if !early[index] || keep[index] {
                continue;
            }
            let Some(value) = produces(op) else { continue };
            // Without a representative, a compare-and-set's unnamed value has no stand-in.
            let needed = named.contains(&value)
                || (representative.is_none() && matches!(op.op, RegisterOp::CompareAndSet { .. }));
            if needed {
                keep[index] = true;
                changed = true;
                if let RegisterOp::CompareAndSet { expected: Some(expected), .. } = op.op {
                    named.insert(expected);
                }
            }
        }
        if !changed {
            break;
        }
    }
    if let Some(index) = representative {
        keep[index] = true;
    }
    let mut index = 0;
    witness.weakened.retain(|_| {
        let kept = !early[index] || keep[index];
        index += 1;
        kept
    });
    witness
}

/// A small non-linearizable weakening of `ops` (which has no linearization), spending
/// at most `budget` search steps. With no budget, the witness is `ops` itself (its
/// indeterminate writes are weak already).
pub(crate) fn shrink(ops: &[KeyOp], budget: &mut u64) -> Witness {
    // Indeterminate writes are weakened already; only determinate operations can be core.
    let mut core: Vec<usize> = (0..ops.len()).filter(|&position| ops[position].return_us.is_some()).collect();
    loop {
        let before = core.len();
        let mut chunk = core.len().div_ceil(2);
        while chunk >= 1 {
            // From the end backwards: removing late operations cuts the tail of weakened
            // writes too, so the searches get shorter fastest that way.
            let mut end = core.len();
            while end > 0 {
                if *budget == 0 {
                    return weakening(ops, &core);
                }
                let start = end.saturating_sub(chunk);
                let candidate: Vec<usize> = core[..start].iter().chain(&core[end..]).copied().collect();
                let still_fails = !candidate.is_empty()
                    && search(&weakening(ops, &candidate).ops(), budget, Memory::Fingerprint)
                        == SearchResult::NotLinearizable;
                if still_fails {
                    core = candidate;
                }
                end = start;
            }
            chunk /= 2;
        }
        if core.len() == before {
            return weakening(ops, &core);
        }
    }
}

/// How many weakened writes overlapping the core a witness names.
const OVERLAPPING_NAMED: usize = 6;
/// How many writers of each state the core saw a witness names (the latest ones).
const SOURCES_NAMED: usize = 2;

impl Witness {
    /// The weakened writes a reader needs to follow the witness, in history order:
    /// those overlapping the core in time (they could have taken effect among it; at
    /// most [`OVERLAPPING_NAMED`]), and the latest writers of each state the core saw
    /// before it (where what it read came from; at most [`SOURCES_NAMED`] each).
    pub(crate) fn named_weakened(&self) -> (Vec<KeyOp>, Vec<KeyOp>) {
        let first_invoke = self.core.iter().map(|op| op.invoke_us).min().unwrap_or(0);
        let last_return = self.core.iter().filter_map(|op| op.return_us).max().unwrap_or(0);
        let overlaps = |op: &KeyOp| {
            op.invoke_us <= last_return && op.deadline_us.is_none_or(|deadline| deadline >= first_invoke)
        };
        let overlapping: Vec<KeyOp> =
            self.weakened.iter().filter(|op| overlaps(op)).take(OVERLAPPING_NAMED).copied().collect();
        let mut seen: Vec<_> = self.core.iter().filter_map(|op| op.op.needs()).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut sources = Vec::new();
        for state in seen {
            let writers =
                self.weakened.iter().rev().filter(|op| !overlaps(op) && op.op.may_produce() == Some(state));
            sources.extend(writers.take(SOURCES_NAMED).copied());
        }
        sources.sort_by_key(|op| op.source);
        (overlapping, sources)
    }
}

//! Shrinking a non-linearizable key history to a small witness a person can read.
//!
//! Delta debugging: drop chunks of operations, halving the chunk size, and keep a drop
//! whenever what remains is still not linearizable. A drop must not orphan a read: an
//! operation that saw a value keeps some write of that value, or the "witness" would
//! only show a value from nowhere rather than the real anomaly (typically a write, an
//! overwrite, and a read of the old value after both). The result is 1-minimal when the
//! budget allows: removing any single remaining operation makes it linearizable or
//! orphans a read.

use super::register::{KeyOp, ValueId};
use super::search::{search, Memory, SearchResult};

/// Whether every value an operation in `ops` saw is written by some operation in
/// `ops`, unless no operation of the whole history (`original`) wrote it: a value from
/// nowhere is itself the anomaly then. (A compare-and-set seen failing writes nothing.)
fn observations_have_writers(ops: &[KeyOp], original: &[KeyOp]) -> bool {
    let written_by =
        |ops: &[KeyOp], value: ValueId| ops.iter().any(|writer| writer.op.may_produce() == Some(Some(value)));
    ops.iter().all(|reader| {
        let seen = reader.op.needs().flatten();
        seen.is_none_or(|value| written_by(ops, value) || !written_by(original, value))
    })
}

/// A smaller non-linearizable history inside `ops` (itself not linearizable), spending
/// at most `budget` search steps. Returns `ops` unchanged if nothing could be dropped.
pub(crate) fn shrink(ops: &[KeyOp], budget: &mut u64) -> Vec<KeyOp> {
    let mut kept = ops.to_vec();
    loop {
        let before = kept.len();
        let mut chunk = kept.len().div_ceil(2);
        while chunk >= 1 {
            let mut start = 0;
            while start < kept.len() {
                if *budget == 0 {
                    return kept;
                }
                let end = (start + chunk).min(kept.len());
                let candidate: Vec<KeyOp> = kept[..start].iter().chain(&kept[end..]).copied().collect();
                let still_fails = !candidate.is_empty()
                    && observations_have_writers(&candidate, ops)
                    && search(&candidate, budget, Memory::Fingerprint) == SearchResult::NotLinearizable;
                if still_fails {
                    kept = candidate;
                } else {
                    start += chunk;
                }
            }
            chunk /= 2;
        }
        if kept.len() == before {
            return kept;
        }
    }
}

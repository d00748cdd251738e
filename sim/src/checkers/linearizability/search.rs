//! The linearizability search of Wing & Gong with Lowe's memoisation (the algorithm
//! behind Porcupine and Knossos' "linear" checker), for one key.
//!
//! Calls and returns are laid out in real-time order in a linked list. The search
//! walks it: at a call it tries to linearize that operation now (the register model
//! must accept it in the current state), lifting it out of the list; at a return of an
//! operation not yet linearized it backtracks, since that operation had to take effect
//! before it returned. A cache of (operations linearized, state) pairs already explored
//! prunes the rest. The history is linearizable once every operation that returned is
//! linearized; indeterminate operations have no return, so the search may take them
//! (they took effect) or leave them (they did not).
//!
//! Ties: an operation that returns at the same virtual microsecond another is invoked
//! is treated as concurrent with it (calls sort before returns), which can only accept
//! more histories, never flag a correct one.

use super::register::{KeyOp, State};
use std::collections::BTreeSet;

/// What the search concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SearchResult {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable,
    /// The step budget ran out first.
    Unknown,
}

const NONE: usize = usize::MAX;

/// The call and return events of a history as a doubly linked list (dancing links),
/// with a sentinel head at position 0.
struct Events {
    /// For each event: its operation.
    op: Vec<usize>,
    /// For each event: whether it is a call (else a return).
    is_call: Vec<bool>,
    /// For a call: its return event (`NONE` for indeterminate operations).
    return_of: Vec<usize>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Events {
    fn new(ops: &[KeyOp]) -> Events {
        // (time, returns after calls at equal times, operation, is return)
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            order.push((op.invoke_us, 0, index));
            if let Some(returned) = op.return_us {
                order.push((returned, 1, index));
            }
        }
        order.sort_unstable();
        let count = order.len() + 1;
        let mut events = Events {
            op: vec![NONE; count],
            is_call: vec![false; count],
            return_of: vec![NONE; count],
            next: (1..=count).map(|next| if next == count { NONE } else { next }).collect(),
            prev: (0..count).map(|position| position.wrapping_sub(1)).collect(),
        };
        let mut call_event = vec![NONE; ops.len()];
        for (position, &(_, kind, op)) in order.iter().enumerate() {
            let event = position + 1;
            events.op[event] = op;
            events.is_call[event] = kind == 0;
            if kind == 0 {
                call_event[op] = event;
            } else {
                events.return_of[call_event[op]] = event;
            }
        }
        events
    }

    fn unlink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = next;
        if next != NONE {
            self.prev[next] = prev;
        }
    }

    /// Relinks an unlinked event; events must be relinked in reverse order of unlinking.
    fn relink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = event;
        if next != NONE {
            self.prev[next] = event;
        }
    }

    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if self.return_of[call] != NONE {
            self.unlink(self.return_of[call]);
        }
    }

    fn unlift(&mut self, call: usize) {
        if self.return_of[call] != NONE {
            self.relink(self.return_of[call]);
        }
        self.relink(call);
    }
}

/// A set of operations as bits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Bits(Vec<u64>);

impl Bits {
    fn toggle(&mut self, index: usize) {
        self.0[index / 64] ^= 1 << (index % 64);
    }
}

/// Searches for a linearization of `ops` (one key, starting absent), spending at most
/// `budget` steps (and taking what it spent from it).
pub(crate) fn search(ops: &[KeyOp], budget: &mut u64) -> SearchResult {
    let mut events = Events::new(ops);
    let mut pending_returns = ops.iter().filter(|op| op.return_us.is_some()).count();
    let mut linearized = Bits(vec![0; ops.len().div_ceil(64)]);
    let mut explored: BTreeSet<(Bits, State)> = BTreeSet::new();
    // The calls linearized so far, with the state before each.
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut event = events.next[0];
    while pending_returns > 0 {
        if *budget == 0 {
            return SearchResult::Unknown;
        }
        *budget -= 1;
        debug_assert!(event != NONE, "a return is pending, so the list holds it");
        let op = events.op[event];
        if events.is_call[event] {
            if let Some(after) = ops[op].op.step(state) {
                linearized.toggle(op);
                if explored.insert((linearized.clone(), after)) {
                    stack.push((event, state));
                    state = after;
                    if events.return_of[event] != NONE {
                        pending_returns -= 1;
                    }
                    events.lift(event);
                    event = events.next[0];
                    continue;
                }
                linearized.toggle(op);
            }
            event = events.next[event];
        } else {
            // `op` returned without taking effect: undo the latest choice and try the next.
            let Some((call, before)) = stack.pop() else {
                return SearchResult::NotLinearizable;
            };
            linearized.toggle(events.op[call]);
            state = before;
            if events.return_of[call] != NONE {
                pending_returns += 1;
            }
            events.unlift(call);
            event = events.next[call];
        }
    }
    SearchResult::Linearizable
}

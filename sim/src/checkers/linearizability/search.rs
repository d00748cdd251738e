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
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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

/// A set of operations as bits, with a Zobrist hash kept up to date as bits flip.
#[derive(Clone, Debug)]
struct Bits {
    words: Vec<u64>,
    hash: u64,
}

impl Bits {
    fn new(operations: usize) -> Bits {
        Bits { words: vec![0; operations.div_ceil(64)], hash: 0 }
    }

    fn toggle(&mut self, index: usize) {
        self.words[index / 64] ^= 1 << (index % 64);
        self.hash ^= mix(index as u64 + 1);
    }
}

/// SplitMix64's finalizer: a fixed, well-mixed 64-bit hash of a word.
fn mix(word: u64) -> u64 {
    let mut z = word.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes the cache's keys, which are already well mixed, with one more mix. Fixed
/// (no random key) and only probed, never iterated: nothing about it reaches a run but
/// speed.
#[derive(Default)]
struct PremixedHasher(u64);

impl Hasher for PremixedHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&byte| self.write_u64(u64::from(byte)));
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = mix(self.0 ^ word);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

const NO_ENTRY: u32 = u32::MAX;

/// The configurations (operations linearized, state) already explored. Keyed by the
/// Zobrist hash and the state; the full bit sets live in one arena and are compared on
/// a hash match, so a hash collision can never prune a configuration not yet seen.
struct Explored {
    /// (hash, state) -> the newest arena entry with that key.
    heads: HashMap<(u64, State), u32, BuildHasherDefault<PremixedHasher>>,
    /// Entries of `1 + words` words: the next entry with the same key (or `NO_ENTRY`),
    /// then the bit set.
    arena: Vec<u64>,
}

impl Explored {
    fn new() -> Explored {
        Explored { heads: HashMap::default(), arena: Vec::new() }
    }

    /// Adds the configuration; `false` if it was already there.
    fn insert(&mut self, bits: &Bits, state: State) -> bool {
        let stride = 1 + bits.words.len();
        let head = self.heads.entry((bits.hash, state)).or_insert(NO_ENTRY);
        let mut entry = *head;
        while entry != NO_ENTRY {
            let start = entry as usize * stride;
            if self.arena[start + 1..start + stride] == bits.words[..] {
                return false;
            }
            entry = self.arena[start] as u32;
        }
        let new_entry = u32::try_from(self.arena.len() / stride).expect("fewer than 2^32 configurations");
        self.arena.push(u64::from(*head));
        self.arena.extend_from_slice(&bits.words);
        *head = new_entry;
        true
    }
}

/// Searches for a linearization of `ops` (one key, starting absent), spending at most
/// `budget` steps (and taking what it spent from it).
pub(crate) fn search(ops: &[KeyOp], budget: &mut u64) -> SearchResult {
    let mut events = Events::new(ops);
    let mut pending_returns = ops.iter().filter(|op| op.return_us.is_some()).count();
    let mut linearized = Bits::new(ops.len());
    let mut explored = Explored::new();
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
                if explored.insert(&linearized, after) {
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

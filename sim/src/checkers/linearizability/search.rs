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

/// The call, return and deadline events of a history as a doubly linked list (dancing
/// links), with a sentinel head at position 0. An indeterminate operation has no
/// return, but may have a deadline: past it, it can no longer take effect.
struct Events {
    /// For each event: its operation.
    op: Vec<usize>,
    /// For each event: whether it is a call (else a return or a deadline).
    is_call: Vec<bool>,
    /// For a call: its return or deadline event (`NONE` if it has neither).
    return_of: Vec<usize>,
    /// For each operation: its call event.
    call_of: Vec<usize>,
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Events {
    fn new(ops: &[KeyOp]) -> Events {
        // (time, returns after calls at equal times, operation, is return)
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(2 * ops.len());
        for (index, op) in ops.iter().enumerate() {
            order.push((op.invoke_us, 0, index));
            if let Some(returned) = op.return_us.or(op.deadline_us) {
                order.push((returned, 1, index));
            }
        }
        order.sort_unstable();
        let count = order.len() + 1;
        let mut events = Events {
            op: vec![NONE; count],
            is_call: vec![false; count],
            return_of: vec![NONE; count],
            call_of: vec![NONE; ops.len()],
            next: (1..=count).map(|next| if next == count { NONE } else { next }).collect(),
            prev: (0..count).map(|position| position.wrapping_sub(1)).collect(),
        };
        for (position, &(_, kind, op)) in order.iter().enumerate() {
            let event = position + 1;
            events.op[event] = op;
            events.is_call[event] = kind == 0;
            if kind == 0 {
                events.call_of[op] = event;
            } else {
                events.return_of[events.call_of[op]] = event;
            }
        }
        events
    }

    /// The call event of the operation whose return or deadline is `event`.
    fn op_call(&self, event: usize) -> usize {
        self.call_of[self.op[event]]
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

/// How the search remembers the configurations it explored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Memory {
    /// The full set of linearized operations: exact, but n/64 words per configuration,
    /// so quadratic in the length of a key's history.
    Exact,
    /// A 128-bit Zobrist fingerprint of the set: 16 bytes per configuration. Two sets
    /// share a fingerprint with probability about 2^-128 per pair; even then a
    /// "linearizable" answer stays right (a linearization found is real), and a
    /// violation is only reported after its small witness is confirmed with `Exact`.
    Fingerprint,
}

/// A set of operations as bits, with two Zobrist hashes kept up to date as bits flip.
#[derive(Clone, Debug)]
struct Bits {
    words: Vec<u64>,
    hash: u64,
    second_hash: u64,
}

impl Bits {
    fn new(operations: usize) -> Bits {
        Bits { words: vec![0; operations.div_ceil(64)], hash: 0, second_hash: 0 }
    }

    fn toggle(&mut self, index: usize) {
        self.words[index / 64] ^= 1 << (index % 64);
        self.hash ^= mix(2 * index as u64 + 1);
        self.second_hash ^= mix(2 * index as u64 + 2);
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
    // One mix per field, not one per byte, for the integers the keys are made of.
    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }
    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
    fn write_isize(&mut self, word: isize) {
        self.write_u64(word as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

const NO_ENTRY: u32 = u32::MAX;

/// The most memory the explored-configuration cache of one key may hold: a search that
/// needs more answers "unknown" rather than exhausting the machine.
pub const MAX_EXPLORED_BYTES: usize = 256 << 20;

/// The configurations (operations linearized, state) already explored.
///
/// With [`Memory::Exact`], keyed by the first Zobrist hash and the state, with the full
/// bit sets in one arena, compared on a hash match, so a collision can never prune a
/// configuration not yet seen. With [`Memory::Fingerprint`], the two hashes and the state.
struct Explored {
    memory: Memory,
    /// (hash, state) -> the newest arena entry with that key.
    heads: HashMap<(u64, State), u32, BuildHasherDefault<PremixedHasher>>,
    /// Entries of `1 + words` words: the next entry with the same key (or `NO_ENTRY`),
    /// then the bit set.
    arena: Vec<u64>,
    fingerprints: HashMap<(u64, u64, State), (), BuildHasherDefault<PremixedHasher>>,
}

/// What one remembered fingerprint costs, roughly (key, hash-table overhead).
const FINGERPRINT_BYTES: usize = 40;

impl Explored {
    fn new(memory: Memory) -> Explored {
        Explored { memory, heads: HashMap::default(), arena: Vec::new(), fingerprints: HashMap::default() }
    }

    /// Roughly how much memory the cache holds.
    fn bytes(&self) -> usize {
        self.arena.len() * 8 + self.fingerprints.len() * FINGERPRINT_BYTES
    }

    /// Adds the configuration; `false` if it was already there.
    fn insert(&mut self, bits: &Bits, state: State) -> bool {
        if self.memory == Memory::Fingerprint {
            return self.fingerprints.insert((bits.hash, bits.second_hash, state), ()).is_none();
        }
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

/// For each state (absent, or a value), how many operations not yet linearized need to
/// find it and how many may still produce it. Once the state moves away from a state
/// that some pending operation needs and nothing left can produce it again, that
/// operation can never take effect: the search does not go there.
struct Demand {
    needed: Vec<u32>,
    producers: Vec<u32>,
}

impl Demand {
    fn new(ops: &[KeyOp]) -> Demand {
        let values = ops
            .iter()
            .flat_map(|op| [op.op.needs(), op.op.may_produce()])
            .flatten()
            .flatten()
            .map(|value| value as usize + 1)
            .max()
            .unwrap_or(0);
        let mut demand = Demand { needed: vec![0; values + 1], producers: vec![0; values + 1] };
        ops.iter().for_each(|op| demand.count(op, true));
        demand
    }

    fn slot(state: State) -> usize {
        state.map_or(0, |value| value as usize + 1)
    }

    /// Counts `op` among the pending operations (`pending`) or takes it out.
    fn count(&mut self, op: &KeyOp, pending: bool) {
        let adjust = |count: &mut u32| if pending { *count += 1 } else { *count -= 1 };
        if let Some(needed) = Demand::need_of(op) {
            adjust(&mut self.needed[Demand::slot(needed)]);
        }
        if let Some(produced) = op.op.may_produce() {
            adjust(&mut self.producers[Demand::slot(produced)]);
        }
    }

    /// The state `op` has to find, if it must take effect (it returned) and saw one.
    fn need_of(op: &KeyOp) -> Option<State> {
        op.op.needs().filter(|_| op.return_us.is_some())
    }

    /// Whether taking the pending `op` now, leaving `state`, strands another pending
    /// operation that needs `state`: nothing else pending can produce it again.
    fn strands(&self, op: &KeyOp, state: State) -> bool {
        let slot = Demand::slot(state);
        let needed = self.needed[slot] - u32::from(Demand::need_of(op) == Some(state));
        let producers = self.producers[slot] - u32::from(op.op.may_produce() == Some(state));
        needed > 0 && producers == 0
    }
}

/// Searches for a linearization of `ops` (one key, starting absent), spending at most
/// `budget` steps (and taking what it spent from it).
pub(crate) fn search(ops: &[KeyOp], budget: &mut u64, memory: Memory) -> SearchResult {
    let mut events = Events::new(ops);
    let mut pending_returns = ops.iter().filter(|op| op.return_us.is_some()).count();
    let mut linearized = Bits::new(ops.len());
    let mut explored = Explored::new(memory);
    let mut demand = Demand::new(ops);
    // The calls linearized so far, with the state before each and whether the choice
    // was forced (see below).
    let mut stack: Vec<(usize, State, bool)> = Vec::new();
    let mut state: State = None;
    let mut event = events.next[0];
    while pending_returns > 0 {
        if *budget == 0 {
            return SearchResult::Unknown;
        }
        *budget -= 1;
        if explored.bytes() > MAX_EXPLORED_BYTES {
            return SearchResult::Unknown;
        }
        debug_assert!(event != NONE, "a return is pending, so the list holds it");
        let op = events.op[event];
        let definite = ops[op].return_us.is_some();
        if events.is_call[event] {
            let after =
                ops[op].op.step(state).filter(|&after| after == state || !demand.strands(&ops[op], state));
            if let Some(after) = after {
                linearized.toggle(op);
                if explored.insert(&linearized, after) {
                    demand.count(&ops[op], false);
                    // A read-only operation (identity wherever it can take effect) that
                    // can take effect now may as well go first: every operation that
                    // returned before it began is already linearized (else the scan
                    // would have met that return first), and taking it out of a later
                    // place changes no state. So if this configuration fails, trying
                    // other operations here instead fails too: the choice is forced,
                    // and backtracking skips past it. (Partial-order reduction.)
                    stack.push((event, state, ops[op].op.is_read_only() && after == state));
                    state = after;
                    if definite {
                        pending_returns -= 1;
                    }
                    events.lift(event);
                    event = events.next[0];
                    continue;
                }
                linearized.toggle(op);
            }
            event = events.next[event];
            continue;
        }
        if !definite {
            // The deadline of an indeterminate operation not taken: it never took
            // effect. That is no choice (taking it earlier was, and earlier frames try
            // it), so the frame is forced; the operation counts as done, unchanged state.
            let call = events.op_call(event);
            linearized.toggle(op);
            if explored.insert(&linearized, state) {
                demand.count(&ops[op], false);
                stack.push((call, state, true));
                events.lift(call);
                event = events.next[0];
                continue;
            }
            // Explored before: this configuration fails like it did then.
            linearized.toggle(op);
        }
        // `op` returned without taking effect (or a configuration failed before): undo
        // the latest free choice (and the forced ones after it) and try the next
        // operation in its place.
        loop {
            let Some((call, before, forced)) = stack.pop() else {
                return SearchResult::NotLinearizable;
            };
            let undone = events.op[call];
            linearized.toggle(undone);
            demand.count(&ops[undone], true);
            state = before;
            if ops[undone].return_us.is_some() {
                pending_returns += 1;
            }
            events.unlift(call);
            if !forced {
                event = events.next[call];
                break;
            }
        }
    }
    SearchResult::Linearizable
}

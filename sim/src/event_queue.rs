//! The virtual clock and the event queue, ordered by (time, sequence number).
//!
//! The sequence number breaks ties between events due at the same microsecond in the
//! order they were scheduled, so the run never depends on heap internals.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Virtual time in microseconds since the run started.
pub type Micros = u64;

/// A queue of events of type `E` on a virtual clock.
///
/// The heap orders packed 128-bit keys (time, sequence number, slot); the events
/// themselves (messages can be large) sit in a slab and never move while the heap
/// sifts. One integer comparison per heap step keeps the simulator's hottest loop short.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<u128>>,
    slab: Vec<Option<E>>,
    free_slots: Vec<u32>,
    next_sequence: u64,
    now: Micros,
}

/// Bits of the key for the slot; the sequence number takes the bits above them.
const SLOT_BITS: u32 = 24;
/// Bits of the key for the sequence number (2^40 events per run).
const SEQUENCE_BITS: u32 = 64 - SLOT_BITS;

fn pack(at: Micros, sequence: u64, slot: u32) -> u128 {
    (u128::from(at) << 64) | (u128::from(sequence) << SLOT_BITS) | u128::from(slot)
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free_slots: Vec::new(),
            next_sequence: 0,
            now: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// The current virtual time: the time of the last event popped.
    pub fn now(&self) -> Micros {
        self.now
    }

    /// Schedules `event` at `at`, which must not be in the past.
    pub fn schedule(&mut self, at: Micros, event: E) {
        assert!(at >= self.now, "event scheduled in the past: {at} < {}", self.now);
        assert!(self.next_sequence < 1 << SEQUENCE_BITS, "more than 2^40 events in one run");
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                let slot = self.slab.len() - 1;
                assert!(slot < 1 << SLOT_BITS, "more than 2^24 events pending at once");
                slot as u32
            }
        };
        self.heap.push(Reverse(pack(at, self.next_sequence, slot)));
        self.next_sequence += 1;
    }

    /// Schedules `event` `delay` microseconds from now.
    pub fn schedule_in(&mut self, delay: Micros, event: E) {
        self.schedule(self.now.saturating_add(delay), event);
    }

    /// Removes the earliest event and advances the clock to it.
    pub fn pop(&mut self) -> Option<(Micros, E)> {
        let Reverse(key) = self.heap.pop()?;
        let at = (key >> 64) as Micros;
        let slot = (key as u32) & ((1 << SLOT_BITS) - 1);
        debug_assert!(at >= self.now);
        self.now = at;
        let event = self.slab[slot as usize].take().expect("a scheduled slot holds its event");
        self.free_slots.push(slot);
        Some((at, event))
    }

    /// When the earliest event is due, if any.
    pub fn next_time(&self) -> Option<Micros> {
        self.heap.peek().map(|Reverse(key)| (key >> 64) as Micros)
    }

    /// Moves the clock to `at` without an event (for a caller that keeps periodic
    /// events of its own beside the queue); `at` must not be in the past nor after the
    /// next event.
    pub fn advance_to(&mut self, at: Micros) {
        assert!(at >= self.now, "the clock cannot go back: {at} < {}", self.now);
        debug_assert!(self.next_time().is_none_or(|next| at <= next));
        self.now = at;
    }

    /// How many events are waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_by_scheduling_order() {
        let mut queue = EventQueue::default();
        queue.schedule(20, "late");
        queue.schedule(10, "first at ten");
        queue.schedule(10, "second at ten");
        queue.schedule(5, "early");
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(5, "early"), (10, "first at ten"), (10, "second at ten"), (20, "late")]);
        assert_eq!(queue.now(), 20);
        assert!(queue.is_empty());
    }

    #[test]
    fn slots_are_reused_and_late_times_order_correctly() {
        let mut queue = EventQueue::default();
        for round in 0..1_000u64 {
            queue.schedule(round * 3 + 1_000_000_000_000, round);
            queue.schedule(round * 3 + 1_000_000_000_000, round + 10_000);
            assert_eq!(queue.pop(), Some((round * 3 + 1_000_000_000_000, round)));
            assert_eq!(queue.pop(), Some((round * 3 + 1_000_000_000_000, round + 10_000)));
        }
        assert!(queue.slab.len() <= 2, "slots of popped events are reused");
        assert_eq!(queue.len(), 0);
    }

    #[test]
    #[should_panic(expected = "in the past")]
    fn scheduling_in_the_past_is_a_bug() {
        let mut queue = EventQueue::default();
        queue.schedule(10, ());
        queue.pop();
        queue.schedule(9, ());
    }
}

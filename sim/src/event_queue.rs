//! The virtual clock and the event queue, ordered by (time, sequence number).
//!
//! The sequence number breaks ties between events due at the same microsecond in the
//! order they were scheduled, so the run never depends on heap internals.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual time in microseconds since the run started.
pub type Micros = u64;

/// A queue of events of type `E` on a virtual clock.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    next_sequence: u64,
    now: Micros,
}

#[derive(Debug)]
struct Scheduled<E> {
    at: Micros,
    sequence: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
        (other.at, other.sequence).cmp(&(self.at, self.sequence))
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::new(), next_sequence: 0, now: 0 }
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
        self.heap.push(Scheduled { at, sequence: self.next_sequence, event });
        self.next_sequence += 1;
    }

    /// Schedules `event` `delay` microseconds from now.
    pub fn schedule_in(&mut self, delay: Micros, event: E) {
        self.schedule(self.now.saturating_add(delay), event);
    }

    /// Removes the earliest event and advances the clock to it.
    pub fn pop(&mut self) -> Option<(Micros, E)> {
        let scheduled = self.heap.pop()?;
        debug_assert!(scheduled.at >= self.now);
        self.now = scheduled.at;
        Some((scheduled.at, scheduled.event))
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

//! What the disk thread measures, for a host's metrics: how long each fsync took and
//! how many writes it made durable (group commit at work). Atomics, written by the
//! disk thread and read by anyone holding the node's handle.

use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram over fixed upper bounds, cumulative when read, as Prometheus has them.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Observations at or below each bound (not cumulative), then above the last.
    buckets: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

/// A histogram as read at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Each upper bound with the observations at or below it (cumulative).
    pub buckets: Vec<(u64, u64)>,
    /// The sum of every observation.
    pub sum: u64,
    /// How many observations (the `+Inf` bucket).
    pub count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.iter().position(|&bound| value <= bound).unwrap_or(self.bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The histogram now, with cumulative buckets. (Read without a lock: under
    /// concurrent observations the parts may be a moment apart.)
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, bucket)| {
                running += bucket.load(Ordering::Relaxed);
                (bound, running)
            })
            .collect();
        let count = self.count.load(Ordering::Relaxed).max(running);
        HistogramSnapshot { buckets, sum: self.sum.load(Ordering::Relaxed), count }
    }
}

/// Microseconds: 50 µs to 1 s.
const SYNC_MICROS: &[u64] =
    &[50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];
/// Writes: 1 to 1024.
const WRITES: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024];

/// The disk thread's measurements.
#[derive(Debug)]
pub struct DiskStats {
    /// How long each fsync took, in microseconds.
    pub sync_micros: Histogram,
    /// How many writes each fsync made durable.
    pub writes_per_sync: Histogram,
}

impl Default for DiskStats {
    fn default() -> DiskStats {
        DiskStats { sync_micros: Histogram::new(SYNC_MICROS), writes_per_sync: Histogram::new(WRITES) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_count_covers_values_past_the_last_bound() {
        let histogram = Histogram::new(&[1, 10]);
        for value in [0, 1, 5, 10, 11, 500] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets, [(1, 2), (10, 4)]);
        assert_eq!((snapshot.count, snapshot.sum), (6, 527));
    }
}

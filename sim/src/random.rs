//! Seeded randomness: one `u64` seed, one independent ChaCha stream per purpose.
//!
//! Splitting by purpose keeps the parts of a run from disturbing each other: drawing
//! one more network delay must not change which node the fault schedule crashes next.
//! Only integer arithmetic is used (no `f64::ln` and friends), so a seed gives the same
//! draws on every platform and libm.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for. Each purpose gets its own ChaCha stream of the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Drawing the fault plan: network, storage and clock parameters, the fault schedule.
    FaultPlan = 1,
    /// Per-message delays, losses and duplications.
    Network = 2,
    /// The seeds handed to each node's own RNG (election timeouts).
    NodeSeeds = 3,
    /// Client proposals and reads.
    Workload = 4,
    /// Storage: sync latencies and where a crash tears the unsynced tail.
    Storage = 5,
}

/// A seeded random source with the few draws the simulator needs.
#[derive(Clone, Debug)]
pub struct Random {
    rng: ChaCha8Rng,
}

/// One in a million: probabilities are integers in parts per million.
pub const PARTS_PER_MILLION: u32 = 1_000_000;

impl Random {
    /// The stream of `seed` for `purpose`.
    pub fn new(seed: u64, purpose: Purpose) -> Random {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(purpose as u64);
        Random { rng }
    }

    /// A uniformly random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A uniform draw from `0..bound`; `bound` must be positive.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no value to draw");
        // Lemire's multiply-shift: unbiased enough for a simulator, and branch-free.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A uniform draw from `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        if high - low == u64::MAX {
            return self.next_u64();
        }
        low + self.below(high - low + 1)
    }

    /// True with probability `parts_per_million / 1_000_000`.
    pub fn chance(&mut self, parts_per_million: u32) -> bool {
        parts_per_million > 0 && self.below(u64::from(PARTS_PER_MILLION)) < u64::from(parts_per_million)
    }

    /// A uniformly chosen index into a collection of `length` items.
    pub fn index(&mut self, length: usize) -> usize {
        self.below(length as u64) as usize
    }
}

/// A 64-bit FNV-1a digest. Used for trace hashes and payload fingerprints because it is
/// fixed forever (unlike `std`'s hasher, which may change between Rust releases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Folds in bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Folds in a number, as its little-endian bytes.
    pub fn number(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    /// The digest so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The digest of a byte string.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv64::default();
    hasher.bytes(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_of_one_seed_are_independent_and_repeatable() {
        let mut network = Random::new(7, Purpose::Network);
        let mut faults = Random::new(7, Purpose::FaultPlan);
        let network_draws: Vec<u64> = (0..4).map(|_| network.next_u64()).collect();
        let fault_draws: Vec<u64> = (0..4).map(|_| faults.next_u64()).collect();
        assert_ne!(network_draws, fault_draws);
        let mut again = Random::new(7, Purpose::Network);
        assert_eq!(network_draws, (0..4).map(|_| again.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn draws_stay_in_their_ranges() {
        let mut random = Random::new(1, Purpose::Workload);
        for _ in 0..10_000 {
            assert!(random.below(3) < 3);
            let value = random.between(5, 7);
            assert!((5..=7).contains(&value));
        }
        assert!(!random.chance(0));
        assert!(random.chance(PARTS_PER_MILLION));
        assert_eq!(random.between(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn fnv_matches_the_published_test_vector() {
        // FNV-1a 64 of "a" from the reference test suite.
        assert_eq!(digest(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

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
    /// A scenario's unreliable network and the perturbations of a scenario sweep.
    Scenario = 6,
    /// Disk faults: the plan's bit-flip and sync-failure rates.
    DiskFaults = 7,
    /// When disk faults strike, and where a bit flips.
    DiskDamage = 8,
    /// Pipelining connections: how many, and what they send.
    Connections = 9,
    /// How long a node gathers client requests into one round.
    Rounds = 10,
    /// How big a snapshot chunk is.
    SnapshotChunks = 11,
    /// How long client sessions live and how many there may be.
    Sessions = 12,
    /// Which client writes give their key a time to live, and how long.
    KeyExpiry = 13,
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

/// A 64-bit fingerprint of words and bytes, for payload and prefix digests. Fixed
/// forever (unlike `std`'s hasher, which may change between Rust releases), and
/// word-at-a-time: every replica of every entry is fingerprinted several times, so
/// byte-at-a-time FNV cost the simulator more than its network did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Fingerprint {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    /// Folds in one word (MurmurHash3's finalizer step after each xor).
    fn word(&mut self, word: u64) {
        let mixed = (self.0 ^ word).wrapping_mul(0xff51_afd7_ed55_8ccd);
        self.0 = mixed ^ (mixed >> 33);
    }

    /// Folds in bytes, eight at a time, then their count (so "ab" and "ab\0" differ).
    pub fn bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(tail));
        self.word(bytes.len() as u64);
    }

    /// Folds in a number.
    pub fn number(&mut self, value: u64) {
        self.word(value);
    }

    /// The digest so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The fingerprint of a byte string.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = Fingerprint::default();
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
    fn fingerprints_are_fixed_and_tell_lengths_apart() {
        // Fixed values: a digest must mean the same on every machine and release.
        assert_eq!(digest(b""), FINGERPRINT_OF_NOTHING);
        assert_ne!(digest(b"ab"), digest(b"ab\0"));
        assert_ne!(digest(b"abcdefgh"), digest(b"abcdefgi"));
        let mut numbers = Fingerprint::default();
        numbers.number(1);
        let mut other = Fingerprint::default();
        other.number(2);
        assert_ne!(numbers.finish(), other.finish());
    }

    const FINGERPRINT_OF_NOTHING: u64 = 14_437_131_626_235_224_580;
}

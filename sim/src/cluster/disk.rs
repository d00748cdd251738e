//! A simulated disk: writes land at once in the page cache (the "written" state) and
//! become durable only when a sync that was issued after them completes. A crash keeps
//! the durable state and loses the rest, or, when the write is torn, keeps a prefix of
//! the unsynced writes cut at an entry boundary.
//!
//! What a write means is `raft_host::durable_image`'s, shared with real log recovery:
//! a write that makes no sense (a gap, a truncation into the snapshot) is refused there,
//! and the simulator reports the driver that asked for it as breaking the host contract.

use crate::random::Random;
use raft_core::DurableState;
use raft_host::durable_image::{self, WriteError};
use raft_host::{Write, WriteId};
use std::collections::VecDeque;

/// One node's disk. It outlives the node's crashes; the writes of each run of the
/// node's process are numbered by that run's driver, from 1.
#[derive(Debug, Default)]
pub struct Disk {
    durable: DurableState,
    written: DurableState,
    /// Writes not yet durable, oldest first, each with the driver's number for it.
    pending: VecDeque<(WriteId, Write)>,
    /// The number of the latest write of this run of the process.
    issued: WriteId,
}

impl Disk {
    /// The state a restart would see now.
    pub fn durable(&self) -> &DurableState {
        &self.durable
    }

    /// Replaces the disk's contents with `state`, all durable: a scripted scenario's
    /// setup (a node restarted from a log the script wrote). Only while the node is down.
    pub fn restore(&mut self, state: DurableState) {
        self.durable = state.clone();
        self.written = state;
        self.pending.clear();
    }

    /// The state including writes not yet synced (what the node believes it stored).
    pub fn written(&self) -> &DurableState {
        &self.written
    }

    /// Whether some write is not yet durable.
    pub fn has_unsynced(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes write `id` of the current run. It is visible in [`Disk::written`] at once
    /// and durable after a [`Disk::sync_through`] covering it.
    pub fn write(&mut self, id: WriteId, write: Write) -> Result<(), WriteError> {
        debug_assert!(id > self.issued, "writes come in order");
        durable_image::apply(&mut self.written, &write)?;
        self.issued = id;
        self.pending.push_back((id, write));
        Ok(())
    }

    /// Makes every write numbered `through` or lower durable (a sync issued after them
    /// completed). Returns whether any of them removed entries from the durable log (a
    /// truncation or a snapshot install), the only writes after which durable coverage
    /// can shrink.
    pub fn sync_through(&mut self, through: WriteId) -> bool {
        let mut removed_entries = false;
        while self.pending.front().is_some_and(|(id, _)| *id <= through) {
            let (_, write) = self.pending.pop_front().expect("front exists");
            removed_entries |= matches!(write, Write::Truncate { .. } | Write::Install(_));
            // The same writes in the same order were already checked against `written`.
            durable_image::apply(&mut self.durable, &write).expect("a write accepted once applies again");
        }
        removed_entries
    }

    /// The node crashed: unsynced writes are lost, except that with probability
    /// `torn_write_ppm` a prefix of them survives, cut at an entry boundary. Returns
    /// how many writes (counting a partial one) survived unsynced. The next run of the
    /// process numbers its writes from 1 again.
    pub fn crash(&mut self, random: &mut Random, torn_write_ppm: u32) -> usize {
        let mut survivors = 0;
        if !self.pending.is_empty() && random.chance(torn_write_ppm) {
            let keep_whole = random.index(self.pending.len());
            for _ in 0..keep_whole {
                let (_, write) = self.pending.pop_front().expect("counted");
                durable_image::apply(&mut self.durable, &write).expect("a write accepted once applies again");
                survivors += 1;
            }
            // The next write may be an append torn in the middle.
            if let Some((_, Write::Entries(entries))) = self.pending.pop_front() {
                let keep = random.index(entries.len() + 1);
                if keep > 0 {
                    let prefix = Write::Entries(entries[..keep].to_vec());
                    durable_image::apply(&mut self.durable, &prefix).expect("a prefix of an accepted append");
                    survivors += 1;
                }
            }
        }
        self.pending.clear();
        self.issued = 0;
        self.written = self.durable.clone();
        survivors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Purpose;
    use raft_core::{Entry, EntryPayload, HardState};

    fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        indexes.map(|index| Entry { term, index, payload: EntryPayload::Noop }).collect()
    }

    #[test]
    fn unsynced_writes_are_lost_on_crash_and_synced_ones_survive() {
        let mut disk = Disk::default();
        disk.write(1, Write::HardState(HardState { term: 1, voted_for: Some(1) })).unwrap();
        disk.write(2, Write::Entries(entries(1..=2, 1))).unwrap();
        disk.sync_through(2);
        disk.write(3, Write::HardState(HardState { term: 2, voted_for: Some(3) })).unwrap();
        disk.write(4, Write::Entries(entries(3..=3, 2))).unwrap();
        assert_eq!(disk.written().entries.len(), 3);
        assert!(disk.has_unsynced());
        disk.crash(&mut Random::new(0, Purpose::Storage), 0);
        assert_eq!(disk.durable().hard_state, HardState { term: 1, voted_for: Some(1) });
        assert_eq!(disk.durable().entries, entries(1..=2, 1));
        assert_eq!(disk.written(), disk.durable());
        assert!(!disk.has_unsynced());
        // The next run of the process numbers its writes from 1.
        disk.write(1, Write::Entries(entries(3..=3, 3))).unwrap();
    }

    #[test]
    fn a_sync_covers_only_writes_issued_before_it() {
        let mut disk = Disk::default();
        disk.write(1, Write::Entries(entries(1..=1, 1))).unwrap();
        disk.write(2, Write::Entries(entries(2..=2, 1))).unwrap();
        disk.sync_through(1);
        assert_eq!(disk.durable().entries, entries(1..=1, 1));
        assert!(disk.has_unsynced());
    }

    #[test]
    fn torn_writes_keep_a_prefix_cut_at_an_entry_boundary() {
        let mut kept_lengths = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut disk = Disk::default();
            disk.write(1, Write::Entries(entries(1..=4, 1))).unwrap();
            disk.write(2, Write::Entries(entries(5..=8, 1))).unwrap();
            disk.crash(&mut Random::new(seed, Purpose::Storage), 1_000_000);
            let kept = &disk.durable().entries;
            assert_eq!(kept, &entries(1..=kept.len() as u64, 1), "a torn write keeps a contiguous prefix");
            kept_lengths.insert(kept.len());
        }
        assert!(kept_lengths.len() > 4, "tears land at many boundaries: {kept_lengths:?}");
    }

    #[test]
    fn a_write_that_breaks_the_host_contract_is_refused() {
        let mut disk = Disk::default();
        disk.write(1, Write::Entries(entries(1..=3, 1))).unwrap();
        assert!(disk.write(2, Write::Entries(entries(5..=5, 1))).is_err(), "a gap");
        assert_eq!(disk.written().entries.len(), 3);
    }
}

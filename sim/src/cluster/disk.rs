//! The model of a node's disk, at the level of the driver's writes: the oracle the
//! node's real storage (`raft-storage` on a `MemFs`) is held to. Writes land at once in
//! the "written" state and become durable only when a sync issued after them
//! completes. After a crash, what the real storage recovers must be the durable state
//! plus a prefix of the writes in flight ([`Disk::accept_recovered`]).
//!
//! What a write means is `raft_host::durable_image`'s, shared with real log recovery:
//! a write that makes no sense (a gap, a truncation into the snapshot) is refused there,
//! and the simulator reports the driver that asked for it as breaking the host contract.

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
    /// The writes in flight at the last crash, until recovery says which survived.
    lost: Vec<Write>,
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
        self.lost.clear();
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

    /// The node crashed: the writes not yet durable may or may not have survived,
    /// which the node's real storage decides (see [`Disk::accept_recovered`]). The next
    /// run of the process numbers its writes from 1 again.
    pub fn crash(&mut self) {
        self.lost.extend(self.pending.drain(..).map(|(_, write)| write));
        self.issued = 0;
        self.written = self.durable.clone();
    }

    /// The writes in flight at the last crash (until the restart).
    pub fn lost_writes(&self) -> &[Write] {
        &self.lost
    }

    /// How many writes were in flight at the last crash (until the restart).
    pub fn in_flight_at_crash(&self) -> usize {
        self.lost.len()
    }

    /// What the node's storage recovered after a crash must be what was durable plus a
    /// prefix of the writes in flight at the crash (an append among them cut at an
    /// entry boundary), in the order they were issued: a sync never makes a later
    /// write durable without the earlier ones. If it is, it becomes the durable state
    /// and the number of writes that survived (a partial one counted) is returned;
    /// otherwise the error says how it differs.
    pub fn accept_recovered(&mut self, recovered: &DurableState) -> Result<usize, String> {
        let lost = std::mem::take(&mut self.lost);
        let mut candidate = self.durable.clone();
        let mut survived = None;
        if &candidate == recovered {
            survived = Some(0);
        }
        for (count, write) in lost.iter().enumerate() {
            if survived.is_some() {
                break;
            }
            if let Write::Entries(entries) = write {
                for keep in 1..entries.len() {
                    let mut partial = candidate.clone();
                    let prefix = Write::Entries(entries[..keep].to_vec());
                    if durable_image::apply(&mut partial, &prefix).is_ok() && &partial == recovered {
                        survived = Some(count + 1);
                        break;
                    }
                }
            }
            if survived.is_none() {
                durable_image::apply(&mut candidate, write).expect("a write accepted once applies again");
                if &candidate == recovered {
                    survived = Some(count + 1);
                }
            }
        }
        let Some(survived) = survived else {
            return Err(format!(
                "recovery returned {} but the disk held {} durably, with {} writes in flight at the crash",
                describe(recovered),
                describe(&self.durable),
                lost.len()
            ));
        };
        self.durable = recovered.clone();
        self.written = recovered.clone();
        Ok(survived)
    }
}

/// A state in a line: hard state, snapshot point, the log's extent.
fn describe(state: &DurableState) -> String {
    let snapshot = state.snapshot.as_ref().map_or(0, |snapshot| snapshot.meta.last_included_index);
    let last =
        state.entries.last().map_or("none".to_string(), |entry| format!("{}@{}", entry.index, entry.term));
    format!(
        "term {} vote {:?}, snapshot at {snapshot}, {} entries (last {last})",
        state.hard_state.term,
        state.hard_state.voted_for,
        state.entries.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{Entry, EntryPayload, HardState};

    fn entries(indexes: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        indexes.map(|index| Entry { term, index, payload: EntryPayload::Noop }).collect()
    }

    #[test]
    fn after_a_crash_recovery_may_return_the_durable_state_and_a_prefix_of_the_rest() {
        let mut disk = Disk::default();
        disk.write(1, Write::HardState(HardState { term: 1, voted_for: Some(1) })).unwrap();
        disk.write(2, Write::Entries(entries(1..=2, 1))).unwrap();
        disk.sync_through(2);
        disk.write(3, Write::Entries(entries(3..=5, 1))).unwrap();
        disk.write(4, Write::HardState(HardState { term: 2, voted_for: Some(3) })).unwrap();
        assert_eq!(disk.written().entries.len(), 5);
        disk.crash();
        assert_eq!(disk.written(), disk.durable());
        let durable = disk.durable().clone();
        // The durable state, an append cut at an entry boundary, or the whole of it.
        for (kept, survived) in [(2, 0), (3, 1), (5, 1)] {
            let mut model = Disk::default();
            model.restore(durable.clone());
            model.write(1, Write::Entries(entries(3..=5, 1))).unwrap();
            model.crash();
            let mut recovered = durable.clone();
            recovered.entries = entries(1..=kept, 1);
            assert_eq!(model.accept_recovered(&recovered), Ok(survived), "{kept} entries");
        }
        // A later write durable without an earlier one is not a crash's doing.
        let mut recovered = durable.clone();
        recovered.hard_state = HardState { term: 2, voted_for: Some(3) };
        let error = disk.accept_recovered(&recovered).unwrap_err();
        assert!(error.contains("recovery returned term 2"), "{error}");
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
    fn a_write_that_breaks_the_host_contract_is_refused() {
        let mut disk = Disk::default();
        disk.write(1, Write::Entries(entries(1..=3, 1))).unwrap();
        assert!(disk.write(2, Write::Entries(entries(5..=5, 1))).is_err(), "a gap");
        assert_eq!(disk.written().entries.len(), 3);
    }
}

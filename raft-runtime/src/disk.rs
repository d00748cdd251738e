//! The disk thread: performs the driver's writes in order and reports syncs.
//!
//! Writes and syncs block, so they run on a thread of their own, fed in order from the
//! node loop. A sync reports "durable through N" only after the fsync returned; while
//! it runs, the node goes on and the writes it issues meanwhile queue up for the next
//! sync (the driver asks for one sync at a time), which is what makes one fsync cover
//! a whole batch. A failed write or sync is reported and ends the thread: the node
//! must stop, since it can no longer promise durability.

use raft_host::{Write, WriteId};
use raft_storage::{FileSystem, Storage};
use std::sync::mpsc;
use tokio::sync::mpsc::UnboundedSender;

/// What the node loop asks of the disk.
pub enum DiskCommand {
    /// Perform this write after every earlier one.
    Write(Write),
    /// Make every write so far durable, then report `through`.
    Sync(WriteId),
}

/// What the disk tells the node loop.
#[derive(Debug)]
pub enum DiskEvent {
    /// Writes through this id are durable.
    Durable(WriteId),
    /// A write or sync failed; the node must stop.
    Failed(String),
}

/// Runs the disk until the node loop drops its sender, then syncs what is left.
/// Commands come in batches (one per round of the node loop: one wake-up of this
/// thread, not one per write). `slow_sync` is added to every sync, to test the server
/// on a slow disk.
pub fn run<F: FileSystem>(
    mut storage: Storage<F>,
    batches: mpsc::Receiver<Vec<DiskCommand>>,
    events: UnboundedSender<DiskEvent>,
    slow_sync: std::time::Duration,
    stats: std::sync::Arc<crate::stats::DiskStats>,
) {
    let mut writes_since_sync = 0;
    for command in batches.iter().flatten() {
        let result = match command {
            DiskCommand::Write(write) => {
                writes_since_sync += 1;
                storage.write(&write).map(|()| None)
            }
            DiskCommand::Sync(through) => {
                if !slow_sync.is_zero() {
                    std::thread::sleep(slow_sync);
                }
                let started = std::time::Instant::now();
                let synced = storage.sync().map(|()| Some(through));
                let (micros, writes) =
                    (started.elapsed().as_micros() as u64, std::mem::take(&mut writes_since_sync));
                stats.sync_micros.observe(micros);
                stats.writes_per_sync.observe(writes);
                tracing::trace!(micros, writes, "fsync");
                synced
            }
        };
        match result {
            Ok(Some(through)) => {
                let _ = events.send(DiskEvent::Durable(through));
            }
            Ok(None) => {}
            Err(error) => {
                let _ = events.send(DiskEvent::Failed(format!("storage failed: {error}")));
                return;
            }
        }
    }
    if let Err(error) = storage.sync() {
        tracing::error!(%error, "the final sync at shutdown failed");
    }
}

//! # raft-storage: a node's durable state on a file system
//!
//! Durable storage for one `raft_host::Driver`: a segmented write-ahead log, the hard
//! state, snapshots, and recovery, over a small [`FileSystem`] trait. The server runs it
//! on [`StdFs`] (`std::fs`, fdatasync, flock); the simulator runs the very same code on
//! [`MemFs`], files in memory that lose unsynced bytes, tear an unsynced tail at any
//! byte, forget names whose directory was not synced, flip bits in synced data and fail
//! syncs, so every seed exercises the real framing, checksums, segments, checkpoints,
//! hard state, snapshot files and recovery.
//!
//! [`Storage`] performs the driver's [`Write`]s in the order given and makes them durable
//! on [`Storage::sync`]; the caller tells the driver "durable through N" only after
//! `sync` returns. Every write is also applied to an in-memory mirror of the durable
//! state (entries share their command bytes with the core's log), which checks it
//! against the log it lands on and gives checkpoints their contents.
//!
//! - Entries and truncations are records appended to the current WAL segment (see
//!   the record format), buffered, and written and fdatasync'ed by `sync`: one fsync covers
//!   every write of the batch (group commit).
//! - The hard state (term, vote) and the newest segment's number live in the `hardstate`
//!   file, replaced atomically (temporary file, fsync, rename, fsync of the directory)
//!   after the log before it is synced, so durability stays in write order.
//! - A snapshot (the node's own compaction, or one installed from the leader) is written
//!   atomically to its own file after the log before it is synced; then a new segment
//!   opens with a checkpoint naming it and holding the entries the log keeps, and once
//!   that segment is durable and named in `hardstate`, older segments and snapshots go.
//! - A segment past a size limit is followed by a new one that continues it.
//!
//! Recovery cuts a torn tail and refuses to start on any other damage.
//! A write or sync that fails is fatal: the node cannot promise durability any more,
//! and the caller must stop (retrying an fsync after a failure can silently lose data).

//! Where it sits in the project: `ARCHITECTURE.md` at the repository root.

mod files;
mod fs;
mod mem_fs;
mod record;
mod recovery;
mod sealed;
mod snapshot_files;
mod std_fs;
mod storage;

pub use fs::{AppendFile, FileSystem, LockError, ReadFile};
pub use mem_fs::{MemFile, MemFs, MemReader};
pub use snapshot_files::SnapshotFiles;
pub use std_fs::StdFs;
pub use storage::{OpenReport, Storage, StorageError, StorageOptions};

#[cfg(test)]
mod tests;

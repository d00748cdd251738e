//! Reading a data directory back after a restart or a crash.
//!
//! The hard state file names the newest segment, `last`. Segments past it are left
//! over from a rotation a crash interrupted (a rotation names its segment there only
//! once the segment is durable), so they are ignored. The log starts at the newest
//! segment up to `last` that opens with a checkpoint, and runs through every segment
//! after it up to `last`, which must all exist. Replaying their records through
//! `raft_host::durable_image::apply` gives exactly the state the writes left, with the
//! same meaning the simulated disk gives them.
//!
//! Damage is told from a torn write by where it is: a bad frame in the last segment
//! with no intact frame after it is the tail a crash cut short, and is cut off; any
//! other bad frame, a missing segment, a missing snapshot or a damaged hard state is
//! damage to what was synced, and recovery refuses, naming the file and the offset.

use crate::files::{self, HARD_STATE_FILE};
use crate::fs::{FileSystem, ReadFile};
use crate::record::{decode_frame, Frame, WalRecord};
use crate::sealed;
use crate::storage::{HardStateFile, StorageError, HARD_STATE_MAGIC};
use raft_core::{DurableState, NodeId};
use raft_host::{durable_image, Write};
use std::path::{Path, PathBuf};

/// What recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The durable state, snapshot data included.
    pub(crate) state: DurableState,
    /// The hard state file's contents.
    pub(crate) hard: HardStateFile,
    /// The segment appends go on in, and the length of its intact prefix.
    pub(crate) tail_sequence: u64,
    /// Bytes of the last segment that hold whole records.
    pub(crate) tail_intact_bytes: u64,
    /// A torn tail that was found (and must be cut): its bytes, and why it is bad.
    pub(crate) torn: Option<(u64, String)>,
    /// Files that belong to nothing the log needs (older segments and snapshots,
    /// interrupted rotations, temporary files), to be removed.
    pub(crate) obsolete: Vec<PathBuf>,
    /// Records replayed.
    pub(crate) records: u64,
}

/// What the directory holds, if it holds a node's state at all.
pub(crate) enum Found {
    /// No hard state and no records: a new node.
    Fresh {
        /// Files to remove before starting afresh (an interrupted first start).
        leftovers: Vec<PathBuf>,
    },
    /// The node's durable state.
    Existing(Box<Recovered>),
}

fn damage(path: &Path, offset: Option<u64>, why: impl std::fmt::Display) -> StorageError {
    let place = match offset {
        Some(offset) => format!("{} at offset {offset}", path.display()),
        None => path.display().to_string(),
    };
    StorageError(format!(
        "{place}: {why}; refusing to start, since this is damage to data that was synced \
         (move the data directory aside to rebuild this node from its peers)"
    ))
}

fn io_error(path: &Path, error: std::io::Error) -> StorageError {
    StorageError(format!("{}: {error}", path.display()))
}

/// Reads `dir`, the data directory of node `node_id`.
pub(crate) fn recover<F: FileSystem>(fs: &F, dir: &Path, node_id: NodeId) -> Result<Found, StorageError> {
    let mut segments = Vec::new();
    let mut snapshots = Vec::new();
    let mut temporaries = Vec::new();
    for name in fs.list(dir).map_err(|error| io_error(dir, error))? {
        if let Some(sequence) = files::parse_segment_name(&name) {
            segments.push(sequence);
        } else if files::is_snapshot_name(&name) {
            snapshots.push(name);
        } else if files::is_temporary_name(&name) {
            temporaries.push(dir.join(&name));
        }
    }
    segments.sort_unstable();
    snapshots.sort_unstable();
    let hard_path = dir.join(HARD_STATE_FILE);
    let hard_bytes = match fs.read(&hard_path) {
        Ok(bytes) => Some(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(io_error(&hard_path, error)),
    };
    let Some(hard_bytes) = hard_bytes else {
        return fresh_or_refuse(fs, dir, &segments, snapshots, temporaries);
    };
    let hard: HardStateFile =
        sealed::unseal(HARD_STATE_MAGIC, &hard_bytes).map_err(|why| damage(&hard_path, None, why))?;
    if hard.node_id != node_id {
        return Err(StorageError(format!(
            "{} holds the state of node {}, not of node {node_id}; give each node its own data directory",
            dir.display(),
            hard.node_id
        )));
    }
    let last = hard.last_segment;
    let mut obsolete: Vec<PathBuf> = temporaries;
    obsolete.extend(
        segments.iter().filter(|&&sequence| sequence > last).map(|&s| dir.join(files::segment_name(s))),
    );
    segments.retain(|&sequence| sequence <= last);
    if segments.last() != Some(&last) {
        return Err(damage(&dir.join(files::segment_name(last)), None, "the newest WAL segment is missing"));
    }

    // The newest segment that opens with an intact checkpoint starts the log.
    let mut start = None;
    for &sequence in segments.iter().rev() {
        let path = dir.join(files::segment_name(sequence));
        let bytes = fs.read(&path).map_err(|error| io_error(&path, error))?;
        if let Frame::Record(WalRecord::Checkpoint { .. }, _) = decode_frame(&bytes, 0) {
            start = Some(sequence);
            break;
        }
    }
    let Some(start) = start else {
        let first = dir.join(files::segment_name(segments[0]));
        return Err(damage(&first, Some(0), "no WAL segment opens with an intact checkpoint"));
    };
    obsolete.extend(
        segments.iter().filter(|&&sequence| sequence < start).map(|&s| dir.join(files::segment_name(s))),
    );
    for expected in start..=last {
        if segments.binary_search(&expected).is_err() {
            return Err(damage(&dir.join(files::segment_name(expected)), None, "a WAL segment is missing"));
        }
    }

    let mut state = DurableState { hard_state: hard.hard_state, ..DurableState::default() };
    let mut snapshot_kept = None;
    let mut records = 0;
    let mut torn = None;
    let mut tail_intact_bytes = 0;
    for sequence in start..=last {
        let path = dir.join(files::segment_name(sequence));
        let bytes = fs.read(&path).map_err(|error| io_error(&path, error))?;
        let mut offset = 0;
        loop {
            match decode_frame(&bytes, offset) {
                Frame::End => break,
                Frame::Record(record, next) => {
                    replay(fs, dir, &path, offset, sequence, start, record, &mut state, &mut snapshot_kept)?;
                    records += 1;
                    offset = next;
                }
                Frame::Damaged { why, reaches_end: true } if sequence == last && offset > 0 => {
                    torn = Some(((bytes.len() - offset) as u64, why));
                    break;
                }
                Frame::Damaged { why, .. } => return Err(damage(&path, Some(offset as u64), why)),
            }
        }
        if offset == 0 {
            return Err(damage(&path, Some(0), "an empty WAL segment (it must open with a header record)"));
        }
        tail_intact_bytes = offset as u64;
    }
    obsolete.extend(
        snapshots.into_iter().filter(|name| Some(name) != snapshot_kept.as_ref()).map(|name| dir.join(name)),
    );
    Ok(Found::Existing(Box::new(Recovered {
        state,
        hard,
        tail_sequence: last,
        tail_intact_bytes,
        torn,
        obsolete,
        records,
    })))
}

/// Applies one record to the state being rebuilt.
#[allow(clippy::too_many_arguments)]
fn replay<F: FileSystem>(
    fs: &F,
    dir: &Path,
    path: &Path,
    offset: usize,
    sequence: u64,
    start: u64,
    record: WalRecord,
    state: &mut DurableState,
    snapshot_kept: &mut Option<String>,
) -> Result<(), StorageError> {
    let at = Some(offset as u64);
    let write = match record {
        WalRecord::Checkpoint { sequence: named, snapshot } if offset == 0 && sequence == start => {
            if named != sequence {
                return Err(damage(path, at, format!("the segment says it is number {named}")));
            }
            if let Some(snapshot) = snapshot {
                // Its bytes are checked (checksum and all) as the state machine
                // restores from them; here, that the file is there and whole.
                let meta = snapshot.meta;
                let name = files::snapshot_name(meta.last_included_index, meta.last_included_term);
                let snapshot_path = dir.join(&name);
                let size = fs.open_read(&snapshot_path).and_then(|file| file.size()).map_err(|error| {
                    damage(
                        &snapshot_path,
                        None,
                        format!("the snapshot the log starts from cannot be read ({error})"),
                    )
                })?;
                if size != snapshot.size_bytes {
                    return Err(damage(
                        &snapshot_path,
                        None,
                        format!(
                            "the checkpoint names a {}-byte snapshot and the file is {size} bytes",
                            snapshot.size_bytes
                        ),
                    ));
                }
                *snapshot_kept = Some(name);
                state.snapshot = Some(snapshot);
            }
            return Ok(());
        }
        WalRecord::Continue { sequence: named } if offset == 0 && sequence != start => {
            if named != sequence {
                return Err(damage(path, at, format!("the segment says it is number {named}")));
            }
            return Ok(());
        }
        WalRecord::Checkpoint { .. } | WalRecord::Continue { .. } => {
            return Err(damage(path, at, "a segment header record out of place"));
        }
        _ if offset == 0 => return Err(damage(path, at, "the segment does not open with a header record")),
        WalRecord::Entries(entries) => Write::Entries(entries),
        WalRecord::Truncate { from } => Write::Truncate { from },
    };
    durable_image::apply(state, &write)
        .map_err(|why| damage(path, at, format!("a record that does not fit the log: {why}")))
}

/// No hard state file: a new node, unless some segment holds more than the empty
/// checkpoint a first start writes before its hard state file (then state was lost).
fn fresh_or_refuse<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segments: &[u64],
    snapshots: Vec<String>,
    temporaries: Vec<PathBuf>,
) -> Result<Found, StorageError> {
    let mut leftovers = temporaries;
    for &sequence in segments {
        let path = dir.join(files::segment_name(sequence));
        let bytes = fs.read(&path).map_err(|error| io_error(&path, error))?;
        let empty_start = match decode_frame(&bytes, 0) {
            Frame::End | Frame::Damaged { reaches_end: true, .. } => true,
            Frame::Record(WalRecord::Checkpoint { snapshot: None, .. }, next) => {
                !matches!(decode_frame(&bytes, next), Frame::Record(..))
            }
            _ => false,
        };
        if sequence != 1 || !empty_start {
            return Err(damage(
                &dir.join(HARD_STATE_FILE),
                None,
                "the hard state file is missing but the directory holds a log",
            ));
        }
        leftovers.push(path);
    }
    if !snapshots.is_empty() {
        return Err(damage(
            &dir.join(HARD_STATE_FILE),
            None,
            "the hard state file is missing but the directory holds a snapshot",
        ));
    }
    Ok(Found::Fresh { leftovers })
}

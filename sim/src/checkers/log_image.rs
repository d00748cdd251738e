//! The log image rule: a node's core holds the log its own writes describe. After
//! every step that wrote, once the disk has taken the writes, the core's last entry
//! (index and term) and its snapshot point are those of the written image. A core that
//! keeps in memory what its own writes discard (or the reverse) breaks the moment it
//! does so, long before a restart or an election shows the damage.

use super::{Check, Invariant, Violation};
use raft_core::{DurableState, NodeId, RaftNode};
use raft_host::durable_image;

/// Checks node `node`'s core against the image of everything it has `written`.
pub(crate) fn check(node: NodeId, core: &RaftNode, written: &DurableState) -> Check {
    let image_last = durable_image::last_index(written);
    let image_snapshot = durable_image::snapshot_index(written);
    let image_term = durable_image::term_at(written, image_last);
    let core_last = core.last_index();
    let core_snapshot = core.snapshot_meta().last_included_index;
    let core_term = core.term_at(core_last);
    if (core_last, core_term, core_snapshot) == (image_last, image_term, image_snapshot) {
        return Ok(());
    }
    let detail = format!(
        "node {node} holds a log through {core_last}@{} (snapshot at {core_snapshot}) but its writes describe one through {image_last}@{} (snapshot at {image_snapshot})",
        core_term.map_or("?".to_string(), |term| term.to_string()),
        image_term.map_or("?".to_string(), |term| term.to_string()),
    );
    Err(Violation::new(Invariant::LogImage, vec![node], detail))
}

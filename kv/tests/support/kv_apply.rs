//! The `kv_apply` fuzz target's body, shared with `cargo test` (which replays the
//! committed seed corpus through it): untrusted bytes into the key-value store, as a
//! log entry and as a snapshot. Neither may panic; a decoded command must re-encode to
//! the same bytes, and a restored snapshot must snapshot to the same bytes.

use kv::{Command, KvStore};

/// Feeds `data` to a store both ways; returns how many of the two it accepted.
pub(crate) fn run(data: &[u8]) -> usize {
    let mut accepted = 0;
    let mut store = KvStore::default();
    let _ = store.apply_bytes(data);
    if let Ok(command) = Command::decode(data) {
        accepted += 1;
        assert_eq!(Command::decode(&command.encode()), Ok(command.clone()));
        store.apply(&command);
        let restored = KvStore::restore(&store.snapshot()).expect("a store's own snapshot restores");
        assert_eq!(restored, store);
    }
    if let Ok(restored) = KvStore::restore(data) {
        accepted += 1;
        assert_eq!(KvStore::restore(&restored.snapshot()), Ok(restored));
    }
    accepted
}

//! Untrusted bytes into the key-value store: as a log entry and as a snapshot. Neither
//! may panic; a decoded command must re-encode to the same bytes, and a restored
//! snapshot must snapshot to the same bytes.
#![no_main]

use kv::{Command, KvStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut store = KvStore::default();
    let _ = store.apply_bytes(data);
    if let Ok(command) = Command::decode(data) {
        assert_eq!(Command::decode(&command.encode()), Ok(command.clone()));
        store.apply(&command);
        let restored = KvStore::restore(&store.snapshot()).expect("a store's own snapshot restores");
        assert_eq!(restored, store);
    }
    if let Ok(restored) = KvStore::restore(data) {
        assert_eq!(KvStore::restore(&restored.snapshot()), Ok(restored));
    }
});

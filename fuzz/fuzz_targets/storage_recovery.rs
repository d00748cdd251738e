//! Untrusted bytes as a file of a node's data directory, then recovery; see
//! `raft-storage/tests/support/storage_recovery.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../raft-storage/tests/support/storage_recovery.rs"]
mod storage_recovery;

fuzz_target!(|data: &[u8]| {
    storage_recovery::run(data);
});

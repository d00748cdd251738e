//! Untrusted bytes into the key-value store; see `kv/tests/support/kv_apply.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../kv/tests/support/kv_apply.rs"]
mod kv_apply;

fuzz_target!(|data: &[u8]| {
    kv_apply::run(data);
});

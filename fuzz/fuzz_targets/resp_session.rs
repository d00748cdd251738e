//! Untrusted bytes into a client connection's protocol session; see
//! `kv/tests/support/resp_session.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../kv/tests/support/resp_session.rs"]
mod resp_session;

fuzz_target!(|data: &[u8]| {
    resp_session::run(data);
});

//! Untrusted bytes into a node; see `raft-core/tests/support/message_intake.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../raft-core/tests/support/message_intake.rs"]
mod message_intake;

fuzz_target!(|data: &[u8]| {
    message_intake::run(data);
});

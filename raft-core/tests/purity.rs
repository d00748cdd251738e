//! The core's contract, checked on its source: no IO, no clock, no threads, no
//! environment, no global or thread-local RNG, no hash-ordered collections.
//! (The in-crate test network under `src/tests/` is exempt; it never ships.)

#[path = "support/purity_scan.rs"]
mod purity_scan;

use std::path::Path;

#[test]
fn core_sources_use_no_io_clock_threads_or_unseeded_randomness() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (violations, files) = purity_scan::impurities(&source, "tests");
    assert!(files >= 10, "expected the core's modules, found {files}");
    assert!(violations.is_empty(), "raft-core must stay pure:\n{}", violations.join("\n"));
}

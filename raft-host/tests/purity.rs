//! The driver is sans-IO like the core, checked on its source: no IO, no clock, no
//! threads, no environment, no global or thread-local RNG, no hash-ordered collections.
//! The IO layer (the server, the simulator) does all of that.

#[path = "../../raft-core/tests/support/purity_scan.rs"]
mod purity_scan;

use std::path::Path;

#[test]
fn driver_sources_use_no_io_clock_threads_or_unseeded_randomness() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (violations, files) = purity_scan::impurities(&source, "tests");
    assert!(files >= 7, "expected the driver's modules, found {files}");
    assert!(violations.is_empty(), "raft-host must stay pure:\n{}", violations.join("\n"));
}

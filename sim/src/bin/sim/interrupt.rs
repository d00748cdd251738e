//! Ctrl-C (SIGINT) and SIGTERM become a flag the run and the sweep poll, so they can
//! stop cleanly: write what they found, clear the progress bar, print a summary. A
//! second signal while the first is being handled ends the process at once (exit 130).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The exit code of a process stopped by a signal it handled: 128 + SIGINT.
pub(crate) const INTERRUPTED: u8 = 130;

/// Installs the handlers; the flag is set once a signal arrives.
pub(crate) fn install() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The order matters: the conditional exit sees the flag as it was before this
        // signal (unset the first time), then the flag is set.
        let exit_on_second = signal_hook::flag::register_conditional_shutdown(
            signal,
            i32::from(INTERRUPTED),
            Arc::clone(&stop),
        );
        let flag = signal_hook::flag::register(signal, Arc::clone(&stop));
        if let Err(error) = exit_on_second.and(flag) {
            // Without a handler Ctrl-C still stops the process, only less gracefully.
            eprintln!("warning: cannot handle Ctrl-C: {error}");
        }
    }
    stop
}

//! How a caller steers a run from outside: asks it to stop, and watches it move.
//!
//! Neither changes what a run does: stopping only cuts it short (the verdict is then
//! [`crate::Verdict::Interrupted`]), and progress reports read the run without touching it.

use crate::event_queue::Micros;
use std::sync::atomic::{AtomicBool, Ordering};

/// How often, in events, a run looks at its control.
pub const CONTROL_INTERVAL_EVENTS: u64 = 4_096;

/// Where a run is, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Virtual time now.
    pub virtual_time_us: Micros,
    /// When the safety phase ends (the liveness phase follows).
    pub safety_phase_us: Micros,
    /// Events simulated so far.
    pub events: u64,
}

/// A stop flag and a progress callback, both optional.
#[derive(Clone, Copy, Default)]
pub struct RunControl<'a> {
    /// Once set (by a signal handler, say), the run stops at its next look.
    pub stop: Option<&'a AtomicBool>,
    /// Called every [`CONTROL_INTERVAL_EVENTS`] events.
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

impl RunControl<'_> {
    /// Whether the run was asked to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop.is_some_and(|stop| stop.load(Ordering::Relaxed))
    }
}

impl std::fmt::Debug for RunControl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("stop", &self.stop)
            .field("progress", &self.progress.map(|_| "callback"))
            .finish()
    }
}

//! Standard output that ends quietly when its reader goes away.
//!
//! `sim run ... | head -1` closes the pipe after one line. Rust ignores SIGPIPE, so every
//! later write fails with `BrokenPipe`, and `println!` would panic (exit 101). Here the
//! first failed write marks stdout closed and every later write is skipped: the run goes
//! on, writes its repro file and exits with its verdict's code, as `grep` and `cargo`
//! end quietly when their output is cut. A failure other than a closed pipe (a full
//! disk behind a redirect) is reported once on stderr, since output was lost.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `arguments` to stdout unless it has closed; flushes when `flush` is set (a
/// header printed before a long run, so a reader sees it at once).
pub(crate) fn write(arguments: fmt::Arguments<'_>, flush: bool) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    let result = out.write_fmt(arguments).and_then(|()| if flush { out.flush() } else { Ok(()) });
    if let Err(error) = result {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != io::ErrorKind::BrokenPipe {
            eprintln!(
                "warning: cannot write to standard output ({error}); the rest of the report goes nowhere"
            );
        }
    }
}

/// `print!` that stops quietly when stdout closes.
macro_rules! out {
    ($($argument:tt)*) => { $crate::stdout::write(format_args!($($argument)*), false) };
}

/// `println!` that stops quietly when stdout closes.
macro_rules! outln {
    () => { $crate::stdout::write(format_args!("\n"), false) };
    ($($argument:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($argument)*)), false) };
}

/// `print!` and flush, for a header shown before a long run.
macro_rules! out_now {
    ($($argument:tt)*) => { $crate::stdout::write(format_args!($($argument)*), true) };
}

pub(crate) use {out, out_now, outln};

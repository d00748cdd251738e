//! Standard output that ends quietly when its reader goes away.
//!
//! `kv client ... | head -1` closes the pipe early. Rust ignores SIGPIPE, so later
//! writes fail with `BrokenPipe` and `println!` would panic (exit 101). Here a failed
//! write marks stdout closed: later output is skipped, a prompt stops reading commands
//! (no one sees their answers), and the exit code stays the command's own. Any other
//! failure (a full disk behind a redirect) is reported once on stderr.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `arguments` to stdout and flushes, unless it has closed.
pub(crate) fn write(arguments: fmt::Arguments<'_>) {
    if is_closed() {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(error) = out.write_fmt(arguments).and_then(|()| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("kv: cannot write to standard output ({error}); the rest goes nowhere");
        }
    }
}

/// Whether a write to stdout has failed.
pub(crate) fn is_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// `print!` that stops quietly when stdout closes.
macro_rules! out {
    ($($argument:tt)*) => { $crate::stdout::write(format_args!($($argument)*)) };
}

/// `println!` that stops quietly when stdout closes.
macro_rules! outln {
    ($($argument:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($argument)*))) };
}

pub(crate) use {out, outln};

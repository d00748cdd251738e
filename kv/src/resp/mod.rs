//! The client protocol: RESP2 (the Redis protocol), sans-IO.
//!
//! - `parser`: requests, arrays of bulk strings or inline commands, bounded;
//! - [`Reply`]: replies written into a buffer;
//! - `commands`: what a command's arguments mean ([`ClientCommand`]);
//! - `config`: `CONFIG GET`/`SET`, the settings by Redis's names ([`Settings`]);
//! - `table`: the command table (names, arities, flags, key positions) that `COMMAND`
//!   describes;
//! - `session`: one connection ([`RespSession`]): bytes in, requests out, answers in,
//!   bytes out, in request order. The server's sockets and the simulator's clients both
//!   drive it, so every protocol decision runs under the simulator.

pub mod access;
mod commands;
mod config;
mod info;
mod parser;
mod reply;
mod session;
mod strings;
mod table;

pub use commands::{parse as parse_command, ClientCommand, MembershipCommand, ReplyShape, WriteCommand};
pub use config::{parse_memory, parse_set as parse_config_set, Setting, Settings};
pub use info::InfoSections;
pub use parser::{
    parse, parse_with, Limits, Parsed, Skip, MAX_ARGUMENTS, MAX_BULK_BYTES, MAX_COMMAND_BYTES,
    MAX_INLINE_BYTES, MAX_SKIPPED_BULK_BYTES,
};
pub use reply::Reply;
pub use session::{
    Answer, Request, RespSession, SessionRequestId, StatusKind, MAX_PIPELINED_COMMANDS, MAX_QUEUED_COMMANDS,
    MAX_SCAN_CURSORS,
};
pub use table::{is_read_only, lookup, CommandQuery, CommandSpec, COMMANDS};

/// Checks that `address` is `host:port` with a port number.
pub fn check_address(address: &str) -> Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!("{address:?} is not host:port"));
    };
    if host.is_empty() {
        return Err(format!("{address:?} has no host"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(format!("{address:?} does not end in a port number (1 to 65535)")),
    }
}

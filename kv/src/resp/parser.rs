//! RESP2, the Redis protocol: requests (arrays of bulk strings, or inline commands as
//! `nc` and telnet send them) and replies.
//!
//! The parser is bounded ([`Limits`]): a bulk string may hold at most
//! `max_bulk_bytes` ([`MAX_BULK_BYTES`] by default), a command at most
//! `max_command_bytes` in all, an inline command at most [`MAX_INLINE_BYTES`]. A bulk
//! string past its bound is refused with a reply naming the limit ([`Parsed::TooBig`]),
//! and the rest of that command is skipped as it arrives, never buffered, so the
//! connection goes on. Anything else past a bound, or not RESP at all, is a protocol
//! error: the server replies `-ERR Protocol error: ...` and closes the connection, as
//! Redis does, so a client cannot make it buffer without limit.

/// The largest bulk string accepted by default (a key or a value): 16 MiB, Redis's
/// `proto-max-bulk-len` sized for a Raft log, where every value is written, sent and
/// kept in a snapshot.
pub const MAX_BULK_BYTES: usize = 16 << 20;
/// The most bytes one command may span by default, its framing included: room for two
/// values of the largest size (a compare-and-set) and the rest.
pub const MAX_COMMAND_BYTES: usize = 2 * MAX_BULK_BYTES + (1 << 20);
/// A bulk string longer than this is not refused and skipped but a protocol error that
/// closes the connection, as in Redis (its `proto-max-bulk-len` default): no client
/// means to send one, and skipping it would tie the connection up for long.
pub const MAX_SKIPPED_BULK_BYTES: usize = 512 << 20;
/// The longest inline command.
pub const MAX_INLINE_BYTES: usize = 64 << 10;
/// The most arguments one command may carry.
pub const MAX_ARGUMENTS: usize = 1 << 16;

/// The bounds a connection's commands must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest bulk string (a key or a value).
    pub max_bulk_bytes: usize,
    /// The most bytes one command may span, its framing included.
    pub max_command_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_bulk_bytes: MAX_BULK_BYTES, max_command_bytes: MAX_COMMAND_BYTES }
    }
}

impl Limits {
    /// The limits for values of at most `max_value_bytes`: commands may hold two of
    /// them and a mebibyte more.
    pub fn for_values(max_value_bytes: usize) -> Limits {
        Limits { max_bulk_bytes: max_value_bytes, max_command_bytes: 2 * max_value_bytes + (1 << 20) }
    }
}

/// What remains of a command refused for a bulk string past the limit: skipped as it
/// arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip {
    /// Bytes of the current bulk string (and its CRLF) still to come.
    pub body_left: usize,
    /// Bulk strings of the command after the current one.
    pub bulks_left: usize,
}

/// What the start of a buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A command (its arguments; empty for a blank inline line) and the bytes it took.
    Command(Vec<Vec<u8>>, usize),
    /// Not a whole command yet: read more.
    Incomplete,
    /// Not RESP, or past a bound: reply with this and close.
    Error(String),
    /// A bulk string past the limit: reply with this, drop the `used` bytes read so
    /// far, then skip what `skip` says remains of the command; the connection goes on.
    TooBig {
        /// The error reply (without the leading `-`).
        reply: String,
        /// The bytes of the command in the buffer, up to the oversized string's body.
        used: usize,
        /// What of the command is still to come.
        skip: Skip,
    },
}

/// Parses the command at the start of `buffer`, under the default [`Limits`].
pub fn parse(buffer: &[u8]) -> Parsed {
    parse_with(buffer, &Limits::default())
}

/// Parses the command at the start of `buffer` under `limits`.
pub fn parse_with(buffer: &[u8], limits: &Limits) -> Parsed {
    match buffer.first() {
        None => Parsed::Incomplete,
        Some(b'*') => {
            let mut spans = Vec::new();
            match parse_array(buffer, &mut spans, limits) {
                Parsed::Command(_, used) => Parsed::Command(
                    spans.iter().map(|&(start, end)| buffer[start..end].to_vec()).collect(),
                    used,
                ),
                other => other,
            }
        }
        Some(_) => parse_inline(buffer),
    }
}

/// [`parse`] without a copy of each argument: an array's arguments are left in `spans`
/// as byte ranges of `buffer` (cleared first), and `Parsed::Command` carries no
/// arguments; an inline command (rare: a person typing) is returned as [`parse`] does.
/// The session parses every command this way, reusing `spans`.
pub(crate) fn parse_spans(buffer: &[u8], spans: &mut Vec<(usize, usize)>, limits: &Limits) -> Parsed {
    spans.clear();
    match buffer.first() {
        None => Parsed::Incomplete,
        Some(b'*') => parse_array(buffer, spans, limits),
        Some(_) => parse_inline(buffer),
    }
}

/// A bulk string's header (`$length\r\n`) at the start of `buffer`, while skipping the
/// rest of a refused command: the length and the header's size, `Ok(None)` if more
/// bytes are needed.
pub(crate) fn bulk_header(buffer: &[u8]) -> Result<Option<(usize, usize)>, String> {
    match buffer.first() {
        None => return Ok(None),
        Some(b'$') => {}
        Some(&other) => {
            return Err(format!("Protocol error: expected '$', got '{}'", char::from(other).escape_default()))
        }
    }
    match line(buffer, 1, 20) {
        Ok(Some((header, body))) => match number(header) {
            Some(length) if length >= 0 => Ok(Some((length as usize, body))),
            _ => Err("Protocol error: invalid bulk length".into()),
        },
        Ok(None) => Ok(None),
        Err(_) => Err("Protocol error: invalid bulk length".into()),
    }
}

/// The line at `start` (without `\r\n`) and the offset after it, or whether more bytes
/// are needed (`Ok(None)`); a line longer than `max` is an error.
fn line(buffer: &[u8], start: usize, max: usize) -> Result<Option<(&[u8], usize)>, String> {
    let window = &buffer[start..buffer.len().min(start + max + 2)];
    // A byte search for CR, then a look at the byte after it: the header lines are
    // short, and this runs once per argument of every command.
    let mut from = 0;
    let found = loop {
        match window[from..].iter().position(|&byte| byte == b'\r') {
            Some(at) if window.get(from + at + 1) == Some(&b'\n') => break Some(from + at),
            Some(at) => from += at + 1,
            None => break None,
        }
    };
    match found {
        Some(end) => Ok(Some((&window[..end], start + end + 2))),
        None if window.len() >= max + 2 => Err("too long a header line".to_string()),
        None => Ok(None),
    }
}

fn number(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() || text.len() > 19 || text.starts_with('+') {
        return None;
    }
    text.parse().ok()
}

fn parse_array(buffer: &[u8], spans: &mut Vec<(usize, usize)>, limits: &Limits) -> Parsed {
    let (header, mut at) = match line(buffer, 1, 20) {
        Ok(Some(found)) => found,
        Ok(None) => return Parsed::Incomplete,
        Err(_) => return Parsed::Error("Protocol error: invalid multibulk length".into()),
    };
    let count = match number(header) {
        Some(count) if (0..=MAX_ARGUMENTS as i64).contains(&count) => count as usize,
        // Redis treats a negative count as an empty command; so do we.
        Some(count) if count < 0 => return Parsed::Command(Vec::new(), at),
        _ => return Parsed::Error("Protocol error: invalid multibulk length".into()),
    };
    spans.reserve(count.min(1024));
    for argument in 0..count {
        if at >= buffer.len() {
            return incomplete_within_bounds(buffer, limits);
        }
        if buffer[at] != b'$' {
            return Parsed::Error(format!(
                "Protocol error: expected '$', got '{}'",
                char::from(buffer[at]).escape_default()
            ));
        }
        let (header, body) = match line(buffer, at + 1, 20) {
            Ok(Some(found)) => found,
            Ok(None) => return incomplete_within_bounds(buffer, limits),
            Err(_) => return Parsed::Error("Protocol error: invalid bulk length".into()),
        };
        let length = match number(header) {
            Some(length) if (0..=limits.max_bulk_bytes as i64).contains(&length) => length as usize,
            Some(length) if length > 0 && length as u64 <= MAX_SKIPPED_BULK_BYTES as u64 => {
                return Parsed::TooBig {
                    reply: format!(
                        "ERR a value of {length} bytes is over the limit of {} bytes (max-value-bytes)",
                        limits.max_bulk_bytes
                    ),
                    used: body,
                    skip: Skip { body_left: length as usize + 2, bulks_left: count - argument - 1 },
                }
            }
            _ => return Parsed::Error("Protocol error: invalid bulk length".into()),
        };
        if body + length + 2 > limits.max_command_bytes {
            return Parsed::Error(format!(
                "Protocol error: a command over {} bytes",
                limits.max_command_bytes
            ));
        }
        if buffer.len() < body + length + 2 {
            return Parsed::Incomplete;
        }
        if &buffer[body + length..body + length + 2] != b"\r\n" {
            return Parsed::Error("Protocol error: a bulk string not followed by CRLF".into());
        }
        spans.push((body, body + length));
        at = body + length + 2;
    }
    Parsed::Command(Vec::new(), at)
}

fn incomplete_within_bounds(buffer: &[u8], limits: &Limits) -> Parsed {
    if buffer.len() > limits.max_command_bytes {
        Parsed::Error(format!("Protocol error: a command over {} bytes", limits.max_command_bytes))
    } else {
        Parsed::Incomplete
    }
}

/// An inline command: one line, arguments separated by spaces, with Redis's quoting
/// (`"..."` with `\n`, `\r`, `\t`, `\"`, `\\`, `\xHH` escapes; `'...'` with `\'`).
fn parse_inline(buffer: &[u8]) -> Parsed {
    let window = &buffer[..buffer.len().min(MAX_INLINE_BYTES + 1)];
    let Some(end) = window.iter().position(|&byte| byte == b'\n') else {
        return if window.len() > MAX_INLINE_BYTES {
            Parsed::Error("Protocol error: too big inline request".into())
        } else {
            Parsed::Incomplete
        };
    };
    let mut text = &buffer[..end];
    if text.last() == Some(&b'\r') {
        text = &text[..text.len() - 1];
    }
    match split_inline(text) {
        Some(arguments) => Parsed::Command(arguments, end + 1),
        None => Parsed::Error("Protocol error: unbalanced quotes in request".into()),
    }
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

fn split_inline(text: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut arguments = Vec::new();
    let mut at = 0;
    loop {
        while at < text.len() && text[at].is_ascii_whitespace() {
            at += 1;
        }
        if at == text.len() {
            return Some(arguments);
        }
        let mut argument = Vec::new();
        match text[at] {
            b'"' => {
                at += 1;
                loop {
                    match *text.get(at)? {
                        b'"' => break,
                        b'\\'
                            if text.get(at + 1) == Some(&b'x')
                                && text.get(at + 2).copied().and_then(hex_digit).is_some()
                                && text.get(at + 3).copied().and_then(hex_digit).is_some() =>
                        {
                            argument.push(hex_digit(text[at + 2])? * 16 + hex_digit(text[at + 3])?);
                            at += 3;
                        }
                        b'\\' => {
                            at += 1;
                            argument.push(match *text.get(at)? {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                other => other,
                            });
                        }
                        other => argument.push(other),
                    }
                    at += 1;
                }
                at += 1;
                // A closing quote must end the argument.
                if at < text.len() && !text[at].is_ascii_whitespace() {
                    return None;
                }
            }
            b'\'' => {
                at += 1;
                loop {
                    match *text.get(at)? {
                        b'\'' => break,
                        b'\\' if text.get(at + 1) == Some(&b'\'') => {
                            argument.push(b'\'');
                            at += 1;
                        }
                        other => argument.push(other),
                    }
                    at += 1;
                }
                at += 1;
                if at < text.len() && !text[at].is_ascii_whitespace() {
                    return None;
                }
            }
            _ => {
                while at < text.len() && !text[at].is_ascii_whitespace() {
                    argument.push(text[at]);
                    at += 1;
                }
            }
        }
        arguments.push(argument);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Reply;

    fn command(parts: &[&str]) -> Parsed {
        let mut bytes = format!("*{}\r\n", parts.len()).into_bytes();
        for part in parts {
            bytes.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
        }
        let length = bytes.len();
        assert_eq!(
            parse(&bytes),
            Parsed::Command(parts.iter().map(|p| p.as_bytes().to_vec()).collect(), length)
        );
        for cut in 0..length {
            assert_eq!(parse(&bytes[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        Parsed::Incomplete
    }

    #[test]
    fn arrays_of_bulk_strings_parse_and_a_cut_one_waits_for_more() {
        command(&["SET", "key", "a value\r\nwith CRLF"]);
        command(&["PING"]);
        command(&["GET", ""]);
    }

    #[test]
    fn inline_commands_split_on_spaces_and_honour_quotes() {
        let parsed = |text: &str| match parse(text.as_bytes()) {
            Parsed::Command(arguments, used) => {
                assert_eq!(used, text.len());
                arguments.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect::<Vec<_>>()
            }
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(parsed("SET k v\r\n"), ["SET", "k", "v"]);
        assert_eq!(parsed("  get   k\n"), ["get", "k"]);
        assert_eq!(parsed("SET k \"two words\\n\"\r\n"), ["SET", "k", "two words\n"]);
        assert_eq!(parsed("SET k 'it\\'s'\n"), ["SET", "k", "it's"]);
        assert_eq!(parsed("SET k \"\\x41\\x42\"\n"), ["SET", "k", "AB"]);
        assert_eq!(parsed("\r\n"), Vec::<String>::new());
        assert_eq!(parse(b"SET k v"), Parsed::Incomplete);
        assert!(matches!(parse(b"SET k \"open\n"), Parsed::Error(_)));
        assert!(matches!(parse(b"SET k \"a\"b\n"), Parsed::Error(_)));
    }

    #[test]
    fn bounds_and_garbage_are_protocol_errors() {
        let error = |bytes: &[u8]| match parse(bytes) {
            Parsed::Error(text) => text,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        };
        assert!(error(b"*1\r\n$1073741824\r\n").contains("invalid bulk length"));
        assert!(error(b"*1\r\n$-5\r\n").contains("invalid bulk length"));
        assert!(error(b"*99999999999\r\n").contains("multibulk length"));
        assert!(error(b"*x\r\n").contains("multibulk length"));
        assert!(error(b"*1\r\n:5\r\n").contains("expected '$'"));
        assert!(error(b"*1\r\n$1\r\nab\r\n").contains("CRLF"));
        assert!(error(&vec![b'a'; MAX_INLINE_BYTES + 10]).contains("too big inline"));
        assert!(error(b"*1\r\n$111111111111111111111111\r\n").contains("bulk length"));
        // Many bulk strings adding up past the command bound.
        let mut big = b"*1000\r\n".to_vec();
        for _ in 0..3 {
            big.extend_from_slice(format!("${MAX_BULK_BYTES}\r\n").as_bytes());
            big.extend(std::iter::repeat_n(b'x', MAX_BULK_BYTES));
            big.extend_from_slice(b"\r\n");
        }
        assert!(error(&big).contains("a command over"));
    }

    #[test]
    fn a_bulk_string_past_the_limit_is_refused_by_name_and_the_rest_skipped() {
        let limits = Limits::for_values(4);
        let bytes = b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n$2\r\nEX\r\n";
        match parse_with(bytes, &limits) {
            Parsed::TooBig { reply, used, skip } => {
                assert!(reply.contains("5 bytes is over the limit of 4 bytes"), "{reply}");
                assert_eq!(&bytes[used..used + 7], b"hello\r\n");
                assert_eq!(skip, Skip { body_left: 7, bulks_left: 1 });
            }
            other => panic!("{other:?}"),
        }
        // The header is enough to refuse: the body is never waited for.
        assert!(matches!(parse_with(b"*2\r\n$3\r\nGET\r\n$9\r\n", &limits), Parsed::TooBig { .. }));
        assert_eq!(bulk_header(b"$12\r\nrest"), Ok(Some((12, 5))));
        assert_eq!(bulk_header(b"$12"), Ok(None));
        assert!(bulk_header(b":1\r\n").is_err());
    }

    #[test]
    fn replies_are_written_as_resp() {
        let mut reply = Reply::default();
        reply.simple("OK");
        reply.error("ERR bad\r\nthing");
        reply.integer(-3);
        reply.bulk(Some(b"v"));
        reply.bulk(None);
        reply.array(2);
        assert_eq!(reply.bytes, b"+OK\r\n-ERR bad  thing\r\n:-3\r\n$1\r\nv\r\n$-1\r\n*2\r\n");
    }
}

//! The Redis commands on strings and keys, parsed into store operations and the shape
//! of their replies, with Redis's error texts.
//!
//! Each write is one [`Operation`], so one log entry, applied exactly once with a
//! session (`KV.EXEC`) and atomically inside `MULTI`/`EXEC`. Times to live go into
//! the entry as they were given (`EX 10` stays "10 s from the entry's log time"), so
//! every replica computes the same deadline.

use super::commands::{ClientCommand, ReplyShape};
use crate::{Bytes, ExpireCondition, Expiry, Operation, Query, SetCondition};

fn wrong_arity(name: &str) -> String {
    format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase())
}

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn integer(argument: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(argument).ok().and_then(|text| text.parse().ok()).ok_or_else(|| NOT_AN_INTEGER.into())
}

fn bytes(argument: &[u8]) -> Bytes {
    Bytes::from(argument)
}

/// `SET key value` with a condition, a time to live and `GET` (SETNX, SETEX, GETSET).
fn set_with(key: &[u8], value: &[u8], condition: SetCondition, expiry: Expiry, get: bool) -> Operation {
    Operation::SetWith { key: bytes(key), value: bytes(value), condition, expiry, get }
}

fn write(operation: Operation, reply: ReplyShape) -> ClientCommand {
    ClientCommand::Data { operation, reply }
}

fn read(query: Query, reply: ReplyShape) -> ClientCommand {
    ClientCommand::Query { query, reply }
}

fn is(argument: &[u8], word: &str) -> bool {
    argument.eq_ignore_ascii_case(word.as_bytes())
}

/// A time to live given in `unit_ms` milliseconds, relative or at a log time; `what`
/// names the command for the error. A relative one must be positive (`SET`, `GETEX`).
fn positive_expiry(argument: &[u8], unit_ms: i64, absolute: bool, what: &str) -> Result<Expiry, String> {
    let number = integer(argument)?;
    let invalid = || format!("ERR invalid expire time in '{}' command", what.to_ascii_lowercase());
    if number <= 0 {
        return Err(invalid());
    }
    let ms = number.checked_mul(unit_ms).ok_or_else(invalid)?;
    Ok(if absolute { Expiry::At(ms) } else { Expiry::In(ms) })
}

/// `EX s | PX ms | EXAT t | PXAT t` at `options[0]`: the expiry and how many arguments
/// it took, or `None` if `options[0]` is not one of them.
fn expiry_option(options: &[&[u8]], what: &str) -> Option<Result<(Expiry, usize), String>> {
    let (unit_ms, absolute) = match options.first() {
        Some(word) if is(word, "EX") => (1_000, false),
        Some(word) if is(word, "PX") => (1, false),
        Some(word) if is(word, "EXAT") => (1_000, true),
        Some(word) if is(word, "PXAT") => (1, true),
        _ => return None,
    };
    Some(match options.get(1) {
        Some(argument) => positive_expiry(argument, unit_ms, absolute, what).map(|expiry| (expiry, 2)),
        None => Err(SYNTAX.into()),
    })
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`.
fn set(rest: &[&[u8]]) -> Result<ClientCommand, String> {
    let [key, value, options @ ..] = rest else {
        return Err(wrong_arity("SET"));
    };
    let (mut condition, mut get, mut expiry) = (SetCondition::Always, false, None);
    let mut at = 0;
    while at < options.len() {
        let option = options[at];
        if let Some(parsed) = expiry_option(&options[at..], "set") {
            let (given, used) = parsed?;
            if expiry.is_some() {
                return Err(SYNTAX.into());
            }
            expiry = Some(given);
            at += used;
            continue;
        }
        match () {
            _ if is(option, "NX") && condition == SetCondition::Always => condition = SetCondition::IfAbsent,
            _ if is(option, "XX") && condition == SetCondition::Always => condition = SetCondition::IfPresent,
            _ if is(option, "GET") && !get => get = true,
            _ if is(option, "KEEPTTL") && expiry.is_none() => expiry = Some(Expiry::Keep),
            _ => return Err(SYNTAX.into()),
        }
        at += 1;
    }
    let reply = match (get, condition) {
        (true, _) => ReplyShape::Previous,
        (false, SetCondition::Always) => ReplyShape::Ok,
        (false, _) => ReplyShape::OkOrNull,
    };
    let expiry = expiry.unwrap_or(Expiry::Clear);
    Ok(write(set_with(key, value, condition, expiry, get), reply))
}

/// `EXPIRE key n [NX|XX|GT|LT]` and its kin.
fn expire(name: &str, rest: &[&[u8]], unit_ms: i64, absolute: bool) -> Result<ClientCommand, String> {
    let (key, number, option) = match rest {
        [key, number] => (key, number, None),
        [key, number, option] => (key, number, Some(option)),
        _ => return Err(wrong_arity(name)),
    };
    let condition = match option {
        None => ExpireCondition::Always,
        Some(word) if is(word, "NX") => ExpireCondition::IfNone,
        Some(word) if is(word, "XX") => ExpireCondition::IfSome,
        Some(word) if is(word, "GT") => ExpireCondition::IfLater,
        Some(word) if is(word, "LT") => ExpireCondition::IfEarlier,
        Some(word) => return Err(format!("ERR Unsupported option {}", String::from_utf8_lossy(word))),
    };
    let invalid = || format!("ERR invalid expire time in '{}' command", name.to_ascii_lowercase());
    let ms = integer(number)?.checked_mul(unit_ms).ok_or_else(invalid)?;
    let expiry = if absolute { Expiry::At(ms) } else { Expiry::In(ms) };
    Ok(write(Operation::Expire { key: bytes(key), expiry, condition }, ReplyShape::Integer))
}

/// The string and key command `name` (in capitals), if it is one: its meaning or the
/// error to reply.
pub(super) fn parse(name: &str, rest: &[&[u8]]) -> Option<Result<ClientCommand, String>> {
    let arity = |allowed: std::ops::RangeInclusive<usize>| {
        if allowed.contains(&rest.len()) {
            Ok(())
        } else {
            Err(wrong_arity(name))
        }
    };
    // `Ok(None)`: not a string or key command.
    let parsed = (|| -> Result<Option<ClientCommand>, String> {
        Ok(Some(match name {
            "SET" => set(rest)?,
            "SETNX" => {
                arity(2..=2)?;
                let operation = set_with(rest[0], rest[1], SetCondition::IfAbsent, Expiry::Clear, false);
                write(operation, ReplyShape::AppliedInteger)
            }
            "SETEX" | "PSETEX" => {
                arity(3..=3)?;
                let unit_ms = if name == "SETEX" { 1_000 } else { 1 };
                let expiry = positive_expiry(rest[1], unit_ms, false, name)?;
                write(set_with(rest[0], rest[2], SetCondition::Always, expiry, false), ReplyShape::Ok)
            }
            "GETSET" => {
                arity(2..=2)?;
                let operation = set_with(rest[0], rest[1], SetCondition::Always, Expiry::Clear, true);
                write(operation, ReplyShape::Previous)
            }
            "MSET" | "MSETNX" => {
                if rest.is_empty() || rest.len() % 2 != 0 {
                    return Err(wrong_arity(name));
                }
                let pairs = rest.chunks(2).map(|pair| (bytes(pair[0]), bytes(pair[1]))).collect();
                let only_if_none_exist = name == "MSETNX";
                let reply = if only_if_none_exist { ReplyShape::AppliedInteger } else { ReplyShape::Ok };
                write(Operation::SetMany { pairs, only_if_none_exist }, reply)
            }
            "INCR" | "DECR" => {
                arity(1..=1)?;
                let by = if name == "INCR" { 1 } else { -1 };
                write(Operation::IncrementBy { key: bytes(rest[0]), by }, ReplyShape::Integer)
            }
            "INCRBY" | "DECRBY" => {
                arity(2..=2)?;
                let mut by = integer(rest[1])?;
                if name == "DECRBY" {
                    by = by.checked_neg().ok_or("ERR decrement would overflow")?;
                }
                write(Operation::IncrementBy { key: bytes(rest[0]), by }, ReplyShape::Integer)
            }
            "INCRBYFLOAT" => {
                arity(2..=2)?;
                let valid = std::str::from_utf8(rest[1])
                    .ok()
                    .and_then(|text| text.parse::<f64>().ok())
                    .is_some_and(|number| !number.is_nan());
                if !valid {
                    return Err("ERR value is not a valid float".into());
                }
                write(
                    Operation::IncrementByFloat { key: bytes(rest[0]), by: bytes(rest[1]) },
                    ReplyShape::Bulk,
                )
            }
            "APPEND" => {
                arity(2..=2)?;
                write(Operation::Append { key: bytes(rest[0]), value: bytes(rest[1]) }, ReplyShape::Integer)
            }
            "SETRANGE" => {
                arity(3..=3)?;
                let offset = integer(rest[1])?;
                let offset = u64::try_from(offset).map_err(|_| "ERR offset is out of range".to_string())?;
                let operation = Operation::SetRange { key: bytes(rest[0]), offset, value: bytes(rest[2]) };
                write(operation, ReplyShape::Integer)
            }
            "STRLEN" => {
                arity(1..=1)?;
                read(Query::Get { key: bytes(rest[0]) }, ReplyShape::Length)
            }
            "GETRANGE" | "SUBSTR" => {
                arity(3..=3)?;
                let (start, end) = (integer(rest[1])?, integer(rest[2])?);
                read(Query::Get { key: bytes(rest[0]) }, ReplyShape::Range { start, end })
            }
            "GETDEL" => {
                arity(1..=1)?;
                write(Operation::GetDelete { key: bytes(rest[0]) }, ReplyShape::Bulk)
            }
            "GETEX" => {
                let [key, options @ ..] = rest else {
                    return Err(wrong_arity(name));
                };
                let expiry = match options {
                    [] => return Ok(Some(read(Query::Get { key: bytes(key) }, ReplyShape::Bulk))),
                    [word] if is(word, "PERSIST") => Expiry::Clear,
                    _ => match expiry_option(options, "getex") {
                        Some(Ok((expiry, used))) if used == options.len() => expiry,
                        Some(Err(error)) => return Err(error),
                        _ => return Err(SYNTAX.into()),
                    },
                };
                write(Operation::GetExpire { key: bytes(key), expiry }, ReplyShape::Bulk)
            }
            "DEL" | "UNLINK" => {
                arity(1..=usize::MAX)?;
                write(
                    Operation::DeleteMany { keys: rest.iter().map(|key| bytes(key)).collect() },
                    ReplyShape::Integer,
                )
            }
            "TYPE" => {
                arity(1..=1)?;
                read(Query::Get { key: bytes(rest[0]) }, ReplyShape::Type)
            }
            "RENAME" | "RENAMENX" => {
                arity(2..=2)?;
                let only_if_absent = name == "RENAMENX";
                let reply = if only_if_absent { ReplyShape::AppliedInteger } else { ReplyShape::Ok };
                write(Operation::Rename { from: bytes(rest[0]), to: bytes(rest[1]), only_if_absent }, reply)
            }
            "KEYS" => {
                arity(1..=1)?;
                let pattern = (rest[0] != b"*").then(|| bytes(rest[0]));
                read(Query::Keys { from: Bytes::default(), count: 0, pattern }, ReplyShape::Keys)
            }
            "SCAN" => scan(rest)?,
            "EXPIRE" => expire(name, rest, 1_000, false)?,
            "PEXPIRE" => expire(name, rest, 1, false)?,
            "EXPIREAT" => expire(name, rest, 1_000, true)?,
            "PEXPIREAT" => expire(name, rest, 1, true)?,
            "PERSIST" => {
                arity(1..=1)?;
                let operation = Operation::Expire {
                    key: bytes(rest[0]),
                    expiry: Expiry::Clear,
                    condition: ExpireCondition::Always,
                };
                write(operation, ReplyShape::Integer)
            }
            "TTL" | "PTTL" => {
                arity(1..=1)?;
                let reply = if name == "TTL" { ReplyShape::Seconds } else { ReplyShape::Integer };
                read(Query::TimeToLive { key: bytes(rest[0]) }, reply)
            }
            "FLUSHDB" | "FLUSHALL" => {
                match rest {
                    [] => {}
                    [mode] if is(mode, "SYNC") || is(mode, "ASYNC") => {}
                    _ => return Err(SYNTAX.into()),
                }
                write(Operation::FlushAll, ReplyShape::Ok)
            }
            _ => return Ok(None),
        }))
    })();
    parsed.transpose()
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn scan(rest: &[&[u8]]) -> Result<ClientCommand, String> {
    let [cursor, options @ ..] = rest else {
        return Err(wrong_arity("SCAN"));
    };
    let cursor = std::str::from_utf8(cursor)
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or("ERR invalid cursor")?;
    let (mut pattern, mut count, mut only_strings) = (None, 10u32, true);
    let mut pairs = options.chunks(2);
    for pair in pairs.by_ref() {
        let [option, value] = pair else {
            return Err(SYNTAX.into());
        };
        match () {
            _ if is(option, "MATCH") => pattern = (*value != b"*").then(|| bytes(value)),
            _ if is(option, "COUNT") => {
                count = match integer(value)? {
                    number if number >= 1 => number.min(u32::MAX as i64) as u32,
                    _ => return Err(SYNTAX.into()),
                }
            }
            _ if is(option, "TYPE") => only_strings = is(value, "string"),
            _ => return Err(SYNTAX.into()),
        }
    }
    Ok(ClientCommand::Scan { cursor, pattern, count, only_strings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<&[u8]> {
        text.split(' ').map(str::as_bytes).collect()
    }

    fn parsed(text: &str) -> Result<ClientCommand, String> {
        let arguments = args(text);
        parse(&String::from_utf8_lossy(arguments[0]).to_ascii_uppercase(), &arguments[1..])
            .expect("a string command")
    }

    #[test]
    fn set_takes_redis_options_in_any_order_and_refuses_bad_combinations() {
        let Ok(ClientCommand::Data { operation, reply }) = parsed("SET k v XX GET PX 250") else {
            panic!("parses");
        };
        assert_eq!(reply, ReplyShape::Previous);
        assert_eq!(
            operation,
            Operation::SetWith {
                key: "k".into(),
                value: "v".into(),
                condition: SetCondition::IfPresent,
                expiry: Expiry::In(250),
                get: true
            }
        );
        let Ok(ClientCommand::Data { operation: Operation::SetWith { expiry, .. }, .. }) =
            parsed("set k v exat 100")
        else {
            panic!("parses");
        };
        assert_eq!(expiry, Expiry::At(100_000));
        assert_eq!(parsed("SET k v NX XX"), Err(SYNTAX.into()));
        assert_eq!(parsed("SET k v EX 1 PX 1"), Err(SYNTAX.into()));
        assert_eq!(parsed("SET k v EX 1 KEEPTTL"), Err(SYNTAX.into()));
        assert_eq!(parsed("SET k v EX"), Err(SYNTAX.into()));
        assert_eq!(parsed("SET k v EX 0"), Err("ERR invalid expire time in 'set' command".into()));
        assert_eq!(parsed("SET k v EX x"), Err(NOT_AN_INTEGER.into()));
        assert_eq!(
            parsed("SET k v EX 9223372036854775807"),
            Err("ERR invalid expire time in 'set' command".into())
        );
        assert_eq!(parsed("SETEX k -1 v"), Err("ERR invalid expire time in 'setex' command".into()));
    }

    #[test]
    fn numbers_and_arities_get_redis_errors() {
        assert_eq!(parsed("INCRBY k 1.5"), Err(NOT_AN_INTEGER.into()));
        assert_eq!(parsed("DECRBY k -9223372036854775808"), Err("ERR decrement would overflow".into()));
        assert_eq!(parsed("INCRBYFLOAT k x"), Err("ERR value is not a valid float".into()));
        assert_eq!(parsed("SETRANGE k -1 v"), Err("ERR offset is out of range".into()));
        assert_eq!(parsed("MSET a 1 b"), Err("ERR wrong number of arguments for 'mset' command".into()));
        assert_eq!(parsed("EXPIRE k 10 BOGUS"), Err("ERR Unsupported option BOGUS".into()));
        assert_eq!(parsed("SCAN x"), Err("ERR invalid cursor".into()));
        assert_eq!(parsed("SCAN 0 COUNT 0"), Err(SYNTAX.into()));
        assert_eq!(parsed("FLUSHALL now"), Err(SYNTAX.into()));
        assert!(parse("NOPE", &[]).is_none());
    }
}

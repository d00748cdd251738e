//! The client history of a run: one record per operation a client invoked, with what
//! it asked, when, and how it ended. The linearizability checker reads it; `--history
//! FILE` writes it as JSON lines for external checkers (Knossos, Porcupine, Elle…).
//!
//! An operation ends in one of three ways: `ok` (the client saw its result), `fail`
//! (it certainly did not take effect: every attempt was refused before any node took
//! it), or `indeterminate` (the client gave up after timeouts: it may or may not have
//! taken effect, at any time after its invocation).
//!
//! Keys and values are byte strings: a JSON string where they are UTF-8, otherwise an
//! object `{"hex": "ff00"}`; `null` is absent.

use crate::event_queue::Micros;
use kv::{Bytes, Operation, Query, Response};
use serde_json::{json, Value};
use std::io::{self, Write};

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Completed with this response.
    Ok(Response),
    /// Certainly not applied.
    Fail,
    /// Timed out: may or may not have been applied.
    Indeterminate,
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOp {
    /// The client (1-based).
    pub client: u64,
    /// What it asked.
    pub operation: Operation,
    /// When it was first sent (virtual microseconds).
    pub invoke_us: Micros,
    /// When the client learned the outcome; `None` for indeterminate operations.
    pub return_us: Option<Micros>,
    /// How it ended.
    pub outcome: Outcome,
}

impl ClientOp {
    /// The operation as one JSON object: client, op, key, value, invoke and return
    /// times, outcome, and what the response said.
    pub fn to_json(&self) -> Value {
        let mut line = json!({
            "client": self.client,
            "invoke_us": self.invoke_us,
            "return_us": self.return_us,
            "outcome": match self.outcome {
                Outcome::Ok(_) => "ok",
                Outcome::Fail => "fail",
                Outcome::Indeterminate => "indeterminate",
            },
        });
        let fields = line.as_object_mut().expect("an object");
        let mut put = |name: &str, value: Value| {
            fields.insert(name.to_string(), value);
        };
        // `value` is what was written for writes and what was read for reads.
        match &self.operation {
            Operation::Set { key, value } => {
                put("op", json!("set"));
                put("key", bytes_json(key));
                put("value", bytes_json(value));
            }
            Operation::Delete { key } => {
                put("op", json!("delete"));
                put("key", bytes_json(key));
            }
            Operation::CompareAndSet { key, expected, new } => {
                put("op", json!("cas"));
                put("key", bytes_json(key));
                put("expected", optional_bytes_json(expected.as_ref()));
                put("value", optional_bytes_json(new.as_ref()));
            }
            Operation::Read(Query::Get { key }) => {
                put("op", json!("get"));
                put("key", bytes_json(key));
            }
            Operation::Read(Query::List { from, to, limit }) => {
                put("op", json!("list"));
                put("key", bytes_json(from));
                put("end", optional_bytes_json(to.as_ref()));
                put("limit", json!(limit));
            }
            // Not in a client's history (the leader's, or a client's before its writes);
            // written for completeness only.
            Operation::Clock { now_ms, .. } => {
                put("op", json!("clock"));
                put("now_ms", json!(now_ms));
            }
            Operation::OpenSession => put("op", json!("open_session")),
            // A set with a time to live counting from its log time.
            Operation::SetWith {
                key,
                value,
                condition: kv::SetCondition::Always,
                expiry: kv::Expiry::In(ttl_ms),
                get: false,
            } => {
                put("op", json!("set"));
                put("key", bytes_json(key));
                put("value", bytes_json(value));
                put("ttl_ms", json!(ttl_ms));
            }
            // No client of the simulator sends these: written as Rust's words only.
            other => {
                put("op", json!("other"));
                put("operation", json!(format!("{other:?}")));
            }
        }
        if let Outcome::Ok(response) = &self.outcome {
            match response {
                Response::Done => {}
                Response::Deleted { existed } => put("existed", json!(existed)),
                Response::Swapped { swapped, previous } => {
                    put("swapped", json!(swapped));
                    put("previous", optional_bytes_json(previous.as_ref()));
                }
                Response::Value(value) => put("value", optional_bytes_json(value.as_ref())),
                Response::SessionOpened { client } => put("session", json!(client)),
                Response::Entries(entries) => put(
                    "value",
                    Value::Array(
                        entries
                            .iter()
                            .map(|(key, value)| json!([bytes_json(key), bytes_json(value)]))
                            .collect(),
                    ),
                ),
                Response::Error(error) => put("error", json!(error.to_string())),
                Response::Stored { applied, previous } => {
                    put("applied", json!(applied));
                    put("previous", optional_bytes_json(previous.as_ref()));
                }
                Response::Integer(number) => put("value", json!(number)),
                other => put("response", json!(format!("{other:?}"))),
            }
        }
        line
    }
}

/// A byte string as JSON: a string if it is UTF-8, else `{"hex": "..."}`.
pub fn bytes_json(bytes: &Bytes) -> Value {
    match bytes.as_text() {
        Some(text) => Value::String(text.to_string()),
        None => {
            let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            json!({ "hex": hex })
        }
    }
}

fn optional_bytes_json(bytes: Option<&Bytes>) -> Value {
    bytes.map_or(Value::Null, bytes_json)
}

/// Reads a byte string written by [`bytes_json`].
pub fn bytes_from_json(value: &Value) -> Result<Bytes, String> {
    match value {
        Value::String(text) => Ok(Bytes::from(text.as_str())),
        Value::Object(object) => {
            let hex =
                object.get("hex").and_then(Value::as_str).ok_or("an object without a \"hex\" string")?;
            if hex.len() % 2 != 0 || !hex.is_ascii() {
                return Err(format!("{hex:?} is not hexadecimal"));
            }
            (0..hex.len())
                .step_by(2)
                .map(|at| {
                    u8::from_str_radix(&hex[at..at + 2], 16)
                        .map_err(|_| format!("{hex:?} is not hexadecimal"))
                })
                .collect::<Result<Vec<u8>, String>>()
                .map(Bytes)
        }
        _ => Err("neither a string nor {\"hex\": ...}".to_string()),
    }
}

/// Writes `history` as JSON lines, in invocation order.
pub fn write_json_lines(history: &[ClientOp], output: &mut dyn Write) -> io::Result<()> {
    for op in history {
        serde_json::to_writer(&mut *output, &op.to_json())?;
        output.write_all(b"\n")?;
    }
    output.flush()
}

/// Reads a history written by [`write_json_lines`] (or by any recorder of the same
/// format, such as a real cluster's test harness), one operation per line. A line that
/// is not one names its number and what is wrong with it. A response with an error is
/// read back as an error (its text kept), which the checkers treat as not applied.
pub fn read_json_lines(text: &str) -> Result<Vec<ClientOp>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            from_json(line).map_err(|error| format!("history line {}: {error}", number + 1))
        })
        .collect()
}

fn from_json(line: &str) -> Result<ClientOp, String> {
    let value: Value = serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let field = |name: &str| value.get(name).ok_or_else(|| format!("no {name:?} field"));
    let number = |name: &str| field(name)?.as_u64().ok_or_else(|| format!("{name:?} is not a number"));
    let text = |name: &str| {
        field(name)?.as_str().map(str::to_string).ok_or_else(|| format!("{name:?} is not a string"))
    };
    let bytes = |name: &str| bytes_from_json(field(name)?).map_err(|error| format!("{name:?}: {error}"));
    let optional_bytes = |name: &str| match value.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(other) => bytes_from_json(other).map(Some).map_err(|error| format!("{name:?}: {error}")),
    };
    let flag = |name: &str| field(name)?.as_bool().ok_or_else(|| format!("{name:?} is not true or false"));
    let client = number("client")?;
    let invoke_us = number("invoke_us")?;
    let return_us = match field("return_us")? {
        Value::Null => None,
        other => Some(other.as_u64().ok_or("\"return_us\" is not a number or null")?),
    };
    let key = bytes("key")?;
    let op = text("op")?;
    let operation = match op.as_str() {
        "set" => match value.get("ttl_ms").and_then(Value::as_i64) {
            Some(ttl_ms) => Operation::set_with_ttl(key, bytes("value")?, ttl_ms),
            None => Operation::Set { key, value: bytes("value")? },
        },
        "delete" => Operation::Delete { key },
        "cas" => Operation::CompareAndSet {
            key,
            expected: optional_bytes("expected")?,
            new: optional_bytes("value")?,
        },
        "get" => Operation::Read(Query::Get { key }),
        "list" => Operation::Read(Query::List {
            from: key,
            to: optional_bytes("end")?,
            limit: value.get("limit").and_then(Value::as_u64).unwrap_or(0) as u32,
        }),
        other => return Err(format!("unknown op {other:?}")),
    };
    let outcome = match text("outcome")?.as_str() {
        "fail" => Outcome::Fail,
        "indeterminate" => Outcome::Indeterminate,
        "ok" if value.get("error").is_some() => {
            Outcome::Ok(Response::Error(kv::KvError::Malformed(text("error")?)))
        }
        "ok" => Outcome::Ok(match &operation {
            Operation::Set { .. } | Operation::Clock { .. } | Operation::OpenSession => Response::Done,
            Operation::Delete { .. } => Response::Deleted { existed: flag("existed")? },
            Operation::CompareAndSet { .. } => {
                Response::Swapped { swapped: flag("swapped")?, previous: optional_bytes("previous")? }
            }
            Operation::Read(Query::Get { .. }) => Response::Value(optional_bytes("value")?),
            Operation::SetWith { .. } => Response::Stored { applied: true, previous: None },
            Operation::Read(Query::List { .. }) => {
                let not_pairs = || "a list's \"value\" is not a list of [key, value] pairs".to_string();
                let pairs = field("value")?.as_array().ok_or_else(not_pairs)?;
                let entries = pairs
                    .iter()
                    .map(|pair| match pair.as_array().map(Vec::as_slice) {
                        Some([key, value]) => Ok((bytes_from_json(key)?, bytes_from_json(value)?)),
                        _ => Err(not_pairs()),
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Response::Entries(entries)
            }
            other => return Err(format!("no response format for {other:?}")),
        }),
        other => return Err(format!("unknown outcome {other:?}")),
    };
    Ok(ClientOp { client, operation, invoke_us, return_us, outcome })
}

/// What the clients did, for the run report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OperationStats {
    /// Operations invoked.
    pub invoked: u64,
    /// Completed with a result.
    pub ok: u64,
    /// Certainly not applied.
    pub failed: u64,
    /// Timed out, outcome unknown (still in flight at the end counts here too).
    pub indeterminate: u64,
    /// Median client-visible latency of completed operations (virtual microseconds).
    pub latency_p50_us: Micros,
    /// 99th percentile latency of completed operations (virtual microseconds).
    pub latency_p99_us: Micros,
}

impl OperationStats {
    /// Counts and latency percentiles (nearest rank) of `history`.
    pub fn of(history: &[ClientOp]) -> OperationStats {
        let mut stats = OperationStats { invoked: history.len() as u64, ..OperationStats::default() };
        let mut latencies = Vec::with_capacity(history.len());
        for op in history {
            match op.outcome {
                Outcome::Ok(_) => {
                    stats.ok += 1;
                    latencies.extend(op.return_us.map(|returned| returned.saturating_sub(op.invoke_us)));
                }
                Outcome::Fail => stats.failed += 1,
                Outcome::Indeterminate => stats.indeterminate += 1,
            }
        }
        latencies.sort_unstable();
        let percentile = |per_mille: usize| match latencies.len() {
            0 => 0,
            length => latencies[(length * per_mille).div_ceil(1_000).clamp(1, length) - 1],
        };
        stats.latency_p50_us = percentile(500);
        stats.latency_p99_us = percentile(990);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke_us: Micros, return_us: Option<Micros>, outcome: Outcome) -> ClientOp {
        let operation = Operation::Set { key: "k".into(), value: "v".into() };
        ClientOp { client: 1, operation, invoke_us, return_us, outcome }
    }

    #[test]
    fn stats_count_outcomes_and_take_nearest_rank_percentiles() {
        let mut history: Vec<ClientOp> =
            (1..=100).map(|latency| op(1_000, Some(1_000 + latency), Outcome::Ok(Response::Done))).collect();
        history.push(op(0, None, Outcome::Indeterminate));
        history.push(op(0, Some(5), Outcome::Fail));
        let stats = OperationStats::of(&history);
        assert_eq!((stats.invoked, stats.ok, stats.failed, stats.indeterminate), (102, 100, 1, 1));
        assert_eq!((stats.latency_p50_us, stats.latency_p99_us), (50, 99));
        assert_eq!(OperationStats::of(&[]).latency_p99_us, 0);
    }

    #[test]
    fn json_lines_name_client_op_key_value_times_and_outcome() {
        let history = vec![
            op(10, Some(20), Outcome::Ok(Response::Done)),
            ClientOp {
                client: 2,
                operation: Operation::Read(Query::Get { key: "k".into() }),
                invoke_us: 15,
                return_us: Some(30),
                outcome: Outcome::Ok(Response::Value(Some("v".into()))),
            },
            op(40, None, Outcome::Indeterminate),
        ];
        let mut out = Vec::new();
        write_json_lines(&history, &mut out).unwrap();
        let lines: Vec<Value> =
            String::from_utf8(out).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(
            lines[0],
            json!({"client": 1, "op": "set", "key": "k", "value": "v", "invoke_us": 10, "return_us": 20, "outcome": "ok"})
        );
        assert_eq!(lines[1]["op"], "get");
        assert_eq!(lines[1]["value"], "v");
        assert_eq!(lines[2]["outcome"], "indeterminate");
        assert_eq!(lines[2]["return_us"], Value::Null);
    }

    #[test]
    fn json_lines_read_back_as_they_were_written() {
        let cas = Operation::CompareAndSet { key: "k".into(), expected: None, new: Some("2".into()) };
        let list = Operation::Read(Query::List { from: "a".into(), to: Some("z".into()), limit: 3 });
        let history = vec![
            op(10, Some(20), Outcome::Ok(Response::Done)),
            ClientOp {
                client: 2,
                operation: cas,
                invoke_us: 1,
                return_us: Some(2),
                outcome: Outcome::Ok(Response::Swapped { swapped: true, previous: None }),
            },
            ClientOp {
                client: 3,
                operation: Operation::Delete { key: "k".into() },
                invoke_us: 3,
                return_us: Some(4),
                outcome: Outcome::Ok(Response::Deleted { existed: false }),
            },
            ClientOp {
                client: 3,
                operation: list,
                invoke_us: 5,
                return_us: Some(6),
                outcome: Outcome::Ok(Response::Entries(vec![
                    ("b".into(), "1".into()),
                    ("\u{e9}".into(), (&b"\xff\x00"[..]).into()),
                ])),
            },
            ClientOp {
                client: 4,
                operation: Operation::Set { key: (&b"\x80k"[..]).into(), value: "".into() },
                invoke_us: 7,
                return_us: Some(8),
                outcome: Outcome::Ok(Response::Done),
            },
            ClientOp {
                client: 4,
                operation: Operation::Read(Query::Get { key: "k".into() }),
                invoke_us: 7,
                return_us: Some(8),
                outcome: Outcome::Ok(Response::Value(None)),
            },
            op(40, None, Outcome::Indeterminate),
            op(50, Some(60), Outcome::Fail),
        ];
        let mut out = Vec::new();
        write_json_lines(&history, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#"["\u00e9",{"hex":"ff00"}]"#) || text.contains(r#"["é",{"hex":"ff00"}]"#),
            "{text}"
        );
        assert!(text.contains(r#""key":{"hex":"806b"}"#), "{text}");
        assert_eq!(read_json_lines(&text).unwrap(), history);
    }

    #[test]
    fn a_line_that_is_not_an_operation_is_named() {
        let error = read_json_lines("{\"client\": 1}\n").unwrap_err();
        assert!(error.starts_with("history line 1: "), "{error}");
        assert!(read_json_lines("not json").unwrap_err().contains("not JSON"));
        let unknown = r#"{"client":1,"op":"jump","key":"k","invoke_us":1,"return_us":2,"outcome":"ok"}"#;
        assert!(read_json_lines(unknown).unwrap_err().contains("unknown op"));
        let odd = r#"{"client":1,"op":"get","key":{"hex":"f"},"invoke_us":1,"return_us":2,"outcome":"ok","value":null}"#;
        assert!(read_json_lines(odd).unwrap_err().contains("not hexadecimal"));
    }
}

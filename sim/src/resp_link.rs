//! The client's side of a RESP link, shared by the simulated clients and the
//! pipelining connections: commands encoded as a client library would, the node's
//! answers handed to its `kv::resp::RespSession` as the server's connection task
//! hands them, and the reply bytes the session wrote read back. What a client records
//! in the history is what these bytes said.

use crate::checkers::{Invariant, Violation};
use crate::options::Verdict;
use crate::world::World;
use kv::resp::{Answer as SessionAnswer, Request as SessionRequest};
use kv::{Query, Response};
use raft_core::NodeId;
use raft_host::{Answer, Request};

/// The address a refusal names for node `id`: `MOVED 0 node-ID:1`.
pub(crate) fn address_of(id: NodeId) -> String {
    format!("node-{id}:1")
}

/// The node an address of [`address_of`] names.
pub(crate) fn node_of_address(address: &str) -> Option<NodeId> {
    address.strip_prefix("node-")?.strip_suffix(":1")?.parse().ok()
}

/// `arguments` as a RESP array of bulk strings.
pub(crate) fn encode(arguments: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    push_decimal(out, arguments.len() as u64);
    out.extend_from_slice(b"\r\n");
    for argument in arguments {
        out.push(b'$');
        push_decimal(out, argument.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(argument);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `number` in decimal: what `format!` would write, without its machinery
/// (every simulated command is encoded, over millions of seeds).
pub(crate) fn push_decimal(text: &mut Vec<u8>, mut number: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    text.extend_from_slice(&digits[start..]);
}

/// A driver's answer as the server's connection task gives it to the session: a
/// leader's id becomes its address.
pub(crate) fn session_answer(answer: Answer<Response>) -> SessionAnswer {
    let address = |hint: Option<NodeId>| hint.map(address_of);
    match answer {
        Answer::Applied { response, .. } | Answer::Read(response) => SessionAnswer::Response(response),
        Answer::Done { .. } | Answer::Started => SessionAnswer::Done,
        Answer::Refused { reason, leader_hint } => {
            SessionAnswer::Refused { reason, leader_address: address(leader_hint) }
        }
        Answer::Unknown { leader_hint } => SessionAnswer::Unknown { leader_address: address(leader_hint) },
    }
}

/// The request the node's driver gets for one the session released, as the server's
/// connection task hands it over; `Err` gives back one no simulated client sends
/// (status, cluster administration).
pub(crate) fn driver_request(request: SessionRequest) -> Result<Request<Query>, SessionRequest> {
    match request {
        SessionRequest::Write(command) => Ok(Request::Write(command.encode())),
        SessionRequest::Read { query, local: false } => Ok(Request::Read(query)),
        SessionRequest::Read { query, local: true } => Ok(Request::LocalRead(query)),
        other => Err(other),
    }
}

/// The session wrote something its client cannot read, or a reply its command never
/// gets: a finding.
pub(crate) fn protocol_broken(world: &mut World<'_>, detail: String) {
    world.fail(Verdict::Safety, Violation::new(Invariant::ClientProtocol, Vec::new(), detail));
}

/// A reply as a client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// What an error reply tells a client that retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Certainly not performed; the node named leads, if one is named (`MOVED`).
    NotPerformed(Option<NodeId>),
    /// May or may not have taken effect (`TRYAGAIN outcome unknown`).
    OutcomeUnknown,
    /// Refused because the client's session is gone (`SESSIONEXPIRED`): this attempt
    /// did nothing, an earlier one may have; the client opens a new session.
    SessionExpired,
}

impl Refusal {
    /// What the error text `error` says.
    pub(crate) fn of(error: &str) -> Refusal {
        if error.starts_with("TRYAGAIN outcome unknown") {
            return Refusal::OutcomeUnknown;
        }
        if error.starts_with("SESSIONEXPIRED ") {
            return Refusal::SessionExpired;
        }
        Refusal::NotPerformed(error.strip_prefix("MOVED 0 ").and_then(node_of_address))
    }
}

/// Parses the reply at the start of `bytes`: the reply and the bytes it took, or
/// `None` if it is not whole yet. The session only writes what it may, so anything
/// malformed is a finding (`Err`).
pub(crate) fn parse_reply(bytes: &[u8]) -> Option<Result<(Reply, usize), String>> {
    parse_at(bytes, 0)
}

fn parse_at(bytes: &[u8], depth: usize) -> Option<Result<(Reply, usize), String>> {
    let kind = *bytes.first()?;
    let end = bytes.windows(2).position(|pair| pair == b"\r\n")?;
    let line = String::from_utf8_lossy(&bytes[1..end]).into_owned();
    let after = end + 2;
    let reply = match kind {
        b'+' => Reply::Simple(line),
        b'-' => Reply::Error(line),
        b':' => match line.parse() {
            Ok(number) => Reply::Integer(number),
            Err(_) => return Some(Err(format!("an integer reply that is not one: {line:?}"))),
        },
        b'$' => match line.parse::<i64>() {
            Ok(-1) => Reply::Bulk(None),
            Ok(length) if length >= 0 => {
                let length = length as usize;
                if bytes.len() < after + length + 2 {
                    return None;
                }
                let value = bytes[after..after + length].to_vec();
                return Some(Ok((Reply::Bulk(Some(value)), after + length + 2)));
            }
            _ => return Some(Err(format!("a bulk length that is not one: {line:?}"))),
        },
        b'*' if depth == 0 => match line.parse::<usize>() {
            Ok(count) => {
                let mut items = Vec::with_capacity(count.min(1024));
                let mut used = after;
                for _ in 0..count {
                    match parse_at(&bytes[used..], depth + 1)? {
                        Ok((item, length)) => {
                            items.push(item);
                            used += length;
                        }
                        Err(why) => return Some(Err(why)),
                    }
                }
                return Some(Ok((Reply::Array(items), used)));
            }
            Err(_) => return Some(Err(format!("an array length that is not one: {line:?}"))),
        },
        other => return Some(Err(format!("a reply starting with {other:?}, which no command here gets"))),
    };
    Some(Ok((reply, after)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_one_at_a_time_and_wait_for_whole_ones() {
        let bytes = b"+OK\r\n$2\r\nab\r\n$-1\r\n:1\r\n-MOVED 0 node-2:1\r\n$5\r\nab";
        let mut at = 0;
        let mut replies = Vec::new();
        while let Some(Ok((reply, used))) = parse_reply(&bytes[at..]) {
            replies.push(reply);
            at += used;
        }
        assert_eq!(
            replies,
            [
                Reply::Simple("OK".into()),
                Reply::Bulk(Some(b"ab".to_vec())),
                Reply::Bulk(None),
                Reply::Integer(1),
                Reply::Error("MOVED 0 node-2:1".into())
            ]
        );
        assert!(parse_reply(&bytes[at..]).is_none(), "a bulk string cut short waits");
        assert_eq!(node_of_address("node-2:1"), Some(2));
    }

    #[test]
    fn arrays_parse_whole_or_wait() {
        let bytes = b"*2\r\n:1\r\n$-1\r\n*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\n";
        let (first, used) = parse_reply(bytes).unwrap().unwrap();
        assert_eq!(first, Reply::Array(vec![Reply::Integer(1), Reply::Bulk(None)]));
        assert!(parse_reply(&bytes[used..]).is_none(), "an array cut short waits");
    }

    #[test]
    fn refusals_say_whether_the_command_may_have_taken_effect() {
        assert_eq!(Refusal::of("MOVED 0 node-3:1"), Refusal::NotPerformed(Some(3)));
        assert_eq!(
            Refusal::of("TRYAGAIN no leader is known yet; retry shortly"),
            Refusal::NotPerformed(None)
        );
        assert_eq!(Refusal::of("TRYAGAIN outcome unknown: leadership changed"), Refusal::OutcomeUnknown);
    }
}

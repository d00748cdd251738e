//! The client protocol session as a client sees it: replies in the order sent, and
//! commands taking effect in that order, however the node interleaves its work.

use kv::resp::{Answer, Request, RespSession, SessionRequestId};
use kv::{Bytes, Operation, Query, Response};
use proptest::prelude::*;
use raft_core::RejectReason;
use std::collections::{BTreeMap, VecDeque};

fn released(session: &mut RespSession) -> Vec<(SessionRequestId, Request)> {
    std::iter::from_fn(|| session.next_request()).collect()
}

fn output(session: &mut RespSession) -> String {
    let text = String::from_utf8_lossy(session.output()).into_owned();
    session.output_sent();
    text
}

#[test]
fn a_read_pipelined_after_a_write_waits_for_it_and_replies_keep_their_order() {
    let mut session = RespSession::new();
    session.receive(b"SET p v\r\nGET p\r\nPING\r\n");
    let first = released(&mut session);
    assert_eq!(first.len(), 1, "the GET waits for the SET: {first:?}");
    assert!(matches!(first[0].1, Request::Write(_)));
    assert_eq!(output(&mut session), "", "nothing is replied before the SET");
    session.answer(first[0].0, Answer::Response(Response::Done));
    let second = released(&mut session);
    assert!(matches!(&second[..], [(_, Request::Read { query: Query::Get { .. }, local: false })]));
    assert_eq!(output(&mut session), "+OK\r\n");
    session.answer(second[0].0, Answer::Response(Response::Value(Some("v".into()))));
    assert_eq!(output(&mut session), "$1\r\nv\r\n+PONG\r\n");
    assert!(!session.is_finished());
}

#[test]
fn a_value_past_the_limit_is_refused_by_name_skipped_as_it_arrives_and_the_connection_goes_on() {
    let mut session = RespSession::with_limits(kv::resp::Limits::for_values(8));
    // The refused SET's value arrives in pieces, with a PING pipelined behind it.
    session.receive(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20\r\n0123456");
    assert!(released(&mut session).is_empty());
    assert_eq!(
        output(&mut session),
        "-ERR a value of 20 bytes is over the limit of 8 bytes (max-value-bytes)\r\n"
    );
    session.receive(b"789012345678");
    session.receive(b"9\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(output(&mut session), "+PONG\r\n");
    // A value past the limit in the middle of a command: the arguments after it are
    // skipped too, header by header.
    session.receive(b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$9\r\n123456789\r\n$2\r\nNX\r\nSET k v\r\n");
    assert!(output(&mut session).starts_with("-ERR a value of 9 bytes"));
    let write = released(&mut session);
    assert!(matches!(&write[..], [(_, Request::Write(_))]), "the next command runs: {write:?}");
    session.answer(write[0].0, Answer::Response(Response::Done));
    assert_eq!(output(&mut session), "+OK\r\n");
    assert!(!session.broke_protocol());
}

#[test]
fn a_write_pipelined_after_a_read_waits_for_it_and_runs_of_one_kind_go_together() {
    let mut session = RespSession::new();
    session.receive(b"GET a\r\nGET b\r\nSET a 1\r\nSET b 2\r\nGET a\r\n");
    let reads = released(&mut session);
    assert_eq!(reads.len(), 2, "two reads together: {reads:?}");
    // Answered out of order: the replies still leave in order.
    session.answer(reads[1].0, Answer::Response(Response::Value(None)));
    assert_eq!(output(&mut session), "");
    assert!(released(&mut session).is_empty(), "the writes wait for the first read too");
    session.answer(reads[0].0, Answer::Response(Response::Value(Some("0".into()))));
    assert_eq!(output(&mut session), "$1\r\n0\r\n$-1\r\n");
    let writes = released(&mut session);
    assert_eq!(writes.len(), 2, "two writes together: {writes:?}");
    for (id, _) in &writes {
        session.answer(*id, Answer::Response(Response::Done));
    }
    assert_eq!(output(&mut session), "+OK\r\n+OK\r\n");
    assert_eq!(released(&mut session).len(), 1);
}

#[test]
fn refusals_become_redirects_and_a_multi_key_delete_counts() {
    let mut session = RespSession::new();
    session.receive(b"*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\nSET k v\r\n");
    let writes = released(&mut session);
    assert_eq!(writes.len(), 2, "a delete of two keys is one write (one log entry), and the SET a second");
    session.answer(writes[0].0, Answer::Response(Response::Integer(1)));
    session.answer(
        writes[1].0,
        Answer::Refused { reason: RejectReason::NotLeader, leader_address: Some("127.0.0.1:7002".into()) },
    );
    assert_eq!(output(&mut session), ":1\r\n-MOVED 0 127.0.0.1:7002\r\n");
    session.receive(b"SET k v\r\n");
    let set = released(&mut session);
    session.answer(set[0].0, Answer::Refused { reason: RejectReason::NotLeader, leader_address: None });
    assert!(output(&mut session).starts_with("-TRYAGAIN"));
    session.receive(b"SET k v\r\n");
    let set = released(&mut session);
    session.answer(set[0].0, Answer::Unknown { leader_address: None });
    assert!(output(&mut session).starts_with("-TRYAGAIN outcome unknown"));
}

#[test]
fn quit_and_protocol_errors_close_after_the_replies_before_them() {
    let mut session = RespSession::new();
    session.receive(b"GET a\r\nQUIT\r\nGET never\r\n");
    let read = released(&mut session);
    assert_eq!(read.len(), 1, "nothing after QUIT is parsed");
    assert!(!session.is_finished());
    session.answer(read[0].0, Answer::Response(Response::Value(None)));
    assert_eq!(output(&mut session), "$-1\r\n+OK\r\n");
    assert!(session.is_finished() && !session.broke_protocol());

    let mut session = RespSession::new();
    session.receive(b"PING\r\n*1\r\n$x\r\n");
    assert!(output(&mut session).starts_with("+PONG\r\n-ERR Protocol error"));
    assert!(session.is_finished() && session.broke_protocol());

    // A client that closes its side is answered, then done; a partial command is dropped.
    let mut session = RespSession::new();
    session.receive(b"GET a\r\n*2\r\n$3\r\nGET");
    session.end_of_input();
    let read = released(&mut session);
    assert_eq!(read.len(), 1);
    assert!(!session.is_finished());
    session.answer(read[0].0, Answer::Response(Response::Value(None)));
    assert!(session.is_finished());
}

#[test]
fn a_client_that_pipelines_past_the_bound_and_closes_gets_every_reply() {
    let mut session = RespSession::new();
    let count = kv::resp::MAX_PIPELINED_COMMANDS + 40;
    session.receive("GET k\r\n".repeat(count).as_bytes());
    session.receive(b"*2\r\n$3\r\nGE");
    session.end_of_input();
    let mut replies = 0;
    for _ in 0..4 {
        for (id, _) in released(&mut session) {
            session.answer(id, Answer::Response(Response::Value(None)));
        }
        replies += output(&mut session).matches("$-1").count();
    }
    assert_eq!(replies, count, "the commands past the bound are answered too");
    assert!(session.is_finished(), "and the partial command at the end is dropped");
}

#[test]
fn readonly_connections_read_locally() {
    let mut session = RespSession::new();
    session.receive(b"READONLY\r\nGET a\r\nREADWRITE\r\nGET a\r\n");
    let first = released(&mut session);
    assert!(matches!(
        first[..],
        [(_, Request::Read { local: true, .. }), (_, Request::Read { local: false, .. })]
    ));
}

#[test]
fn a_full_pipeline_stops_parsing_until_replies_drain() {
    let mut session = RespSession::new();
    let many = "GET k\r\n".repeat(kv::resp::MAX_PIPELINED_COMMANDS + 10);
    session.receive(many.as_bytes());
    assert!(!session.wants_input());
    let reads = released(&mut session);
    assert_eq!(reads.len(), kv::resp::MAX_PIPELINED_COMMANDS);
    for (id, _) in reads {
        session.answer(id, Answer::Response(Response::Value(None)));
    }
    assert_eq!(released(&mut session).len(), 10, "the rest are parsed once replies drain");
}

/// A command of the model: set, get or delete one of two keys.
#[derive(Clone, Debug)]
enum Step {
    Set(u8, u8),
    Get(u8),
    Delete(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..2u8, 0..10u8).prop_map(|(key, value)| Step::Set(key, value)),
        (0..2u8).prop_map(Step::Get),
        (0..2u8).prop_map(Step::Delete),
    ]
}

fn encode(steps: &[Step]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for step in steps {
        let line = match step {
            Step::Set(key, value) => format!("SET k{key} {value}\r\n"),
            Step::Get(key) => format!("GET k{key}\r\n"),
            Step::Delete(key) => format!("DEL k{key}\r\n"),
        };
        bytes.extend_from_slice(line.as_bytes());
    }
    bytes
}

/// What the commands reply when run one after another.
fn sequential(steps: &[Step]) -> String {
    let mut state: BTreeMap<u8, u8> = BTreeMap::new();
    let mut replies = String::new();
    for step in steps {
        match step {
            Step::Set(key, value) => {
                state.insert(*key, *value);
                replies.push_str("+OK\r\n");
            }
            Step::Get(key) => match state.get(key) {
                Some(value) => replies.push_str(&format!("${}\r\n{value}\r\n", value.to_string().len())),
                None => replies.push_str("$-1\r\n"),
            },
            Step::Delete(key) => {
                replies.push_str(&format!(":{}\r\n", i32::from(state.remove(key).is_some())))
            }
        }
    }
    replies
}

proptest! {
    /// A node that appends writes in the order they reach it and applies them later,
    /// serves reads whenever it likes from what it has applied, and answers in any
    /// order: the connection still sees its commands take effect one after another.
    #[test]
    fn pipelined_commands_take_effect_in_order_whatever_the_node_interleaves(
        steps in proptest::collection::vec(step(), 1..40),
        cuts in proptest::collection::vec(1..20usize, 0..10),
        choices in proptest::collection::vec(0..1000u32, 200),
    ) {
        let bytes = encode(&steps);
        let mut session = RespSession::new();
        // The bytes arrive in pieces.
        let mut at = 0;
        for cut in cuts {
            let end = (at + cut).min(bytes.len());
            session.receive(&bytes[at..end]);
            at = end;
        }
        session.receive(&bytes[at..]);
        let mut state: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        let mut log: VecDeque<(SessionRequestId, Operation)> = VecDeque::new();
        let mut reads: Vec<(SessionRequestId, Query)> = Vec::new();
        let mut answers: Vec<(SessionRequestId, Answer)> = Vec::new();
        let mut choice = choices.iter().cycle();
        let mut replies = String::new();
        for _ in 0..10_000 {
            for (id, request) in std::iter::from_fn(|| session.next_request()) {
                match request {
                    Request::Write(command) => log.push_back((id, command.operation)),
                    Request::Read { query, .. } => reads.push((id, query)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            replies.push_str(&output(&mut session));
            let pick = *choice.next().unwrap() as usize;
            match pick % 3 {
                // Apply the oldest appended write.
                0 if !log.is_empty() => {
                    let (id, operation) = log.pop_front().unwrap();
                    let response = match operation {
                        Operation::Set { key, value } => {
                            state.insert(key, value);
                            Response::Done
                        }
                        Operation::Delete { key } => Response::Deleted { existed: state.remove(&key).is_some() },
                        other => panic!("unexpected {other:?}"),
                    };
                    answers.push((id, Answer::Response(response)));
                }
                // Serve a read from what is applied.
                1 if !reads.is_empty() => {
                    let (id, query) = reads.swap_remove(pick % reads.len());
                    let Query::Get { key } = query else { panic!("a get") };
                    answers.push((id, Answer::Response(Response::Value(state.get(&key).cloned()))));
                }
                // Deliver an answer.
                _ if !answers.is_empty() => {
                    let (id, answer) = answers.swap_remove(pick % answers.len());
                    session.answer(id, answer);
                }
                _ => {}
            }
            if log.is_empty() && reads.is_empty() && answers.is_empty() && session.commands_waiting() == 0 {
                break;
            }
        }
        replies.push_str(&output(&mut session));
        prop_assert_eq!(replies, sequential(&steps));
    }
}

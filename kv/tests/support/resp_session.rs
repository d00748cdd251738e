//! The client protocol session fed untrusted bytes, as a fuzz target and a test: it
//! answers or refuses, never panics, stays within its bounds, and a client that closes
//! its side gets a reply to every whole command it sent.

use kv::resp::{Answer, Request, RespSession, MAX_PIPELINED_COMMANDS};
use kv::Response;

/// Feeds `data` to a session in pieces (the first byte sets their size), answering every
/// request it releases; returns how many reply bytes it wrote.
pub(crate) fn run(data: &[u8]) -> usize {
    let Some((&piece, data)) = data.split_first() else {
        return 0;
    };
    let piece = usize::from(piece).max(1);
    let mut session = RespSession::new();
    let mut written = 0;
    for chunk in data.chunks(piece) {
        session.receive(chunk);
        drive(&mut session, &mut written);
        assert!(session.commands_waiting() <= MAX_PIPELINED_COMMANDS, "the pipeline stays bounded");
    }
    session.end_of_input();
    drive(&mut session, &mut written);
    assert!(session.is_finished(), "every request was answered and the client closed: done");
    written
}

/// Answers whatever the session releases, as a node that always succeeds would.
fn drive(session: &mut RespSession, written: &mut usize) {
    // Bounded: each round answers at most every request of a full pipeline.
    for _ in 0..4 * MAX_PIPELINED_COMMANDS {
        let Some((id, request)) = session.next_request() else {
            break;
        };
        let answer = match request {
            Request::Write(_) => Answer::Response(Response::Done),
            Request::Read { .. } => Answer::Response(Response::Value(None)),
            Request::ReadMany { keys, .. } => Answer::Values(vec![None; keys.len()]),
            Request::Status(_) => Answer::Text(String::new()),
            Request::Transfer(_) | Request::Membership(_) | Request::ChangeSetting(_) => Answer::Done,
            Request::Settings => Answer::Settings(kv::resp::Settings {
                max_clients: 1,
                idle_timeout_secs: 0,
                max_value_bytes: 1 << 20,
                max_memory: 0,
            }),
        };
        session.answer(id, answer);
    }
    *written += session.output().len();
    session.output_sent();
}

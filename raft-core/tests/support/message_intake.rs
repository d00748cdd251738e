//! Untrusted bytes into a node, shared by the `message_intake` fuzz target and by the
//! `fuzz_corpus` test that replays the committed seed corpus under `cargo test`.
//!
//! Input format: a sequence of chunks, each a one-byte length and that many bytes. Each
//! chunk is decoded as a message; decoding must never panic or allocate without bound,
//! and any message that decodes is stepped into a follower and into a leader (readdressed
//! to them), which must handle or ignore it without tripping an internal assertion, then
//! both are ticked through several election timeouts.

use raft_core::{decode_message, Config, DurableState, Input, Message, MessageBody, RaftNode, Role};

fn follower() -> RaftNode {
    RaftNode::new(Config::new(1, vec![1, 2, 3]), DurableState::default(), 7).expect("valid")
}

fn leader() -> RaftNode {
    let mut config = Config::new(1, vec![1, 2, 3]);
    config.pre_vote = false;
    let mut node = RaftNode::new(config, DurableState::default(), 7).expect("valid");
    while node.role() != Role::Candidate {
        node.step(Input::Tick);
    }
    let term = node.term();
    let vote = MessageBody::RequestVoteResponse { pre_vote: false, granted: true };
    node.step(Input::Message(Message { from: 2, to: 1, term, body: vote }));
    assert_eq!(node.role(), Role::Leader);
    node.step(Input::Propose { id: 1, command: b"x".to_vec() });
    node
}

/// Runs one fuzz input. Returns how many chunks decoded into messages.
pub(crate) fn run(data: &[u8]) -> usize {
    let mut follower = follower();
    let mut leader = leader();
    let mut decoded = 0;
    let mut rest = data;
    while let Some((&length, tail)) = rest.split_first() {
        let length = (length as usize).min(tail.len());
        let (chunk, remainder) = tail.split_at(length);
        rest = remainder;
        if let Ok(mut message) = decode_message(chunk) {
            decoded += 1;
            message.to = 1;
            follower.step(Input::Message(message.clone()));
            leader.step(Input::Message(message));
            follower.step(Input::Tick);
            leader.step(Input::Tick);
        }
    }
    // Let timers fire on whatever state the messages left behind: elections, heartbeats
    // and step-downs do arithmetic on adopted terms and indexes.
    for _ in 0..300 {
        follower.step(Input::Tick);
        leader.step(Input::Tick);
    }
    decoded
}

//! Untrusted bytes into a node: decoding must never panic or allocate without bound,
//! and any message that decodes must be handled (or ignored and counted) by a
//! follower and by a leader without tripping an internal assertion.
#![no_main]

use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|data: &[u8]| {
    // Several messages in one input: each prefixed by a one-byte length.
    let mut follower = follower();
    let mut leader = leader();
    let mut rest = data;
    while let Some((&length, tail)) = rest.split_first() {
        let length = (length as usize).min(tail.len());
        let (chunk, remainder) = tail.split_at(length);
        rest = remainder;
        if let Ok(mut message) = decode_message(chunk) {
            message.to = 1;
            follower.step(Input::Message(message.clone()));
            leader.step(Input::Message(message));
            follower.step(Input::Tick);
            leader.step(Input::Tick);
        }
    }
});

//! A replicated counter, your own state machine on three nodes on loopback:
//! `cargo run -p raft-runtime --example counter`.

use raft_host::{Answer, Request, StateMachine};
use raft_runtime::{Node, NodeConfig, Role};
use std::collections::BTreeMap;

/// The state machine: a number that commands add to.
#[derive(Default)]
struct Counter(i64);

impl StateMachine for Counter {
    type Query = ();
    type Response = i64;
    fn apply(&mut self, _index: u64, command: &[u8]) -> i64 {
        self.0 += command.try_into().map(i64::from_le_bytes).unwrap_or(0);
        self.0
    }
    fn query(&self, _: &()) -> i64 {
        self.0
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.0 = i64::from_le_bytes(bytes.try_into().map_err(|_| "not a counter")?);
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let ports: Vec<u16> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
        .collect();
    let members: BTreeMap<u64, String> =
        (1..=3).zip(ports.iter().map(|port| format!("127.0.0.1:{port}"))).collect();
    let dir = std::env::temp_dir().join(format!("counter-example-{}", std::process::id()));
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let config = NodeConfig::new(id, members.clone(), dir.join(format!("node-{id}")));
        nodes.push(Node::start(config, Counter::default()).await?);
    }
    // Add 1 to 10 through whichever node leads, then read the total through it.
    let mut added: i64 = 0;
    while added < 10 {
        let Some(leader) = nodes.iter().find(|node| node.status().role == Role::Leader) else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        if let Some(Answer::Applied { response, .. }) =
            leader.submit(Request::Write((added + 1).to_le_bytes().to_vec())).await
        {
            added += 1;
            println!("added {added}: the counter is {response}");
        }
    }
    let leader = nodes.iter().find(|node| node.status().role == Role::Leader).ok_or("no leader")?;
    println!("read through the leader: {:?}", leader.submit(Request::Read(())).await);
    for node in nodes {
        node.shutdown().await?;
    }
    std::fs::remove_dir_all(&dir).map_err(|error| error.to_string())
}

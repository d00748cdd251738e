//! A follower that fell behind a compacted log catches up from a snapshot bigger than
//! the 64 MiB message limit: the snapshot travels in chunks (Raft paper Figure 13).
//! Before chunked transfer it went in one message the follower's link refused, and the
//! follower never caught up.

mod support;

use kv_server::client::{Client, Value};
use std::time::{Duration, Instant};
use support::{info_field, raft_info, Cluster, ClusterOptions};

const VALUE_BYTES: usize = 512 << 10;
/// 160 values of 512 KiB: an 80 MiB store, past the 64 MiB message limit.
const VALUES: usize = 160;

fn value(index: usize) -> Vec<u8> {
    let mut value = vec![b'a' + (index % 26) as u8; VALUE_BYTES];
    value[..8].copy_from_slice(&(index as u64).to_le_bytes());
    value
}

#[test]
fn a_follower_catches_up_from_a_snapshot_larger_than_a_message() {
    let options = ClusterOptions { compact_every: 20, ..ClusterOptions::default() };
    let mut cluster = Cluster::start("large-snapshot", options);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let behind = (1..=3).find(|&id| id != leader).unwrap();
    cluster.node(behind).kill();
    let up: Vec<String> =
        cluster.nodes.iter().filter(|node| node.id != behind).map(|node| node.address()).collect();
    let mut client = Client::new(up);
    for index in 0..VALUES {
        let key = format!("k{index}");
        let reply = client.write(&[b"SET", key.as_bytes(), &value(index)]).unwrap();
        assert_eq!(reply, Value::Simple("OK".into()), "write {index}");
    }
    let leader_port = cluster.nodes[leader as usize - 1].port;
    let info = raft_info(leader_port).unwrap();
    let snapshot_index: u64 = info_field(&info, "snapshot_index").unwrap().parse().unwrap();
    let commit_index: u64 = info_field(&info, "commit_index").unwrap().parse().unwrap();
    assert!(snapshot_index > 20, "the leader compacted: {info}");

    cluster.restart(behind);
    let port = cluster.nodes[behind as usize - 1].port;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let info = raft_info(port).unwrap_or_default();
        let applied: u64 = info_field(&info, "applied_index").and_then(|text| text.parse().ok()).unwrap_or(0);
        if applied >= commit_index {
            break;
        }
        assert!(Instant::now() < deadline, "node {behind} never caught up: {info}\n{}", cluster.outputs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let installed: u64 = info_field(&raft_info(port).unwrap(), "snapshot_index").unwrap().parse().unwrap();
    assert!(installed >= snapshot_index.min(commit_index), "node {behind} caught up from the snapshot");
    let mut local = Client::new(vec![format!("127.0.0.1:{port}")]);
    assert_eq!(local.command(&[b"READONLY"]).unwrap(), Value::Simple("OK".into()));
    for index in [0, 1, VALUES / 2, VALUES - 1] {
        let key = format!("k{index}");
        let reply = local.command(&[b"GET", key.as_bytes()]).unwrap();
        assert!(
            matches!(&reply, Value::Bulk(Some(got)) if *got == value(index)),
            "k{index} on node {behind}"
        );
    }
    assert_eq!(local.command(&[b"DBSIZE"]).unwrap(), Value::Integer(VALUES as i64));
}

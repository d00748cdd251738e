//! Values up to the limit an operator sets (`--max-value-bytes`, 16 MiB by default),
//! with real processes: a value at the limit (16 MiB by default, 64 MiB with the limit
//! raised, past the default 64 MiB peer message) written through the leader is read back
//! from every node after a leader change and after the whole cluster restarts; a value
//! one byte past the limit is refused with a reply naming the limit, and the connection
//! goes on.

mod support;

use kv_server::client::{encode_command, read_value, Client, Value};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{info_field, raft_info, Cluster, ClusterOptions};

/// The value, patterned so a shifted or truncated copy would not compare equal.
fn value(length: usize) -> Vec<u8> {
    (0..length).map(|at| (at % 251) as u8).collect()
}

/// Waits until node `port` itself (a local read) holds `expected` at `key`.
fn wait_for_local(port: u16, key: &[u8], expected: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut client = Client::new(vec![format!("127.0.0.1:{port}")]);
        client.set_patience(Duration::from_secs(2));
        let _ = client.command(&[b"READONLY"]);
        match client.command(&[b"GET", key]) {
            Ok(Value::Bulk(Some(found))) if found == expected => return,
            _ => {}
        }
        assert!(Instant::now() < deadline, "node at {port} never held the value");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes a value of `limit` bytes through the leader of a cluster started with
/// `options` and reads it back; refuses one byte more by name on a connection that goes
/// on; reads the value locally from every node after a leader change and after the whole
/// cluster restarts. Returns each follower's peak resident memory (bytes) from when it
/// had applied the value, before anything read it.
fn a_value_at_the_limit_round_trips(label: &str, options: ClusterOptions, limit: usize) -> Vec<(u64, u64)> {
    let mut cluster = Cluster::start(label, options);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let big = value(limit);
    let mut client = Client::new(cluster.addresses());
    client.set_patience(Duration::from_secs(60));
    assert_eq!(client.write(&[b"SET", b"big", &big]).unwrap(), Value::Simple("OK".into()));
    // Each follower's peak memory once it has applied the value, before any read of it.
    let applied = |port: u16| -> u64 {
        let info = raft_info(port).unwrap_or_default();
        info_field(&info, "applied_index").and_then(|index| index.parse().ok()).unwrap_or(0)
    };
    let written = applied(cluster.nodes[leader as usize - 1].port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.nodes.iter().any(|node| applied(node.port) < written) {
        assert!(Instant::now() < deadline, "the followers never applied the value");
        std::thread::sleep(Duration::from_millis(50));
    }
    let peaks = cluster
        .nodes
        .iter()
        .filter(|node| node.id != leader)
        .filter_map(|node| Some((node.id, node.peak_resident_bytes()?)))
        .collect();
    assert_eq!(client.command(&[b"GET", b"big"]).unwrap(), Value::Bulk(Some(big.clone())));

    // One byte past the limit, then a PING on the same connection.
    let port = cluster.nodes[leader as usize - 1].port;
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let too_big = value(limit + 1);
    writer.write_all(&encode_command(&[b"SET", b"too-big", &too_big])).unwrap();
    writer.write_all(&encode_command(&[b"PING"])).unwrap();
    drop(too_big);
    let mut reader = BufReader::new(stream);
    let refused = read_value(&mut reader).unwrap();
    let expected =
        format!("ERR a value of {} bytes is over the limit of {limit} bytes (max-value-bytes)", limit + 1);
    assert_eq!(refused, Value::Error(expected));
    assert_eq!(read_value(&mut reader).unwrap(), Value::Simple("PONG".into()), "the connection goes on");
    assert_eq!(client.command(&[b"GET", b"too-big"]).unwrap(), Value::Bulk(None), "nothing written");

    // After a leader change, every node holds it.
    let target = leader % 3 + 1;
    assert_eq!(
        client.command(&[b"RAFT.TRANSFER", target.to_string().as_bytes()]).unwrap(),
        Value::Simple("OK".into())
    );
    for node in &cluster.nodes {
        wait_for_local(node.port, b"big", &big);
    }
    // After every node restarts, every node holds it.
    for id in 1..=3 {
        cluster.node(id).kill();
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    cluster.wait_for_leader(Duration::from_secs(30));
    for node in &cluster.nodes {
        wait_for_local(node.port, b"big", &big);
    }
    peaks
}

#[test]
fn a_value_at_the_default_limit_replicates_and_survives_restarts_and_one_past_it_is_refused_by_name() {
    a_value_at_the_limit_round_trips("limits", ClusterOptions::default(), 16 << 20);
}

#[test]
fn a_value_at_a_raised_limit_past_the_default_message_size_replicates_too() {
    // 64 MiB: past the 64 MiB floor of the peer message limit, which follows the value limit.
    let limit = 64 << 20;
    let options = ClusterOptions {
        extra_arguments: vec!["--max-value-bytes".into(), limit.to_string()],
        ..ClusterOptions::default()
    };
    let peaks = a_value_at_the_limit_round_trips("limits-raised", options, limit);
    for (id, peak) in peaks {
        // Reported, not asserted: the figure depends on the allocator and the machine.
        eprintln!("follower {id}: peak resident memory {} MiB for a {} MiB value", peak >> 20, limit >> 20);
    }
}

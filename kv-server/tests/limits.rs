//! Values up to the limit an operator sets (`--max-value-bytes`, 16 MiB by default),
//! with real processes: a 16 MiB value written through the leader is read back from
//! every node after a leader change and after the whole cluster restarts; a value one
//! byte past the limit is refused with a reply naming the limit, and the connection goes
//! on.

mod support;

use kv_server::client::{encode_command, read_value, Client, Value};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{Cluster, ClusterOptions};

const LIMIT: usize = 16 << 20;

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

#[test]
fn a_value_at_the_limit_replicates_and_survives_restarts_and_one_past_it_is_refused_by_name() {
    let mut cluster = Cluster::start("limits", ClusterOptions::default());
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let big = value(LIMIT);
    let mut client = Client::new(cluster.addresses());
    client.set_patience(Duration::from_secs(60));
    assert_eq!(client.write(&[b"SET", b"big", &big]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(client.command(&[b"GET", b"big"]).unwrap(), Value::Bulk(Some(big.clone())));

    // One byte past the limit, then a PING on the same connection.
    let port = cluster.nodes[leader as usize - 1].port;
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let too_big = value(LIMIT + 1);
    writer.write_all(&encode_command(&[b"SET", b"too-big", &too_big])).unwrap();
    writer.write_all(&encode_command(&[b"PING"])).unwrap();
    let mut reader = BufReader::new(stream);
    let refused = read_value(&mut reader).unwrap();
    let expected =
        format!("ERR a value of {} bytes is over the limit of {LIMIT} bytes (max-value-bytes)", LIMIT + 1);
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
}

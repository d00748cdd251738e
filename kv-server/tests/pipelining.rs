//! A connection's pipelined commands take effect in the order sent, as Redis promises:
//! a read sees every earlier write of its connection, and no later one.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{Cluster, ClusterOptions};

/// Sends `requests` in one write and reads until `expected` bytes came back.
fn pipeline(port: u16, requests: &str, expected: usize) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(requests.as_bytes()).unwrap();
    let mut replies = Vec::new();
    let mut buffer = [0u8; 4096];
    while replies.len() < expected {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "closed after {:?}", String::from_utf8_lossy(&replies));
        replies.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8(replies).unwrap()
}

fn read_your_writes(nodes: usize) {
    let cluster =
        Cluster::start(&format!("pipelining-{nodes}"), ClusterOptions { nodes, ..Default::default() });
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let port = cluster.nodes[leader as usize - 1].port;
    for round in 0..20 {
        let requests = format!(
            "SET p{round} v{round}\r\nGET p{round}\r\nDEL p{round}\r\nGET p{round}\r\nSET p{round} w\r\n"
        );
        let value = format!("v{round}");
        let expected = format!("+OK\r\n${}\r\n{value}\r\n:1\r\n$-1\r\n+OK\r\n", value.len());
        assert_eq!(
            pipeline(port, &requests, expected.len()),
            expected,
            "round {round}\n{}",
            cluster.outputs()
        );
    }
    // A read before a write does not see it.
    let expected = "$1\r\nw\r\n+OK\r\n$1\r\nx\r\n";
    assert_eq!(pipeline(port, "GET p0\r\nSET p0 x\r\nGET p0\r\n", expected.len()), expected);
}

#[test]
fn pipelined_reads_see_the_writes_before_them_on_one_node() {
    read_your_writes(1);
}

#[test]
fn pipelined_reads_see_the_writes_before_them_on_the_leader_of_three() {
    read_your_writes(3);
}

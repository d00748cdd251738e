//! Cluster commands on a live cluster: leadership transfer, adding a node (its address
//! travels in the membership change's own entry), removing one.

mod support;

use kv_server::client::{Client, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{command, info_field, raft_info, Cluster, ClusterOptions};

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn leadership_moves_a_node_joins_and_another_leaves() {
    let mut cluster = Cluster::start("membership", ClusterOptions::default());
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let mut client = Client::new(cluster.addresses(), 7);
    assert_eq!(client.write(&[b"SET", b"before", b"join"]).unwrap(), Value::Simple("OK".into()));

    // A refused RAFT.ADD (node 1 is a voter already) changes no address: before, the
    // address was committed first and then the change refused, so every member sent node
    // 1's traffic and MOVED answers to the address given.
    let before = raft_info(cluster.nodes[0].port).unwrap();
    let reply = client.command(&[b"RAFT.ADD", b"1", b"127.0.0.9:1"]).unwrap();
    assert!(matches!(&reply, Value::Error(error) if error.contains("not valid")), "{reply:?}");
    std::thread::sleep(Duration::from_millis(300));
    for node in &cluster.nodes {
        let info = raft_info(node.port).unwrap();
        assert!(!info.contains("127.0.0.9"), "node {}: {info}", node.id);
    }
    assert_eq!(
        info_field(&before, "leader_address"),
        info_field(&raft_info(cluster.nodes[0].port).unwrap(), "leader_address")
    );

    // Transfer leadership to another node.
    let target = leader % 3 + 1;
    let reply = client.command(&[b"RAFT.TRANSFER", target.to_string().as_bytes()]).unwrap();
    assert_eq!(reply, Value::Simple("OK".into()));
    wait_until("the target leads", || cluster.wait_for_leader(Duration::from_secs(5)) == target);

    // A fourth node starts knowing every member, itself included, and is added.
    let port = support::free_ports(1)[0];
    let mut arguments: Vec<String> =
        vec!["server".into(), "--id".into(), "4".into(), "--tick-ms".into(), "5".into()];
    arguments.extend(["--data-dir".into(), cluster.dir.0.join("node-4").display().to_string()]);
    for node in &cluster.nodes {
        arguments.extend(["--node".into(), format!("{}:{}", node.address(), node.id)]);
    }
    arguments.extend(["--node".into(), format!("127.0.0.1:{port}:4")]);
    let log = std::fs::File::create(cluster.dir.0.join("node-4.log")).unwrap();
    let mut fourth = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(&arguments)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let address = format!("127.0.0.1:{port}");
    let reply = client.command(&[b"RAFT.ADD", b"4", address.as_bytes()]).unwrap();
    assert_eq!(reply, Value::Simple("OK".into()));
    wait_until("node 4 has the data", || {
        let mut local = Client::new(vec![address.clone()], 8);
        local.set_patience(Duration::from_secs(1));
        let _ = local.command(&[b"READONLY"]);
        matches!(local.command(&[b"GET", b"before"]), Ok(Value::Bulk(Some(value))) if value == b"join")
    });
    let info = raft_info(cluster.nodes[0].port).unwrap();
    assert_eq!(info_field(&info, "voters").as_deref(), Some("1,2,3,4"), "{info}");
    assert!(info.contains(&format!("node4:address={address}")), "every member learned the address: {info}");

    // Remove a node that does not lead, stop it: the other three carry on.
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let leaving = (1..=3).find(|&id| id != leader).unwrap();
    let reply = client.command(&[b"RAFT.REMOVE", leaving.to_string().as_bytes()]).unwrap();
    assert_eq!(reply, Value::Simple("OK".into()));
    cluster.node(leaving).kill();
    let remaining: Vec<u64> = (1..=4).filter(|&id| id != leaving).collect();
    let voters = remaining.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let leader_port = cluster.nodes[leader as usize - 1].port;
    wait_until("the removal is everywhere", || {
        raft_info(leader_port).and_then(|info| info_field(&info, "voters")).as_deref()
            == Some(voters.as_str())
    });
    assert_eq!(client.write(&[b"SET", b"after", b"leave"]).unwrap(), Value::Simple("OK".into()));
    assert!(command(port, &["RAFT.INFO"]).is_ok(), "node 4 still serves");
    let _ = fourth.kill();
    let _ = fourth.wait();
}

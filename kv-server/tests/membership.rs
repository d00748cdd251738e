//! Cluster commands on a live cluster: leadership transfer, adding a node (its address
//! travels in the membership change's own entry), removing one.

mod support;

use kv_server::client::{Client, Value};
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
    let mut client = Client::new(cluster.addresses());
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

    // A fourth node joins (`--join`: a learner until the leader says otherwise), is
    // added as a learner, catches up and is promoted by the leader on its own.
    let (_, address) = cluster.join(5);
    let reply = client.command(&[b"RAFT.ADD", b"4", address.as_bytes()]).unwrap();
    assert_eq!(reply, Value::Simple("OK".into()));
    wait_until("node 4 has the data", || {
        let mut local = Client::new(vec![address.clone()]);
        local.set_patience(Duration::from_secs(1));
        let _ = local.command(&[b"READONLY"]);
        matches!(local.command(&[b"GET", b"before"]), Ok(Value::Bulk(Some(value))) if value == b"join")
    });
    wait_until("node 4 is promoted", || {
        raft_info(cluster.nodes[0].port).and_then(|info| info_field(&info, "voters")).as_deref()
            == Some("1,2,3,4")
    });
    let info = raft_info(cluster.nodes[0].port).unwrap();
    assert_eq!(info_field(&info, "learners").as_deref(), Some(""), "{info}");
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
    assert!(command(cluster.nodes[3].port, &["RAFT.INFO"]).is_ok(), "node 4 still serves");
}

/// Thesis §4.3 on real processes: two voters replaced in one request through a joint
/// configuration, answered once the final configuration is in force; the removed nodes
/// are told and stay quiet; a refused change records no address.
#[test]
fn a_joint_change_replaces_two_voters_and_a_refused_one_changes_nothing() {
    let mut cluster = Cluster::start("joint-change", ClusterOptions::default());
    cluster.wait_for_leader(Duration::from_secs(20));
    let mut client = Client::new(cluster.addresses());
    assert_eq!(client.write(&[b"SET", b"k", b"before"]).unwrap(), Value::Simple("OK".into()));

    // Refused: the same members as now (an address attached), a member without a known
    // address, a voter twice. None records anything.
    let refused: [&[&[u8]]; 3] = [
        &[b"RAFT.MEMBERS", b"1=127.0.0.9:1", b"2", b"3"],
        &[b"RAFT.MEMBERS", b"1", b"2", b"3", b"7"],
        &[b"RAFT.MEMBERS", b"1", b"2", b"LEARNERS", b"2"],
    ];
    for command in refused {
        let reply = client.command(command).unwrap();
        assert!(matches!(&reply, Value::Error(_)), "{command:?}: {reply:?}");
    }
    std::thread::sleep(Duration::from_millis(300));
    for node in &cluster.nodes {
        let info = raft_info(node.port).unwrap();
        assert!(!info.contains("127.0.0.9"), "node {}: {info}", node.id);
        assert_eq!(info_field(&info, "voters").as_deref(), Some("1,2,3"), "node {}: {info}", node.id);
    }

    let (_, four) = cluster.join(5);
    let (_, five) = cluster.join(5);
    let members = [
        b"RAFT.MEMBERS".to_vec(),
        b"1".to_vec(),
        format!("4={four}").into_bytes(),
        format!("5={five}").into_bytes(),
    ];
    let members: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
    assert_eq!(client.command(&members).unwrap(), Value::Simple("OK".into()));
    // Answered once the final configuration is in force on the node that answered, so
    // the survivors hold it, joint no more.
    let survivors = [1u64, 4, 5];
    wait_until("every survivor holds the final configuration", || {
        survivors.iter().all(|&id| {
            raft_info(cluster.nodes[id as usize - 1].port).is_some_and(|info| {
                info_field(&info, "voters").as_deref() == Some("1,4,5")
                    && info_field(&info, "joint").as_deref() == Some("0")
            })
        })
    });
    cluster.node(2).kill();
    cluster.node(3).kill();
    let mut client =
        Client::new(survivors.iter().map(|&id| cluster.nodes[id as usize - 1].address()).collect());
    assert_eq!(client.write(&[b"SET", b"k", b"after"]).unwrap(), Value::Simple("OK".into()));
    let mut on_five = Client::new(vec![five.clone()]);
    let _ = on_five.command(&[b"READONLY"]);
    wait_until(
        "node 5 reads the new value",
        || matches!(on_five.command(&[b"GET", b"k"]), Ok(Value::Bulk(Some(value))) if value == b"after"),
    );
}

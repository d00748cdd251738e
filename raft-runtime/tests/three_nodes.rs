//! Three nodes of a user's own state machine on loopback: they elect a leader, commit
//! through it, elect another when it stops, and a node restarted from its data
//! directory catches up; over TLS with a cluster secret, a node with another secret is
//! refused. Every wait is bounded.

use raft_host::{Answer, Request, StateMachine};
use raft_runtime::{ClusterSecret, Node, NodeConfig, Role, Tls};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A log of the commands applied, as a string.
#[derive(Default)]
struct Journal(String);

impl StateMachine for Journal {
    type Query = ();
    type Response = String;
    fn apply(&mut self, _index: u64, command: &[u8]) -> String {
        self.0.push_str(&String::from_utf8_lossy(command));
        self.0.clone()
    }
    fn query(&self, _: &()) -> String {
        self.0.clone()
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.clone().into_bytes()
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.0 = String::from_utf8(bytes.to_vec()).map_err(|error| error.to_string())?;
        Ok(())
    }
}

struct Cluster {
    members: BTreeMap<u64, String>,
    dir: PathBuf,
    nodes: BTreeMap<u64, Node<Journal>>,
    /// Each node's secret and TLS, if not the defaults.
    security: BTreeMap<u64, (ClusterSecret, Option<Tls>)>,
}

impl Cluster {
    async fn start(label: &str, security: BTreeMap<u64, (ClusterSecret, Option<Tls>)>) -> Cluster {
        let members = (1..=3)
            .map(|id| {
                let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                (id, format!("127.0.0.1:{port}"))
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("raft-runtime-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cluster = Cluster { members, dir, nodes: BTreeMap::new(), security };
        for id in 1..=3 {
            cluster.start_node(id).await;
        }
        cluster
    }

    async fn start_node(&mut self, id: u64) {
        let mut config = NodeConfig::new(id, self.members.clone(), self.dir.join(format!("node-{id}")));
        config.tick = Duration::from_millis(5);
        if let Some((secret, tls)) = self.security.get(&id) {
            config.cluster_secret = secret.clone();
            config.tls = tls.clone();
        }
        self.nodes.insert(id, Node::start(config, Journal::default()).await.expect("the node starts"));
    }

    async fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((&id, _)) = self.nodes.iter().find(|(_, node)| node.status().role == Role::Leader) {
                return id;
            }
            assert!(Instant::now() < deadline, "no leader within 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes `text` through the leader, retrying while leadership settles.
    async fn write(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let leader = self.leader().await;
            let answer = self.nodes[&leader].submit(Request::Write(text.as_bytes().to_vec())).await;
            if let Some(Answer::Applied { response, .. }) = answer {
                return response;
            }
            assert!(Instant::now() < deadline, "{text:?} was not applied within 20 s: {answer:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_cluster_commits_survives_its_leader_and_a_restarted_node_catches_up() {
    let mut cluster = Cluster::start("plain", BTreeMap::new()).await;
    assert_eq!(cluster.write("a").await, "a");
    assert_eq!(cluster.write("b").await, "ab");

    let old = cluster.leader().await;
    cluster.nodes.remove(&old).unwrap().shutdown().await.unwrap();
    assert_eq!(cluster.write("c").await, "abc", "the other two elect a leader and go on");
    assert_ne!(cluster.leader().await, old);

    cluster.start_node(old).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = cluster.nodes[&old].submit(Request::LocalRead(())).await;
        if read == Some(Answer::Read("abc".to_string())) {
            break;
        }
        assert!(Instant::now() < deadline, "the restarted node never caught up: {read:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leader = cluster.leader().await;
    assert_eq!(cluster.nodes[&leader].submit(Request::Read(())).await, Some(Answer::Read("abc".into())));
    for (_, node) in std::mem::take(&mut cluster.nodes) {
        node.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&cluster.dir).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn over_tls_a_node_with_another_secret_is_refused_and_the_others_commit() {
    let certificates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kv-server/tests/tls");
    let tls = Tls::load(
        &certificates.join("node.pem"),
        &certificates.join("node-key.pem"),
        &certificates.join("ca.pem"),
    )
    .unwrap();
    let security = (1..=3)
        .map(|id| {
            let secret = if id == 3 { b"another".as_slice() } else { b"s3cret".as_slice() };
            (id, (ClusterSecret::new(secret), Some(tls.clone())))
        })
        .collect();
    let mut cluster = Cluster::start("tls-secret", security).await;
    assert_eq!(cluster.write("a").await, "a");
    assert_eq!(cluster.write("b").await, "ab");
    assert_ne!(cluster.leader().await, 3);
    // Node 3 is refused by both (each dials it: the lower id dials) and refuses them;
    // it never learns a thing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while [1, 2, 3].iter().any(|id| {
        cluster.nodes[id]
            .handle()
            .link_counters()
            .connections_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    }) {
        assert!(Instant::now() < deadline, "a node did not refuse the handshake within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cluster.nodes[&3].submit(Request::LocalRead(())).await, Some(Answer::Read(String::new())));
    assert_eq!(cluster.nodes[&3].status().leader, None);
    for (_, node) in std::mem::take(&mut cluster.nodes) {
        node.shutdown().await.unwrap();
    }
    std::fs::remove_dir_all(&cluster.dir).unwrap();
}

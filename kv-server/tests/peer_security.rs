//! The peers' cluster secret and TLS, on real processes: a node restarted with the wrong
//! secret is refused by the others (both ways, counted) while the cluster goes on
//! writing under the same leader, and catches up once it has the right one; a cluster
//! with `--tls-cert/--tls-key/--tls-ca` serves `redis-cli --tls` and `kv client
//! --tls-ca`, and refuses plain-text clients and clients that do not trust its CA.

mod support;

use kv_server::client::{Client, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{command_with, info_field, Cluster, ClusterOptions, TestDir};

fn arguments(extra: &[&str]) -> ClusterOptions {
    ClusterOptions {
        extra_arguments: extra.iter().map(|argument| argument.to_string()).collect(),
        ..ClusterOptions::default()
    }
}

/// A numeric field of `RAFT.INFO` (or, failing that, `INFO`) of the node at `port`;
/// `None` while it does not answer.
fn try_field(cluster: &Cluster, port: u16, name: &str) -> Option<u64> {
    for command in ["RAFT.INFO", "INFO"] {
        if let Ok(Value::Bulk(Some(text))) = command_with(port, None, cluster.tls.as_ref(), &[command]) {
            if let Some(value) = info_field(&String::from_utf8_lossy(&text), name) {
                return Some(value.parse().unwrap_or_else(|_| panic!("{name}: {value}")));
            }
        }
    }
    None
}

fn field(cluster: &Cluster, port: u16, name: &str) -> u64 {
    try_field(cluster, port, name).unwrap_or_else(|| panic!("no {name} from the node at {port}"))
}

fn text_field(cluster: &Cluster, port: u16, name: &str) -> String {
    let Ok(Value::Bulk(Some(text))) = command_with(port, None, cluster.tls.as_ref(), &["RAFT.INFO"]) else {
        panic!("RAFT.INFO of {port}")
    };
    info_field(&String::from_utf8_lossy(&text), name).unwrap()
}

/// Waits (at most `limit`) for `condition`.
fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_keys(cluster: &Cluster, prefix: &str, count: usize) {
    let mut client = Client::new(cluster.addresses());
    client.set_tls(cluster.tls.clone());
    client.set_patience(Duration::from_secs(10));
    for key in 0..count {
        let key = format!("{prefix}{key}");
        let reply = client.write(&[b"SET", key.as_bytes(), b"v"]).unwrap();
        assert_eq!(reply, Value::Simple("OK".into()), "{key}");
    }
}

/// What `stream` sends until it closes, within `limit`, and whether it closed.
fn read_until_closed(stream: &mut std::net::TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    while Instant::now() < deadline {
        match std::io::Read::read(stream, &mut buffer) {
            Ok(0) => return (received, true),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (received, true),
        }
    }
    (received, false)
}

/// Points node `id` at another cluster-secret file (it must be stopped).
fn use_secret_file(cluster: &mut Cluster, id: u64, file: &Path) {
    let arguments = &mut cluster.node(id).arguments;
    let at = arguments.iter().position(|argument| argument == "--cluster-secret-file").unwrap();
    arguments[at + 1] = file.display().to_string();
}

#[test]
fn a_peer_with_the_wrong_secret_is_refused_and_the_cluster_is_unaffected() {
    let secrets = TestDir::new("peer-secrets");
    let right = secrets.0.join("secret");
    let wrong = secrets.0.join("wrong");
    std::fs::write(&right, "7Qm0d3cXb2VyLXNlY3JldC1mb3ItdGVzdHM\n").unwrap();
    std::fs::write(&wrong, "a-guess\n").unwrap();
    let right_argument = right.display().to_string();
    let mut cluster = Cluster::start("peer-secret", arguments(&["--cluster-secret-file", &right_argument]));
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let leader_port = cluster.nodes[leader as usize - 1].port;
    let term = field(&cluster, leader_port, "term");
    write_keys(&cluster, "before:", 10);

    // A follower comes back with the wrong secret.
    let outsider = leader % 3 + 1;
    let outsider_port = cluster.nodes[outsider as usize - 1].port;
    cluster.node(outsider).kill();
    let refused_before = field(&cluster, leader_port, "peer_connections_refused");
    use_secret_file(&mut cluster, outsider, &wrong);
    cluster.restart(outsider);
    // The leader refuses its dials and it refuses the leader's (whichever way the link
    // goes, both ends count).
    eventually(Duration::from_secs(15), "the leader refuses the outsider", || {
        field(&cluster, leader_port, "peer_connections_refused") > refused_before
    });
    eventually(Duration::from_secs(15), "the outsider refuses the others", || {
        try_field(&cluster, outsider_port, "peer_connections_refused").is_some_and(|refused| refused > 0)
    });
    // The cluster goes on: same leader, same term, writes committed by the other two.
    write_keys(&cluster, "during:", 20);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cluster.wait_for_leader(Duration::from_secs(5)), leader);
    assert_eq!(field(&cluster, leader_port, "term"), term, "the outsider disturbed the leader");
    assert_eq!(text_field(&cluster, outsider_port, "leader"), "none", "the outsider heard from a leader");
    let committed = field(&cluster, leader_port, "commit_index");
    assert!(
        field(&cluster, outsider_port, "commit_index") < committed,
        "the outsider's log advanced without the secret"
    );

    // A connection that claims to be the outsider and guesses gets no further, and is
    // counted.
    let refused_now = field(&cluster, leader_port, "peer_connections_refused");
    let (mut guess, proved) = support::dial_as_peer(leader_port, outsider, leader, b"a-guess");
    assert!(!proved, "the leader proved a secret it does not hold");
    let (rest, closed) = read_until_closed(&mut guess, Duration::from_secs(5));
    assert!(
        rest.is_empty() && closed,
        "the leader answered a wrong proof: {} bytes sent, closed: {closed}",
        rest.len()
    );
    eventually(Duration::from_secs(5), "the guess is counted", || {
        field(&cluster, leader_port, "peer_connections_refused") > refused_now
    });

    // With the right secret, the outsider rejoins and catches up.
    cluster.node(outsider).kill();
    use_secret_file(&mut cluster, outsider, &right);
    cluster.restart(outsider);
    eventually(Duration::from_secs(20), "the outsider catches up", || {
        try_field(&cluster, outsider_port, "applied_index").is_some_and(|applied| applied >= committed)
    });
    assert_eq!(text_field(&cluster, outsider_port, "leader"), leader.to_string());
}

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls")
}

/// `redis-cli --tls` with `ARGS...`, trusting `ca`; `None` when redis-cli is not
/// installed (CI installs it: there it must be found).
fn redis_cli_tls(port: u16, ca: &Path, arguments: &[&str]) -> Option<(bool, String)> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--tls", "--cacert"])
        .arg(ca)
        .args(arguments)
        .output();
    match output {
        Ok(output) => Some((
            output.status.success(),
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        )),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("redis-cli is not installed: its part of the test is skipped");
            None
        }
        Err(error) => panic!("redis-cli: {error} (CI installs redis-tools)"),
    }
}

#[test]
fn a_tls_cluster_serves_redis_cli_and_kv_client_and_refuses_plain_text() {
    let tls = tls_dir();
    let path = |name: &str| tls.join(name).display().to_string();
    let (cert, key, ca) = (path("node.pem"), path("node-key.pem"), path("ca.pem"));
    let options =
        arguments(&["--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca, "--cluster-secret", "s3cret"]);
    let cluster = Cluster::start("tls-cluster", options);
    // The harness's own queries (RAFT.INFO) go over TLS: a leader is elected over TLS links.
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let leader_port = cluster.nodes[leader as usize - 1].port;
    let follower_port = cluster.nodes[(leader % 3) as usize].port;
    write_keys(&cluster, "tls:", 10);

    // kv client over TLS; a CA it does not trust is refused at once, not retried.
    let kv = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kv"))
            .args(["client", "--node", &format!("127.0.0.1:{follower_port}"), "--timeout", "5"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = kv(&["--tls-ca", &ca, "get", "tls:3"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "\"v\"");
    let started = Instant::now();
    let output = kv(&["--tls-ca", &path("other-ca.pem"), "get", "tls:3"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("invalid peer certificate"), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "retried a refused certificate");
    // Without TLS, kv client says the cluster speaks TLS, at once.
    let started = Instant::now();
    let output = kv(&["get", "tls:3"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("speaks TLS"), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "retried plain text against TLS");

    // A plain-text client gets no answer, and is counted.
    assert!(support::command(leader_port, &["PING"]).is_err());
    assert!(field(&cluster, leader_port, "tls_handshakes_failed") >= 1);

    let Some((ok, output)) = redis_cli_tls(leader_port, Path::new(&ca), &["SET", "greeting", "hello"]) else {
        return;
    };
    assert!(ok && output.trim() == "OK", "{output}");
    // From a follower, -c follows the redirect to the leader, over TLS too.
    let (ok, output) =
        redis_cli_tls(follower_port, Path::new(&ca), &["-c", "INCRBY", "counter", "5"]).unwrap();
    assert!(ok && output.trim() == "5", "{output}");
    let (ok, output) = redis_cli_tls(leader_port, Path::new(&ca), &["GET", "greeting"]).unwrap();
    assert!(ok && output.trim() == "hello", "{output}");
    let (_, output) = redis_cli_tls(leader_port, Path::new(&ca), &["DBSIZE"]).unwrap();
    assert_eq!(output.trim(), "12");
    // A CA that did not sign the node's certificate: redis-cli refuses the server.
    let (ok, output) = redis_cli_tls(leader_port, &tls.join("other-ca.pem"), &["PING"]).unwrap();
    assert!(!ok || !output.contains("PONG"), "{output}");
    // Leadership moves over the TLS links, and the new leader serves what was written.
    let next = leader % 3 + 1;
    let (ok, output) =
        redis_cli_tls(leader_port, Path::new(&ca), &["RAFT.TRANSFER", &next.to_string()]).unwrap();
    assert!(ok && output.trim() == "OK", "{output}");
    eventually(Duration::from_secs(10), "the transfer", || {
        cluster.wait_for_leader(Duration::from_secs(5)) == next
    });
    let next_port = cluster.nodes[next as usize - 1].port;
    let (ok, output) = redis_cli_tls(next_port, Path::new(&ca), &["GET", "counter"]).unwrap();
    assert!(ok && output.trim() == "5", "{output}");
}

#[test]
fn a_node_whose_certificate_the_cluster_does_not_trust_is_refused() {
    let tls = tls_dir();
    let path = |name: &str| tls.join(name).display().to_string();
    let (cert, key, ca) = (path("node.pem"), path("node-key.pem"), path("ca.pem"));
    let options = arguments(&["--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca]);
    let mut cluster = Cluster::start("tls-untrusted", options);
    // Node 3 leads (the harder case: the others must elect a new leader without it).
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    if leader != 3 {
        let port = cluster.nodes[leader as usize - 1].port;
        let reply = command_with(port, None, cluster.tls.as_ref(), &["RAFT.TRANSFER", "3"]).unwrap();
        assert_eq!(reply, Value::Simple("OK".into()));
        eventually(Duration::from_secs(10), "node 3 leads", || {
            cluster.wait_for_leader(Duration::from_secs(5)) == 3
        });
    }
    // Node 3 comes back with a certificate from a CA the others do not trust. Nodes 1
    // and 2 dial it (the lower id dials): TLS fails there, and each counts it.
    cluster.node(3).kill();
    let arguments = &mut cluster.node(3).arguments;
    let at = arguments.iter().position(|argument| argument == "--tls-cert").unwrap();
    arguments[at + 1] = path("other-node.pem");
    arguments[at + 3] = path("other-node-key.pem");
    let before = field(&cluster, cluster.nodes[0].port, "peer_connections_refused");
    cluster.restart(3);
    eventually(Duration::from_secs(15), "node 1 refuses node 3's certificate", || {
        field(&cluster, cluster.nodes[0].port, "peer_connections_refused") > before
    });
    assert!(
        cluster.nodes[0..2].iter().any(|node| {
            std::fs::read_to_string(&node.log).unwrap_or_default().contains("TLS with node 3 failed")
        }),
        "no node said why"
    );
    // Nodes 1 and 2 go on (electing one of them if node 3 led: until their election
    // timeout they still name it); node 3 learns nothing.
    eventually(Duration::from_secs(20), "a leader among nodes 1 and 2", || {
        cluster.wait_for_leader(Duration::from_secs(5)) != 3
    });
    let leader = cluster.wait_for_leader(Duration::from_secs(5));
    write_keys(&cluster, "untrusted:", 10);
    let committed = field(&cluster, cluster.nodes[leader as usize - 1].port, "commit_index");
    let outsider = try_field(&cluster, cluster.nodes[2].port, "commit_index");
    assert!(outsider.is_none_or(|index| index < committed), "node 3 advanced: {outsider:?} of {committed}");
}

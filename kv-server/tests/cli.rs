//! The commands a user types: `kv cluster` starts a local cluster and stops it on
//! SIGTERM; `kv client` writes, reads, lists and compares-and-sets through any node.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::TestDir;

fn kv_client(node: &str, words: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["client", "--node", node, "--timeout", "20"])
        .args(words)
        .output()
        .unwrap();
    // stderr says what the client waited for while it retried; a success is judged by
    // its answer alone.
    let code = output.status.code().unwrap_or(-1);
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    if code != 0 {
        text.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    (code, text.trim_end().to_string())
}

#[test]
fn kv_cluster_starts_three_nodes_that_kv_client_talks_to_and_stops_on_sigterm() {
    let dir = TestDir::new("cli-cluster");
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["cluster", "--nodes", "3", "--tick-ms", "5", "--data-dir"])
        .arg(&dir.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cluster.stdout.take().unwrap()).lines();
    let mut nodes = Vec::new();
    let mut header = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes.len() < 3 && Instant::now() < deadline {
        let line = lines.next().expect("kv cluster prints its nodes").unwrap();
        header.push_str(&line);
        if let Some(node) = line.trim().strip_prefix("node ") {
            nodes.push(node.to_string());
        }
    }
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert!(header.contains("kept when it stops"), "{header}");
    let address = |node: &str| node.rsplit_once(':').unwrap().0.to_string();
    // Its nodes share a random secret no other process on the machine can read, so a
    // peer without it is refused.
    let secret = dir.0.join("cluster-secret");
    let text = std::fs::read_to_string(&secret).unwrap();
    assert_eq!(text.trim().len(), 64, "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);

    assert_eq!(kv_client(&nodes[0], &["set", "fruit", "apple"]), (0, "OK".into()));
    let port: u16 = address(&nodes[0]).rsplit_once(':').unwrap().1.parse().unwrap();
    let (_, proved) = support::dial_as_peer(port, 2, 1, b"");
    assert!(!proved, "node 1 proved the empty secret");
    assert_eq!(kv_client(&nodes[1], &["get", "fruit"]), (0, "\"apple\"".into()));
    assert_eq!(
        kv_client(&address(&nodes[2]), &["cas", "fruit", "apple", "pear"]),
        (0, "1) (integer) 1\n2) \"apple\"".into())
    );
    assert_eq!(kv_client(&nodes[2], &["set", "grape", "green"]), (0, "OK".into()));
    assert_eq!(kv_client(&nodes[0], &["list"]), (0, "fruit = pear\ngrape = green".into()));
    assert_eq!(kv_client(&nodes[0], &["list", "g"]), (0, "grape = green".into()));
    assert_eq!(kv_client(&nodes[1], &["del", "grape"]), (0, "(integer) 1".into()));
    assert_eq!(kv_client(&nodes[1], &["get", "grape"]), (0, "(nil)".into()));
    let (code, info) = kv_client(&nodes[1], &["info"]);
    assert_eq!(code, 0);
    assert!(info.contains("role:") && info.contains("voters:1,2,3"), "{info}");
    let (code, usage) = kv_client(&nodes[1], &["set", "only-a-key"]);
    assert_eq!(code, 1);
    assert!(usage.contains("usage: set k v"), "{usage}");

    // Interactive: commands from standard input, one per line.
    let mut prompt = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["client", "--node", &nodes[2]])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    prompt.stdin.take().unwrap().write_all(b"set color \"deep blue\"\nget color\nquit\n").unwrap();
    let output = prompt.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "OK\n\"deep blue\"\n");

    support::signal(&cluster, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = cluster.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "kv cluster did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its nodes are gone too.
    for node in &nodes {
        let port: u16 = address(node).rsplit(':').next().unwrap().parse().unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "{node} still listens");
    }
}

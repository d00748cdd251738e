//! Access control on real processes: with `--requirepass` every data and admin command
//! gets `-NOAUTH` until the client authenticates, a wrong password `-WRONGPASS`; with
//! an admin password only `admin` changes the cluster; `kv client` authenticates; and
//! protected mode refuses to listen beyond loopback without a password and a cluster
//! secret.

mod support;

use kv_server::client::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{command_as, Cluster, ClusterOptions, TestDir};

fn error(value: std::io::Result<Value>) -> String {
    match value {
        Ok(Value::Error(text)) => text,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

fn arguments(extra: &[&str]) -> ClusterOptions {
    ClusterOptions {
        extra_arguments: extra.iter().map(|argument| argument.to_string()).collect(),
        ..ClusterOptions::default()
    }
}

#[test]
fn without_the_password_every_command_is_refused_and_with_it_everything_works() {
    let cluster = Cluster::start("access-password", arguments(&["--requirepass", "s3cret"]));
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let port = cluster.nodes[leader as usize - 1].port;
    for words in [
        &["SET", "k", "v"][..],
        &["GET", "k"],
        &["INCR", "n"],
        &["KEYS", "*"],
        &["PING"],
        &["INFO"],
        &["RAFT.INFO"],
        &["RAFT.TRANSFER", "2"],
        &["RAFT.REMOVE", "3"],
        &["RAFT.ADD", "4", "127.0.0.1:1"],
        &["CONFIG", "SET", "maxclients", "1"],
    ] {
        assert_eq!(error(support::command(port, words)), "NOAUTH Authentication required.", "{words:?}");
    }
    assert_eq!(
        error(command_as(port, Some("wrong"), &["GET", "k"])),
        "NOAUTH Authentication required.",
        "a wrong password leaves the connection unauthenticated"
    );
    assert!(
        matches!(support::command(port, &["AUTH", "wrong"]), Ok(Value::Error(text)) if text.starts_with("WRONGPASS")),
    );
    assert_eq!(command_as(port, Some("s3cret"), &["SET", "k", "v"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(command_as(port, Some("s3cret"), &["GET", "k"]).unwrap(), Value::Bulk(Some(b"v".to_vec())));
    // With one password, its user administers the cluster too.
    let next = leader % 3 + 1;
    assert_eq!(
        command_as(port, Some("s3cret"), &["RAFT.TRANSFER", &next.to_string()]).unwrap(),
        Value::Simple("OK".into())
    );

    // `kv client` authenticates with --password or REDISCLI_AUTH, and says so at once
    // when the password is wrong.
    let node = format!("127.0.0.1:{port}");
    let kv = |password: &str, words: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kv"))
            .args(["client", "--node", &node, "--timeout", "10"])
            .args(words)
            .env("REDISCLI_AUTH", password)
            .output()
            .unwrap()
    };
    let started = Instant::now();
    let wrong = kv("nope", &["get", "k"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("WRONGPASS"), "{wrong:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "no retrying on a wrong password");
    let right = kv("s3cret", &["get", "k"]);
    assert!(right.status.success(), "{right:?}");
    assert_eq!(String::from_utf8_lossy(&right.stdout).trim(), "\"v\"");
}

#[test]
fn with_an_admin_password_only_admin_changes_the_cluster() {
    let options = arguments(&["--requirepass", "data", "--admin-password", "root"]);
    let cluster = Cluster::start("access-admin", options);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let port = cluster.nodes[leader as usize - 1].port;
    let next = (leader % 3 + 1).to_string();
    // The data user reads and writes, and may not administer.
    let as_data = |words: &[&str]| {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = std::io::BufReader::new(stream);
        use std::io::Write;
        writer.write_all(&kv_server::client::encode_command(&[b"AUTH", b"data"])).unwrap();
        assert_eq!(kv_server::client::read_value(&mut reader).unwrap(), Value::Simple("OK".into()));
        let parts: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
        writer.write_all(&kv_server::client::encode_command(&parts)).unwrap();
        kv_server::client::read_value(&mut reader)
    };
    assert_eq!(as_data(&["SET", "k", "v"]).unwrap(), Value::Simple("OK".into()));
    for words in [
        &["RAFT.TRANSFER", next.as_str()][..],
        &["RAFT.REMOVE", "3"],
        &["RAFT.PROMOTE", "3"],
        &["RAFT.ADD", "4", "127.0.0.1:1"],
        &["RAFT.MEMBERS", "1", "2"],
        &["CONFIG", "SET", "timeout", "5"],
    ] {
        let refused = error(as_data(words));
        assert!(refused.starts_with("NOPERM User default has no permissions"), "{words:?}: {refused}");
    }
    assert_eq!(cluster.wait_for_leader(Duration::from_secs(5)), leader, "nothing changed");
    // The admin user does.
    assert_eq!(
        command_as(port, Some("root"), &["RAFT.TRANSFER", &next]).unwrap(),
        Value::Simple("OK".into())
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.wait_for_leader(Duration::from_secs(20)).to_string() != next {
        assert!(Instant::now() < deadline, "leadership never moved");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn protected_mode_refuses_to_listen_beyond_loopback_without_a_password() {
    let dir = TestDir::new("protected-mode");
    let port = support::free_ports(1)[0];
    // Refused before anything is bound: the server never listens on 0.0.0.0.
    let beyond_loopback = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_kv"))
            .args(["server", "--id", "1", "--node", &format!("127.0.0.1:{port}:1")])
            .args(["--listen", &format!("0.0.0.0:{port}"), "--data-dir"])
            .arg(dir.0.join("node-1"))
            .args(extra)
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = beyond_loopback(&[]);
    assert!(stderr.contains("protected mode") && stderr.contains("--requirepass"), "{stderr}");
    // A password is not enough: peers must prove a cluster secret too.
    let stderr = beyond_loopback(&["--requirepass", "s3cret"]);
    assert!(stderr.contains("no cluster secret") && stderr.contains("--cluster-secret-file"), "{stderr}");
    assert!(!dir.0.join("node-1").exists(), "protected mode touched the data directory");
    // An empty password file is refused by name.
    let empty = dir.0.join("empty-password");
    std::fs::write(&empty, "\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["server", "--id", "1", "--node", &format!("127.0.0.1:{port}:1"), "--requirepass-file"])
        .arg(&empty)
        .arg("--data-dir")
        .arg(dir.0.join("node-1"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("holds no password"), "{output:?}");
}

#[test]
fn json_logs_are_one_object_a_line() {
    let options = ClusterOptions { nodes: 1, ..arguments(&["--log-format", "json"]) };
    let mut cluster = Cluster::start("json-logs", options);
    cluster.wait_for_leader(Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let output = cluster.node(1).output();
        let lines: Vec<serde_json::Value> = output
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}")))
            .collect();
        if !lines.is_empty() || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!lines.is_empty(), "no JSON log line: {}", cluster.node(1).output());
    for line in &lines {
        assert!(line["timestamp"].is_string() && line["level"].is_string(), "{line}");
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
}

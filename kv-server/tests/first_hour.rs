//! What a newcomer meets in the first hour, each once a trap: `kv client` against a
//! node that is down or a malformed address, `kv cluster`'s instructions and its data
//! directory, `kv server` refusing to start without leaving debris, the log lines an
//! operator looks for, `COMMAND` and the prompt's `help`.

mod support;

use kv_server::client::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{Cluster, ClusterOptions, TestDir};

fn kv(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kv")).args(arguments).env_remove("RUST_LOG").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_malformed_node_address_is_a_usage_error_at_once() {
    for node in ["127.0.0.1", "127.0.0.1:port", ":8001"] {
        let started = Instant::now();
        let output = kv(&["client", "--node", node, "get", "k"]);
        assert_eq!(output.status.code(), Some(2), "{node}: {}", text(&output.stderr));
        assert!(text(&output.stderr).contains("host:port"), "{node}: {}", text(&output.stderr));
        assert!(started.elapsed() < Duration::from_secs(5), "{node} took {:?}", started.elapsed());
    }
}

#[test]
fn a_client_of_a_node_that_is_down_says_what_it_waits_for_and_that_nothing_was_performed() {
    let port = support::free_ports(1)[0];
    let node = format!("127.0.0.1:{port}");
    for command in [&["get", "k"][..], &["set", "k", "v"]] {
        let mut arguments = vec!["client", "--node", &node, "--timeout", "2"];
        arguments.extend_from_slice(command);
        let output = kv(&arguments);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(stderr.contains("waiting:") && stderr.contains(&node), "{command:?}: {stderr}");
        assert!(stderr.contains("was not performed"), "{command:?}: {stderr}");
        assert!(!stderr.contains("may or may not"), "{command:?}: {stderr}");
    }
}

#[test]
fn only_a_write_that_reached_a_node_that_never_answered_has_an_unknown_outcome() {
    // A "node" that takes every command and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let node = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in silent.incoming().take(32) {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    let write = kv(&["client", "--node", &node, "--timeout", "1", "set", "k", "v"]);
    assert_eq!(write.status.code(), Some(1));
    assert!(text(&write.stderr).contains("may or may not have been applied"), "{}", text(&write.stderr));
    let read = kv(&["client", "--node", &node, "--timeout", "1", "get", "k"]);
    assert_eq!(read.status.code(), Some(1));
    assert!(text(&read.stderr).contains("was not performed"), "{}", text(&read.stderr));
}

/// Starts `kv cluster` with `arguments` and reads what it prints up to "Ctrl-C".
fn start_cluster(arguments: &[&str]) -> (std::process::Child, String) {
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("cluster")
        .args(arguments)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut header = String::new();
    let mut lines = BufReader::new(cluster.stdout.take().unwrap()).lines();
    for line in lines.by_ref().take(20) {
        let line = line.unwrap();
        header.push_str(&line);
        header.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    (cluster, header)
}

fn stop(mut cluster: std::process::Child) -> String {
    support::signal(&cluster, "TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    while cluster.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "kv cluster did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stderr = String::new();
    cluster.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    stderr
}

#[test]
fn kv_cluster_names_its_own_binary_and_removes_its_temporary_data() {
    let (cluster, header) = start_cluster(&["--nodes", "1", "--tick-ms", "5"]);
    assert!(header.contains(&format!("{} client --node 127.0.0.1:", env!("CARGO_BIN_EXE_kv"))), "{header}");
    assert!(header.contains("| nc -q1 127.0.0.1 "), "{header}");
    let data = header
        .split("data in ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("no data directory in {header}"))
        .to_string();
    assert!(header.contains("removed when it stops; --data-dir keeps it"), "{header}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&data).join("node-1").join("hardstate").exists() {
        assert!(Instant::now() < deadline, "node 1 never wrote into {data}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stderr = stop(cluster);
    assert!(!std::path::Path::new(&data).exists(), "{data} is left behind");
    assert!(stderr.contains(&format!("removed the temporary data directory {data}")), "{stderr}");

    let too_many = kv(&["cluster", "--nodes", "10"]);
    assert_eq!(too_many.status.code(), Some(2));
    assert!(
        text(&too_many.stderr).contains("a local cluster has 1 to 9 nodes"),
        "{}",
        text(&too_many.stderr)
    );
}

fn server(id_and_port: u16, data_dir: &std::path::Path) -> Output {
    kv(&[
        "server",
        "--id",
        "1",
        "--node",
        &format!("127.0.0.1:{id_and_port}:1"),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ])
}

#[test]
fn a_server_that_cannot_start_leaves_no_debris_and_says_why() {
    let dir = TestDir::new("no-debris");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let fresh = dir.0.join("fresh");
    let output = server(port, &fresh);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("cannot listen on"), "{}", text(&output.stderr));
    assert!(!fresh.exists(), "a refused start created {}", fresh.display());

    let file = dir.0.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    drop(taken);
    let output = server(port, &file);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("is not a directory"), "{}", text(&output.stderr));
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

fn wait_for(cluster: &Cluster, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !cluster.outputs().contains(what) {
        assert!(Instant::now() < deadline, "no {what:?} within {timeout:?}:\n{}", cluster.outputs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn servers_log_elections_and_peers_at_the_default_level() {
    let mut cluster = Cluster::start("first-hour-logs", ClusterOptions::default());
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    wait_for(&cluster, "won the election for term", Duration::from_secs(5));
    wait_for(&cluster, "connected to node", Duration::from_secs(5));
    cluster.node(leader).kill();
    wait_for(&cluster, &format!("lost the connection to node {leader}"), Duration::from_secs(10));
    let outputs = cluster.outputs();
    assert!(!outputs.contains("DEBUG"), "the default level is info:\n{outputs}");
    assert!(!outputs.contains('\u{1b}'), "no colour codes in a log file:\n{outputs}");
}

#[test]
fn command_describes_the_command_table_and_the_prompt_has_help() {
    let cluster = Cluster::start("first-hour-command", ClusterOptions { nodes: 1, ..Default::default() });
    cluster.wait_for_leader(Duration::from_secs(20));
    let port = cluster.nodes[0].port;
    let count = kv::resp::COMMANDS.len() as i64;
    assert_eq!(support::command(port, &["COMMAND", "COUNT"]).unwrap(), Value::Integer(count));
    match support::command(port, &["COMMAND"]).unwrap() {
        Value::Array(Some(commands)) => assert_eq!(commands.len() as i64, count),
        other => panic!("COMMAND answered {other:?}"),
    }
    match support::command(port, &["COMMAND", "DOCS", "GET"]).unwrap() {
        Value::Array(Some(docs)) => assert_eq!(docs[0], Value::Bulk(Some(b"get".to_vec()))),
        other => panic!("COMMAND DOCS answered {other:?}"),
    }

    // One connection open (this one) is one client, not two. The connections of the
    // commands above may take a moment to be seen closed: wait for the count to settle.
    let connected = || match support::command(port, &["INFO"]).unwrap() {
        Value::Bulk(Some(info)) => support::info_field(&String::from_utf8_lossy(&info), "connected_clients"),
        other => panic!("INFO answered {other:?}"),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = connected();
    while seen.as_deref() != Some("1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        seen = connected();
    }
    assert_eq!(seen.as_deref(), Some("1"), "one open connection counts once");

    let mut prompt = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["client", "--node", &cluster.nodes[0].address()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    prompt.stdin.take().unwrap().write_all(b"help\nquit\n").unwrap();
    let help = text(&prompt.wait_with_output().unwrap().stdout);
    for command in ["set k v", "transfer id", "add id host:port", "remove id", "help", "quit"] {
        assert!(help.contains(command), "help lacks {command:?}:\n{help}");
    }
}

//! The Redis commands on strings and keys against a real 3-node cluster, through a
//! third-party client library (the `redis` crate) and through `redis-cli`, one family
//! at a time, before and after a leader change: counters, strings, keys, times to
//! live, transactions.

mod support;

use redis::{Commands, Connection};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Cluster, ClusterOptions};

fn connect(port: u16) -> Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let connection = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    connection
}

/// The leader's port, once a majority agrees on one.
fn leader_port(cluster: &Cluster) -> u16 {
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    cluster.nodes[leader as usize - 1].port
}

/// `redis-cli -p port ARGS...`'s output, or `None` when redis-cli is not installed
/// (CI installs it: there it must be found).
fn redis_cli(port: u16, arguments: &[&str], input: Option<&str>) -> Option<String> {
    let mut command = Command::new("redis-cli");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(arguments);
    command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("redis-cli is not installed: its part of the test is skipped");
            return None;
        }
        Err(error) => panic!("redis-cli: {error} (CI installs redis-tools)"),
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.unwrap_or_default().as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "redis-cli {arguments:?} failed");
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Every family once, at the node at `port` (the leader): `round` keeps each round's
/// keys apart and checks what an earlier round left.
fn every_family(port: u16, round: u32) {
    let mut redis = connect(port);
    let key = |name: &str| format!("r{round}:{name}");

    // Counters.
    let counter = key("counter");
    assert_eq!(redis.incr::<_, _, i64>(&counter, 1).unwrap(), 1);
    assert_eq!(redis.incr::<_, _, i64>(&counter, 41).unwrap(), 42);
    assert_eq!(redis.decr::<_, _, i64>(&counter, 2).unwrap(), 40);
    let float: String = redis::cmd("INCRBYFLOAT").arg(key("float")).arg("2.5").query(&mut redis).unwrap();
    assert_eq!(float, "2.5");
    redis.set::<_, _, ()>(key("text"), "abc").unwrap();
    let error = redis.incr::<_, _, i64>(key("text"), 1).unwrap_err();
    assert!(error.to_string().contains("value is not an integer or out of range"), "{error}");

    // Strings.
    assert_eq!(redis.append::<_, _, i64>(key("text"), "def").unwrap(), 6);
    assert_eq!(redis.strlen::<_, i64>(key("text")).unwrap(), 6);
    assert_eq!(redis.getrange::<_, String>(key("text"), 1, -2).unwrap(), "bcde");
    assert_eq!(redis.setrange::<_, _, i64>(key("text"), 3, "XYZ").unwrap(), 6);
    assert_eq!(redis.get::<_, String>(key("text")).unwrap(), "abcXYZ");
    redis.mset::<_, _, ()>(&[(key("a"), "1"), (key("b"), "2")]).unwrap();
    let values: Vec<Option<String>> = redis.mget(&[key("a"), key("b"), key("none")]).unwrap();
    assert_eq!(values, [Some("1".into()), Some("2".into()), None]);
    assert!(!redis.mset_nx::<_, _, bool>(&[(key("a"), "x"), (key("c"), "3")]).unwrap());
    assert_eq!(redis.getset::<_, _, String>(key("a"), "9").unwrap(), "1");
    assert_eq!(redis.get_del::<_, String>(key("a")).unwrap(), "9");
    assert!(redis.set_nx::<_, _, bool>(key("a"), "first").unwrap());
    assert!(!redis.set_nx::<_, _, bool>(key("a"), "second").unwrap());

    // Keys.
    assert_eq!(redis.exists::<_, i64>(&[key("a"), key("b"), key("none")]).unwrap(), 2);
    let kind: String = redis::cmd("TYPE").arg(key("a")).query(&mut redis).unwrap();
    assert_eq!(kind, "string");
    redis.rename::<_, _, ()>(key("b"), key("renamed")).unwrap();
    assert!(!redis.rename_nx::<_, _, bool>(key("renamed"), key("a")).unwrap());
    let mut listed: Vec<String> = redis.keys(format!("r{round}:*")).unwrap();
    listed.sort();
    let mut expected: Vec<String> =
        ["a", "counter", "float", "renamed", "text"].iter().map(|name| key(name)).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let mut scanned: Vec<String> = redis.scan_match(format!("r{round}:*")).unwrap().collect();
    scanned.sort();
    assert_eq!(scanned, expected, "SCAN pages through the same keys");
    assert_eq!(redis.del::<_, i64>(&[key("renamed"), key("none"), key("float")]).unwrap(), 2);
    let unlinked: i64 = redis::cmd("UNLINK").arg(key("text")).query(&mut redis).unwrap();
    assert_eq!(unlinked, 1);

    // Times to live: set, read, changed, removed, and run out (by the log's clock,
    // which on a server follows the leader's wall clock).
    redis.set_ex::<_, _, ()>(key("session"), "token", 100).unwrap();
    let ttl: i64 = redis.ttl(key("session")).unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(redis.pexpire::<_, i64>(key("session"), 50_000).unwrap(), 1);
    let pttl: i64 = redis.pttl(key("session")).unwrap();
    assert!((49_000..=50_000).contains(&pttl), "{pttl}");
    assert_eq!(redis.persist::<_, i64>(key("session")).unwrap(), 1);
    assert_eq!(redis.ttl::<_, i64>(key("session")).unwrap(), -1);
    let set: String =
        redis::cmd("SET").arg(key("brief")).arg("v").arg("PX").arg(300).query(&mut redis).unwrap();
    assert_eq!(set, "OK");
    assert_eq!(redis.get::<_, Option<String>>(key("brief")).unwrap().as_deref(), Some("v"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.exists::<_, bool>(key("brief")).unwrap() {
        assert!(Instant::now() < deadline, "a 300 ms key still there after 5 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(redis.ttl::<_, i64>(key("brief")).unwrap(), -2);

    // A transaction: one log entry, each command's reply in order.
    let (counted, text, missing): (i64, String, Option<String>) = redis::pipe()
        .atomic()
        .incr(&counter, 10)
        .set(key("t"), "x")
        .ignore()
        .get(key("t"))
        .get(key("none"))
        .query(&mut redis)
        .unwrap();
    assert_eq!((counted, text.as_str(), missing), (50, "x", None));

    // What the earlier round left is still there, leader change or not.
    if round > 0 {
        let before = format!("r{}:counter", round - 1);
        assert_eq!(redis.get::<_, i64>(&before).unwrap(), 50);
        assert_eq!(redis.incr::<_, _, i64>(&before, 1).unwrap(), 51);
    }

    // A time to live that must survive the leader change.
    assert_eq!(redis.expire::<_, i64>(key("a"), 1_000).unwrap(), 1);

    // redis-cli: a counter, a scan, a transaction over stdin.
    let cli = key("cli");
    if let Some(output) = redis_cli(port, &["INCRBY", &cli, "5"], None) {
        assert_eq!(output.trim(), "5");
        let scanned = redis_cli(port, &["--scan", "--pattern", &format!("r{round}:cl*")], None).unwrap();
        assert_eq!(scanned.trim(), cli);
        let transaction = format!("MULTI\nINCR {cli}\nEXPIRE {cli} 1000\nTTL {cli}\nEXEC\n");
        let output = redis_cli(port, &[], Some(&transaction)).unwrap();
        assert!(output.contains('6') && output.contains("1000"), "{output}");
    }
}

#[test]
fn every_command_family_works_through_redis_clients_before_and_after_a_leader_change() {
    let cluster = Cluster::start("redis-commands", ClusterOptions::default());
    let port = leader_port(&cluster);
    every_family(port, 0);

    // Hand leadership to another node and run every family there.
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let next = leader % 3 + 1;
    let mut redis = connect(port);
    let started: String = redis::cmd("RAFT.TRANSFER").arg(next).query(&mut redis).unwrap();
    assert_eq!(started, "OK");
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.wait_for_leader(Duration::from_secs(20)) != next {
        assert!(Instant::now() < deadline, "leadership never moved to node {next}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let new_port = leader_port(&cluster);
    assert_ne!(new_port, port);
    // A key with a time to live keeps it across the change.
    let mut at_new = connect(new_port);
    let ttl: i64 = at_new.ttl("r0:a").unwrap();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    every_family(new_port, 1);
}

#[test]
fn past_maxmemory_writes_get_oom_while_reads_and_deletes_work() {
    let options = ClusterOptions {
        extra_arguments: vec!["--maxmemory".into(), "4kb".into()],
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start("maxmemory", options);
    let port = leader_port(&cluster);
    let mut redis = connect(port);
    let value = "x".repeat(200);
    // Fill past 4 KiB (each key costs its bytes plus 64); the bound is sampled every
    // 100 ms, so a few writes more may land first.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut written = 0;
    let refusal = loop {
        assert!(Instant::now() < deadline, "never refused after {written} writes");
        match redis.set::<_, _, ()>(format!("key{written}"), &value) {
            Ok(()) => written += 1,
            Err(error) => break error.to_string(),
        }
        if written > 20 {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(
        refusal.starts_with("OOM") && refusal.contains("command not allowed when used memory > 'maxmemory'"),
        "{refusal}"
    );
    assert!(written >= 16, "refused after only {written} writes of 200 bytes");
    // Reads, expiry and deletes still run.
    assert_eq!(redis.get::<_, String>("key0").unwrap(), value);
    assert_eq!(redis.expire::<_, i64>("key0", 100).unwrap(), 1);
    let keys: Vec<String> = (0..written).map(|key| format!("key{key}")).collect();
    assert_eq!(redis.del::<_, i64>(&keys).unwrap(), written as i64);
    let info: String = redis::cmd("INFO").arg("memory").query(&mut redis).unwrap();
    assert!(info.contains("maxmemory:4096"), "{info}");
    // Once the deletes are sampled, writes go through again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.set::<_, _, ()>("again", "1").is_err() {
        assert!(Instant::now() < deadline, "writes still refused after the data was deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // CONFIG SET moves the bound, CONFIG GET shows it.
    let set: String = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1mb").query(&mut redis).unwrap();
    assert_eq!(set, "OK");
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut redis).unwrap();
    assert_eq!(got, ["maxmemory", "1048576"]);
}

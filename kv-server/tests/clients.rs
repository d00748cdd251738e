//! Client slots, with a real process: connections that never speak hold none; clients
//! count once, from their first byte to their close; `maxclients` refuses the one too
//! many and `CONFIG SET maxclients` changes it at once; idle clients are closed after
//! `timeout`, and a new client is served again. (10,000 connections, or as many as the
//! machine's open-file limit allows.)

mod support;

use kv_server::client::{encode_command, read_value, Value};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{command, info_field, Cluster, ClusterOptions};

/// The open-file limit of this process (the server inherits it), from /proc.
fn open_file_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

/// One command on `stream`, and its reply.
fn ask(stream: &TcpStream, arguments: &[&[u8]]) -> Value {
    let mut writer = stream.try_clone().unwrap();
    writer.write_all(&encode_command(arguments)).unwrap();
    read_value(&mut BufReader::new(stream.try_clone().unwrap())).expect("a reply")
}

fn info(port: u16, name: &str) -> String {
    match command(port, &["INFO"]) {
        Ok(Value::Bulk(Some(text))) => info_field(&String::from_utf8_lossy(&text), name).unwrap_or_default(),
        other => panic!("INFO answered {other:?}"),
    }
}

#[test]
fn silent_connections_hold_no_slot_idle_clients_go_and_maxclients_is_settable() {
    let count = 10_000.min(open_file_limit().saturating_sub(300) / 2);
    eprintln!("{count} connections (open-file limit {})", open_file_limit());
    let options = ClusterOptions { nodes: 1, ..ClusterOptions::default() };
    let cluster = Cluster::start("clients", options);
    cluster.wait_for_leader(Duration::from_secs(20));
    let port = cluster.nodes[0].port;

    // Connections that never send a byte hold no client slot.
    assert_eq!(
        command(port, &["CONFIG", "SET", "maxclients", &count.to_string()]).unwrap(),
        Value::Simple("OK".into())
    );
    let started = Instant::now();
    // Paced by a round trip now and then, so the kernel's accept queue never overflows
    // (a dropped SYN costs its sender a second): the test's pace, not the server's.
    let silent: Vec<TcpStream> = (0..count)
        .map(|at| {
            if at % 50 == 49 {
                assert_eq!(ask(&connect(port), &[b"PING"]), Value::Simple("PONG".into()));
            }
            connect(port)
        })
        .collect();
    eprintln!("silent connections open after {:?}", started.elapsed());
    assert_eq!(
        ask(&connect(port), &[b"PING"]),
        Value::Simple("PONG".into()),
        "served past {count} silent ones"
    );
    eprintln!("served after {:?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(10);
    // The INFO connection itself is the one client (the PING's has gone).
    while info(port, "connected_clients") != "1" {
        assert!(Instant::now() < deadline, "silent connections counted as clients");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(silent);

    // `count` clients that spoke once fill every slot: the next is refused.
    let idle: Vec<TcpStream> = (0..count)
        .map(|_| {
            let stream = connect(port);
            assert_eq!(ask(&stream, &[b"PING"]), Value::Simple("PONG".into()));
            stream
        })
        .collect();
    eprintln!("idle clients open after {:?}", started.elapsed());
    let refused = ask(&connect(port), &[b"PING"]);
    assert_eq!(refused, Value::Error("ERR max number of clients reached".into()));
    let Value::Bulk(Some(text)) = ask(&idle[0], &[b"INFO"]) else { panic!("INFO") };
    let connected = info_field(&String::from_utf8_lossy(&text), "connected_clients");
    assert_eq!(connected, Some(count.to_string()), "each client counted once");

    // With a timeout of one second the idle clients go, and a new client is served.
    assert_eq!(ask(&idle[0], &[b"CONFIG", b"SET", b"timeout", b"1"]), Value::Simple("OK".into()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stream = connect(port);
        let mut writer = stream.try_clone().unwrap();
        writer.write_all(&encode_command(&[b"PING"])).unwrap();
        if let Ok(Value::Simple(pong)) = read_value(&mut BufReader::new(stream)) {
            assert_eq!(pong, "PONG");
            break;
        }
        assert!(Instant::now() < deadline, "never served again after the idle timeout");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("served again after {:?}", started.elapsed());
    // Every idle client goes within the timeout and a recheck of the setting.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let closed: usize = info(port, "idle_clients_closed").parse().unwrap();
        if closed >= count {
            break;
        }
        assert!(Instant::now() < deadline, "{closed} of {count} idle clients closed");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("all idle clients closed after {:?}", started.elapsed());
    drop(idle);

    // CONFIG SET maxclients takes effect for the next client; CONFIG GET reports it.
    assert_eq!(command(port, &["CONFIG", "SET", "timeout", "0"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(command(port, &["CONFIG", "SET", "maxclients", "2"]).unwrap(), Value::Simple("OK".into()));
    let two: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
    for stream in &two {
        assert_eq!(ask(stream, &[b"PING"]), Value::Simple("PONG".into()));
    }
    assert_eq!(ask(&connect(port), &[b"PING"]), Value::Error("ERR max number of clients reached".into()));
    let settings = ask(&two[0], &[b"CONFIG", b"GET", b"maxclients"]);
    assert_eq!(
        settings,
        Value::Array(Some(vec![Value::Bulk(Some(b"maxclients".to_vec())), Value::Bulk(Some(b"2".to_vec()))]))
    );
    let unknown = ask(&two[0], &[b"CONFIG", b"SET", b"maxmemory-policy", b"allkeys-lru"]);
    assert!(matches!(&unknown, Value::Error(error) if error.contains("Unknown option")), "{unknown:?}");

    // INFO by section, with the fields monitoring agents read; the keyspace right
    // after a write and a delete.
    let text = |reply: Value| match reply {
        Value::Bulk(Some(text)) => String::from_utf8(text).unwrap(),
        other => panic!("INFO answered {other:?}"),
    };
    let headers = |text: &str| -> Vec<String> {
        text.lines().filter(|line| line.starts_with("# ")).map(|line| line[2..].to_string()).collect()
    };
    let all = text(ask(&two[0], &[b"INFO"]));
    let expected =
        ["Server", "Clients", "Memory", "Stats", "Replication", "CPU", "Sessions", "Keyspace", "Raft"];
    assert_eq!(headers(&all), expected);
    assert_eq!(headers(&text(ask(&two[0], &[b"INFO", b"all"]))), expected);
    let some = text(ask(&two[0], &[b"INFO", b"clients", b"MEMORY"]));
    assert_eq!(headers(&some), ["Clients", "Memory"]);
    assert!(info_field(&some, "used_memory").unwrap().parse::<u64>().unwrap() > 0, "{some}");
    for field in [
        "uptime_in_seconds",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "used_cpu_user",
        "used_cpu_sys",
    ] {
        assert!(info_field(&all, field).is_some(), "{field} missing:\n{all}");
    }
    assert!(info_field(&all, "total_commands_processed").unwrap().parse::<u64>().unwrap() >= count as u64);
    assert_eq!(text(ask(&two[0], &[b"INFO", b"nonsense"])), "");
    assert_eq!(ask(&two[0], &[b"SET", b"k", b"v"]), Value::Simple("OK".into()));
    let keyspace = text(ask(&two[0], &[b"INFO", b"keyspace"]));
    assert_eq!(keyspace, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n");
    assert_eq!(ask(&two[0], &[b"DEL", b"k"]), Value::Integer(1));
    let keyspace = text(ask(&two[0], &[b"INFO", b"keyspace"]));
    assert_eq!(keyspace, "# Keyspace\r\ndb0:keys=0,expires=0,avg_ttl=0\r\n");
    drop(two);

    // A stray zero byte and 70,000 more without a newline: Redis's answer before the
    // close, not a reset (a leading zero once made the server take it for a peer).
    let stray = connect(port);
    let mut bytes = vec![0u8];
    bytes.extend(std::iter::repeat_n(b'a', 70_000));
    stray.try_clone().unwrap().write_all(&bytes).unwrap();
    let reply = read_value(&mut BufReader::new(stray)).expect("an answer, not a reset");
    assert_eq!(reply, Value::Error("ERR Protocol error: too big inline request".into()));
}

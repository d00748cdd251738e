//! Bad input never crashes a server or makes it hold unbounded memory: garbage and
//! oversized frames on the peer port, malformed RESP, a bulk length of 1 GiB, unknown
//! commands, a client that disconnects mid-command, bad flags and a damaged data
//! directory. Each gets an error reply, a closed connection or a clear message.

mod support;

use kv_server::client::{read_value, Value};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use support::{command, Cluster, ClusterOptions, TestDir};

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
}

/// Sends `bytes`, then reads until the server closes the connection (or 5 s pass).
fn send_and_read_to_close(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(port);
    let _ = stream.write_all(bytes);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

fn info_number(port: u16, field: &str) -> u64 {
    let Value::Bulk(Some(info)) = command(port, &["INFO"]).unwrap() else { panic!("INFO") };
    support::info_field(&String::from_utf8_lossy(&info), field).unwrap().parse().unwrap()
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn alive(cluster: &mut Cluster) {
    assert_eq!(command(cluster.nodes[0].port, &["PING"]).unwrap(), Value::Simple("PONG".into()));
    assert!(cluster.nodes[0].child.as_mut().unwrap().try_wait().unwrap().is_none(), "the server is gone");
}

#[test]
fn a_server_survives_garbage_from_clients_and_peers() {
    // A one-node cluster: it leads itself and answers clients.
    let mut cluster = Cluster::start("bad-input", ClusterOptions { nodes: 1, ..Default::default() });
    let port = cluster.nodes[0].port;
    let pid = cluster.nodes[0].child.as_ref().unwrap().id();
    std::thread::sleep(Duration::from_millis(300));
    alive(&mut cluster);
    let memory_before = resident_kib(pid);

    // Malformed RESP: an error reply, then the connection is closed.
    for garbage in [&b"*1\r\n$abc\r\n"[..], b"*2\r\n:1\r\n", b"*1\r\n$1\r\nab\r\n", b"*-\r\n"] {
        let reply = send_and_read_to_close(port, garbage);
        assert!(
            reply.starts_with(b"-ERR Protocol error"),
            "{:?}: {:?}",
            garbage,
            String::from_utf8_lossy(&reply)
        );
    }
    // A bulk length of 1 GiB is refused at once, before any of it is read or allocated.
    let reply = send_and_read_to_close(port, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n");
    assert_eq!(reply, b"-ERR Protocol error: invalid bulk length\r\n");
    // An inline command that never ends is cut off at 64 KiB.
    let mut stream = connect(port);
    let chunk = vec![b'a'; 1 << 20];
    let mut refused = Vec::new();
    for _ in 0..64 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = stream.read_to_end(&mut refused);
    assert!(
        refused.starts_with(b"-ERR Protocol error: too big inline request"),
        "{:?}",
        String::from_utf8_lossy(&refused)
    );

    // Unknown commands and bad arguments are errors; the connection goes on.
    let mut stream = connect(port);
    stream.write_all(b"NOSUCHCOMMAND\r\nGET\r\nSET k v EX 10 NX NX\r\nPING\r\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let replies: Vec<Value> = (0..4).map(|_| read_value(&mut reader).unwrap()).collect();
    assert!(
        matches!(&replies[0], Value::Error(text) if text.starts_with("ERR unknown command 'NOSUCHCOMMAND'")),
        "{replies:?}"
    );
    assert!(
        matches!(&replies[1], Value::Error(text) if text.contains("wrong number of arguments")),
        "{replies:?}"
    );
    assert!(matches!(&replies[2], Value::Error(text) if text.contains("syntax error")), "{replies:?}");
    assert_eq!(replies[3], Value::Simple("PONG".into()));

    // A client that disconnects in the middle of a command.
    let mut stream = connect(port);
    stream.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly part of it").unwrap();
    drop(stream);

    // Bytes that start like a peer's but depart from its magic are a client's: answered
    // in RESP, not reset. Then the peer port: a handshake from an unknown node, to the
    // wrong node, and frames over the limit or not a message from a known peer.
    let refused_before = info_number(port, "peer_connections_refused");
    let mut stream = connect(port);
    stream.write_all(b"\0NOTRAFTgarbage\r\nPING\r\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert!(
        matches!(read_value(&mut reader).unwrap(), Value::Error(text) if text.starts_with("ERR unknown command"))
    );
    assert_eq!(read_value(&mut reader).unwrap(), Value::Simple("PONG".into()));
    // A node that does not exist (it passes the handshake: this cluster has no secret),
    // a hello to the wrong node, and a hello that never answers the challenge.
    let (mut unknown, proved) = support::dial_as_peer(port, 99, 1, b"");
    assert!(proved);
    assert!(read_to_close(&mut unknown).is_empty());
    let (mut misaddressed, _) = support::dial_as_peer(port, 2, 7, b"");
    assert!(read_to_close(&mut misaddressed).is_empty());
    let hello = raft_runtime::peer_auth::Hello { from: 2, to: 1, nonce: [0; 16] };
    let mut silent = connect(port);
    silent.write_all(&hello.encode()).unwrap();
    silent.shutdown(std::net::Shutdown::Write).unwrap();
    let challenge = read_to_close(&mut silent);
    assert_eq!(challenge.len(), raft_runtime::peer_auth::CHALLENGE_BYTES);
    assert_eq!(info_number(port, "peer_connections_refused"), refused_before + 3);
    alive(&mut cluster);
    let memory_after = resident_kib(pid);
    assert!(
        memory_after < memory_before + 32 * 1024,
        "memory grew from {memory_before} KiB to {memory_after} KiB"
    );
}

#[test]
fn frames_a_peer_must_not_send_close_the_link_and_are_counted() {
    // A two-node cluster where the test plays node 2.
    let dir = TestDir::new("bad-frames");
    let ports = support::free_ports(2);
    let mut server = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["server", "--id", "1", "--data-dir"])
        .arg(dir.0.join("node-1"))
        .args([
            "--node",
            &format!("127.0.0.1:{}:1", ports[0]),
            "--node",
            &format!("127.0.0.1:{}:2", ports[1]),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let port = ports[0];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while command(port, &["PING"]).is_err() {
        assert!(std::time::Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let frames: [Vec<u8>; 3] = [
        // Longer than the core's decode limit.
        u32::MAX.to_le_bytes().to_vec(),
        // Not a message.
        [&5u32.to_le_bytes()[..], b"\xff\xff\xff\xff\xff"].concat(),
        // A real message, but claiming to come from node 9.
        {
            let message =
                raft_core::Message { from: 9, to: 1, term: 1, body: raft_core::MessageBody::TimeoutNow };
            let bytes = raft_core::encode_message(&message);
            [&(bytes.len() as u32).to_le_bytes()[..], &bytes].concat()
        },
    ];
    for (number, frame) in frames.iter().enumerate() {
        let (mut stream, proved) = support::dial_as_peer(port, 2, 1, b"");
        assert!(proved, "frame {number}: the handshake failed");
        stream.write_all(frame).unwrap();
        let reply = read_to_close(&mut stream);
        assert!(reply.is_empty(), "frame {number}: {reply:?}");
        assert_eq!(info_number(port, "peer_frames_rejected"), number as u64 + 1, "frame {number}");
    }
    assert_eq!(command(port, &["PING"]).unwrap(), Value::Simple("PONG".into()));
    assert!(server.try_wait().unwrap().is_none(), "the server is gone");
    let _ = server.kill();
    let _ = server.wait();
}

fn kv(arguments: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_kv")).args(arguments).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn bad_flags_and_damaged_data_get_a_message_and_exit_2() {
    let dir = TestDir::new("bad-flags");
    let data = dir.0.join("data").display().to_string();
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls");
    let (cert, key, ca) = (
        tls.join("node.pem").display().to_string(),
        tls.join("node-key.pem").display().to_string(),
        tls.join("ca.pem").display().to_string(),
    );
    let cases: [(&[&str], &str); 6] = [
        (&["server", "--id", "1", "--data-dir", &data], "no nodes given"),
        (
            &["server", "--id", "4", "--node", "127.0.0.1:1:1", "--data-dir", &data],
            "--id 4 is not among the members",
        ),
        (&["server", "--id", "1", "--node", "127.0.0.1:1", "--data-dir", &data], "host:port:id"),
        (
            &[
                "server",
                "--id",
                "1",
                "--node",
                "127.0.0.1:1:1",
                "--node",
                "127.0.0.1:1:2",
                "--data-dir",
                &data,
            ],
            "two nodes listen",
        ),
        (&["server", "--id", "1", "--config", "/nonexistent.json", "--data-dir", &data], "/nonexistent.json"),
        (&["cluster", "--nodes", "12"], "1 to 9 nodes"),
    ];
    // One node's flags, then TLS with one of its three files missing or of the wrong
    // kind, and a secret file that is not there.
    let one_node = ["server", "--id", "1", "--node", "127.0.0.1:1:1", "--data-dir", &data];
    let security_cases: [(&[&str], &str); 4] = [
        (&["--tls-cert", &cert], "--tls-key"),
        (&["--tls-cert", &key, "--tls-key", &key, "--tls-ca", &ca], "no certificate in it"),
        (&["--tls-cert", &cert, "--tls-key", &cert, "--tls-ca", &ca], "--tls-key"),
        (&["--cluster-secret-file", "/nonexistent-secret"], "/nonexistent-secret"),
    ];
    let security_cases = security_cases.map(|(extra, expected)| ([&one_node[..], extra].concat(), expected));
    let all = cases
        .into_iter()
        .chain(security_cases.iter().map(|(arguments, expected)| (&arguments[..], *expected)));
    for (arguments, expected) in all {
        let (code, text) = kv(arguments);
        assert_eq!(code, 2, "{arguments:?}: {text}");
        assert!(text.contains(expected), "{arguments:?}: {text}");
    }
    // A data directory whose newest segment lost a bit: refused, naming the file.
    let port = support::free_ports(1)[0];
    let node = format!("127.0.0.1:{port}:1");
    let mut server = Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(["server", "--id", "1", "--node", &node, "--data-dir", &data])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Value::Simple(ok)) = command(port, &["SET", "k", "v"]) {
            assert_eq!(ok, "OK");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the one-node cluster never took a write");
        std::thread::sleep(Duration::from_millis(50));
    }
    for value in 0..20 {
        command(port, &["SET", &format!("key{value}"), "value"]).unwrap();
    }
    support::signal(&server, "TERM");
    server.wait().unwrap();
    let segment = std::path::Path::new(&data).join("wal-0000000000000001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, &bytes).unwrap();
    let (code, text) = kv(&["server", "--id", "1", "--node", &node, "--data-dir", &data]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("wal-0000000000000001.log at offset") && text.contains("refusing to start"),
        "{text}"
    );
    // And a directory that belongs to another node.
    let (code, text) =
        kv(&["server", "--id", "2", "--node", &format!("127.0.0.1:{port}:2"), "--data-dir", &data]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("holds the state of node 1, not of node 2"), "{text}");
}

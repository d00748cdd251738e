//! Exactly-once sessions expire through the log, on a live cluster: a session left idle
//! past `--session-idle-secs` is dropped on every node by the leader's clock entries, a
//! session in use is kept, a write in the expired session is answered `SESSIONEXPIRED`
//! (and not applied), and log time goes on across a leader change without going back.

mod support;

use kv_server::client::{Client, Value};
use std::time::{Duration, Instant};
use support::{command, info_field, Cluster, ClusterOptions};

fn info(port: u16) -> String {
    match command(port, &["INFO"]) {
        Ok(Value::Bulk(Some(text))) => String::from_utf8_lossy(&text).into_owned(),
        other => panic!("INFO answered {other:?}"),
    }
}

fn field(port: u16, name: &str) -> u64 {
    let text = info(port);
    info_field(&text, name)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn an_idle_session_expires_on_every_node_and_its_next_write_is_refused() {
    let options = ClusterOptions {
        extra_arguments: vec!["--session-idle-secs".into(), "2".into()],
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start("sessions", options);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let mut idle = Client::new(cluster.addresses());
    let mut busy = Client::new(cluster.addresses());
    assert_eq!(idle.write(&[b"SET", b"idle", b"1"]).unwrap(), Value::Simple("OK".into()));
    assert_eq!(busy.write(&[b"SET", b"busy", b"0"]).unwrap(), Value::Simple("OK".into()));
    let idle_session = idle.session().expect("opened by the first write");
    assert_ne!(Some(idle_session), busy.session(), "each client its own session");
    let port_of = |cluster: &Cluster, id: u64| cluster.nodes[id as usize - 1].port;
    let time_before = field(port_of(&cluster, leader), "log_time_ms");

    // Leadership moves halfway: log time carries on from where the log has it.
    let target = leader % 3 + 1;
    let mut transferred = false;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let mut written = 0;
    loop {
        assert!(Instant::now() < deadline, "the idle session never expired:\n{}", info(port_of(&cluster, 1)));
        written += 1;
        let value = written.to_string();
        assert_eq!(busy.write(&[b"SET", b"busy", value.as_bytes()]).unwrap(), Value::Simple("OK".into()));
        if !transferred && started.elapsed() > Duration::from_millis(1_000) {
            let reply = busy.command(&[b"RAFT.TRANSFER", target.to_string().as_bytes()]).unwrap();
            assert_eq!(reply, Value::Simple("OK".into()));
            transferred = true;
        }
        let expired_everywhere = cluster.nodes.iter().all(|node| {
            let text = info(node.port);
            info_field(&text, "sessions").as_deref() == Some("1")
                && info_field(&text, "sessions_expired").as_deref() == Some("1")
        });
        if expired_everywhere {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() >= Duration::from_millis(1_500), "expired before its idle timeout");
    let new_leader = cluster.wait_for_leader(Duration::from_secs(20));
    assert!(field(port_of(&cluster, new_leader), "log_time_ms") > time_before, "log time went on");
    assert_eq!(
        info_field(&info(port_of(&cluster, new_leader)), "session_idle_timeout_ms").as_deref(),
        Some("2000")
    );

    // The idle client's next write is refused, not applied; its next one opens a new session.
    let refused = idle.write(&[b"SET", b"idle", b"2"]).unwrap();
    assert!(matches!(&refused, Value::Error(error) if error.starts_with("SESSIONEXPIRED")), "{refused:?}");
    assert_eq!(idle.command(&[b"GET", b"idle"]).unwrap(), Value::Bulk(Some(b"1".to_vec())));
    assert_eq!(idle.write(&[b"SET", b"idle", b"3"]).unwrap(), Value::Simple("OK".into()));
    assert!(idle.session().is_some_and(|session| session != idle_session));
    assert_eq!(idle.command(&[b"GET", b"idle"]).unwrap(), Value::Bulk(Some(b"3".to_vec())));
    // A hand-written KV.EXEC in a session never opened is refused the same way.
    let reply = busy.command(&[b"KV.EXEC", b"999999", b"1", b"SET", b"x", b"y"]).unwrap();
    assert!(
        matches!(&reply, Value::Error(error) if error.starts_with("SESSIONEXPIRED client 999999")),
        "{reply:?}"
    );
}

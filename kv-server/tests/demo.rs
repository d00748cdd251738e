//! The three-server demo, driven by a third-party Redis client library (the `redis`
//! crate): writes at the leader after a redirect, reads on every node, the leader
//! killed and the client carrying on with the new one.

mod support;

use redis::{Connection, ErrorKind, RedisResult};
use std::time::{Duration, Instant};
use support::{Cluster, ClusterOptions};

fn connect(port: u16) -> Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let connection = client.get_connection_with_timeout(Duration::from_secs(2)).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    connection
}

/// The port a `MOVED 0 host:port` error names.
fn moved_to(error: &redis::RedisError) -> Option<u16> {
    if error.kind() != ErrorKind::Moved {
        return None;
    }
    error.redirect_node().and_then(|(address, _slot)| address.rsplit(':').next()?.parse().ok())
}

/// Runs `command` at `port`, following redirects and waiting out `TRYAGAIN` and dead
/// nodes (trying `fallbacks` in turn), for up to 20 seconds.
fn with_redirects<T: redis::FromRedisValue>(port: u16, fallbacks: &[u16], command: &redis::Cmd) -> (T, u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut target = port;
    let mut next_fallback = 0;
    let mut last = String::new();
    while Instant::now() < deadline {
        let client = redis::Client::open(format!("redis://127.0.0.1:{target}/")).unwrap();
        let result: RedisResult<T> =
            client.get_connection_with_timeout(Duration::from_secs(1)).and_then(|mut connection| {
                connection.set_read_timeout(Some(Duration::from_secs(3)))?;
                command.query(&mut connection)
            });
        match result {
            Ok(value) => return (value, target),
            Err(error) => {
                last = error.to_string();
                match moved_to(&error) {
                    Some(leader) => target = leader,
                    None => {
                        std::thread::sleep(Duration::from_millis(100));
                        target = fallbacks[next_fallback % fallbacks.len()];
                        next_fallback += 1;
                    }
                }
            }
        }
    }
    panic!("no answer within 20 s; last error: {last}");
}

#[test]
fn a_redis_client_writes_reads_everywhere_and_survives_the_leader() {
    let mut cluster = Cluster::start("demo", ClusterOptions::default());
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let ports: Vec<u16> = cluster.nodes.iter().map(|node| node.port).collect();
    let follower = ports[(leader as usize) % 3];

    // A write at a follower is redirected to the leader, in the Redis Cluster form.
    let mut at_follower = connect(follower);
    let error = redis::cmd("SET").arg("greeting").arg("hello").query::<String>(&mut at_follower).unwrap_err();
    assert_eq!(moved_to(&error), Some(ports[leader as usize - 1]), "{error}");

    let (reply, at) =
        with_redirects::<String>(follower, &ports, redis::cmd("SET").arg("greeting").arg("hello"));
    assert_eq!((reply.as_str(), at), ("OK", ports[leader as usize - 1]));
    let binary: &[u8] = b"\x00\xff bytes\r\n";
    with_redirects::<String>(follower, &ports, redis::cmd("SET").arg(binary).arg(binary));

    // Linearizable reads from every node (followers redirect), and local reads there.
    for &port in &ports {
        let (value, _) = with_redirects::<Option<String>>(port, &ports, redis::cmd("GET").arg("greeting"));
        assert_eq!(value.as_deref(), Some("hello"), "read through node at {port}");
        let (value, _) = with_redirects::<Vec<u8>>(port, &ports, redis::cmd("GET").arg(binary));
        assert_eq!(value, binary);
        let mut local = connect(port);
        redis::cmd("READONLY").query::<()>(&mut local).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let value: Option<String> = redis::cmd("GET").arg("greeting").query(&mut local).unwrap();
            if value.as_deref() == Some("hello") {
                break;
            }
            assert!(Instant::now() < deadline, "node at {port} never applied the write");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (values, _) = with_redirects::<Vec<Option<String>>>(
        follower,
        &ports,
        redis::cmd("MGET").arg("greeting").arg("absent"),
    );
    assert_eq!(values, vec![Some("hello".to_string()), None]);
    let (swapped, _) = with_redirects::<(i64, Option<String>)>(
        follower,
        &ports,
        redis::cmd("KV.CAS").arg("greeting").arg("hello").arg("bonjour"),
    );
    assert_eq!(swapped, (1, Some("hello".to_string())));

    // The leader dies; the client carries on with whoever leads next.
    cluster.node(leader).kill();
    let survivors: Vec<u16> =
        cluster.nodes.iter().filter(|node| node.is_running()).map(|node| node.port).collect();
    let (reply, at) =
        with_redirects::<String>(survivors[0], &survivors, redis::cmd("SET").arg("after").arg("failover"));
    assert_eq!(reply, "OK");
    assert_ne!(at, ports[leader as usize - 1]);
    let (value, _) =
        with_redirects::<Option<String>>(survivors[1], &survivors, redis::cmd("GET").arg("greeting"));
    assert_eq!(value.as_deref(), Some("bonjour"), "the acknowledged write survived the leader");

    // The old leader comes back and catches up.
    cluster.restart(leader);
    let deadline = Instant::now() + Duration::from_secs(20);
    let restarted =
        redis::Client::open(format!("redis://127.0.0.1:{}/", ports[leader as usize - 1])).unwrap();
    loop {
        // It may not listen yet: a refused connection is one more try.
        let caught_up =
            restarted.get_connection_with_timeout(Duration::from_secs(1)).and_then(|mut local| {
                redis::cmd("READONLY").query::<()>(&mut local)?;
                redis::cmd("GET").arg("after").query::<Option<String>>(&mut local)
            });
        if let Ok(Some(value)) = caught_up {
            assert_eq!(value, "failover");
            break;
        }
        assert!(Instant::now() < deadline, "the restarted node never caught up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

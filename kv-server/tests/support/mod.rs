//! A real cluster for tests: `kv server` processes on loopback, each in its own data
//! directory, started, killed (SIGKILL), paused (SIGSTOP) and restarted by the test,
//! optionally with a fault-injecting TCP proxy on every peer link. Everything is
//! stopped and removed on drop, and every wait is bounded.

// Each test binary uses part of the harness; items are pub for the test files.
#![allow(dead_code, unreachable_pub)]

pub mod proxy;

use kv_server::client::{read_value, Value};
use proxy::Proxy;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `count` free loopback ports.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|listener| listener.local_addr().unwrap().port()).collect()
}

/// A directory removed on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(label: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("kv-test-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir(path)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends a signal by name (`STOP`, `CONT`, `TERM`) through the `kill` command.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} failed");
}

/// One server process.
pub struct Node {
    pub id: u64,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub arguments: Vec<String>,
    pub child: Option<Child>,
    pub paused: bool,
}

impl Node {
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kv"))
            .args(&self.arguments)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("kv server starts");
        self.child = Some(child);
        self.paused = false;
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                signal(&child, "CONT");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pause(&mut self) {
        if let Some(child) = &self.child {
            signal(child, "STOP");
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(child) = &self.child {
            signal(child, "CONT");
            self.paused = false;
        }
    }

    /// The process's peak resident memory so far, in bytes (Linux's `VmHWM`), if known.
    pub fn peak_resident_bytes(&self) -> Option<u64> {
        let child = self.child.as_ref()?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The server's output so far, for failure messages.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// How to start a cluster.
pub struct ClusterOptions {
    pub nodes: usize,
    pub tick_ms: u64,
    /// A proxy on every peer link, so the test can cut links.
    pub proxies: bool,
    pub compact_every: u64,
    /// More arguments for every server.
    pub extra_arguments: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            tick_ms: 5,
            proxies: false,
            compact_every: 10_000,
            extra_arguments: Vec::new(),
        }
    }
}

/// A running cluster.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The proxy of the link between nodes `i < j` (ids), carrying `i`'s dials to `j`.
    pub proxies: Vec<((u64, u64), Proxy)>,
    pub dir: TestDir,
    /// The admin password (or else the client password) the servers were given, which
    /// the harness's own status queries authenticate with.
    pub password: Option<String>,
    /// TLS for the harness's own queries, when the servers were given `--tls-ca`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Cluster {
    pub fn start(label: &str, options: ClusterOptions) -> Cluster {
        let dir = TestDir::new(label);
        let count = options.nodes;
        let ports = free_ports(count);
        let mut proxies = Vec::new();
        // What node i knows as node j's address: j's own port, or the proxy of the
        // link i dials (the lower id dials) when links are proxied.
        let direct: Vec<String> = ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        let mut peer_address = vec![direct; count];
        if options.proxies {
            for (i, known) in peer_address.iter_mut().enumerate() {
                for (j, &port) in ports.iter().enumerate().skip(i + 1) {
                    let proxy = Proxy::start(port);
                    known[j] = format!("127.0.0.1:{}", proxy.port);
                    proxies.push(((i as u64 + 1, j as u64 + 1), proxy));
                }
            }
        }
        let mut nodes = Vec::new();
        for i in 0..count {
            let id = i as u64 + 1;
            let data_dir = dir.0.join(format!("node-{id}"));
            let mut arguments = vec![
                "server".to_string(),
                "--id".into(),
                id.to_string(),
                "--data-dir".into(),
                data_dir.display().to_string(),
                "--tick-ms".into(),
                options.tick_ms.to_string(),
                "--compact-every".into(),
                options.compact_every.to_string(),
            ];
            arguments.extend(options.extra_arguments.iter().cloned());
            for (j, address) in peer_address[i].iter().enumerate() {
                arguments.push("--node".into());
                arguments.push(format!("{address}:{}", j + 1));
            }
            let log = dir.0.join(format!("node-{id}.log"));
            nodes.push(Node { id, port: ports[i], data_dir, log, arguments, child: None, paused: false });
        }
        for node in &mut nodes {
            node.spawn();
        }
        let flag = |name: &str| {
            let arguments = &options.extra_arguments;
            arguments
                .iter()
                .position(|argument| argument == name)
                .and_then(|at| arguments.get(at + 1))
                .cloned()
        };
        let password = flag("--admin-password").or_else(|| flag("--requirepass"));
        let tls =
            flag("--tls-ca").map(|ca| raft_runtime::tls::client_config(std::path::Path::new(&ca)).unwrap());
        Cluster { nodes, proxies, dir, password, tls }
    }

    /// Starts node `nodes.len() + 1` with `--join`, listing every node so far and
    /// itself, on an empty data directory: a learner that waits for the leader. Returns
    /// its id and address.
    pub fn join(&mut self, tick_ms: u64) -> (u64, String) {
        let id = self.nodes.len() as u64 + 1;
        let port = free_ports(1)[0];
        let data_dir = self.dir.0.join(format!("node-{id}"));
        let mut arguments = vec![
            "server".to_string(),
            "--id".into(),
            id.to_string(),
            "--join".into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--tick-ms".into(),
            tick_ms.to_string(),
        ];
        for node in &self.nodes {
            arguments.extend(["--node".into(), format!("{}:{}", node.address(), node.id)]);
        }
        arguments.extend(["--node".into(), format!("127.0.0.1:{port}:{id}")]);
        let log = self.dir.0.join(format!("node-{id}.log"));
        let mut node = Node { id, port, data_dir, log, arguments, child: None, paused: false };
        node.spawn();
        let address = node.address();
        self.nodes.push(node);
        (id, address)
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }

    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(Node::address).collect()
    }

    pub fn restart(&mut self, id: u64) {
        let node = self.node(id);
        assert!(node.child.is_none(), "node {id} is running");
        node.spawn();
    }

    /// Cuts (or heals) the link between two nodes.
    pub fn set_link(&self, a: u64, b: u64, cut: bool) {
        let pair = (a.min(b), a.max(b));
        for (link, proxy) in &self.proxies {
            if *link == pair {
                proxy.set_cut(cut);
            }
        }
    }

    pub fn heal_all(&self) {
        for (_, proxy) in &self.proxies {
            proxy.set_cut(false);
        }
    }

    /// Every node's output, for failure messages.
    pub fn outputs(&self) -> String {
        self.nodes.iter().map(|node| format!("--- node {} ---\n{}", node.id, node.output())).collect()
    }

    /// The node that says it leads and that a majority agrees on, within `timeout`.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut votes = std::collections::BTreeMap::new();
            for node in self.nodes.iter().filter(|node| node.is_running() && !node.paused) {
                if let Some(info) = raft_info_with(node.port, self.password.as_deref(), self.tls.as_ref()) {
                    if let Some(leader) =
                        info_field(&info, "leader").and_then(|leader| leader.parse::<u64>().ok())
                    {
                        *votes.entry(leader).or_insert(0) += 1;
                    }
                }
            }
            if let Some((&leader, _)) = votes.iter().find(|(_, &count)| count > self.nodes.len() / 2) {
                return leader;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no leader within {timeout:?}\n{}", self.outputs());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.outputs());
        }
    }
}

/// Plays node `from` dialing node `to` at `port` with the cluster secret `secret`:
/// sends the hello, checks the node's challenge, answers it. The connection, and
/// whether the node proved the same secret (if not, a random proof was sent instead,
/// as a dialer guessing would).
pub fn dial_as_peer(port: u16, from: u64, to: u64, secret: &[u8]) -> (TcpStream, bool) {
    use raft_runtime::peer_auth::{self, ClusterSecret, Hello, CHALLENGE_BYTES};
    use std::io::Read;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let hello = Hello { from, to, nonce: peer_auth::nonce() };
    stream.write_all(&hello.encode()).unwrap();
    let mut challenge = [0; CHALLENGE_BYTES];
    if stream.read_exact(&mut challenge).is_err() {
        return (stream, false);
    }
    let secret = ClusterSecret::new(secret);
    let (proof, proved) = match peer_auth::answer(&secret, &hello, &challenge) {
        Some(proof) => (proof, true),
        None => ([peer_auth::nonce(), peer_auth::nonce()].concat().try_into().unwrap(), false),
    };
    let _ = stream.write_all(&proof);
    (stream, proved)
}

/// One command on a fresh connection to `port`, with a short timeout.
pub fn command(port: u16, arguments: &[&str]) -> std::io::Result<Value> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut writer = stream.try_clone()?;
    let parts: Vec<&[u8]> = arguments.iter().map(|part| part.as_bytes()).collect();
    writer.write_all(&kv_server::client::encode_command(&parts))?;
    read_value(&mut BufReader::new(stream))
}

/// One command on a fresh connection to `port`, after `AUTH admin password` (or
/// `AUTH password` when that fails) if a password is given.
pub fn command_as(port: u16, password: Option<&str>, arguments: &[&str]) -> std::io::Result<Value> {
    command_with(port, password, None, arguments)
}

/// [`command_as`] over TLS when `tls` is given.
pub fn command_with(
    port: u16,
    password: Option<&str>,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    arguments: &[&str],
) -> std::io::Result<Value> {
    let stream = kv_server::client::connect(&format!("127.0.0.1:{port}"), tls, Duration::from_secs(2))?;
    let mut reader = BufReader::new(stream);
    if let Some(password) = password {
        let auth = kv_server::client::encode_command(&[b"AUTH", b"admin", password.as_bytes()]);
        reader.get_mut().write_all(&auth)?;
        if let Value::Error(_) = read_value(&mut reader)? {
            reader
                .get_mut()
                .write_all(&kv_server::client::encode_command(&[b"AUTH", password.as_bytes()]))?;
            read_value(&mut reader)?;
        }
    }
    let parts: Vec<&[u8]> = arguments.iter().map(|part| part.as_bytes()).collect();
    reader.get_mut().write_all(&kv_server::client::encode_command(&parts))?;
    read_value(&mut reader)
}

/// `RAFT.INFO` of the node at `port`.
pub fn raft_info(port: u16) -> Option<String> {
    raft_info_as(port, None)
}

/// `RAFT.INFO` of the node at `port`, authenticated with `password` if given.
pub fn raft_info_as(port: u16, password: Option<&str>) -> Option<String> {
    raft_info_with(port, password, None)
}

/// [`raft_info_as`] over TLS when `tls` is given.
pub fn raft_info_with(
    port: u16,
    password: Option<&str>,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Option<String> {
    match command_with(port, password, tls, &["RAFT.INFO"]) {
        Ok(Value::Bulk(Some(text))) => Some(String::from_utf8_lossy(&text).into_owned()),
        _ => None,
    }
}

/// One `name:value` line of an INFO text.
pub fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(|value| value.trim().to_string()))
}

//! `kv cluster`: a local cluster of `kv server` child processes on free loopback ports,
//! for trying the server out. Ctrl-C (or SIGTERM) stops them all. Their data lives in
//! the given directory, kept, or in a temporary one that goes when the cluster stops.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What `kv cluster` starts.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// How many nodes.
    pub nodes: u64,
    /// Their data directories go under here (`node-1`, `node-2`, ...).
    pub data_dir: PathBuf,
    /// Keep `data_dir` when the cluster stops (false: it is a temporary directory,
    /// removed at the end).
    pub keep_data: bool,
    /// The first port, or free ones the OS picks.
    pub base_port: Option<u16>,
    /// Extra arguments for every server (`--tick-ms 5`, ...).
    pub server_arguments: Vec<String>,
}

/// Picks `count` free loopback ports (bound, read, released: good enough for a demo).
fn free_ports(count: u64) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    listeners.iter().map(|listener| listener.local_addr().map(|address| address.port())).collect()
}

/// Sends SIGTERM (std can only SIGKILL), through the `kill` command.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
}

fn prefix_output(node: u64, output: impl std::io::Read + Send + 'static) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { return };
            eprintln!("[node {node}] {line}");
        }
    });
}

/// The secret the cluster's nodes prove to each other, so no other process on the
/// machine can pose as a peer: `cluster-secret` in the data directory (readable by its
/// owner only), made of 32 random bytes the first time, reused by a cluster restarted
/// on the same directory.
fn cluster_secret_file(data_dir: &Path) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("cluster-secret");
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    let bytes = [raft_runtime::peer_auth::nonce(), raft_runtime::peer_auth::nonce()].concat();
    let text: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
    writeln!(file, "{text}").map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(path)
}

/// The most nodes `kv cluster` starts: a cluster for trying things on one machine.
pub const MOST_NODES: u64 = 9;

/// Starts the cluster, hands `announce` the text that says how to reach it, and runs
/// until `stop` returns true (polled); then stops every child (SIGTERM, and SIGKILL
/// after 5 seconds) and removes the data directory unless it is to be kept.
pub fn run(
    options: &ClusterOptions,
    announce: impl FnOnce(&str),
    stop: impl Fn() -> bool,
) -> Result<(), String> {
    if !(1..=MOST_NODES).contains(&options.nodes) {
        return Err(format!("--nodes {}: a local cluster has 1 to {MOST_NODES} nodes", options.nodes));
    }
    let outcome = run_children(options, announce, stop);
    if options.keep_data {
        eprintln!("data kept in {}", options.data_dir.display());
    } else if options.data_dir.exists() {
        match std::fs::remove_dir_all(&options.data_dir) {
            Ok(()) => eprintln!("removed the temporary data directory {}", options.data_dir.display()),
            Err(error) => eprintln!("could not remove {}: {error}", options.data_dir.display()),
        }
    }
    outcome
}

fn run_children(
    options: &ClusterOptions,
    announce: impl FnOnce(&str),
    stop: impl Fn() -> bool,
) -> Result<(), String> {
    let ports: Vec<u16> = match options.base_port {
        Some(base) => (0..options.nodes)
            .map(|offset| {
                base.checked_add(offset as u16)
                    .ok_or_else(|| format!("--base-port {base} leaves no room for {} nodes", options.nodes))
            })
            .collect::<Result<_, _>>()?,
        None => free_ports(options.nodes).map_err(|error| format!("cannot find free ports: {error}"))?,
    };
    let members: Vec<String> =
        ports.iter().enumerate().map(|(at, port)| format!("127.0.0.1:{port}:{}", at + 1)).collect();
    let program = std::env::current_exe().map_err(|error| format!("cannot find the kv binary: {error}"))?;
    let secret = cluster_secret_file(&options.data_dir)?;
    let mut children = Vec::new();
    for id in 1..=options.nodes {
        let dir = options.data_dir.join(format!("node-{id}"));
        let mut command = Command::new(&program);
        command.arg("server").arg("--id").arg(id.to_string()).arg("--data-dir").arg(&dir);
        for member in &members {
            command.arg("--node").arg(member);
        }
        command
            .arg("--cluster-secret-file")
            .arg(&secret)
            .args(&options.server_arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|error| format!("cannot start node {id}: {error}"))?;
        prefix_output(id, child.stdout.take().expect("piped"));
        prefix_output(id, child.stderr.take().expect("piped"));
        children.push((id, child));
    }
    announce(&help(&program, &ports, options));
    let mut running = children.len();
    while running > 0 && !stop() {
        std::thread::sleep(Duration::from_millis(100));
        for (id, child) in &mut children {
            if let Ok(Some(status)) = child.try_wait() {
                if status.code() != Some(-1) {
                    eprintln!("[node {id}] exited: {status}");
                }
                running -= 1;
                *id = 0;
            }
        }
        children.retain(|(id, _)| *id != 0);
    }
    eprintln!("stopping {} node(s)", children.len());
    for (_, child) in &children {
        terminate(child);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for (id, mut child) in children {
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = child.try_wait() {
            eprintln!("[node {id}] did not stop within 5 s; killed");
            let _ = child.kill();
        }
        let _ = child.wait();
    }
    Ok(())
}

/// How to reach the cluster, with the path of this very binary: `kv` need not be on
/// the PATH.
fn help(program: &Path, ports: &[u16], options: &ClusterOptions) -> String {
    use std::fmt::Write as _;
    let nodes: Vec<String> =
        ports.iter().enumerate().map(|(at, port)| format!("127.0.0.1:{port}:{}", at + 1)).collect();
    let kept =
        if options.keep_data { "kept when it stops" } else { "removed when it stops; --data-dir keeps it" };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "a cluster of {} nodes is starting; data in {} ({kept})",
        ports.len(),
        options.data_dir.display()
    );
    for node in &nodes {
        let _ = writeln!(text, "  node {node}");
    }
    let _ = writeln!(text, "talk to it:");
    let _ = writeln!(
        text,
        "  {} client --node {}   (a prompt: set k v, get k, list, del k, cas k old new, info, help)",
        program.display(),
        nodes[0]
    );
    let _ = writeln!(text, "  redis-cli -c -p {}   (follows MOVED to the leader)", ports[0]);
    let _ = writeln!(
        text,
        "  printf 'SET k v\\r\\nGET k\\r\\n' | nc -q1 127.0.0.1 {}   (inline commands; a follower answers MOVED)",
        ports[0]
    );
    let _ = writeln!(
        text,
        "peers prove the secret in {}; a node you add (kv server --join) needs --cluster-secret-file with it",
        options.data_dir.join("cluster-secret").display()
    );
    let _ = writeln!(text, "Ctrl-C stops the cluster.");
    text
}

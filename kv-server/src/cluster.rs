//! `kv cluster`: a local cluster of `kv server` child processes on free loopback ports,
//! for trying the server out. Ctrl-C (or SIGTERM) stops them all.

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

/// Starts the cluster and runs until `stop` returns true (polled), then stops every
/// child: SIGTERM, and SIGKILL after 5 seconds.
pub fn run(options: &ClusterOptions, stop: impl Fn() -> bool) -> Result<(), String> {
    if !(1..=9).contains(&options.nodes) {
        return Err(format!("--nodes {}: a local cluster has 1 to 9 nodes", options.nodes));
    }
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
    let mut children = Vec::new();
    for id in 1..=options.nodes {
        let dir = options.data_dir.join(format!("node-{id}"));
        let mut command = Command::new(&program);
        command.arg("server").arg("--id").arg(id.to_string()).arg("--data-dir").arg(&dir);
        for member in &members {
            command.arg("--node").arg(member);
        }
        command
            .args(&options.server_arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|error| format!("cannot start node {id}: {error}"))?;
        prefix_output(id, child.stdout.take().expect("piped"));
        prefix_output(id, child.stderr.take().expect("piped"));
        children.push((id, child));
    }
    print_help(&ports, &options.data_dir);
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

fn print_help(ports: &[u16], data_dir: &Path) {
    let nodes: Vec<String> =
        ports.iter().enumerate().map(|(at, port)| format!("127.0.0.1:{port}:{}", at + 1)).collect();
    println!("a cluster of {} nodes is starting; data in {}", ports.len(), data_dir.display());
    for node in &nodes {
        println!("  node {}", node);
    }
    println!("talk to it:");
    println!(
        "  kv client --node {}                  (a prompt: set k v, get k, list, del k, cas k old new)",
        nodes[0]
    );
    println!("  redis-cli -c -p {}                     (follows MOVED to the leader)", ports[0]);
    println!(
        "  printf 'SET k v\\r\\nGET k\\r\\n' | nc 127.0.0.1 {}   (inline commands; a follower answers MOVED)",
        ports[0]
    );
    println!("Ctrl-C stops the cluster.");
}

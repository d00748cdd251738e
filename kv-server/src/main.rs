//! The `kv` command: run a server, talk to a cluster, or start a local one.
//!
//! Exit codes: 0 a clean stop (Ctrl-C or SIGTERM) or a command that succeeded; 1 the
//! server had to stop (its disk failed), or a client command failed or was refused;
//! 2 bad usage or a data directory it refuses to start from, with a message.

use clap::{Args, Parser, Subcommand};
use kv::session::SessionPolicy;
use kv_server::client::{Client, Value};
use kv_server::cluster::{self, ClusterOptions};
use kv_server::config::{self, NodeAddress};
use kv_server::server::{self, ServerError, ServerOptions};
use raft_storage::StorageOptions;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod stdout;

use stdout::{out, outln};

const FAILED: u8 = 1;
const BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "kv",
    version,
    about = "A replicated key-value store on Raft, spoken to over the Redis protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: text (for people) or json (one object a
    /// line, for a log collector: timestamp, level, target, fields).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node of a cluster (peers and clients share its port).
    Server(Box<ServerArgs>),
    /// Talk to a cluster: one command, or a prompt without one.
    Client(ClientArgs),
    /// Start a local cluster of child processes on free loopback ports (Ctrl-C stops it).
    Cluster(ClusterArgs),
}

#[derive(Args)]
struct ServerArgs {
    /// This node's id.
    #[arg(long)]
    id: u64,
    /// A member, as host:port:id; give every member, this one included.
    #[arg(long = "node", value_parser = config::parse_node)]
    nodes: Vec<NodeAddress>,
    /// A JSON file listing the members instead: {"nodes": [{"id": 1, "address": "127.0.0.1:8001"}, ...]}.
    #[arg(long, conflicts_with = "nodes")]
    config: Option<PathBuf>,
    /// Where this node keeps its log, hard state and snapshots.
    #[arg(long)]
    data_dir: PathBuf,
    /// Listen here instead of at this node's own address (e.g. 0.0.0.0:8001).
    #[arg(long)]
    listen: Option<String>,
    /// Milliseconds per Raft tick: heartbeats every 10 ticks, elections after 100 to 200.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    tick_ms: u64,
    /// Join a running cluster: start as a learner of the other members and wait for the
    /// leader (then `RAFT.ADD id host:port` at any member adds this node). Without it, a
    /// node with an empty data directory starts a new cluster of the members listed.
    #[arg(long)]
    join: bool,
    /// Snapshot and compact the log after this many applied entries.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    compact_every: u64,
    /// Client sessions (`KV.SESSION`, what `kv client` writes in) unused for this many
    /// seconds of log time expire, on every node at once; 0 never.
    #[arg(long, default_value_t = 3_600)]
    session_idle_secs: u64,
    /// The most client sessions kept; past it the least recently used expire. 0: no bound.
    #[arg(long, default_value_t = 100_000)]
    max_sessions: u64,
    /// The largest value (any bulk string) a client may send, in bytes: Redis's
    /// proto-max-bulk-len, sized for a log that writes, sends and snapshots every value.
    /// A larger one is refused with a reply naming this limit; the connection goes on.
    /// At most 128 MiB: every value is written to the log, sent to each peer in one
    /// message and kept in memory, so larger ones belong in a blob store. Peers derive
    /// their message limit from it, so give every node of a cluster the same value.
    #[arg(long, default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1024..=(128 << 20)))]
    max_value_bytes: u64,
    /// Client connections served at once (Redis's maxclients; CONFIG SET maxclients
    /// changes it). A connection counts from its first byte to its close; one that stays
    /// silent holds no slot and is closed after 10 seconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_clients: u64,
    /// Close a client idle this many seconds (no command under way); 0 never (Redis's
    /// timeout; CONFIG SET timeout changes it).
    #[arg(long, default_value_t = 0)]
    client_idle_timeout: u64,
    /// The password clients must give (`AUTH password`) before any command, as Redis's
    /// requirepass. Visible to other users of this machine in the process list: prefer
    /// --requirepass-file.
    #[arg(long, conflicts_with = "requirepass_file")]
    requirepass: Option<String>,
    /// A file holding the client password (its first line).
    #[arg(long)]
    requirepass_file: Option<PathBuf>,
    /// A password for the `admin` user: when set, only a connection authenticated with
    /// `AUTH admin password` may change the cluster (RAFT.ADD, RAFT.REMOVE,
    /// RAFT.TRANSFER, RAFT.PROMOTE, RAFT.MEMBERS, CONFIG SET). Without it, any
    /// authenticated connection may.
    #[arg(long, conflicts_with = "admin_password_file")]
    admin_password: Option<String>,
    /// A file holding the admin password (its first line).
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// Refuse writes that add data (SET, INCR, APPEND, ...) with Redis's -OOM once the
    /// data passes this size (bytes, or 100mb, 2gb, ...: each key and value's bytes plus
    /// 64 per key); reads, deletes and expiry still run. 0 (the default): no bound.
    /// CONFIG SET maxmemory changes it.
    #[arg(long, default_value = "0", value_parser = kv::resp::parse_memory)]
    maxmemory: u64,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (e.g. 127.0.0.1:9121): role,
    /// term, commit and applied index, log size, each peer's match index and lag,
    /// proposals, reads, redirects, fsync latency and writes per fsync, clients.
    #[arg(long)]
    metrics_addr: Option<String>,
    /// The secret every member of the cluster shares: a peer proves it (a challenge and
    /// an HMAC; it never crosses the wire) before its messages count, and a node refuses
    /// a peer that cannot. Give every node the same one. Visible in the process list:
    /// prefer --cluster-secret-file.
    #[arg(long, conflicts_with = "cluster_secret_file")]
    cluster_secret: Option<String>,
    /// A file holding the cluster secret (its first line), e.g. from
    /// `head -c 32 /dev/urandom | base64 > secret`.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// TLS for clients and peers on this node's port: the certificate chain it presents
    /// (PEM). Needs --tls-key and --tls-ca; clients then connect with TLS
    /// (`redis-cli --tls --cacert ca.pem`, `kv client --tls-ca ca.pem`).
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The certificate authorities this node trusts for its peers' certificates (PEM):
    /// a peer's certificate must be signed by one and name the host of its address.
    #[arg(long, requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// `yes` (the default): refuse to listen beyond loopback without --requirepass and
    /// a cluster secret. `no`: allow it (on a network you trust).
    #[arg(long, default_value = "yes", value_parser = ["yes", "no"])]
    protected_mode: String,
    /// Start a new WAL segment after this many MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    segment_mib: u64,
    /// Break a rule of the driver on purpose (send-before-sync: acknowledge before the
    /// disk has the write), to see the crash test catch it. Only in a build with the
    /// `test-hooks` feature, which the tests turn on; never in the production binary.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, value_parser = parse_host_bug)]
    host_bug: Option<raft_host::Misbehaviour>,
    /// Threads serving the node loop and the connections (the disk has its own). One
    /// (the default) runs tokio's current-thread scheduler, where a connection waking
    /// the node loop is a queue push rather than a wake-up of another thread: the
    /// fastest on a small machine, and with several nodes on one, as in `kv cluster`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    threads: u64,
    /// Milliseconds added to every sync, as on a slow disk (`test-hooks` builds only).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, default_value_t = 0)]
    slow_disk_ms: u64,
}

impl ServerArgs {
    /// The rule of the driver to break, in a `test-hooks` build.
    fn misbehaviour(&self) -> Option<raft_host::Misbehaviour> {
        #[cfg(feature = "test-hooks")]
        return self.host_bug;
        #[cfg(not(feature = "test-hooks"))]
        None
    }

    /// The extra time every sync takes, in a `test-hooks` build.
    fn slow_sync(&self) -> Duration {
        #[cfg(feature = "test-hooks")]
        return Duration::from_millis(self.slow_disk_ms);
        #[cfg(not(feature = "test-hooks"))]
        Duration::ZERO
    }
}

fn parse_cluster_size(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(nodes) if (1..=cluster::MOST_NODES).contains(&nodes) => Ok(nodes),
        _ => Err(format!("a local cluster has 1 to {} nodes", cluster::MOST_NODES)),
    }
}

#[cfg(feature = "test-hooks")]
fn parse_host_bug(text: &str) -> Result<raft_host::Misbehaviour, String> {
    match text {
        "send-before-sync" => Ok(raft_host::Misbehaviour::SendBeforeSync),
        "report-before-sync" => Ok(raft_host::Misbehaviour::ReportBeforeSync),
        other => Err(format!("{other:?}: expected send-before-sync or report-before-sync")),
    }
}

#[derive(Args)]
struct ClientArgs {
    /// A node to start from, as host:port or host:port:id (repeat for more); the client
    /// finds the leader itself.
    #[arg(long = "node", required = true, value_parser = config::parse_client_node)]
    nodes: Vec<String>,
    /// Seconds to keep retrying a command before giving up.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The cluster's password (its --requirepass, or the admin password with --user
    /// admin). Without it, the REDISCLI_AUTH environment variable, as redis-cli reads.
    #[arg(long)]
    password: Option<String>,
    /// The user to authenticate as: default, or admin (for RAFT.* and CONFIG SET when
    /// the cluster has an admin password).
    #[arg(long, default_value = "default")]
    user: String,
    /// Connect over TLS, trusting the certificate authorities in this PEM file (the
    /// cluster's --tls-ca).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The command: set k v, get k, del k, cas k old new, list [from] [to], info,
    /// transfer id, add id host:port [voter], promote id, remove id, members ..., or any
    /// Redis command. Without one, a prompt.
    command: Vec<String>,
}

#[derive(Args)]
struct ClusterArgs {
    /// How many nodes (1 to 9).
    #[arg(long, default_value_t = 3, value_parser = parse_cluster_size)]
    nodes: u64,
    /// Where the nodes keep their data (node-1, node-2, ... inside), kept when the
    /// cluster stops; without it, a temporary directory removed when it stops.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Ports from here up, instead of free ones.
    #[arg(long)]
    base_port: Option<u16>,
    /// Milliseconds per Raft tick for every node.
    #[arg(long, default_value_t = 10)]
    tick_ms: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Info by default: elections won and lost, peers connecting and going (one line each).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        // Colour only on a terminal: a log file or `kv cluster`'s prefixed output gets plain text.
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    match cli.command {
        Command::Server(args) => run_server(*args),
        Command::Client(args) => run_client(args),
        Command::Cluster(args) => run_cluster(args),
    }
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("kv: {message}");
    ExitCode::from(code)
}

fn run_server(args: ServerArgs) -> ExitCode {
    let nodes = match &args.config {
        Some(path) => match config::read_cluster_file(path) {
            Ok(nodes) => nodes,
            Err(error) => return fail(BAD_INPUT, error),
        },
        None => args.nodes.clone(),
    };
    let members = match config::members(&nodes) {
        Ok(members) => members,
        Err(error) => return fail(BAD_INPUT, error),
    };
    if !members.contains_key(&args.id) {
        return fail(BAD_INPUT, format!("--id {} is not among the members; list this node too", args.id));
    }
    let (misbehaviour, slow_sync) = (args.misbehaviour(), args.slow_sync());
    let password = |given: &Option<String>, file: &Option<PathBuf>, flag: &str| match (given, file) {
        (Some(password), _) => Ok(Some(password.clone())),
        (None, Some(path)) => {
            config::read_password_file(path).map(Some).map_err(|error| format!("--{flag}-file: {error}"))
        }
        (None, None) => Ok(None),
    };
    let access = match (
        password(&args.requirepass, &args.requirepass_file, "requirepass"),
        password(&args.admin_password, &args.admin_password_file, "admin-password"),
    ) {
        (Ok(default_password), Ok(admin_password)) => kv::resp::access::Access {
            default_password: default_password.map(String::into_bytes),
            admin_password: admin_password.map(String::into_bytes),
        },
        (Err(error), _) | (_, Err(error)) => return fail(BAD_INPUT, error),
    };
    let cluster_secret = match password(&args.cluster_secret, &args.cluster_secret_file, "cluster-secret") {
        Ok(secret) => secret,
        Err(error) => return fail(BAD_INPUT, error),
    };
    let tls = match (&args.tls_cert, &args.tls_key, &args.tls_ca) {
        (Some(cert), Some(key), Some(ca)) => match raft_runtime::Tls::load(cert, key, ca) {
            Ok(tls) => Some(tls),
            Err(error) => return fail(BAD_INPUT, error),
        },
        _ => None,
    };
    let options = ServerOptions {
        id: args.id,
        members,
        data_dir: args.data_dir,
        listen: args.listen,
        tick: Duration::from_millis(args.tick_ms),
        compaction_entries: args.compact_every,
        sessions: SessionPolicy {
            idle_timeout_ms: args.session_idle_secs.saturating_mul(1_000),
            max_sessions: args.max_sessions,
        },
        storage: StorageOptions { segment_bytes: args.segment_mib << 20 },
        misbehaviour,
        slow_sync,
        joining: args.join,
        max_value_bytes: args.max_value_bytes as usize,
        max_clients: args.max_clients,
        client_idle_timeout_secs: args.client_idle_timeout,
        access,
        max_memory: args.maxmemory,
        metrics_addr: args.metrics_addr.clone(),
        protected_mode: args.protected_mode == "yes",
        cluster_secret: cluster_secret.map(String::into_bytes),
        tls,
    };
    let threads = args.threads as usize;
    // One thread: the current-thread scheduler, where a task waking another is a queue
    // push, not a wake-up of a parked worker thread.
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(FAILED, format!("cannot start the runtime: {error}")),
    };
    match runtime.block_on(server::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ServerError::Refused(why)) => fail(BAD_INPUT, why),
        Err(ServerError::Failed(why)) => fail(FAILED, why),
    }
}

/// The commands of `kv client`'s prompt, for its greeting and `help`.
const PROMPT_HELP: &str = "\
set k v              write a key
get k                read a key (linearizable, through the leader)
del k                delete a key
cas k old new        set k to new if it holds old
list [from] [to]     keys and values in order
info                 this node's Raft state: role, term, leader, members
transfer id          hand leadership to node id
add id host:port     add a node (started with --join) as a learner, promoted once caught up
add id host:port voter   ... as a voter at once
promote id           make a learner a voter now
remove id            remove a voter or a learner
members 1 2 4=h:p [learners 3]   make the members exactly these, in one change
help                 this list
quit                 leave (or Ctrl-D)
Any other line is sent as a Redis command (PING, MGET a b, KV.LIST, COMMAND DOCS, ...).";

/// What `kv client` sends for one line: its words as a command, shortcuts expanded.
fn run_words(client: &mut Client, words: &[Vec<u8>]) -> Result<Value, String> {
    let lower = words.first().map(|word| word.to_ascii_lowercase()).unwrap_or_default();
    let rest: Vec<&[u8]> = words.iter().skip(1).map(Vec::as_slice).collect();
    // A read changes nothing, and a write that never reached a node (or was refused or
    // redirected by every node it reached) was not performed: only a write whose whole
    // command reached a node that never answered may have been applied.
    let reads = matches!(lower.as_slice(), b"get" | b"list" | b"info") || kv::resp::is_read_only(&lower);
    let gave_up = |error: kv_server::client::GaveUp| {
        if error.maybe_applied && !reads {
            format!("{}; the outcome is unknown: the command may or may not have been applied", error.why)
        } else {
            format!("{}; the command was not performed", error.why)
        }
    };
    match (lower.as_slice(), rest.as_slice()) {
        (b"set", [key, value]) => client.write(&[b"SET", key, value]).map_err(gave_up),
        (b"del", [key]) => client.write(&[b"DEL", key]).map_err(gave_up),
        (b"cas", [key, old, new]) => client.write(&[b"KV.CAS", key, old, new]).map_err(gave_up),
        (b"get", [key]) => client.command(&[b"GET", key]).map_err(gave_up),
        (b"list", range) if range.len() <= 2 => {
            let mut command: Vec<&[u8]> = vec![b"KV.LIST"];
            command.extend_from_slice(range);
            client.command(&command).map_err(gave_up)
        }
        (b"info", []) => client.command(&[b"RAFT.INFO"]).map_err(gave_up),
        (b"transfer", [id]) => client.command(&[b"RAFT.TRANSFER", id]).map_err(gave_up),
        (b"add", [id, address]) => client.command(&[b"RAFT.ADD", id, address]).map_err(gave_up),
        (b"add", [id, address, voter]) if voter.eq_ignore_ascii_case(b"voter") => {
            client.command(&[b"RAFT.ADD", id, address, b"VOTER"]).map_err(gave_up)
        }
        (b"promote", [id]) => client.command(&[b"RAFT.PROMOTE", id]).map_err(gave_up),
        (b"remove", [id]) => client.command(&[b"RAFT.REMOVE", id]).map_err(gave_up),
        (b"members", members) if !members.is_empty() => {
            let mut command: Vec<&[u8]> = vec![b"RAFT.MEMBERS"];
            command.extend_from_slice(members);
            client.command(&command).map_err(gave_up)
        }
        (
            b"set" | b"del" | b"cas" | b"get" | b"list" | b"transfer" | b"add" | b"promote" | b"remove"
            | b"members",
            _,
        ) => Err(format!(
            "usage: set k v | get k | del k | cas k old new | list [from] [to] | info | transfer id | add id host:port [voter] | promote id | remove id | members id[=host:port]... [learners id[=host:port]...] (got {})",
            String::from_utf8_lossy(&words.join(&b' '))
        )),
        _ => {
            let command: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
            client.command(&command).map_err(gave_up)
        }
    }
}

/// Prints a list's flat key, value, key, value... as `key = value` lines.
fn print_value(words: &[Vec<u8>], value: &Value) {
    let is_list = words.first().is_some_and(|word| word.eq_ignore_ascii_case(b"list"));
    match value {
        Value::Array(Some(items)) if is_list => {
            if items.is_empty() {
                outln!("(no keys)");
            }
            for pair in items.chunks(2) {
                if let [Value::Bulk(Some(key)), Value::Bulk(Some(value))] = pair {
                    outln!("{} = {}", key.escape_ascii(), value.escape_ascii());
                }
            }
        }
        Value::Bulk(Some(text)) if words.first().is_some_and(|word| word.eq_ignore_ascii_case(b"info")) => {
            out!("{}", String::from_utf8_lossy(text).replace("\r\n", "\n"));
        }
        other => outln!("{}", other.display()),
    }
}

/// Tells stderr what the client waits for while it retries: each new problem once, and
/// the same one again every few seconds, so a down cluster is not 30 s of silence.
fn report_waiting(client: &mut Client) {
    let mut last: Option<(String, Duration)> = None;
    client.on_waiting(move |waiting| {
        let repeat = Duration::from_secs(5);
        let due = match &last {
            Some((problem, at)) => problem != waiting.problem || waiting.elapsed >= *at + repeat,
            None => true,
        };
        if due {
            let left = waiting.patience.saturating_sub(waiting.elapsed).as_secs();
            eprintln!("kv: waiting: {}; retrying for up to {left} s more (--timeout)", waiting.problem);
            last = Some((waiting.problem.to_string(), waiting.elapsed));
        }
    });
}

fn run_client(args: ClientArgs) -> ExitCode {
    let mut client = Client::new(args.nodes.clone());
    client.set_patience(Duration::from_secs(args.timeout));
    let password = args.password.clone().or_else(|| std::env::var("REDISCLI_AUTH").ok());
    client.set_password(password, &args.user);
    if let Some(ca) = &args.tls_ca {
        match raft_runtime::tls::client_config(ca) {
            Ok(config) => client.set_tls(Some(config)),
            Err(error) => return fail(BAD_INPUT, format!("--tls-ca {error}")),
        }
    }
    report_waiting(&mut client);
    if !args.command.is_empty() {
        let words: Vec<Vec<u8>> = args.command.iter().map(|word| word.as_bytes().to_vec()).collect();
        return match run_words(&mut client, &words) {
            Ok(value @ Value::Error(_)) => {
                print_value(&words, &value);
                ExitCode::from(FAILED)
            }
            Ok(value) => {
                print_value(&words, &value);
                ExitCode::SUCCESS
            }
            Err(error) => fail(FAILED, error),
        };
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        outln!("talking to the cluster through {}; commands:\n{PROMPT_HELP}", args.nodes.join(", "));
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    let mut line = String::new();
    loop {
        if stdout::is_closed() {
            return ExitCode::SUCCESS; // no one reads the answers any more
        }
        if interactive {
            out!("kv> ");
        }
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(_) => {}
            Err(error) => return fail(FAILED, error),
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        let words = match kv::resp::parse(format!("{trimmed}\n").as_bytes()) {
            kv::resp::Parsed::Command(words, _) => words,
            _ => {
                outln!("(error) unbalanced quotes");
                continue;
            }
        };
        if words.is_empty() {
            continue;
        }
        if words[0].eq_ignore_ascii_case(b"quit") || words[0].eq_ignore_ascii_case(b"exit") {
            return ExitCode::SUCCESS;
        }
        if words.len() == 1 && words[0].eq_ignore_ascii_case(b"help") {
            outln!("{PROMPT_HELP}");
            continue;
        }
        match run_words(&mut client, &words) {
            Ok(value) => print_value(&words, &value),
            Err(error) => outln!("(error) {error}"),
        }
    }
}

fn run_cluster(args: ClusterArgs) -> ExitCode {
    let keep_data = args.data_dir.is_some();
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("kv-cluster-{}", std::process::id())));
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(error) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            return fail(FAILED, format!("cannot handle Ctrl-C: {error}"));
        }
    }
    let options = ClusterOptions {
        nodes: args.nodes,
        data_dir,
        keep_data,
        base_port: args.base_port,
        server_arguments: vec!["--tick-ms".into(), args.tick_ms.to_string()],
    };
    match cluster::run(&options, |help| out!("{help}"), || stop.load(Ordering::Relaxed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(BAD_INPUT, error),
    }
}

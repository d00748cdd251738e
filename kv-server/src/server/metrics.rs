//! The Prometheus endpoint (`--metrics-addr`): `GET /metrics` answers the node's state
//! in the text exposition format (version 0.0.4), read at the moment of the scrape
//! from the node loop, the connections' counters and the disk thread's histograms.
//!
//! The format is a few lines per metric (`# HELP`, `# TYPE`, samples), written here
//! rather than through a metrics crate: the values already live in the node's own
//! counters and status, so there is nothing to register or keep in step.

use super::status::NodeStatus;
use super::Shared;
use raft_core::Role;
use raft_runtime::stats::HistogramSnapshot;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most bytes of a request read before it is answered (a scrape is a few hundred).
const MOST_REQUEST_BYTES: usize = 8 << 10;

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), answer(stream, &shared)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") && request.len() < MOST_REQUEST_BYTES {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let line = request.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") || line == b"GET /metrics" {
        match NodeStatus::read(shared).await {
            Some(status) => ("200 OK", render(&status, shared)),
            None => ("503 Service Unavailable", "the node is shutting down\n".to_string()),
        }
    } else {
        ("404 Not Found", "metrics are at GET /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// One metric: its help, type and samples (`labels` may be empty).
fn metric(text: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(text, "{name} {value}");
        } else {
            let _ = writeln!(text, "{name}{{{labels}}} {value}");
        }
    }
}

fn single(value: impl Into<f64>) -> [(String, f64); 1] {
    [(String::new(), value.into())]
}

fn histogram(text: &mut String, name: &str, help: &str, snapshot: &HistogramSnapshot, scale: f64) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} histogram");
    for (bound, count) in &snapshot.buckets {
        let _ = writeln!(text, "{name}_bucket{{le=\"{}\"}} {count}", *bound as f64 * scale);
    }
    let _ = writeln!(text, "{name}_bucket{{le=\"+Inf\"}} {}", snapshot.count);
    let _ = writeln!(text, "{name}_sum {}", snapshot.sum as f64 * scale);
    let _ = writeln!(text, "{name}_count {}", snapshot.count);
}

/// The exposition text for `status`.
fn render(status: &NodeStatus, shared: &Shared) -> String {
    let mut text = String::new();
    let stats = &shared.stats;
    let counter = |value: &std::sync::atomic::AtomicU64| value.load(Ordering::Relaxed) as f64;
    let roles = [
        ("leader", Role::Leader),
        ("candidate", Role::Candidate),
        ("follower", Role::Follower),
        ("precandidate", Role::PreCandidate),
    ];
    let role_samples: Vec<(String, f64)> = roles
        .iter()
        .map(|(name, role)| (format!("role=\"{name}\""), f64::from(u8::from(status.role == *role))))
        .collect();
    metric(&mut text, "raft_role", "gauge", "1 for this node's role, 0 for the others.", &role_samples);
    metric(&mut text, "raft_term", "gauge", "The current term.", &single(status.term as f64));
    metric(&mut text, "raft_commit_index", "gauge", "The commit index.", &single(status.commit_index as f64));
    metric(
        &mut text,
        "raft_applied_index",
        "gauge",
        "The last entry applied.",
        &single(status.applied_index as f64),
    );
    metric(
        &mut text,
        "raft_last_log_index",
        "gauge",
        "The last entry in the log.",
        &single(status.last_index as f64),
    );
    metric(
        &mut text,
        "raft_log_entries",
        "gauge",
        "Entries in the log past the snapshot.",
        &single(status.last_index.saturating_sub(status.snapshot_index) as f64),
    );
    metric(
        &mut text,
        "raft_snapshot_index",
        "gauge",
        "The last entry the snapshot covers.",
        &single(status.snapshot_index as f64),
    );
    let peers: Vec<&super::status::PeerStatus> =
        status.peers.iter().filter(|peer| peer.id != status.id && peer.match_index.is_some()).collect();
    let matched: Vec<(String, f64)> = peers
        .iter()
        .map(|peer| (format!("peer=\"{}\"", peer.id), peer.match_index.unwrap_or(0) as f64))
        .collect();
    metric(
        &mut text,
        "raft_peer_match_index",
        "gauge",
        "On the leader: how far each peer's log is known to match.",
        &matched,
    );
    let lag: Vec<(String, f64)> = peers
        .iter()
        .map(|peer| {
            (
                format!("peer=\"{}\"", peer.id),
                status.last_index.saturating_sub(peer.match_index.unwrap_or(0)) as f64,
            )
        })
        .collect();
    metric(
        &mut text,
        "raft_peer_lag_entries",
        "gauge",
        "On the leader: entries each peer is behind its log.",
        &lag,
    );
    metric(&mut text, "kv_keys", "gauge", "Keys in the store.", &single(status.keys as f64));
    metric(
        &mut text,
        "kv_keys_with_ttl",
        "gauge",
        "Keys with a time to live.",
        &single(status.expires as f64),
    );
    metric(
        &mut text,
        "kv_data_bytes",
        "gauge",
        "The data's size as maxmemory measures it.",
        &single(status.used_bytes as f64),
    );
    metric(
        &mut text,
        "kv_sessions",
        "gauge",
        "Exactly-once client sessions.",
        &single(status.sessions as f64),
    );
    metric(
        &mut text,
        "kv_requests_pending",
        "gauge",
        "Client requests waiting for their answer.",
        &single(status.pending_requests as f64),
    );
    metric(
        &mut text,
        "kv_connected_clients",
        "gauge",
        "Client connections open.",
        &single(stats.clients.load(Ordering::Relaxed) as f64),
    );
    metric(
        &mut text,
        "kv_connections_received_total",
        "counter",
        "Client connections served.",
        &single(counter(&stats.total_connections_received)),
    );
    metric(
        &mut text,
        "kv_connections_rejected_total",
        "counter",
        "Client connections refused for maxclients.",
        &single(counter(&stats.rejected_connections)),
    );
    metric(
        &mut text,
        "kv_tls_handshakes_failed_total",
        "counter",
        "Connections closed for not completing TLS.",
        &single(counter(&stats.tls_handshakes_failed)),
    );
    metric(
        &mut text,
        "kv_commands_total",
        "counter",
        "Client commands received.",
        &single(counter(&stats.total_commands_processed)),
    );
    metric(
        &mut text,
        "kv_client_protocol_errors_total",
        "counter",
        "Client connections closed for breaking RESP.",
        &single(counter(&stats.client_protocol_errors)),
    );
    metric(
        &mut text,
        "kv_proposals_total",
        "counter",
        "Client writes handed to the node.",
        &single(counter(&stats.writes_submitted)),
    );
    metric(
        &mut text,
        "kv_reads_total",
        "counter",
        "Client reads handed to the node.",
        &single(counter(&stats.reads_submitted)),
    );
    metric(
        &mut text,
        "kv_redirects_total",
        "counter",
        "Requests refused with the leader's address or a retry.",
        &single(counter(&stats.redirects)),
    );
    metric(
        &mut text,
        "kv_expired_keys_total",
        "counter",
        "Keys whose time to live ran out (since this node started).",
        &single(status.expired_keys as f64),
    );
    metric(
        &mut text,
        "raft_writes_durable_total",
        "counter",
        "Writes the disk reported durable.",
        &single(status.writes_durable as f64),
    );
    let links = shared.node.link_counters();
    metric(
        &mut text,
        "raft_peer_frames_rejected_total",
        "counter",
        "Peer frames oversized, undecodable or misaddressed.",
        &single(counter(&links.frames_rejected)),
    );
    metric(
        &mut text,
        "raft_peer_connections_refused_total",
        "counter",
        "Peer connections refused: no valid hello, a wrong cluster secret, an unknown node.",
        &single(counter(&links.connections_refused)),
    );
    let disk = shared.node.disk_stats();
    histogram(
        &mut text,
        "raft_fsync_seconds",
        "How long each fsync took.",
        &disk.sync_micros.snapshot(),
        1e-6,
    );
    histogram(
        &mut text,
        "raft_writes_per_fsync",
        "Writes each fsync made durable (group commit).",
        &disk.writes_per_sync.snapshot(),
        1.0,
    );
    text
}

//! One port for peers and clients: the first byte of a connection tells them apart (a
//! peer's handshake starts with a zero byte, which no RESP request does).

use super::connection;
use super::transport::PEER_MAGIC;
use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// How long a new connection may stay silent: it holds no client slot meanwhile, and is
/// closed once this passes without its first byte.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Silent connections held at once (waiting for their first byte); more are closed at
/// once, so connections that never speak cannot exhaust memory or descriptors.
pub(crate) const MAX_SILENT_CONNECTIONS: usize = 16_384;

/// Accepts connections until the task is dropped.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(route(stream, shared.clone()));
            }
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits (boundedly) for a connection's first byte, then hands it to the peer transport
/// or serves it as a client. A client counts from its first byte to its close, once.
async fn route(mut stream: TcpStream, shared: Arc<Shared>) {
    let silent = &shared.stats.silent_connections;
    if silent.fetch_add(1, Ordering::Relaxed) >= MAX_SILENT_CONNECTIONS {
        silent.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let mut first = [0u8; 1];
    let spoke = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await;
    silent.fetch_sub(1, Ordering::Relaxed);
    if !matches!(spoke, Ok(Ok(1))) {
        return;
    }
    if first[0] == PEER_MAGIC[0] {
        shared.node.accept_peer(stream).await;
        return;
    }
    let clients = &shared.stats.clients;
    let most = shared.max_clients.load(Ordering::Relaxed);
    if clients.fetch_add(1, Ordering::Relaxed) as u64 >= most {
        clients.fetch_sub(1, Ordering::Relaxed);
        shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        let _ =
            tokio::io::AsyncWriteExt::write_all(&mut stream, b"-ERR max number of clients reached\r\n").await;
        return;
    }
    shared.stats.total_connections_received.fetch_add(1, Ordering::Relaxed);
    connection::serve(stream, &shared).await;
    clients.fetch_sub(1, Ordering::Relaxed);
}

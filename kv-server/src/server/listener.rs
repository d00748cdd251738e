//! One port for peers and clients: the first bytes of a connection tell them apart (a
//! peer's handshake starts with the eight bytes of `PEER_MAGIC`, `\0KVRAFT1`; a client
//! that departs from them anywhere is a client, even one whose first byte is zero).

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

enum Speaker {
    Peer,
    Client,
}

/// Who is speaking, from the first bytes (peeked, left for whoever reads them): a peer
/// sends all of [`PEER_MAGIC`]; anything that departs from it is a client, so a client
/// whose bytes happen to start with a zero still gets RESP's answer (an error), not a
/// reset. `None` if the connection closes first.
async fn first_bytes(stream: &TcpStream) -> Option<Speaker> {
    let mut start = [0u8; PEER_MAGIC.len()];
    loop {
        let seen = stream.peek(&mut start).await.ok().filter(|&seen| seen > 0)?;
        if start[..seen] != PEER_MAGIC[..seen] {
            return Some(Speaker::Client);
        }
        if seen == PEER_MAGIC.len() {
            return Some(Speaker::Peer);
        }
        // A prefix of the magic so far: wait for the rest (peeking again at once would
        // spin on the same bytes).
        tokio::time::sleep(Duration::from_millis(2)).await;
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
    let kind = tokio::time::timeout(HANDSHAKE_TIMEOUT, first_bytes(&stream)).await;
    silent.fetch_sub(1, Ordering::Relaxed);
    match kind {
        Ok(Some(Speaker::Peer)) => return shared.node.accept_peer(stream).await,
        Ok(Some(Speaker::Client)) => {}
        _ => return,
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

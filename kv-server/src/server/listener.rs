//! One port for peers and clients: the first byte of a connection tells them apart (a
//! peer's handshake starts with a zero byte, which no RESP request does).

use super::connection;
use super::transport::{Transport, HANDSHAKE_BYTES, PEER_MAGIC};
use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// Client connections served at once, counting connections that have not said yet
/// whether they are a client or a peer; more are told so and closed (as Redis's
/// `maxclients`), so connections cannot exhaust memory.
pub(crate) const MAX_CLIENTS: usize = 4096;
/// How long a peer has to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until the task is dropped.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, transport: Arc<Transport>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(route(stream, shared.clone(), transport.clone()));
            }
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn route(mut stream: TcpStream, shared: Arc<Shared>, transport: Arc<Transport>) {
    let clients = &shared.stats.clients;
    if clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
        clients.fetch_sub(1, Ordering::Relaxed);
        let _ =
            tokio::io::AsyncWriteExt::write_all(&mut stream, b"-ERR max number of clients reached\r\n").await;
        return;
    }
    serve_connection(stream, &shared, &transport).await;
    clients.fetch_sub(1, Ordering::Relaxed);
}

async fn serve_connection(mut stream: TcpStream, shared: &Arc<Shared>, transport: &Transport) {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => {}
        _ => return,
    }
    if first[0] == PEER_MAGIC[0] {
        let mut handshake = [0u8; HANDSHAKE_BYTES];
        let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut handshake)).await;
        let from = u64::from_le_bytes(handshake[8..16].try_into().expect("8 bytes"));
        let to = u64::from_le_bytes(handshake[16..24].try_into().expect("8 bytes"));
        let valid =
            matches!(read, Ok(Ok(_))) && handshake[..8] == PEER_MAGIC && to == shared.id && from != shared.id;
        if valid {
            transport.accept(from, stream);
        } else {
            tracing::warn!("a connection that is neither a peer's handshake nor RESP; closed");
            shared.stats.links.connections_refused.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    // Counted once, in `route`, from accept to close.
    connection::serve(stream, shared).await;
}

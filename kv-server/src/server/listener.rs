//! One port for peers and clients: the first byte of a connection tells them apart (a
//! peer's handshake starts with a zero byte, which no RESP request does).

use super::connection;
use super::transport::PEER_MAGIC;
use super::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Client connections served at once, counting connections that have not said yet
/// whether they are a client or a peer; more are told so and closed (as Redis's
/// `maxclients`), so connections cannot exhaust memory.
pub(crate) const MAX_CLIENTS: usize = 4096;

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

async fn route(mut stream: TcpStream, shared: Arc<Shared>) {
    let clients = &shared.stats.clients;
    if clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
        clients.fetch_sub(1, Ordering::Relaxed);
        let _ =
            tokio::io::AsyncWriteExt::write_all(&mut stream, b"-ERR max number of clients reached\r\n").await;
        return;
    }
    serve_connection(stream, &shared).await;
    clients.fetch_sub(1, Ordering::Relaxed);
}

async fn serve_connection(stream: TcpStream, shared: &Arc<Shared>) {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) => {}
        _ => return,
    }
    if first[0] == PEER_MAGIC[0] {
        shared.node.accept_peer(stream).await;
        return;
    }
    // Counted once, in `route`, from accept to close.
    connection::serve(stream, shared).await;
}

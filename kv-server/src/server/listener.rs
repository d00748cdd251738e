//! One port for peers and clients: TLS first when the node has it, then the first bytes
//! of a connection tell them apart (a peer's hello starts with the eight bytes of
//! `PEER_MAGIC`, `\0KVRAFT2`; a client that departs from them anywhere is a client, even
//! one whose first byte is zero).

use super::connection;
use super::transport::PEER_MAGIC;
use super::Shared;
use raft_runtime::{BoxedStream, Tls};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a new connection may take to open TLS and send its first bytes: it holds no
/// client slot meanwhile, and is closed once this passes.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Silent connections held at once (waiting for their first byte); more are closed at
/// once, so connections that never speak cannot exhaust memory or descriptors.
pub(crate) const MAX_SILENT_CONNECTIONS: usize = 16_384;

/// Accepts connections until the task is dropped.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<Tls>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(route(stream, shared.clone(), tls.clone()));
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

/// Who is speaking, from the first bytes (read into `start`, which the caller hands on
/// with the stream): a peer sends all of [`PEER_MAGIC`]; anything that departs from it
/// is a client, so a client whose bytes happen to start with a zero still gets RESP's
/// answer (an error), not a reset. `None` if the connection closes first.
async fn first_bytes(stream: &mut BoxedStream, start: &mut Vec<u8>) -> Option<Speaker> {
    let mut buffer = [0u8; PEER_MAGIC.len()];
    loop {
        let wanted = PEER_MAGIC.len() - start.len();
        let read = stream.read(&mut buffer[..wanted]).await.ok().filter(|&read| read > 0)?;
        start.extend_from_slice(&buffer[..read]);
        if start[..] != PEER_MAGIC[..start.len()] {
            return Some(Speaker::Client);
        }
        if start.len() == PEER_MAGIC.len() {
            return Some(Speaker::Peer);
        }
    }
}

/// Opens TLS if the node has it, waits (boundedly) for the first bytes, then hands the
/// connection to the peer transport or serves it as a client. A client counts from its
/// first byte to its close, once.
async fn route(stream: TcpStream, shared: Arc<Shared>, tls: Option<Tls>) {
    let silent = &shared.stats.silent_connections;
    if silent.fetch_add(1, Ordering::Relaxed) >= MAX_SILENT_CONNECTIONS {
        silent.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let mut start = Vec::with_capacity(PEER_MAGIC.len());
    let opened = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut stream: BoxedStream = match &tls {
            Some(tls) => match tls.accept(stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%error, "a connection that did not complete TLS; closed");
                    shared.stats.tls_handshakes_failed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
            None => Box::new(stream),
        };
        let speaker = first_bytes(&mut stream, &mut start).await?;
        Some((speaker, stream))
    })
    .await;
    silent.fetch_sub(1, Ordering::Relaxed);
    let Ok(Some((speaker, stream))) = opened else { return };
    let mut stream = Prefixed { start, read: 0, stream };
    if let Speaker::Peer = speaker {
        return shared.node.accept_peer(Box::new(stream)).await;
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

/// A stream whose first bytes were already read to route it: they are read again
/// first, then the rest of the stream.
struct Prefixed {
    start: Vec<u8>,
    read: usize,
    stream: BoxedStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.read < self.start.len() {
            let take = (self.start.len() - self.read).min(buffer.remaining());
            let from = self.read;
            buffer.put_slice(&self.start[from..from + take]);
            self.read += take;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(context, buffer)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

//! Peer links: one TCP connection per pair of nodes, carrying the core's messages both
//! ways as length-prefixed frames.
//!
//! - The node with the lower id dials; the other waits for it. A dialer reconnects with
//!   backoff (50 ms doubling to 1 s). A connection opens with TLS when the node has it,
//!   then the handshake of [`crate::peer_auth`]: the dialer's id and the id it wants,
//!   and each side's proof that it knows the cluster secret. A side that fails it is
//!   closed and counted (`connections_refused`).
//! - A frame is `[length: u32 LE][raft_core::encode_message bytes]`. A frame longer than
//!   the core's decode limit, one that does not decode, or a message not from the peer
//!   or not to this node closes the connection and is counted; the node serves on.
//! - Each peer has a bounded queue of outgoing frames. When it is full, or the peer is
//!   not connected, frames are dropped (and counted): Raft retransmits what matters, and
//!   a queue that never blocks keeps one slow peer from stalling the node.

use crate::peer_auth::{self, ClusterSecret, Hello, CHALLENGE_BYTES, HELLO_BYTES, PROOF_BYTES};
use crate::tls::{BoxedStream, Tls};
use raft_core::{decode_message_within, encode_message, Message, NodeId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

pub use crate::peer_auth::PEER_MAGIC;

/// What the links count (for a server's INFO).
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Frames from peers that were oversized, did not decode, or were misaddressed.
    pub frames_rejected: AtomicU64,
    /// Connections that claimed to be a peer's but had no valid handshake (a wrong or
    /// missing cluster secret among them) or came from a node this one does not know,
    /// and peers this node dialed that could not prove the secret or whose TLS failed.
    pub connections_refused: AtomicU64,
    /// Messages dropped: a full queue or no connection.
    pub sends_dropped: AtomicU64,
}

/// What every link of a node shares: who it is, where messages go, what it counts.
struct Context {
    id: NodeId,
    counters: Arc<LinkCounters>,
    delivered: mpsc::Sender<Message>,
    max_message_bytes: usize,
    secret: ClusterSecret,
    tls: Option<Tls>,
}

/// Frames waiting for one peer before new ones are dropped.
const QUEUE_FRAMES: usize = 4096;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a peer has for its whole handshake (TCP, TLS and the secret's proof).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the links secure a connection: the cluster secret every member proves, and TLS
/// if the node has it.
#[derive(Clone, Debug)]
pub struct Security {
    /// The cluster's shared secret ([`ClusterSecret::none`] if it has none).
    pub secret: ClusterSecret,
    /// TLS on every link, if set.
    pub tls: Option<Tls>,
}

/// Why a dialed connection did not open.
#[derive(Debug, PartialEq, Eq)]
pub enum DialFailure {
    /// The connection failed or timed out.
    Io,
    /// The node at the other end did not prove the cluster secret.
    Refused,
    /// TLS failed: a certificate not signed by a trusted authority or not naming the
    /// peer's host, or a peer without TLS.
    Tls(String),
}

/// The dialer's half of the handshake on `stream`: hello, check the accepter's
/// challenge, prove the secret.
pub async fn dial_handshake(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    secret: &ClusterSecret,
    from: NodeId,
    to: NodeId,
) -> Result<(), DialFailure> {
    let hello = Hello { from, to, nonce: peer_auth::nonce() };
    stream.write_all(&hello.encode()).await.map_err(|_| DialFailure::Io)?;
    stream.flush().await.map_err(|_| DialFailure::Io)?;
    let mut challenge = [0; CHALLENGE_BYTES];
    stream.read_exact(&mut challenge).await.map_err(|_| DialFailure::Io)?;
    let proof = peer_auth::answer(secret, &hello, &challenge).ok_or(DialFailure::Refused)?;
    stream.write_all(&proof).await.map_err(|_| DialFailure::Io)?;
    stream.flush().await.map_err(|_| DialFailure::Io)
}

/// Why an accepted connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AcceptFailure {
    /// It closed, stalled, or did not open with a hello.
    NoHello,
    /// Its hello was not from another node to this one.
    Misaddressed,
    /// It did not prove the cluster secret (it claimed to be this node).
    WrongSecret(NodeId),
}

/// The accepter's half of the handshake on `stream` for node `id`: read the hello,
/// challenge it, check the proof. The dialer's id once it has proved the secret.
pub async fn accept_handshake(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    secret: &ClusterSecret,
    id: NodeId,
) -> Result<NodeId, AcceptFailure> {
    let mut hello = [0; HELLO_BYTES];
    stream.read_exact(&mut hello).await.map_err(|_| AcceptFailure::NoHello)?;
    let hello = Hello::decode(&hello).ok_or(AcceptFailure::NoHello)?;
    if hello.to != id || hello.from == id {
        return Err(AcceptFailure::Misaddressed);
    }
    let nonce = peer_auth::nonce();
    let challenge = peer_auth::challenge(secret, &hello, nonce);
    stream.write_all(&challenge).await.map_err(|_| AcceptFailure::NoHello)?;
    stream.flush().await.map_err(|_| AcceptFailure::NoHello)?;
    let mut proof = [0; PROOF_BYTES];
    stream.read_exact(&mut proof).await.map_err(|_| AcceptFailure::WrongSecret(hello.from))?;
    if !peer_auth::check_proof(secret, &hello, &nonce, &proof) {
        return Err(AcceptFailure::WrongSecret(hello.from));
    }
    Ok(hello.from)
}

struct Link {
    queue: mpsc::Sender<Vec<u8>>,
    accepted: mpsc::Sender<BoxedStream>,
    address: watch::Sender<String>,
}

/// The links to every peer.
pub struct Transport {
    shared: Arc<Context>,
    links: Mutex<BTreeMap<NodeId, Link>>,
}

impl Transport {
    /// The links of node `id`: no links yet ([`Transport::set_peers`] makes them);
    /// messages from peers go to `delivered`, counts to `counters`; a frame over
    /// `max_message_bytes` (the node's `raft_core::Config::max_message_bytes`) closes its
    /// link. Call it inside a tokio runtime (links run as tasks).
    pub fn new(
        id: NodeId,
        counters: Arc<LinkCounters>,
        delivered: mpsc::Sender<Message>,
        max_message_bytes: usize,
        security: Security,
    ) -> Arc<Transport> {
        let Security { secret, tls } = security;
        let shared = Arc::new(Context { id, counters, delivered, max_message_bytes, secret, tls });
        Arc::new(Transport { shared, links: Mutex::new(BTreeMap::new()) })
    }

    /// What the links count.
    pub fn counters(&self) -> &LinkCounters {
        &self.shared.counters
    }

    /// Links to every node in `addresses` but this one (new ones start, moved ones
    /// redial at the new address).
    pub fn set_peers(self: &Arc<Self>, addresses: &BTreeMap<NodeId, String>) {
        let mut links = self.links.lock().expect("transport lock");
        for (&peer, address) in addresses {
            if peer == self.shared.id {
                continue;
            }
            match links.get(&peer) {
                Some(link) => {
                    if *link.address.borrow() != *address {
                        let _ = link.address.send(address.clone());
                    }
                }
                None => {
                    let (queue, queue_rx) = mpsc::channel(QUEUE_FRAMES);
                    let (accepted, accepted_rx) = mpsc::channel(4);
                    let (address_tx, address_rx) = watch::channel(address.clone());
                    links.insert(peer, Link { queue, accepted, address: address_tx });
                    let run = LinkRun {
                        shared: self.shared.clone(),
                        peer,
                        address: address_rx,
                        queue: queue_rx,
                        accepted: accepted_rx,
                    };
                    // Every log line of the link says which node and peer it is about.
                    let span = tracing::info_span!("link", node = self.shared.id, peer);
                    tokio::spawn(tracing::Instrument::instrument(run.run(), span));
                }
            }
        }
    }

    /// Queues `message` for its destination, or drops it (full queue, unknown peer).
    pub fn send(&self, message: &Message) {
        let frame = encode_message(message);
        let links = self.links.lock().expect("transport lock");
        let Some(link) = links.get(&message.to) else {
            self.shared.counters.sends_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if link.queue.try_send(frame).is_err() {
            self.shared.counters.sends_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes a TCP connection a peer dialed to the node's own listener: opens TLS if
    /// the node has it, then [`Transport::accept`]. A connection that does not complete
    /// TLS within 5 s is closed and counted.
    pub async fn accept_tcp(&self, stream: TcpStream) {
        let stream: BoxedStream = match &self.shared.tls {
            Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                _ => {
                    tracing::warn!("a peer connection that did not complete TLS; closed");
                    self.shared.counters.connections_refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            None => Box::new(stream),
        };
        self.accept(stream).await;
    }

    /// Takes a connection a peer dialed (after TLS if the node has it): runs the
    /// accepter's half of the handshake and hands the connection to the link for that
    /// peer. A connection that does not open with a hello to this node and prove the
    /// cluster secret within 5 s, or that comes from a node this one does not know, is
    /// closed and counted (`connections_refused`).
    pub async fn accept(&self, mut stream: BoxedStream) {
        let shared = &self.shared;
        let outcome =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, accept_handshake(&mut stream, &shared.secret, shared.id))
                .await
                .unwrap_or(Err(AcceptFailure::NoHello));
        let peer = match outcome {
            Ok(peer) => peer,
            Err(failure) => {
                match failure {
                    AcceptFailure::NoHello => tracing::warn!("a peer connection with no hello; closed"),
                    AcceptFailure::Misaddressed => {
                        tracing::warn!("a peer hello not from another node to this one; closed")
                    }
                    AcceptFailure::WrongSecret(from) => tracing::warn!(
                        claimed = from,
                        "a connection claiming to be node {from} did not prove the cluster secret; closed"
                    ),
                }
                shared.counters.connections_refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let links = self.links.lock().expect("transport lock");
        match links.get(&peer) {
            Some(link) => {
                let _ = link.accepted.try_send(stream);
            }
            None => {
                tracing::warn!(peer, "a connection from a node this one does not know; closed");
                shared.counters.connections_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct LinkRun {
    shared: Arc<Context>,
    peer: NodeId,
    address: watch::Receiver<String>,
    queue: mpsc::Receiver<Vec<u8>>,
    accepted: mpsc::Receiver<BoxedStream>,
}

impl LinkRun {
    async fn run(mut self) {
        let dials = self.shared.id < self.peer;
        let mut backoff = BACKOFF_MIN;
        loop {
            let stream = if dials { self.dial(&mut backoff).await } else { self.wait_for_peer().await };
            let Some(mut stream) = stream else { return };
            backoff = BACKOFF_MIN;
            tracing::info!(peer = self.peer, "connected to node {}", self.peer);
            while let Some(replacement) = self.serve(stream).await {
                stream = replacement;
            }
            tracing::info!(peer = self.peer, "lost the connection to node {}", self.peer);
        }
    }

    /// Drops the frames queued while there is no connection.
    fn drop_queued(&mut self) {
        while self.queue.try_recv().is_ok() {
            self.shared.counters.sends_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connects (or takes a connection the peer dialed); `None` once the node stops.
    async fn dial(&mut self, backoff: &mut Duration) -> Option<BoxedStream> {
        loop {
            self.drop_queued();
            let address = self.address.borrow().clone();
            let attempt = tokio::time::timeout(HANDSHAKE_TIMEOUT, open(&self.shared, self.peer, &address));
            tokio::select! {
                opened = attempt => match opened {
                    Ok(Ok(stream)) => {
                        tracing::debug!(peer = self.peer, %address, "dialed");
                        return Some(stream);
                    }
                    Ok(Err(DialFailure::Refused)) => {
                        tracing::warn!(
                            peer = self.peer,
                            %address,
                            "node {} at {address} did not prove the cluster secret; closed",
                            self.peer
                        );
                        self.shared.counters.connections_refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(DialFailure::Tls(error))) => {
                        tracing::warn!(peer = self.peer, %address, "TLS with node {} failed: {error}", self.peer);
                        self.shared.counters.connections_refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(DialFailure::Io)) | Err(_) => {}
                },
                stream = self.accepted.recv() => return stream,
            }
            let pause = tokio::time::sleep(*backoff);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    frame = self.queue.recv() => match frame {
                        Some(_) => { self.shared.counters.sends_dropped.fetch_add(1, Ordering::Relaxed); }
                        None => return None,
                    },
                    stream = self.accepted.recv() => return stream,
                    _ = self.address.changed() => break,
                }
            }
            *backoff = (*backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Waits for the peer to dial, dropping frames meanwhile.
    async fn wait_for_peer(&mut self) -> Option<BoxedStream> {
        loop {
            tokio::select! {
                stream = self.accepted.recv() => return stream,
                frame = self.queue.recv() => match frame {
                    Some(_) => { self.shared.counters.sends_dropped.fetch_add(1, Ordering::Relaxed); }
                    None => return None,
                },
            }
        }
    }

    /// Carries frames both ways until the connection fails (`None`) or the peer dials
    /// a new one (`Some`, which replaces it).
    async fn serve(&mut self, stream: BoxedStream) -> Option<BoxedStream> {
        let (read_half, write_half) = tokio::io::split(stream);
        let mut reader = tokio::spawn(read_frames(self.shared.clone(), self.peer, read_half));
        let mut writer = BufWriter::with_capacity(64 << 10, write_half);
        let outcome = loop {
            tokio::select! {
                _ = &mut reader => break None,
                replacement = self.accepted.recv() => break replacement,
                frame = self.queue.recv() => {
                    let Some(frame) = frame else { break None };
                    if write_frame(&mut writer, &frame).await.is_err() {
                        break None;
                    }
                    // Everything queued meanwhile goes out in the same write.
                    let mut failed = false;
                    while let Ok(frame) = self.queue.try_recv() {
                        if write_frame(&mut writer, &frame).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed || writer.flush().await.is_err() {
                        break None;
                    }
                }
            }
        };
        reader.abort();
        tracing::debug!(peer = self.peer, "connection closed");
        outcome
    }
}

/// Connects to `peer` at `address`, opens TLS if the node has it, and proves the secret.
async fn open(shared: &Context, peer: NodeId, address: &str) -> Result<BoxedStream, DialFailure> {
    let stream = tokio::time::timeout(BACKOFF_MAX, TcpStream::connect(address))
        .await
        .map_err(|_| DialFailure::Io)?
        .map_err(|_| DialFailure::Io)?;
    stream.set_nodelay(true).map_err(|_| DialFailure::Io)?;
    let mut stream: BoxedStream = match &shared.tls {
        Some(tls) => tls.connect(address, stream).await.map_err(|error| {
            // rustls's own errors (a certificate refused, a peer not speaking TLS) are
            // the peer's fault; a reset mid-handshake is the network's.
            let refused = error.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
            if refused {
                DialFailure::Tls(error.to_string())
            } else {
                DialFailure::Io
            }
        })?,
        None => Box::new(stream),
    };
    dial_handshake(&mut stream, &shared.secret, shared.id, peer).await?;
    Ok(stream)
}

async fn write_frame(writer: &mut BufWriter<WriteHalf<BoxedStream>>, frame: &[u8]) -> std::io::Result<()> {
    writer.write_all(&(frame.len() as u32).to_le_bytes()).await?;
    writer.write_all(frame).await
}

/// Reads frames from `peer` and hands their messages to the node, until the
/// connection ends or carries something that is not a message from `peer` to us.
async fn read_frames(shared: Arc<Context>, peer: NodeId, read_half: ReadHalf<BoxedStream>) {
    let mut reader = tokio::io::BufReader::with_capacity(64 << 10, read_half);
    let mut frame = Vec::new();
    loop {
        let mut length = [0; 4];
        if reader.read_exact(&mut length).await.is_err() {
            return;
        }
        let length = u32::from_le_bytes(length) as usize;
        if length > shared.max_message_bytes {
            tracing::warn!(peer, length, "an oversized frame from a peer; connection closed");
            shared.counters.frames_rejected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        frame.clear();
        if read_frame_body(&mut reader, length, &mut frame).await.is_err() {
            return;
        }
        let message = match decode_message_within(&frame, shared.max_message_bytes) {
            Ok(message) if message.from == peer && message.to == shared.id => message,
            Ok(message) => {
                tracing::warn!(
                    peer,
                    from = message.from,
                    to = message.to,
                    "a misaddressed message; connection closed"
                );
                shared.counters.frames_rejected.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(error) => {
                tracing::warn!(peer, %error, "a frame that is not a message; connection closed");
                shared.counters.frames_rejected.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if frame.capacity() > FRAME_GROWTH_STEP_BYTES {
            // A large message passed through: give its memory back rather than keep it.
            frame = Vec::new();
        }
        if shared.delivered.send(message).await.is_err() {
            return;
        }
    }
}

/// How far ahead of the bytes that arrived a frame's buffer grows.
const FRAME_GROWTH_STEP_BYTES: usize = 1 << 20;

/// Reads `length` bytes into `frame`, growing it a step at a time to the exact size: a
/// length alone cannot make us allocate more than a step, and a 64 MiB message takes
/// 64 MiB, not the 128 MiB a doubling buffer would reach.
async fn read_frame_body(
    reader: &mut (impl AsyncRead + Unpin),
    length: usize,
    frame: &mut Vec<u8>,
) -> std::io::Result<()> {
    while frame.len() < length {
        let start = frame.len();
        let step = (length - start).min(FRAME_GROWTH_STEP_BYTES);
        frame.reserve_exact(step);
        frame.resize(start + step, 0);
        reader.read_exact(&mut frame[start..]).await?;
    }
    Ok(())
}

//! A client for the cluster, over RESP: it finds the leader, follows `MOVED` redirects,
//! waits out `TRYAGAIN`, fails over when a node stops answering, and sends writes in
//! an exactly-once session (opened with `KV.SESSION` before the first write, then
//! `KV.EXEC client sequence ...`), so a write retried after a lost answer applies once.
//! A session unused for the cluster's idle timeout expires: the write that finds it
//! gone is answered `SESSIONEXPIRED` (not applied by that attempt) and the next write
//! opens a new one. `kv client` is this, with a prompt.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+text`.
    Simple(String),
    /// `-text`.
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$n` (None: the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n` (None: the null array).
    Array(Option<Vec<Value>>),
}

impl Value {
    /// As redis-cli prints it.
    pub fn display(&self) -> String {
        self.display_indented(0)
    }

    fn display_indented(&self, depth: usize) -> String {
        match self {
            Value::Simple(text) => text.clone(),
            Value::Error(text) => format!("(error) {text}"),
            Value::Integer(number) => format!("(integer) {number}"),
            Value::Bulk(None) | Value::Array(None) => "(nil)".to_string(),
            Value::Bulk(Some(bytes)) => format!("\"{}\"", bytes.escape_ascii()),
            Value::Array(Some(items)) if items.is_empty() => "(empty array)".to_string(),
            Value::Array(Some(items)) => items
                .iter()
                .enumerate()
                .map(|(at, item)| {
                    let pad = if at == 0 { String::new() } else { " ".repeat(depth * 3) };
                    format!("{pad}{}) {}", at + 1, item.display_indented(depth + 1))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(arguments: &[&[u8]]) -> Vec<u8> {
    let mut bytes = format!("*{}\r\n", arguments.len()).into_bytes();
    for argument in arguments {
        bytes.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
        bytes.extend_from_slice(argument);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

/// The first byte of a TLS alert record: what a TLS server answers plain text with.
const TLS_ALERT: u8 = 0x15;

/// Reads one reply. Bounded: a bulk string over 64 MiB or an array of over a million
/// elements is an error, not an allocation.
pub fn read_value(reader: &mut impl BufRead) -> io::Result<Value> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut line = Vec::new();
    reader.by_ref().take(64 << 10).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
    }
    if line[0] == TLS_ALERT {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the server speaks TLS: connect with TLS (kv client --tls-ca CA_FILE, redis-cli --tls)",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad("a reply line without CRLF"));
    }
    let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let number = || text.parse::<i64>().map_err(|_| bad("a reply length that is not a number"));
    match line[0] {
        b'+' => Ok(Value::Simple(text)),
        b'-' => Ok(Value::Error(text)),
        b':' => Ok(Value::Integer(number()?)),
        b'$' => match number()? {
            -1 => Ok(Value::Bulk(None)),
            length @ 0..=0x400_0000 => {
                let mut bytes = vec![0; length as usize + 2];
                reader.read_exact(&mut bytes)?;
                bytes.truncate(length as usize);
                Ok(Value::Bulk(Some(bytes)))
            }
            _ => Err(bad("a bulk length out of range")),
        },
        b'*' => match number()? {
            -1 => Ok(Value::Array(None)),
            length @ 0..=1_000_000 => (0..length)
                .map(|_| read_value(reader))
                .collect::<io::Result<_>>()
                .map(|v| Value::Array(Some(v))),
            _ => Err(bad("an array length out of range")),
        },
        _ => Err(bad("not a RESP reply")),
    }
}

/// A blocking byte stream both ways: TCP, or TLS over it.
pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects to `address` (`host:port`) within a second, its reads and writes bounded by
/// `timeout`; over TLS when `tls` is given (checking the server's certificate for the
/// address's host).
pub fn connect(
    address: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> io::Result<Box<dyn ReadWrite>> {
    let target = address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{address} resolves to nothing")))?;
    let stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let Some(tls) = tls else { return Ok(Box::new(stream)) };
    let name = raft_runtime::tls::server_name(address)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let mut session = rustls::ClientConnection::new(tls.clone(), name).map_err(io::Error::other)?;
    let mut stream = stream;
    // Complete the handshake here, so a certificate the client refuses is reported as
    // such rather than as a failed first command.
    while session.is_handshaking() {
        if let Err(error) = session.complete_io(&mut stream) {
            // A certificate refused is no reason to retry: said at once, as a wrong
            // password is.
            let refused = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some();
            let kind = if refused { io::ErrorKind::PermissionDenied } else { error.kind() };
            return Err(io::Error::new(kind, format!("TLS: {error}")));
        }
    }
    Ok(Box::new(rustls::StreamOwned::new(session, stream)))
}

struct Connection {
    address: String,
    /// Reads are buffered; writes go to `stream.get_mut()`.
    stream: BufReader<Box<dyn ReadWrite>>,
}

/// How long to keep trying one command before giving up.
const DEFAULT_PATIENCE: Duration = Duration::from_secs(30);
/// How long to wait for one reply before trying another node.
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// A client of the cluster (see the module docs).
pub struct Client {
    nodes: Vec<String>,
    next_node: usize,
    connection: Option<Connection>,
    /// The exactly-once session's id, once opened.
    session: Option<u64>,
    sequence: u64,
    patience: Duration,
    waiting: Option<WaitingObserver>,
    /// The user and password each connection authenticates with (`AUTH`), if the
    /// cluster has a password.
    password: Option<(String, String)>,
    /// TLS for every connection, if the cluster has it.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Redirects, retries and failovers so far.
    pub retries: u64,
}

/// What became of a command the client gave up on.
#[derive(Debug)]
pub struct GaveUp {
    /// Why.
    pub why: String,
    /// Whether the whole command reached a node whose answer never came back (or came
    /// back as "outcome unknown"): a write may then be applied. False when every
    /// attempt was refused, redirected or never sent: the command was not performed.
    pub maybe_applied: bool,
}

/// What the client is waiting for while it retries: told to the observer set with
/// [`Client::on_waiting`] before each pause.
#[derive(Debug)]
pub struct Waiting<'a> {
    /// The last problem: a refused connection, a redirect, `TRYAGAIN ...`.
    pub problem: &'a str,
    /// How long it has been trying.
    pub elapsed: Duration,
    /// How long it will keep trying.
    pub patience: Duration,
}

/// Told what the client waits for (see [`Client::on_waiting`]).
type WaitingObserver = Box<dyn FnMut(&Waiting)>;

/// One attempt to send a command and read its answer.
enum Attempt {
    Answered(Value),
    /// It never fully left: no connection, or the write failed part way (a node runs
    /// only whole commands).
    NotSent(io::Error),
    /// It left, but no answer came back.
    Unanswered(io::Error),
}

impl Client {
    /// A client of the nodes at `nodes` (`host:port`). Its session opens with its first
    /// write.
    pub fn new(nodes: Vec<String>) -> Client {
        Client {
            nodes,
            next_node: 0,
            connection: None,
            session: None,
            sequence: 0,
            patience: DEFAULT_PATIENCE,
            waiting: None,
            password: None,
            tls: None,
            retries: 0,
        }
    }

    /// Connects over TLS with `config` (from `raft_runtime::tls::client_config`).
    pub fn set_tls(&mut self, config: Option<Arc<rustls::ClientConfig>>) {
        self.tls = config;
    }

    /// Authenticates every connection as `user` with `password` (`AUTH user
    /// password`) before its first command.
    pub fn set_password(&mut self, password: Option<String>, user: &str) {
        self.password = password.map(|password| (user.to_string(), password));
    }

    /// How long one command may keep retrying.
    pub fn set_patience(&mut self, patience: Duration) {
        self.patience = patience;
    }

    /// Calls `observer` with what the client waits for each time it pauses to retry.
    pub fn on_waiting(&mut self, observer: impl FnMut(&Waiting) + 'static) {
        self.waiting = Some(Box::new(observer));
    }

    /// The session's id, once the first write opened it.
    pub fn session(&self) -> Option<u64> {
        self.session
    }

    /// The node the client talks to now, if connected.
    pub fn connected_to(&self) -> Option<&str> {
        self.connection.as_ref().map(|connection| connection.address.as_str())
    }

    fn connect(&mut self, address: &str) -> io::Result<()> {
        let mut stream = BufReader::new(connect(address, self.tls.as_ref(), REPLY_TIMEOUT)?);
        if let Some((user, password)) = &self.password {
            stream.get_mut().write_all(&encode_command(&[b"AUTH", user.as_bytes(), password.as_bytes()]))?;
            if let Value::Error(text) = read_value(&mut stream)? {
                // A wrong password is no reason to retry: said at once.
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, text));
            }
        }
        self.connection = Some(Connection { address: address.to_string(), stream });
        Ok(())
    }

    fn send_once(&mut self, command: &[u8]) -> Attempt {
        if self.connection.is_none() {
            let address = self.nodes[self.next_node % self.nodes.len()].clone();
            self.next_node += 1;
            if let Err(error) = self.connect(&address) {
                if error.kind() == io::ErrorKind::PermissionDenied {
                    return Attempt::Answered(Value::Error(error.to_string()));
                }
                return Attempt::NotSent(io::Error::new(error.kind(), format!("{address}: {error}")));
            }
        }
        let connection = self.connection.as_mut().expect("connected");
        let address = connection.address.clone();
        if let Err(error) = connection.stream.get_mut().write_all(command) {
            return Attempt::NotSent(io::Error::new(error.kind(), format!("{address}: {error}")));
        }
        match read_value(&mut connection.stream) {
            Ok(value) => Attempt::Answered(value),
            // No node of a TLS cluster will answer plain text: said at once.
            Err(error) if error.kind() == io::ErrorKind::Unsupported => {
                self.connection = None;
                Attempt::Answered(Value::Error(format!("ERR {address}: {error}")))
            }
            Err(error) => Attempt::Unanswered(io::Error::new(error.kind(), format!("{address}: {error}"))),
        }
    }

    /// Pauses before the next attempt, telling the observer what it waits for.
    fn wait(&mut self, pause: Duration, problem: &str, started: Instant) {
        if let Some(observer) = &mut self.waiting {
            observer(&Waiting { problem, elapsed: started.elapsed(), patience: self.patience });
        }
        std::thread::sleep(pause);
    }

    /// Sends `arguments` until a node answers with something other than a redirect or
    /// `TRYAGAIN`, for up to the patience. The answer may be an error reply.
    pub fn command(&mut self, arguments: &[&[u8]]) -> Result<Value, GaveUp> {
        let command = encode_command(arguments);
        let started = Instant::now();
        let mut maybe_applied = false;
        let mut pause = Duration::from_millis(20);
        let mut last_problem = String::from("no node answered");
        let mut redirects_in_a_row = 0;
        while started.elapsed() < self.patience {
            match self.send_once(&command) {
                Attempt::Answered(Value::Error(text)) if text.starts_with("MOVED ") => {
                    let address = text.rsplit(' ').next().unwrap_or_default().to_string();
                    self.retries += 1;
                    redirects_in_a_row += 1;
                    if redirects_in_a_row > 2 {
                        // Nodes pointing at each other during an election: give it time.
                        last_problem =
                            format!("redirected to {address} again (an election may be under way)");
                        self.wait(pause, &last_problem, started);
                    }
                    self.connection = None;
                    if !self.nodes.contains(&address) {
                        self.nodes.push(address.clone());
                    }
                    match self.connect(&address) {
                        Ok(()) => last_problem = format!("redirected to {address}"),
                        Err(error) => {
                            last_problem = format!("redirected to {address}, which does not answer: {error}");
                            self.wait(pause, &last_problem, started);
                        }
                    }
                }
                Attempt::Answered(Value::Error(text)) if text.starts_with("TRYAGAIN") => {
                    self.retries += 1;
                    redirects_in_a_row = 0;
                    maybe_applied |= text.contains("outcome unknown");
                    last_problem = match self.connected_to() {
                        Some(address) => format!("{address}: {text}"),
                        None => text,
                    };
                    self.wait(pause, &last_problem, started);
                    pause = (pause * 2).min(Duration::from_millis(500));
                    // The node may be cut off from the others: ask another one next time.
                    self.connection = None;
                }
                Attempt::Answered(value) => return Ok(value),
                Attempt::NotSent(error) => {
                    self.retries += 1;
                    redirects_in_a_row = 0;
                    last_problem = error.to_string();
                    self.connection = None;
                    self.wait(pause, &last_problem, started);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Attempt::Unanswered(error) => {
                    // The whole command reached the node: it may have run.
                    maybe_applied = true;
                    self.retries += 1;
                    redirects_in_a_row = 0;
                    last_problem = format!("no answer from {error}");
                    self.connection = None;
                    self.wait(pause, &last_problem, started);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
            }
        }
        Err(GaveUp { why: format!("gave up after {:?}: {last_problem}", self.patience), maybe_applied })
    }

    /// Sends a write (`SET k v`, `DEL k`, `KV.CAS k old new`, ...) in the client's
    /// session: every retry carries the same sequence number, so it applies once.
    /// Opens the session first if there is none (a retried `KV.SESSION` at worst leaves
    /// an unused session behind, which expires). A `SESSIONEXPIRED` answer is returned
    /// as it is, and the next write opens a new session: resending this one in it could
    /// apply it twice if an earlier attempt applied before the expiry.
    pub fn write(&mut self, arguments: &[&[u8]]) -> Result<Value, GaveUp> {
        let session = match self.session {
            Some(session) => session,
            None => match self.command(&[b"KV.SESSION"])? {
                Value::Integer(session) if session > 0 => {
                    self.session = Some(session as u64);
                    self.sequence = 0;
                    session as u64
                }
                other => return Ok(other),
            },
        };
        self.sequence += 1;
        let (session_text, sequence) = (session.to_string(), self.sequence.to_string());
        let mut full: Vec<&[u8]> = vec![b"KV.EXEC", session_text.as_bytes(), sequence.as_bytes()];
        full.extend_from_slice(arguments);
        let answer = self.command(&full)?;
        if matches!(&answer, Value::Error(error) if error.starts_with("SESSIONEXPIRED")) {
            self.session = None;
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_back_and_print_as_redis_cli_does() {
        let bytes = b"*3\r\n+OK\r\n$-1\r\n*2\r\n:1\r\n$3\r\na\"b\r\n-ERR no\r\n";
        let mut reader = BufReader::new(&bytes[..]);
        let value = read_value(&mut reader).unwrap();
        assert_eq!(value.display(), "1) OK\n2) (nil)\n3) 1) (integer) 1\n   2) \"a\\\"b\"");
        assert_eq!(read_value(&mut reader).unwrap(), Value::Error("ERR no".into()));
        assert!(read_value(&mut reader).is_err());
        assert!(read_value(&mut BufReader::new(&b"$99999999999\r\n"[..])).is_err());
        assert_eq!(encode_command(&[b"GET", b"k"]), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    }
}

//! The state machine the server replicates: the key-value store, and the cluster's
//! address book (where each node listens), so a node added with `RAFT.ADD` is known
//! to every member through the log, and to a node restarted from a snapshot.
//!
//! An entry's command is one tag byte, then the body: [`TAG_KV`] and a `kv::Command`.
//! A new node's address travels as the context of the membership change that adds it
//! ([`address_context`], a list: `RAFT.MEMBERS` may add several nodes in one change),
//! so it is recorded when that change commits and never when the change is refused: an
//! address cannot be rewritten by a `RAFT.ADD` or `RAFT.MEMBERS` that fails.
//! [`TAG_ADDRESS`] entries (an address on its own, a bincode `(NodeId, String)`) are
//! what earlier versions wrote before the change; they are still applied, so those
//! logs replay as they did, but nothing writes them any more. Anything else answers an
//! error and changes nothing, on every replica alike.

use kv::session::SessionPolicy;
use kv::{Bytes, KvError, KvStore};
use raft_core::{Entry, EntryPayload, LogIndex, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// The tag of a key-value command.
pub const TAG_KV: u8 = 0;
/// The tag of an address-book entry.
pub const TAG_ADDRESS: u8 = 1;

const SNAPSHOT_FORMAT: u8 = 2;
const SNAPSHOT_FORMAT_1: u8 = 1;

fn codec() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 1 << 20 }>()
}

/// A key-value command as an entry's bytes.
pub fn kv_entry(command: &kv::Command) -> Vec<u8> {
    let mut bytes = vec![TAG_KV];
    bytes.extend_from_slice(&command.encode());
    bytes
}

/// "Each node listens at its address", the context of the membership change adding
/// them (empty for none).
pub fn address_context(addresses: &[(NodeId, String)]) -> Vec<u8> {
    if addresses.is_empty() {
        return Vec::new();
    }
    bincode::serde::encode_to_vec(addresses, codec()).expect("encodes")
}

/// The addresses a membership change's context names: none if it does not decode (on
/// every replica alike).
pub fn addresses_in_context(context: &[u8]) -> Vec<(NodeId, String)> {
    match bincode::serde::decode_from_slice::<Vec<(NodeId, String)>, _>(context, codec()) {
        Ok((addresses, read)) if read == context.len() => addresses,
        _ => Vec::new(),
    }
}

/// "Node `id` listens at `address`" as an entry of its own: the format of earlier
/// versions, still applied when a log holds it (tests write it to check that).
pub fn address_entry(id: NodeId, address: &str) -> Vec<u8> {
    let mut bytes = vec![TAG_ADDRESS];
    bytes.extend_from_slice(&bincode::serde::encode_to_vec((id, address), codec()).expect("encodes"));
    bytes
}

/// The replicated state: data, sessions and addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerMachine {
    store: KvStore,
    /// The session policy this node's clock entries carry while it leads (not
    /// replicated state: the entries are).
    session_policy: SessionPolicy,
    addresses: BTreeMap<NodeId, String>,
    /// Bumped whenever `addresses` changes, so the transport knows to look.
    addresses_version: u64,
}

/// A read of the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerQuery {
    /// A key-value read.
    Kv(kv::Query),
    /// Several keys at one instant (`MGET`, `EXISTS`).
    Many(Vec<Bytes>),
}

/// What a command or query answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerResponse {
    /// The store's answer.
    Kv(kv::Response),
    /// The values of [`ServerQuery::Many`]'s keys, in order.
    Values(Vec<Option<Bytes>>),
    /// An address was recorded.
    AddressRecorded,
}

/// Format 1 of the machine's snapshot: the store's bytes nested in one value.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    store: Vec<u8>,
    addresses: BTreeMap<NodeId, String>,
}

impl ServerMachine {
    /// An empty machine whose clock entries, while its node leads, carry `policy`.
    pub fn with_session_policy(policy: SessionPolicy) -> ServerMachine {
        ServerMachine { session_policy: policy, ..ServerMachine::default() }
    }

    /// The addresses the log has recorded (`RAFT.ADD`); the command line's come first.
    pub fn addresses(&self) -> &BTreeMap<NodeId, String> {
        &self.addresses
    }

    /// Changes whenever [`ServerMachine::addresses`] does.
    pub fn addresses_version(&self) -> u64 {
        self.addresses_version
    }

    /// The store.
    pub fn store(&self) -> &KvStore {
        &self.store
    }
}

impl raft_host::StateMachine for ServerMachine {
    type Query = ServerQuery;
    type Response = ServerResponse;

    fn apply_entry(&mut self, entry: &Entry) -> Option<ServerResponse> {
        match &entry.payload {
            EntryPayload::Command(command) => Some(self.apply(entry.index, command)),
            EntryPayload::MembershipChange { configuration, context } if !context.is_empty() => {
                // Recorded for each node named that the change's members include: the
                // server attaches addresses only to the change adding those nodes, and
                // the core appends only valid changes. A context that does not decode
                // is ignored on every replica alike.
                for (id, address) in addresses_in_context(context) {
                    if configuration.contains(id) && self.addresses.get(&id) != Some(&address) {
                        self.addresses.insert(id, address);
                        self.addresses_version += 1;
                    }
                }
                None
            }
            EntryPayload::Noop | EntryPayload::MembershipChange { .. } => None,
        }
    }

    fn apply(&mut self, index: LogIndex, command: &[u8]) -> ServerResponse {
        match command.split_first() {
            Some((&TAG_KV, body)) => ServerResponse::Kv(self.store.apply_bytes_at(index, body)),
            Some((&TAG_ADDRESS, body)) => {
                match bincode::serde::decode_from_slice::<(NodeId, String), _>(body, codec()) {
                    Ok(((id, address), read)) if read == body.len() => {
                        self.addresses.insert(id, address);
                        self.addresses_version += 1;
                        ServerResponse::AddressRecorded
                    }
                    _ => malformed("an address entry that does not decode"),
                }
            }
            Some((tag, _)) => malformed(&format!("unknown entry tag {tag}")),
            None => malformed("an empty command"),
        }
    }

    fn log_time_ms(&self) -> u64 {
        self.store.log_time_ms()
    }

    fn stamp(&self, command: &mut [u8], now_ms: u64) {
        if command.first() == Some(&TAG_KV) {
            kv::stamp(&mut command[1..], now_ms);
        }
    }

    /// Clock entries remove expired keys and expire client sessions by the log's time
    /// (`kv::session`).
    fn housekeeping(&self, now_ms: u64) -> Option<Vec<u8>> {
        let policy = (self.session_policy != SessionPolicy::default()).then_some(self.session_policy);
        self.store.clock_command(now_ms, policy).map(|command| kv_entry(&command))
    }

    fn query(&self, query: &ServerQuery) -> ServerResponse {
        match query {
            ServerQuery::Kv(query) => ServerResponse::Kv(self.store.query(query)),
            ServerQuery::Many(keys) => {
                ServerResponse::Values(keys.iter().map(|key| self.store.get(key).map(Bytes::from)).collect())
            }
        }
    }

    /// Format 2: the addresses, then the store's snapshot streamed after them (no copy
    /// of the store's bytes inside another buffer). Format 1 (the store's bytes nested
    /// in one value) still restores.
    fn snapshot(&self) -> Vec<u8> {
        let mut bytes = vec![SNAPSHOT_FORMAT];
        bincode::serde::encode_into_std_write(&self.addresses, &mut bytes, codec()).expect("encodes");
        self.store.snapshot_to(&mut bytes).expect("writing to a vector cannot fail");
        bytes
    }

    fn snapshot_to(&self, sink: &mut dyn raft_host::ByteSink) -> Result<(), String> {
        // Streamed item by item into the store's file: a store of any size is written
        // through a mebibyte of buffer.
        let mut out = std::io::BufWriter::with_capacity(1 << 20, SinkWriter(sink));
        let failed = |error: &dyn std::fmt::Display| format!("cannot write the snapshot: {error}");
        out.write_all(&[SNAPSHOT_FORMAT]).map_err(|error| failed(&error))?;
        bincode::serde::encode_into_std_write(&self.addresses, &mut out, codec())
            .map_err(|error| failed(&error))?;
        self.store.snapshot_to(&mut out).map_err(|error| failed(&error))?;
        out.flush().map_err(|error| failed(&error))
    }

    fn restore_from(&mut self, source: &mut dyn raft_host::ByteSource) -> Result<(), String> {
        let mut input = std::io::BufReader::with_capacity(1 << 20, SourceReader(source));
        let mut format = [0];
        input.read_exact(&mut format).map_err(|error| format!("not a kv-server snapshot: {error}"))?;
        if format[0] != SNAPSHOT_FORMAT {
            // An older format, which is read whole.
            let mut bytes = format.to_vec();
            input.read_to_end(&mut bytes).map_err(|error| error.to_string())?;
            return self.restore(&bytes);
        }
        let addresses: BTreeMap<NodeId, String> =
            bincode::serde::decode_from_std_read(&mut input, codec()).map_err(|error| error.to_string())?;
        self.store = KvStore::restore_from(&mut input).map_err(|error| error.to_string())?;
        self.addresses = addresses;
        self.addresses_version += 1;
        Ok(())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let (store, addresses) = match snapshot.split_first() {
            Some((&SNAPSHOT_FORMAT, mut body)) => {
                let addresses: BTreeMap<NodeId, String> =
                    bincode::serde::decode_from_std_read(&mut body, codec())
                        .map_err(|error| error.to_string())?;
                (KvStore::restore_from(&mut body).map_err(|error| error.to_string())?, addresses)
            }
            Some((&SNAPSHOT_FORMAT_1, body)) => {
                let (body, read): (SnapshotBody, usize) =
                    bincode::serde::decode_from_slice(body, bincode::config::standard())
                        .map_err(|error| error.to_string())?;
                if read != snapshot.len() - 1 {
                    return Err("trailing bytes after the snapshot".to_string());
                }
                (KvStore::restore(&body.store).map_err(|error| error.to_string())?, body.addresses)
            }
            _ => return Err("not a kv-server snapshot (unknown format byte)".to_string()),
        };
        self.store = store;
        self.addresses = addresses;
        self.addresses_version += 1;
        Ok(())
    }
}

fn malformed(why: &str) -> ServerResponse {
    ServerResponse::Kv(kv::Response::Error(KvError::Malformed(why.to_string())))
}

/// A snapshot sink as `std::io::Write`, for encoders that write to one.
struct SinkWriter<'a>(&'a mut dyn raft_host::ByteSink);

impl Write for SinkWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes).map_err(std::io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A snapshot source as `std::io::Read`, for decoders that read from one.
struct SourceReader<'a>(&'a mut dyn raft_host::ByteSource);

impl Read for SourceReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buffer).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv::{Command, Operation, Query, Response};
    use raft_host::StateMachine;

    #[test]
    fn commands_addresses_and_snapshots_replicate() {
        let mut machine = ServerMachine::default();
        let set = Command {
            client: 0,
            sequence: 0,
            operation: Operation::Set { key: "k".into(), value: "v".into() },
        };
        assert_eq!(machine.apply(1, &kv_entry(&set)), ServerResponse::Kv(Response::Done));
        assert_eq!(machine.apply(2, &address_entry(4, "127.0.0.1:9004")), ServerResponse::AddressRecorded);
        assert!(matches!(machine.apply(3, b"\x07junk"), ServerResponse::Kv(Response::Error(_))));
        assert!(matches!(machine.apply(3, b""), ServerResponse::Kv(Response::Error(_))));
        assert!(matches!(machine.apply(3, b"\x01\xff\xff"), ServerResponse::Kv(Response::Error(_))));
        let get = ServerQuery::Kv(Query::Get { key: "k".into() });
        assert_eq!(machine.query(&get), ServerResponse::Kv(Response::Value(Some("v".into()))));
        let many = ServerQuery::Many(vec!["k".into(), "absent".into()]);
        assert_eq!(machine.query(&many), ServerResponse::Values(vec![Some("v".into()), None]));
        let mut restored = ServerMachine::default();
        restored.restore(&machine.snapshot()).unwrap();
        assert_eq!((restored.store(), restored.addresses()), (machine.store(), machine.addresses()));
        assert!(restored.restore(b"\x02").is_err());
        assert!(restored.restore(b"\x09").is_err());
        let mut longer = machine.snapshot();
        longer.push(0);
        assert!(restored.restore(&longer).is_err(), "trailing bytes");
        // Format 1, the store's bytes nested in one value, still restores.
        let body = SnapshotBody { store: machine.store().snapshot(), addresses: machine.addresses().clone() };
        let mut format_1 = vec![SNAPSHOT_FORMAT_1];
        format_1
            .extend_from_slice(&bincode::serde::encode_to_vec(&body, bincode::config::standard()).unwrap());
        let mut old = ServerMachine::default();
        old.restore(&format_1).unwrap();
        assert_eq!((old.store(), old.addresses()), (machine.store(), machine.addresses()));
    }

    fn membership(index: LogIndex, voters: &[NodeId], context: Vec<u8>) -> Entry {
        Entry {
            term: 1,
            index,
            payload: EntryPayload::MembershipChange {
                configuration: raft_core::Configuration::voters(voters.iter().copied()).unwrap(),
                context: context.into(),
            },
        }
    }

    #[test]
    fn an_address_is_recorded_with_the_change_that_adds_its_node_and_only_then() {
        let mut machine = ServerMachine::default();
        // A change that adds node 4 with its address: recorded when it commits.
        machine.apply_entry(&membership(1, &[1, 2, 3, 4], address_context(&[(4, "127.0.0.1:9004".into())])));
        assert_eq!(machine.addresses().get(&4).map(String::as_str), Some("127.0.0.1:9004"));
        // A context naming a node the change does not make a voter, or that does not
        // decode, changes nothing.
        let version = machine.addresses_version();
        machine.apply_entry(&membership(2, &[1, 2, 3], address_context(&[(5, "127.0.0.9:1".into())])));
        machine.apply_entry(&membership(3, &[1, 2, 3], vec![0xff; 3]));
        machine.apply_entry(&membership(4, &[1, 2], Vec::new()));
        assert_eq!(machine.addresses_version(), version);
        assert_eq!(machine.addresses().get(&5), None);
        // Several nodes added in one change.
        let both = address_context(&[(5, "127.0.0.1:9005".into()), (6, "127.0.0.1:9006".into())]);
        machine.apply_entry(&membership(5, &[1, 2, 5, 6], both));
        assert_eq!(machine.addresses().get(&6).map(String::as_str), Some("127.0.0.1:9006"));
        assert_eq!(machine.addresses().get(&5).map(String::as_str), Some("127.0.0.1:9005"));
    }
}

//! How a node runs: [`NodeConfig`].

use crate::peer_auth::ClusterSecret;
use crate::tls::Tls;
use raft_core::NodeId;
use raft_host::Misbehaviour;
use raft_storage::StorageOptions;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Who accepts the connections peers dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerListener {
    /// The node listens at its own member address and accepts its peers itself.
    Own,
    /// The caller listens (say, on a port it shares with its own clients) and hands
    /// each peer connection over with [`crate::Handle::accept_peer`].
    Caller,
}

/// How a node runs. [`NodeConfig::new`] gives the defaults; the fields are public to
/// change.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id.
    pub id: NodeId,
    /// Every member (this node included) and where it listens for its peers. The
    /// members of a new cluster; a node with data recovers its members from its log.
    pub members: BTreeMap<NodeId, String>,
    /// Where the node keeps its log, hard state and snapshots.
    pub data_dir: PathBuf,
    /// Who accepts peer connections.
    pub peer_listener: PeerListener,
    /// One tick of the Raft clock: heartbeats every 10 ticks, elections after 100 to 200.
    pub tick: Duration,
    /// Snapshot and compact the log after this many applied entries.
    pub compaction_entries: u64,
    /// Storage settings.
    pub storage: StorageOptions,
    /// A rule of the driver broken on purpose, to see a crash test catch it. Never set
    /// outside tests of the testers.
    pub misbehaviour: Option<Misbehaviour>,
    /// Extra time every sync takes, as on a slow disk (tests only).
    pub slow_sync: Duration,
    /// This node joins a running cluster: until the leader's log says otherwise it is a
    /// learner of the other members, so it never campaigns while its log is empty (add
    /// it with a membership change that names it, e.g. `AddVoterWhenCaughtUp`).
    pub joining: bool,
    /// The largest command a client may propose (`raft_core::Config::max_command_bytes`).
    pub max_command_bytes: u64,
    /// The secret every member proves when a link opens ([`crate::peer_auth`]); the
    /// empty one by default, which only nodes without a secret share.
    pub cluster_secret: ClusterSecret,
    /// TLS on the peer links (and on the node's own peer listener), if set.
    pub tls: Option<Tls>,
}

impl NodeConfig {
    /// Node `id` of a cluster of `members`, its data in `data_dir`, listening for its
    /// peers at its own member address, ticking every 10 ms.
    pub fn new(id: NodeId, members: BTreeMap<NodeId, String>, data_dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            members,
            data_dir: data_dir.into(),
            peer_listener: PeerListener::Own,
            tick: Duration::from_millis(10),
            compaction_entries: 10_000,
            storage: StorageOptions::default(),
            misbehaviour: None,
            slow_sync: Duration::ZERO,
            joining: false,
            max_command_bytes: raft_core::Config::new(1, vec![1]).max_command_bytes,
            cluster_secret: ClusterSecret::none(),
            tls: None,
        }
    }
}

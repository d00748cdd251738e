//! Who is in the cluster and where they listen: `--node host:port:id` arguments, or a
//! JSON file listing the same.
//!
//! ```json
//! { "nodes": [ { "id": 1, "address": "127.0.0.1:8001" },
//!              { "id": 2, "address": "127.0.0.1:8002" },
//!              { "id": 3, "address": "127.0.0.1:8003" } ] }
//! ```
//!
//! Each node listens on one port for both its peers and its clients: a peer opens its
//! connection with a binary handshake, a client speaks RESP.

use raft_core::NodeId;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A member and its address (`host:port`, for peers and clients alike).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    /// Its id (1, 2, 3, ...).
    pub id: NodeId,
    /// Where it listens.
    pub address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    nodes: Vec<NodeAddress>,
}

pub use kv::resp::check_address;

/// Parses `host:port:id` (IPv6 hosts in brackets: `[::1]:8001:1`).
pub fn parse_node(text: &str) -> Result<NodeAddress, String> {
    let Some((address, id)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} is not host:port:id"));
    };
    let id: NodeId = id.parse().map_err(|_| format!("{text:?} does not end in a node id (host:port:id)"))?;
    if id == 0 {
        return Err(format!("{text:?}: node ids start at 1"));
    }
    check_address(address).map_err(|why| format!("{text:?}: {why} (expected host:port:id)"))?;
    Ok(NodeAddress { id, address: address.to_string() })
}

/// Parses a node for a client, `host:port` or `host:port:id`, into `host:port`.
pub fn parse_client_node(text: &str) -> Result<String, String> {
    if let Ok(node) = parse_node(text) {
        return Ok(node.address);
    }
    check_address(text).map_err(|why| format!("{why} (expected host:port or host:port:id)"))?;
    Ok(text.to_string())
}

/// Reads a cluster file (see the module docs).
pub fn read_cluster_file(path: &Path) -> Result<Vec<NodeAddress>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let file: ClusterFile =
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    for node in &file.nodes {
        check_address(&node.address).map_err(|why| format!("{}: node {}: {why}", path.display(), node.id))?;
    }
    Ok(file.nodes)
}

/// The members by id, checked: at least one, ids unique and above 0, addresses unique.
pub fn members(nodes: &[NodeAddress]) -> Result<BTreeMap<NodeId, String>, String> {
    if nodes.is_empty() {
        return Err(
            "no nodes given (--node host:port:id for every member, this one included, or --config FILE)"
                .into(),
        );
    }
    let mut members = BTreeMap::new();
    for node in nodes {
        if node.id == 0 {
            return Err("node ids start at 1".into());
        }
        if members.values().any(|address| address == &node.address) {
            return Err(format!("two nodes listen at {}", node.address));
        }
        if members.insert(node.id, node.address.clone()).is_some() {
            return Err(format!("node {} is listed twice", node.id));
        }
    }
    Ok(members)
}

/// The password a file holds: its first line, without the line ending. An empty one,
/// or a file that cannot be read, is an error naming the file.
pub fn read_password_file(path: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let password = text.lines().next().unwrap_or_default().to_string();
    if password.is_empty() {
        return Err(format!("{} holds no password (its first line is empty)", path.display()));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_parse_as_host_port_id() {
        assert_eq!(
            parse_node("127.0.0.1:8001:1"),
            Ok(NodeAddress { id: 1, address: "127.0.0.1:8001".into() })
        );
        assert_eq!(parse_node("[::1]:8001:2").unwrap().address, "[::1]:8001");
        assert!(parse_node("127.0.0.1:8001").unwrap_err().contains("host:port:id"));
        assert!(parse_node("127.0.0.1:8001:x").unwrap_err().contains("node id"));
        assert!(parse_node("127.0.0.1:0:1").unwrap_err().contains("port number"));
        assert!(parse_node("localhost:8001:0").unwrap_err().contains("start at 1"));
    }

    #[test]
    fn client_nodes_parse_with_or_without_an_id() {
        assert_eq!(parse_client_node("127.0.0.1:8001:1"), Ok("127.0.0.1:8001".into()));
        assert_eq!(parse_client_node("127.0.0.1:8001"), Ok("127.0.0.1:8001".into()));
        assert_eq!(parse_client_node("[::1]:8001"), Ok("[::1]:8001".into()));
        assert_eq!(parse_client_node("localhost:8001:2"), Ok("localhost:8001".into()));
        assert!(parse_client_node("127.0.0.1").unwrap_err().contains("host:port"));
        assert!(parse_client_node("127.0.0.1:port").unwrap_err().contains("port number"));
        assert!(parse_client_node(":8001").unwrap_err().contains("no host"));
    }

    #[test]
    fn members_must_be_distinct() {
        let node = |id, address: &str| NodeAddress { id, address: address.into() };
        assert!(members(&[]).is_err());
        assert!(members(&[node(1, "a:1"), node(1, "a:2")]).unwrap_err().contains("twice"));
        assert!(members(&[node(1, "a:1"), node(2, "a:1")]).unwrap_err().contains("two nodes listen"));
        assert_eq!(members(&[node(2, "a:2"), node(1, "a:1")]).unwrap().len(), 2);
    }
}

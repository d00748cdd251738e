//! The peers' handshake: each side proves it knows the cluster secret without the
//! secret, or anything replayable, crossing the wire. Pure functions over bytes; the
//! links ([`crate::transport`]) and the accepting side ([`crate::Handle::accept_peer`])
//! move them.
//!
//! ```text
//! dialer   -> accepter  hello:     PEER_MAGIC, from (u64 LE), to (u64 LE), dialer nonce (16)
//! accepter -> dialer    challenge: accepter nonce (16), HMAC(secret, "accept" | hello | accepter nonce)
//! dialer   -> accepter  proof:     HMAC(secret, "dial" | hello | accepter nonce)
//! ```
//!
//! - Both nonces are fresh random bytes, so a recorded proof does not open a later
//!   connection, and each side's MAC covers the other's nonce.
//! - The two MACs carry different labels, so an accepter's MAC cannot be reflected back
//!   to it as a dialer's proof. Both cover the ids, so a proof for one pair of nodes
//!   does not serve another.
//! - The accepter shows its MAC first: a dialer never proves anything to a node that
//!   does not know the secret. An accepter does answer any hello, so a weak secret could
//!   be guessed offline from one challenge; use a long random one.
//! - A cluster with no secret uses the empty one: the handshake has one shape, and a
//!   node with a secret and one without refuse each other.

use raft_core::NodeId;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// The first bytes of a peer connection. The leading zero byte cannot start a RESP
/// request, so one port serves peers and clients. The last byte is the handshake's
/// version: 1 was an unauthenticated hello.
pub const PEER_MAGIC: [u8; 8] = *b"\0KVRAFT2";
/// Bytes of a nonce.
pub const NONCE_BYTES: usize = 16;
/// Bytes of an HMAC-SHA256.
pub const MAC_BYTES: usize = 32;
/// Bytes of the dialer's hello.
pub const HELLO_BYTES: usize = 8 + 8 + 8 + NONCE_BYTES;
/// Bytes of the accepter's challenge.
pub const CHALLENGE_BYTES: usize = NONCE_BYTES + MAC_BYTES;
/// Bytes of the dialer's proof.
pub const PROOF_BYTES: usize = MAC_BYTES;

/// The secret every member of a cluster shares (`--cluster-secret-file`). Its `Debug`
/// never shows it.
#[derive(Clone)]
pub struct ClusterSecret(hmac::Key);

impl ClusterSecret {
    /// The secret `bytes` (empty: no secret).
    pub fn new(bytes: &[u8]) -> ClusterSecret {
        ClusterSecret(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// The empty secret, what a cluster with none configured uses.
    pub fn none() -> ClusterSecret {
        ClusterSecret::new(b"")
    }

    fn mac(&self, label: &[u8], hello: &Hello, nonce: &[u8; NONCE_BYTES]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(label);
        context.update(&hello.encode());
        context.update(nonce);
        context.sign()
    }

    fn verify(&self, label: &[u8], hello: &Hello, nonce: &[u8; NONCE_BYTES], mac: &[u8]) -> bool {
        let mut message = Vec::with_capacity(label.len() + HELLO_BYTES + NONCE_BYTES);
        message.extend_from_slice(label);
        message.extend_from_slice(&hello.encode());
        message.extend_from_slice(nonce);
        // ring compares in constant time.
        hmac::verify(&self.0, &message, mac).is_ok()
    }
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ClusterSecret(..)")
    }
}

const ACCEPT_LABEL: &[u8] = b"kvraft accept v2";
const DIAL_LABEL: &[u8] = b"kvraft dial v2";

/// Fresh random bytes from the operating system.
pub fn nonce() -> [u8; NONCE_BYTES] {
    let mut nonce = [0; NONCE_BYTES];
    SystemRandom::new().fill(&mut nonce).expect("the operating system's random numbers");
    nonce
}

/// The dialer's opening: who it is, whom it wants, and its nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The dialer.
    pub from: NodeId,
    /// The node it wants to reach.
    pub to: NodeId,
    /// The dialer's fresh nonce.
    pub nonce: [u8; NONCE_BYTES],
}

impl Hello {
    /// The bytes on the wire.
    pub fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut bytes = [0; HELLO_BYTES];
        bytes[..8].copy_from_slice(&PEER_MAGIC);
        bytes[8..16].copy_from_slice(&self.from.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.to.to_le_bytes());
        bytes[24..].copy_from_slice(&self.nonce);
        bytes
    }

    /// The hello in `bytes`, if they start with [`PEER_MAGIC`].
    pub fn decode(bytes: &[u8; HELLO_BYTES]) -> Option<Hello> {
        (bytes[..8] == PEER_MAGIC).then(|| Hello {
            from: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
            to: u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")),
            nonce: bytes[24..].try_into().expect("16 bytes"),
        })
    }
}

/// The accepter's challenge to `hello`: its nonce and its own proof of the secret.
pub fn challenge(secret: &ClusterSecret, hello: &Hello, nonce: [u8; NONCE_BYTES]) -> [u8; CHALLENGE_BYTES] {
    let mut bytes = [0; CHALLENGE_BYTES];
    bytes[..NONCE_BYTES].copy_from_slice(&nonce);
    bytes[NONCE_BYTES..].copy_from_slice(secret.mac(ACCEPT_LABEL, hello, &nonce).as_ref());
    bytes
}

/// The dialer's answer to `challenge`: its proof, or `None` if the accepter did not
/// prove the secret (the dialer then closes the connection).
pub fn answer(
    secret: &ClusterSecret,
    hello: &Hello,
    challenge: &[u8; CHALLENGE_BYTES],
) -> Option<[u8; PROOF_BYTES]> {
    let nonce: [u8; NONCE_BYTES] = challenge[..NONCE_BYTES].try_into().expect("16 bytes");
    if !secret.verify(ACCEPT_LABEL, hello, &nonce, &challenge[NONCE_BYTES..]) {
        return None;
    }
    Some(secret.mac(DIAL_LABEL, hello, &nonce).as_ref().try_into().expect("32 bytes"))
}

/// Whether `proof` answers the challenge the accepter made with `nonce` to `hello`.
pub fn check_proof(
    secret: &ClusterSecret,
    hello: &Hello,
    nonce: &[u8; NONCE_BYTES],
    proof: &[u8; PROOF_BYTES],
) -> bool {
    secret.verify(DIAL_LABEL, hello, nonce, proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello { from: 1, to: 2, nonce: [7; NONCE_BYTES] }
    }

    #[test]
    fn the_same_secret_passes_both_ways() {
        let secret = ClusterSecret::new(b"s3cret");
        let accepter_nonce = [9; NONCE_BYTES];
        let challenge = challenge(&secret, &hello(), accepter_nonce);
        let proof = answer(&secret, &hello(), &challenge).expect("the accepter knows the secret");
        assert!(check_proof(&secret, &hello(), &accepter_nonce, &proof));
        assert_eq!(Hello::decode(&hello().encode()), Some(hello()));
    }

    #[test]
    fn a_different_secret_fails_on_either_side() {
        let ours = ClusterSecret::new(b"s3cret");
        let theirs = ClusterSecret::new(b"guess");
        let accepter_nonce = [9; NONCE_BYTES];
        // A dialer with the wrong secret refuses the accepter's challenge ...
        assert_eq!(answer(&theirs, &hello(), &challenge(&ours, &hello(), accepter_nonce)), None);
        // ... and an accepter refuses a proof made with the wrong secret.
        let forged = theirs.mac(DIAL_LABEL, &hello(), &accepter_nonce);
        let forged: [u8; PROOF_BYTES] = forged.as_ref().try_into().unwrap();
        assert!(!check_proof(&ours, &hello(), &accepter_nonce, &forged));
        // No secret is a secret of its own.
        assert_eq!(
            answer(&ClusterSecret::none(), &hello(), &challenge(&ours, &hello(), accepter_nonce)),
            None
        );
    }

    #[test]
    fn a_proof_serves_only_its_own_challenge_and_direction() {
        let secret = ClusterSecret::new(b"s3cret");
        let accepter_nonce = [9; NONCE_BYTES];
        let challenge_bytes = challenge(&secret, &hello(), accepter_nonce);
        let proof = answer(&secret, &hello(), &challenge_bytes).unwrap();
        // Replayed against a fresh challenge.
        assert!(!check_proof(&secret, &hello(), &[10; NONCE_BYTES], &proof));
        // For another pair of nodes.
        let other = Hello { from: 3, ..hello() };
        assert!(!check_proof(&secret, &other, &accepter_nonce, &proof));
        // The accepter's own MAC reflected back as a proof.
        let reflected: [u8; PROOF_BYTES] = challenge_bytes[NONCE_BYTES..].try_into().unwrap();
        assert!(!check_proof(&secret, &hello(), &accepter_nonce, &reflected));
    }

    #[test]
    fn nonces_differ_and_the_secret_stays_out_of_debug() {
        assert_ne!(nonce(), nonce());
        assert_eq!(format!("{:?}", ClusterSecret::new(b"s3cret")), "ClusterSecret(..)");
        assert_eq!(Hello::decode(&[0; HELLO_BYTES]), None);
    }
}

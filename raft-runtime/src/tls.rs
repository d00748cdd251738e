//! TLS for the peer links, and for a caller's listener that shares the node's port
//! ([`crate::PeerListener::Caller`]): rustls on ring, loaded from PEM files.
//!
//! - A node presents its certificate chain (`cert`) and key to whoever connects, peers
//!   and clients alike, and checks the certificate of every peer it dials against the
//!   certificate authorities in `ca`, for the host of the peer's address (a name or an
//!   IP address the certificate must list).
//! - TLS gives the links privacy and tells a dialer it reached a real member; that a
//!   dialer is a member is what the cluster secret's handshake ([`crate::peer_auth`])
//!   proves, so a node asks no certificate of those who connect.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A byte stream both ways: plain TCP, or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A connection of either kind.
pub type BoxedStream = Box<dyn Stream>;

/// A node's TLS settings: what it presents and whom it trusts. Clones share them.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Tls(..)")
    }
}

impl Tls {
    /// Loads the certificate chain `cert` and private key `key` this node presents, and
    /// the certificate authorities `ca` it trusts for its peers (PEM files). The error
    /// names the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Tls, String> {
        let chain = certificates(cert)?;
        let private_key = PrivateKeyDer::from_pem_file(key)
            .map_err(|error| format!("--tls-key {}: no private key read ({error})", key.display()))?;
        // ring, not aws-lc-rs: no cmake and no long C build on small machines. Its
        // provider is deprecated only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|error| {
                format!("--tls-cert {} with --tls-key {}: {error}", cert.display(), key.display())
            })?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(client_config(ca)?),
        })
    }

    /// Opens TLS as the server on a connection someone dialed.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<BoxedStream> {
        Ok(Box::new(self.acceptor.accept(stream).await?))
    }

    /// Opens TLS as the client on a connection to `address` (`host:port`), checking
    /// the peer's certificate for `host`.
    pub async fn connect(&self, address: &str, stream: TcpStream) -> std::io::Result<BoxedStream> {
        let name = server_name(address)
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
        Ok(Box::new(self.connector.connect(name, stream).await?))
    }
}

/// What a client that trusts the certificate authorities in the PEM file `ca` connects
/// with (a peer link here; `kv client --tls-ca` in kv-server).
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for authority in certificates(ca)? {
        roots
            .add(authority)
            .map_err(|error| format!("{}: not a usable certificate ({error})", ca.display()))?;
    }
    #[allow(deprecated)] // See Tls::load.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file at `path`; an error if there is none.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let found: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|error| format!("{}: cannot read certificates ({error})", path.display()))?
        .collect();
    let found = found.map_err(|error| format!("{}: not a PEM certificate file ({error})", path.display()))?;
    if found.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected PEM, -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(found)
}

/// The name a certificate must carry for `address`: its host, an IP address or a DNS
/// name (`[::1]:7001` gives `::1`).
pub fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => return Err(format!("{address}: not host:port")),
    };
    let host = host.strip_prefix('[').and_then(|host| host.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(host.to_string()).map_err(|error| format!("{address}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host() {
        assert_eq!(
            format!("{:?}", server_name("127.0.0.1:7001").unwrap()),
            "IpAddress(V4(Ipv4Addr([127, 0, 0, 1])))"
        );
        assert!(matches!(server_name("[::1]:7001").unwrap(), ServerName::IpAddress(_)));
        assert!(matches!(server_name("node-1.example:7001").unwrap(), ServerName::DnsName(_)));
        assert!(server_name("no-port").is_err());
    }

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let missing = Path::new("/nonexistent/cert.pem");
        let error = Tls::load(missing, missing, missing).unwrap_err();
        assert!(error.contains("/nonexistent/cert.pem"), "{error}");
        let dir = std::env::temp_dir().join(format!("raft-runtime-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = Tls::load(&empty, &empty, &empty).unwrap_err();
        assert!(error.contains("no certificate"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

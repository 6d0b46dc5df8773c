//! TLS for fieldlink: PEM files to rustls configurations, and a development CA.
//!
//! - [`server_config`]: the HTTPS/WSS listener's rustls config from a certificate chain and a
//!   private key (PEM files).
//! - [`client_config`]: how fieldlink (or a test's handset) verifies a server: a CA file, or the
//!   system's trusted roots, and optionally a client certificate.
//! - [`dev`]: a local CA and certificates for trying TLS (`fieldlink certs dev`) and for tests
//!   (expired and wrong-host certificates included).
//!
//! The crypto provider is aws-lc-rs, the one rumqttc already brings, passed explicitly so the
//! configs never depend on a process-wide default.

pub mod dev;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

pub use rustls;

/// What can go wrong when TLS material is read or used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read the {what} {}: {source}", .path.display())]
    Read {
        /// "certificate file", "private key file", "CA file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file holds nothing usable.
    #[error("the {what} {} holds no {expected} in PEM form (a block starting with -----BEGIN {expected}-----): {detail}", .path.display())]
    NotPem {
        /// "certificate file", ...
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// "CERTIFICATE" or "PRIVATE KEY".
        expected: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// rustls refused the combination (key does not match, unsupported key type, ...).
    #[error("cannot use {}: {reason}", .path.display())]
    Refused {
        /// The certificate or CA file concerned.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The system's trusted roots could not be loaded.
    #[error("cannot load the system's trusted certificates: {0}; give a CA file instead")]
    SystemRoots(String),
    /// Certificate generation failed.
    #[error("cannot make the development certificates: {0}")]
    Generate(String),
    /// A generated file cannot be written.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file, in order (a chain: the leaf first).
pub fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let not_pem = |detail: String| TlsError::NotPem {
        what,
        path: path.to_owned(),
        expected: "CERTIFICATE",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(not_pem("the file has none".to_owned()));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, "private key file")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::NotPem {
        what: "private key file",
        path: path.to_owned(),
        expected: "PRIVATE KEY",
        detail: e.to_string(),
    })
}

fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, "CA file")? {
        roots.add(cert).map_err(|e| TlsError::Refused {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A TLS server config from a certificate chain and its key, offering `alpn` protocols (for
/// HTTPS: `http/1.1`). No client certificates are asked for.
pub fn server_config(
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(cert, "certificate file")?;
    let key = load_key(key)?;
    let refused = |e: rustls::Error| TlsError::Refused {
        path: cert.to_owned(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(refused)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(refused)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// How a client verifies the server it connects to and proves who it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// CA certificates (PEM) the server's chain must lead to; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain and its key (PEM), when the server asks for one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A TLS client config from [`ClientTls`]. The server's name is checked against the
/// certificate when connecting (the connector is given it), and so are its dates.
pub fn client_config(tls: &ClientTls) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match &tls.ca_file {
        Some(path) => roots_from(path)?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = (found.errors.first())
                    .map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(TlsError::SystemRoots(why));
            }
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            roots
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Refused {
            path: tls.ca_file.clone().unwrap_or_default(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    let config = match &tls.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = load_certs(cert, "client certificate file")?;
            builder
                .with_client_auth_cert(chain, load_key(key)?)
                .map_err(|e| TlsError::Refused {
                    path: cert.clone(),
                    reason: e.to_string(),
                })?
        }
    };
    Ok(Arc::new(config))
}

//! A development CA and the certificates signed by it, for trying TLS on one machine
//! (`fieldlink certs dev`) and for tests. Not for production: the CA key sits beside the
//! certificates it signed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::OffsetDateTime;

use crate::TlsError;

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: String,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// Not valid before.
    pub not_before: OffsetDateTime,
    /// Not valid after.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago for `days` days (the hour absorbs clock skew between machines).
    pub fn days_from_now(days: u32) -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    /// Expired a day ago (for tests that check expired certificates are refused).
    pub fn expired() -> Validity {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Duration::from_secs(30 * 86_400),
            not_after: now - Duration::from_secs(86_400),
        }
    }
}

/// A certificate authority that lives in memory.
pub struct DevCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

fn generate_error(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

impl DevCa {
    /// A new CA named `name`, valid for ten years.
    pub fn new(name: &str) -> Result<DevCa, TlsError> {
        let key = KeyPair::generate().map_err(generate_error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate_error)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let validity = Validity::days_from_now(3650);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let cert = params.self_signed(&key).map_err(generate_error)?;
        Ok(DevCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM: what clients trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for `hosts` (DNS names or IP addresses).
    pub fn issue_server(&self, hosts: &[String], validity: Validity) -> Result<Issued, TlsError> {
        let first = hosts.first().map_or("fieldlink", String::as_str);
        self.issue(hosts, first, ExtendedKeyUsagePurpose::ServerAuth, validity)
    }

    /// A client certificate whose common name is `name` (a unit id, or `fieldlink`).
    pub fn issue_client(&self, name: &str, validity: Validity) -> Result<Issued, TlsError> {
        self.issue(&[], name, ExtendedKeyUsagePurpose::ClientAuth, validity)
    }

    fn issue(
        &self,
        hosts: &[String],
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Result<Issued, TlsError> {
        let key = KeyPair::generate().map_err(generate_error)?;
        let mut params = CertificateParams::new(hosts.to_vec()).map_err(generate_error)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate_error)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The files `generate` wrote.
#[derive(Debug, Clone)]
pub struct DevFiles {
    /// The CA certificate: give it to handsets, browsers and `mqtt.ca_file`.
    pub ca: PathBuf,
    /// The server certificate (`tls.cert`).
    pub server_cert: PathBuf,
    /// The server key (`tls.key`), readable only by its owner.
    pub server_key: PathBuf,
    /// A client certificate (common name `fieldlink`), for brokers that ask for one.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

/// Makes a CA, a server certificate for `hosts` and a client certificate, valid for `days`,
/// and writes them as PEM files into `dir` (created if missing). Keys are written readable
/// only by their owner. Existing files are replaced.
pub fn generate(dir: &Path, hosts: &[String], days: u32) -> Result<DevFiles, TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let ca = DevCa::new("fieldlink development CA")?;
    let validity = Validity::days_from_now(days);
    let server = ca.issue_server(hosts, validity)?;
    let client = ca.issue_client("fieldlink", validity)?;
    let files = DevFiles {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    };
    write(&files.ca, ca.cert_pem(), false)?;
    write(&files.server_cert, &server.cert_pem, false)?;
    write(&files.server_key, &server.key_pem, true)?;
    write(&files.client_cert, &client.cert_pem, false)?;
    write(&files.client_key, &client.key_pem, true)?;
    Ok(files)
}

/// Writes `text` to `path`; a secret is created readable only by its owner.
pub fn write(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    let failed = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(failed)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(failed)
}

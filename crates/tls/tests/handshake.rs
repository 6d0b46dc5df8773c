//! Real TLS handshakes over loopback: a server from `server_config` and a client from
//! `client_config`, with the development CA's certificates. A client must refuse a server whose
//! certificate comes from another CA, has expired, or names another host.

use std::path::Path;
use std::sync::Arc;

use fieldlink_tls::dev::{self, DevCa, Validity};
use fieldlink_tls::{ClientTls, client_config, server_config};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Serves one TLS connection with the certificate in `dir`, echoing one line back.
async fn serve_once(dir: &Path) -> std::net::SocketAddr {
    let config = server_config(&dir.join("server.pem"), &dir.join("server.key"), &[])
        .expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        if let Ok(mut tls) = TlsAcceptor::from(config).accept(tcp).await {
            let mut buf = [0u8; 5];
            if tls.read_exact(&mut buf).await.is_ok() {
                let _ = tls.write_all(&buf).await;
                let _ = tls.shutdown().await;
            }
        }
    });
    addr
}

/// Connects to `addr` as `host`, trusting `ca`; Ok(echo) or the handshake error in words.
async fn hello(addr: std::net::SocketAddr, host: &str, ca: &Path) -> Result<String, String> {
    let config = client_config(&ClientTls {
        ca_file: Some(ca.to_owned()),
        identity: None,
    })
    .expect("client config");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(host.to_owned()).expect("name");
    let mut tls = TlsConnector::from(Arc::clone(&config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn hosts() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

#[tokio::test]
async fn a_client_trusting_the_dev_ca_talks_to_the_server_by_name_and_by_address() {
    let dir = tempfile::tempdir().expect("dir");
    let files = dev::generate(dir.path(), &hosts(), 30).expect("certs");
    for host in ["localhost", "127.0.0.1"] {
        let addr = serve_once(dir.path()).await;
        assert_eq!(hello(addr, host, &files.ca).await, Ok("hello".to_owned()));
    }
}

#[cfg(unix)]
#[test]
fn keys_are_readable_only_by_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let files = dev::generate(dir.path(), &hosts(), 30).expect("certs");
    for key in [&files.server_key, &files.client_key] {
        let mode = std::fs::metadata(key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }
}

#[tokio::test]
async fn a_server_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    dev::generate(dir.path(), &hosts(), 30).expect("certs");
    let other = tempfile::tempdir().expect("dir");
    let other_files = dev::generate(other.path(), &hosts(), 30).expect("other certs");
    let addr = serve_once(dir.path()).await;
    let err = hello(addr, "localhost", &other_files.ca).await.unwrap_err();
    // Both dev CAs have the same name, so rustls finds the issuer and its signature fails.
    assert!(
        err.contains("invalid peer certificate")
            && (err.contains("BadSignature") || err.contains("UnknownIssuer")),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_server_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = DevCa::new("test CA").expect("ca");
    let expired = ca
        .issue_server(&hosts(), Validity::expired())
        .expect("cert");
    dev::write(&dir.path().join("ca.pem"), ca.cert_pem(), false).expect("write");
    dev::write(&dir.path().join("server.pem"), &expired.cert_pem, false).expect("write");
    dev::write(&dir.path().join("server.key"), &expired.key_pem, true).expect("write");
    let addr = serve_once(dir.path()).await;
    let err = hello(addr, "localhost", &dir.path().join("ca.pem"))
        .await
        .unwrap_err();
    assert!(err.contains("certificate expired"), "{err}");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let files = dev::generate(dir.path(), &["broker.example.org".to_owned()], 30).expect("certs");
    let addr = serve_once(dir.path()).await;
    let err = hello(addr, "localhost", &files.ca).await.unwrap_err();
    assert!(err.contains("not valid for name \"localhost\""), "{err}");
}

#[test]
fn missing_and_non_pem_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("nope.pem");
    let err = server_config(&missing, &missing, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read the certificate file") && err.contains("nope.pem"),
        "{err}"
    );
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let err = server_config(&junk, &junk, &[]).unwrap_err().to_string();
    assert!(err.contains("holds no CERTIFICATE"), "{err}");
}

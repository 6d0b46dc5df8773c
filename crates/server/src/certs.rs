//! `fieldlink certs dev`: a local CA and certificates for trying TLS on one machine.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::Config;

/// Writes a development CA, a server certificate for `hosts` and a client certificate into
/// `dir` (default `{data_dir}/certs`), valid for `days`, and prints how to use them. The CA's
/// key is not kept: run it again to make a new set.
pub fn dev(
    config: &Config,
    dir: Option<PathBuf>,
    hosts: Vec<String>,
    days: u32,
) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| config.data_dir.join("certs"));
    let hosts = if hosts.is_empty() {
        vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ]
    } else {
        hosts
    };
    let files = fieldlink_tls::dev::generate(&dir, &hosts, days)
        .with_context(|| format!("cannot make development certificates in {}", dir.display()))?;
    let show = |p: &PathBuf| p.display().to_string();
    println!(
        "Made a development CA and certificates in {} (valid {days} days, for {}):",
        dir.display(),
        hosts.join(", ")
    );
    println!(
        "  {:<28} the CA: trust it on handsets and browsers (mosquitto_pub --cafile)",
        show(&files.ca)
    );
    println!(
        "  {:<28} fieldlink's certificate, and its key:",
        show(&files.server_cert)
    );
    println!("  {:<28} (readable only by you)", show(&files.server_key));
    println!(
        "  {:<28} a client certificate (CN fieldlink) for brokers that ask for one",
        show(&files.client_cert)
    );
    println!();
    println!("Serve HTTPS/WSS on the HTTP port and MQTT over TLS on 8883 with them:");
    println!(
        "  FIELDLINK_HTTP__TLS=true FIELDLINK_TLS__CERT={} FIELDLINK_TLS__KEY={} FIELDLINK_MQTT__TLS_LISTEN=0.0.0.0:8883 cargo run --bin fieldlink",
        show(&files.server_cert),
        show(&files.server_key)
    );
    println!("(or set http.tls, tls.cert, tls.key and mqtt.tls_listen in config/fieldlink.toml).");
    println!(
        "For development only: the CA's private key was not kept, so nothing else can be signed with it."
    );
    Ok(())
}

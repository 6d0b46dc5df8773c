//! `fieldlink units ...` and `fieldlink tokens ...`: provisioning from the shell.
//!
//! These open the same store as the server (SQLite in WAL mode lets them run beside a live
//! server) and go through [`crate::provision`], as the admin API does. A running server picks the
//! change up on its next credential refresh (a few seconds).

use anyhow::{Context, Result, bail};
use fieldlink_clock::{Clock, SystemClock};
use fieldlink_proto::UnitId;
use fieldlink_store::{Role, Store, UnitType};

use crate::app::open_store;
use crate::cli::{TokensCommand, UnitsCommand};
use crate::config::Config;
use crate::provision::{self, UnitSpec};

/// Runs a `units` subcommand.
pub async fn units(config: &Config, command: UnitsCommand) -> Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    match command {
        UnitsCommand::Add {
            id,
            name,
            unit_type,
            skills,
        } => {
            let id = UnitId::new(id)?;
            let unit_type: UnitType = unit_type.parse()?;
            let issued = provision::add_unit(
                &store,
                UnitSpec {
                    id,
                    name,
                    unit_type,
                    skills,
                },
                now,
            )
            .await?;
            println!(
                "Unit {} registered ({}).",
                issued.record.id, issued.record.unit_type
            );
            println!(
                "Its handset connects with client id and username {0:?} and this password (shown only now):",
                issued.record.id
            );
            println!("  {}", issued.secret);
        }
        UnitsCommand::List => {
            let units = store.list_units().await?;
            if units.is_empty() {
                println!("No units yet. Add one with: fieldlink units add <id>");
            }
            println!(
                "{:<24} {:<11} {:<9} {:<24} skills",
                "id", "type", "state", "name"
            );
            for u in units {
                let state = if u.disabled { "disabled" } else { "enabled" };
                println!(
                    "{:<24} {:<11} {:<9} {:<24} {}",
                    u.id,
                    u.unit_type,
                    state,
                    u.name,
                    u.skills.join(",")
                );
            }
        }
        UnitsCommand::Disable { id } => {
            provision::set_unit_disabled(&store, &id, true, now).await?;
            println!("Unit {id} is disabled: its next connect and its next message are refused.");
        }
        UnitsCommand::Enable { id } => {
            provision::set_unit_disabled(&store, &id, false, now).await?;
            println!("Unit {id} is enabled again.");
        }
        UnitsCommand::RotateSecret { id } => {
            let issued = provision::rotate_unit_secret(&store, &id, now).await?;
            println!("Unit {id} has a new secret (shown only now); the old one no longer works:");
            println!("  {}", issued.secret);
        }
    }
    store.close().await;
    Ok(())
}

/// Runs a `tokens` subcommand.
pub async fn tokens(config: &Config, command: TokensCommand) -> Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    match command {
        TokensCommand::Add { name, role } => {
            let role: Role = role.parse()?;
            let issued = provision::add_token(&store, &name, role, now).await?;
            println!(
                "API token {} ({role}) created for {name:?}. Use it as `Authorization: Bearer <token>` (shown only now):",
                issued.record.id
            );
            println!("  {}", issued.secret);
        }
        TokensCommand::List => {
            println!("{:<16} {:<11} {:<8} name", "id", "role", "state");
            for t in store.list_tokens().await? {
                let state = if t.revoked { "revoked" } else { "active" };
                println!("{:<16} {:<11} {:<8} {}", t.id, t.role, state, t.name);
            }
        }
        TokensCommand::Revoke { id } => {
            if store.get_token(&id).await?.is_none() {
                bail!("no token has the id {id:?} (see `fieldlink tokens list`)");
            }
            store
                .revoke_token(&id, now)
                .await
                .with_context(|| format!("revoking token {id}"))?;
            println!("Token {id} is revoked.");
        }
    }
    store.close().await;
    Ok(())
}

/// Creates what a first start needs so that nothing is anonymous and nothing needs a setup step:
/// an admin token when there is none, and a demo unit when there are no units. Returns the text
/// to show (and to save in the data directory), or `None` when nothing was created.
pub async fn bootstrap(store: &Store, now: fieldlink_clock::Timestamp) -> Result<Option<String>> {
    let mut lines = Vec::new();
    if store.count_tokens().await? == 0 {
        let issued = provision::add_token(store, "first-run admin", Role::Admin, now).await?;
        lines.push(format!("Admin API token: {}", issued.secret));
    }
    if store.count_units().await? == 0 {
        let issued = provision::add_unit(
            store,
            UnitSpec {
                id: UnitId::new("demo-1")?,
                name: "Demo responder".into(),
                unit_type: UnitType::OnFoot,
                skills: vec!["first_aid".into()],
            },
            now,
        )
        .await?;
        lines.push(format!(
            "Demo unit: id {} (MQTT client id and username), secret (MQTT password): {}",
            issued.record.id, issued.secret
        ));
    }
    Ok((!lines.is_empty()).then(|| lines.join("\n")))
}

/// Saves the first-run credentials in the data directory (owner-only) and tells the operator
/// how to use them.
pub fn announce_first_run(
    data_dir: &std::path::Path,
    text: &str,
    server: &crate::Server,
) -> Result<()> {
    let path = data_dir.join("first-run-credentials.txt");
    write_private(&path, &format!("{text}\n"))
        .with_context(|| format!("saving first-run credentials to {}", path.display()))?;
    let http = local_view(server.http_addr());
    println!();
    println!("First start: fieldlink created credentials, so nothing runs anonymous:");
    for line in text.lines() {
        println!("  {line}");
    }
    println!(
        "They are saved in {} (readable only by you).",
        path.display()
    );
    println!("Try:  curl -H 'Authorization: Bearer <admin token>' http://{http}/api/v1/units");
    if let Some(mqtt) = server.mqtt_addr() {
        let mqtt = local_view(mqtt);
        println!(
            "      mosquitto_pub -h {} -p {} -i demo-1 -u demo-1 -P <demo secret> -t owntracks/demo-1/phone -m '{{\"_type\":\"location\",\"lat\":30.2741,\"lon\":120.1551,\"tst\":'$(date +%s)'}}'",
            mqtt.ip(),
            mqtt.port()
        );
    }
    println!();
    Ok(())
}

/// 0.0.0.0 is where we listen, not where a client on this machine connects.
fn local_view(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

//! `fieldlink units ...` and `fieldlink tokens ...`: provisioning from the shell.
//!
//! These open the same store as the server (SQLite in WAL mode lets them run beside a live
//! server) and go through [`crate::provision`], as the admin API does. A running server picks the
//! change up on its next credential refresh (a few seconds).

use anyhow::{Context, Result, bail};
use fieldlink_clock::{Clock, SystemClock};
use fieldlink_proto::UnitId;
use fieldlink_store::{
    Role, Store, UnitType, format_token, generate_id, generate_secret, parse_token,
};

use crate::app::open_store;
use crate::cli::{TokensCommand, UnitsCommand};
use crate::config::Config;
use crate::provision::{self, UnitSpec};
use crate::table::Table;

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
                "Unit {} registered ({}); a running fieldlink lets its handset in within 3 s.",
                issued.record.id, issued.record.unit_type
            );
            println!(
                "Its handset connects with client id and username \"{0}\" and this password (shown only now):",
                issued.record.id
            );
            println!("  {}", issued.secret);
        }
        UnitsCommand::List => {
            let units = store.list_units().await?;
            if units.is_empty() {
                eprintln!("No units yet. Add one with: fieldlink units add <id>");
            }
            let mut table = Table::new(&["id", "type", "state", "name", "skills"]);
            for u in units {
                let state = if u.disabled { "disabled" } else { "enabled" };
                table.row(vec![
                    u.id.to_string(),
                    u.unit_type.to_string(),
                    state.to_owned(),
                    u.name,
                    u.skills.join(","),
                ]);
            }
            table.print();
        }
        UnitsCommand::Disable { id } => {
            provision::set_unit_disabled(&store, &id, true, now).await?;
            println!(
                "Unit {id} is disabled: a running fieldlink refuses its next connect and its next message within 3 s."
            );
        }
        UnitsCommand::Enable { id } => {
            provision::set_unit_disabled(&store, &id, false, now).await?;
            println!("Unit {id} is enabled again (on a running fieldlink within 3 s).");
        }
        UnitsCommand::RotateSecret { id } => {
            let issued = provision::rotate_unit_secret(&store, &id, now).await?;
            println!(
                "Unit {id} has a new secret (shown only now); a running fieldlink refuses the old one within 3 s:"
            );
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
                "API token {} ({role}) created for \"{name}\"; it works on a running fieldlink at once. Use it as `Authorization: Bearer <token>` (shown only now):",
                issued.record.id
            );
            println!("  {}", issued.secret);
        }
        TokensCommand::List => {
            let mut table = Table::new(&["id", "role", "state", "name"]);
            for t in store.list_tokens().await? {
                let state = if t.revoked { "revoked" } else { "active" };
                table.row(vec![t.id, t.role.to_string(), state.to_owned(), t.name]);
            }
            table.print();
        }
        TokensCommand::Revoke { id } => {
            if store.get_token(&id).await?.is_none() {
                bail!("no token has the id \"{id}\" (see `fieldlink tokens list`)");
            }
            store
                .revoke_token(&id, now)
                .await
                .with_context(|| format!("revoking token {id}"))?;
            println!("Token {id} is revoked; a running fieldlink refuses it within 3 s.");
        }
    }
    store.close().await;
    Ok(())
}

/// The file in the data directory that holds the first-run credentials.
pub const FIRST_RUN_FILE: &str = "first-run-credentials.txt";

/// Creates what a first start needs so that nothing is anonymous and nothing needs a setup step:
/// an admin token when there is none, and a demo unit when there are no units. Returns the text
/// to show, or `None` when nothing was created.
///
/// The credentials are saved in `data_dir` (owner-only) *before* the store learns them, so a
/// crash in between never leaves a token that works but was never shown; lines of an earlier,
/// interrupted first start are kept only while they still hold valid credentials.
pub async fn bootstrap(
    store: &Store,
    data_dir: &std::path::Path,
    now: fieldlink_clock::Timestamp,
) -> Result<Option<String>> {
    let need_token = store.count_tokens().await? == 0;
    let need_unit = store.count_units().await? == 0;
    if !need_token && !need_unit {
        return Ok(None);
    }
    let path = data_dir.join(FIRST_RUN_FILE);
    let mut lines = still_valid_lines(store, &path).await?;
    let token = need_token.then(|| (generate_id("tok"), generate_secret()));
    let unit_secret = need_unit.then(generate_secret);
    if let Some((id, secret)) = &token {
        lines.push(format!("Admin API token: {}", format_token(id, secret)));
    }
    if let Some(secret) = &unit_secret {
        lines.push(format!(
            "Demo unit: id {DEMO_UNIT} (MQTT client id and username), secret (MQTT password): {secret}"
        ));
    }
    let text = lines.join("\n");
    write_private(&path, &format!("{text}\n"))
        .with_context(|| format!("saving first-run credentials to {}", path.display()))?;
    if let Some((id, secret)) = token {
        provision::add_token_with_secret(store, id, secret, "first-run admin", Role::Admin, now)
            .await?;
    }
    if let Some(secret) = unit_secret {
        let spec = UnitSpec {
            id: UnitId::new(DEMO_UNIT)?,
            name: "Demo responder".into(),
            unit_type: UnitType::OnFoot,
            skills: vec!["first_aid".into()],
        };
        provision::add_unit_with_secret(store, spec, secret, now).await?;
    }
    Ok(Some(text))
}

const DEMO_UNIT: &str = "demo-1";

/// The lines of an earlier first-run file whose token or demo-unit secret still works.
async fn still_valid_lines(store: &Store, path: &std::path::Path) -> Result<Vec<String>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    for line in text.lines() {
        let secret = line.split_whitespace().last().unwrap_or_default();
        let valid = if let Some((id, token_secret)) = parse_token(secret) {
            store
                .get_token(id)
                .await?
                .is_some_and(|t| !t.revoked && t.secret.verify(token_secret))
        } else if line.starts_with("Demo unit:") {
            store
                .get_unit(DEMO_UNIT)
                .await?
                .is_some_and(|u| u.secret.verify(secret))
        } else {
            false
        };
        if valid {
            kept.push(line.to_owned());
        }
    }
    Ok(kept)
}

/// Shows the first-run credentials (already saved by [`bootstrap`]) and how to use them;
/// `tls`: the API is served over HTTPS (`http.tls`).
pub fn announce_first_run(
    data_dir: &std::path::Path,
    text: &str,
    server: &crate::Server,
    tls: bool,
) -> Result<()> {
    let path = data_dir.join(FIRST_RUN_FILE);
    let http = local_view(server.http_addr());
    let scheme = if tls { "https" } else { "http" };
    println!();
    println!("First start: fieldlink created credentials, so nothing runs anonymous:");
    for line in text.lines() {
        println!("  {line}");
    }
    println!(
        "They are saved in {} (readable only by you).",
        path.display()
    );
    println!("Try:  curl -H 'Authorization: Bearer <admin token>' {scheme}://{http}/api/v1/units");
    if let Some(mqtt) = server.mqtt_addr() {
        let mqtt = local_view(mqtt);
        // The embedded broker takes sealed payloads only: `fieldlink seal` seals the fix
        // with the demo unit's key (README, "Try it with mosquitto_pub").
        println!(
            "      echo '{{\"_type\":\"location\",\"lat\":30.2741,\"lon\":120.1551,\"tst\":'$(date +%s)'}}' \\\n        | FL_UNIT_SECRET=<demo secret> cargo run -q --bin fieldlink -- seal --topic owntracks/demo-1/phone \\\n        | mosquitto_pub -h {} -p {} -i demo-1 -u demo-1 -P <demo secret> -t owntracks/demo-1/phone -s",
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

//! Helpers the multi-process benches share (`push.rs`, `load.rs`): the environment, free ports,
//! a process's CPU and memory from `/proc`, the server's accepted-fix counter, and registering
//! thousands of units at once.

#![allow(dead_code)] // each bench uses its own subset

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use std::str::FromStr;

use anyhow::{Context, Result};
use fieldlink_server::metrics::OutcomeLabel;
use fieldlink_server::state::AppState;
use fieldlink_store::{SecretHash, UnitType};
use sqlx::{Connection, QueryBuilder};

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
pub const USER_HZ: f64 = 100.0;

pub fn accepted(state: &AppState) -> u64 {
    state
        .metrics
        .fixes
        .get_or_create(&OutcomeLabel {
            outcome: "accepted",
        })
        .get()
}

/// CPU seconds (user + system, all threads) of a process so far.
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Resident set size of a process, bytes.
pub fn rss_bytes(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn env_string(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Rows per bulk `INSERT` of units.
const INSERT_CHUNK: usize = 1000;

/// Registers `creds` (id, secret) as on-foot units in one bulk transaction on the SQLite store
/// at `url`, with what `Store::create_unit` writes (salted secret hash, seal key), then reloads
/// the server's credential cache. One by one through the API, 10,000 units would take minutes.
pub async fn register_units(state: &AppState, url: &str, creds: &[(String, String)]) -> Result<()> {
    let now_ms = state.clock.now().as_millis();
    let hashed: Vec<(String, String)> = creds
        .iter()
        .map(|(_, secret)| {
            let h = SecretHash::new(secret);
            (to_hex(&h.salt), to_hex(&h.hash))
        })
        .collect();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    let mut tx = conn.begin().await?;
    let rows: Vec<usize> = (0..creds.len()).collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut q: QueryBuilder<sqlx::Sqlite> = QueryBuilder::new(
            "INSERT INTO units (id, name, unit_type, skills, secret_salt, secret_hash, \
             seal_key, disabled, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, &i| {
            let seal_key = fieldlink_seal::SealKey::derive(&creds[i].1);
            b.push_bind(creds[i].0.clone())
                .push_bind(creds[i].0.clone())
                .push_bind(UnitType::OnFoot.as_str())
                .push_bind("[]")
                .push_bind(hashed[i].0.clone())
                .push_bind(hashed[i].1.clone())
                .push_bind(seal_key.as_text().to_owned())
                .push_bind(false)
                .push_bind(now_ms)
                .push_bind(now_ms);
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    conn.close().await?;
    state.credentials.reload().await?;
    Ok(())
}

//! One fieldlink per store: the instance lock, and who holds it.
//!
//! Two processes on one store each keep their own in-memory cores (dispatch, intercom, video) and
//! overwrite each other's records, so the second one must not start. [`InstanceLock::acquire`]
//! takes a lock that lives as long as the returned [`InstanceLock`], and at most as long as the
//! process: the operating system drops a file lock with its process, PostgreSQL an advisory lock
//! with its session, so a crash never leaves a stale lock behind.
//!
//! - **SQLite**: an exclusive `flock` on `<database file>.lock`, beside the database. The file's
//!   text names the holder; it is rewritten by each new holder and never trusted for the lock
//!   itself.
//! - **PostgreSQL**: a session advisory lock keyed by the schema, on a connection of its own
//!   (not from the pool). The holder is named in that connection's `application_name`, which
//!   a refused process reads from `pg_stat_activity`.
//!
//! Several instances on one PostgreSQL (a later issue) replace this lock with one lease per core;
//! this is the seam.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use fieldlink_clock::Timestamp;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::{StoreConfig, StoreError, redact_url};

/// PostgreSQL limits `application_name` to 63 bytes; the host name is cut to fit.
const APP_NAME_MAX: usize = 63;
/// The prefix of the holder's `application_name`, also how a refused process finds it.
const APP_NAME_PREFIX: &str = "fieldlink/";

/// Who holds a store: enough for an operator to find the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The operating system's process id.
    pub pid: u32,
    /// The machine's host name.
    pub host: String,
    /// When the process took the lock (to the second).
    pub started_at: Timestamp,
}

impl Holder {
    /// This process, starting now.
    pub fn this_process(now: Timestamp) -> Holder {
        Holder {
            pid: std::process::id(),
            host: whoami::hostname().unwrap_or_else(|_| "an unnamed host".to_owned()),
            started_at: Timestamp::from_secs(now.as_millis().div_euclid(1000)),
        }
    }

    /// `fieldlink/{pid}/{started, epoch seconds}/{host}`: the form written to the lock file and
    /// to PostgreSQL's `application_name`.
    fn to_text(&self) -> String {
        let mut text = format!(
            "{APP_NAME_PREFIX}{}/{}/{}",
            self.pid,
            self.started_at.as_millis() / 1000,
            self.host
        );
        if text.len() > APP_NAME_MAX {
            let mut cut = APP_NAME_MAX;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }

    fn from_text(text: &str) -> Option<Holder> {
        let rest = text.trim().strip_prefix(APP_NAME_PREFIX)?;
        let mut parts = rest.splitn(3, '/');
        let pid = parts.next()?.parse().ok()?;
        let started_at = Timestamp::from_secs(parts.next()?.parse().ok()?);
        let host = parts.next()?.to_owned();
        Some(Holder {
            pid,
            host,
            started_at,
        })
    }
}

/// "process 4242 on host ops-1, running since 2026-12-07T23:40:00.000Z"
impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} on host {}, running since {}",
            self.pid,
            self.host,
            self.started_at.to_rfc3339()
        )
    }
}

/// Held while the process owns the store; dropping it (or [`InstanceLock::release`]) lets the
/// next process in.
#[derive(Debug)]
pub struct InstanceLock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    /// The locked file; the lock goes with the descriptor.
    File(File),
    /// The session that holds the advisory lock.
    Postgres(PgConnection),
}

impl InstanceLock {
    /// Takes the store `cfg` names for this process, or fails with [`StoreError::InUse`] naming
    /// the process that has it. Needs no open [`Store`](crate::Store), so a server can take it
    /// before anything else. Hold the returned lock for as long as the process serves.
    pub async fn acquire(cfg: &StoreConfig, holder: &Holder) -> Result<InstanceLock, StoreError> {
        let shown = redact_url(&cfg.url);
        let held = if let Some(path) = crate::sqlite::path_of(&cfg.url) {
            let mut name = Path::new(path).as_os_str().to_owned();
            name.push(".lock");
            Held::File(lock_file(Path::new(&name), holder, &shown)?)
        } else {
            let schema = cfg.pg_schema.as_deref().unwrap_or("public");
            Held::Postgres(lock_postgres(&cfg.url, schema, holder, &shown).await?)
        };
        tracing::debug!(store = %shown, "instance lock taken");
        Ok(InstanceLock { held })
    }

    /// Gives the lock up now (dropping it does the same, less politely for PostgreSQL).
    pub async fn release(self) {
        match self.held {
            Held::File(file) => drop(file),
            Held::Postgres(conn) => {
                if let Err(e) = conn.close().await {
                    tracing::debug!(error = %e, "closing the instance-lock session");
                }
            }
        }
    }
}

fn lock_file(path: &Path, holder: &Holder, store: &str) -> Result<File, StoreError> {
    let io = |source| StoreError::LockFile {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Not truncated on open: the text belongs to the holder until this process has the lock.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            // A holder still writing its name reads as unnamed; that is all.
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::InUse {
                store: store.to_owned(),
                holder: Holder::from_text(&text),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", holder.to_text()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(file)
}

/// The advisory lock's two keys: fieldlink's, and the schema's (`$1`), so that tests and tenants
/// on schemas of their own do not collide.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('fieldlink'), hashtext($1))";
/// The `application_name` of the session holding the lock (`$1` the schema), if any.
const HOLDER: &str = "SELECT a.application_name FROM pg_locks l \
     JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND l.classid::bigint = (hashtext('fieldlink')::bigint & 4294967295) \
     AND l.objid::bigint = (hashtext($1)::bigint & 4294967295)";
/// A killed holder's session ends a moment after its process (PostgreSQL notices the closed
/// socket): a process restarted at once waits this long for the lock before giving up.
const PG_LOCK_WAIT: Duration = Duration::from_secs(3);

async fn lock_postgres(
    url: &str,
    schema: &str,
    holder: &Holder,
    store: &str,
) -> Result<PgConnection, StoreError> {
    let action = || format!("taking the instance lock of {store}");
    let options = PgConnectOptions::from_str(url)
        .map_err(StoreError::db(action()))?
        .application_name(&holder.to_text());
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|source| StoreError::Connect {
            url: store.to_owned(),
            source,
        })?;
    let deadline = Instant::now() + PG_LOCK_WAIT;
    loop {
        let locked: bool = sqlx::query_scalar(TRY_LOCK)
            .bind(schema)
            .fetch_one(&mut conn)
            .await
            .map_err(StoreError::db(action()))?;
        if locked {
            return Ok(conn);
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let name: Option<String> = sqlx::query_scalar(HOLDER)
        .bind(schema)
        .fetch_optional(&mut conn)
        .await
        .map_err(StoreError::db(action()))?;
    let _ = conn.close().await;
    Err(StoreError::InUse {
        store: store.to_owned(),
        holder: name.as_deref().and_then(Holder::from_text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_survives_its_text_form() {
        let holder = Holder {
            pid: 4242,
            host: "ops-1".into(),
            started_at: Timestamp::from_secs(1_796_600_000),
        };
        assert_eq!(Holder::from_text(&holder.to_text()), Some(holder.clone()));
        assert_eq!(
            holder.to_string(),
            "process 4242 on host ops-1, running since 2026-12-06T23:33:20.000Z"
        );
        assert_eq!(Holder::from_text("garbage"), None);
    }

    #[test]
    fn a_long_host_name_is_cut_to_what_postgres_keeps() {
        let holder = Holder {
            pid: u32::MAX,
            host: "ü".repeat(60),
            started_at: Timestamp::from_secs(1_796_600_000),
        };
        let text = holder.to_text();
        assert!(text.len() <= APP_NAME_MAX, "{}", text.len());
        assert_eq!(Holder::from_text(&text).map(|h| h.pid), Some(u32::MAX));
    }
}

//! The SQLite backend: turning a `sqlite://` URL into a migrated pool over one file.
//!
//! Only connecting differs from PostgreSQL; the queries are shared (see `lib.rs`). The settings
//! favour not losing a record over raw write speed, since the file is the system of record of a
//! single-process deployment:
//!
//! - WAL journal: readers (the HTTP queries) never block the writer (ingest, dispatch).
//! - `synchronous=FULL`: a committed transaction survives a power cut, not only a crash.
//!   Batching (track history is appended in batches) keeps the fsync count low.
//! - `foreign_keys=ON`, and a busy timeout so concurrent writers wait instead of failing.

use std::path::Path;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;

/// How long a writer waits for another writer's lock before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the pool. SQLite has one writer at a time; a few readers run beside it in WAL.
const MAX_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The file path of a `sqlite:` URL (`sqlite://rel/path.db`, `sqlite:///abs/path.db`,
/// `sqlite:rel/path.db`), or `None` when the URL is not an SQLite one.
pub(crate) fn path_of(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
}

/// Opens (creating when missing) the SQLite file at `path` and migrates it.
/// `url` is only for messages.
pub(crate) async fn open(path: &str, url: &str) -> Result<SqlitePool, StoreError> {
    if path.is_empty() || path.contains('?') || path == ":memory:" {
        // In-memory databases are per connection; a pool of them would lose data silently.
        return Err(StoreError::BadUrl(url.to_owned()));
    }
    let path = Path::new(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect {
            url: url.to_owned(),
            source,
        })?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: url.to_owned(),
            source,
        })?;
    Ok(pool)
}

//! Persistence for fieldlink behind one interface: an SQLite file (the embedded default) or
//! PostgreSQL (the system of record when fieldlink runs as several instances), chosen by URL.
//!
//! [`Store`] is the whole interface. It is cheap to clone (a connection pool inside) and every
//! method is one short query or one transaction, so callers never hold a connection.
//!
//! # Layout
//!
//! - `lib.rs`: [`StoreConfig`], [`Store`] (open, ping, close) and the dispatch to a backend.
//! - `sqlite.rs`, `postgres.rs`: connecting and migrating each backend; nothing else differs.
//!   The SQL is written once for both (`$1` placeholders and `ON CONFLICT` work in both).
//! - `accounts.rs`: units (responder handsets) and API tokens.
//! - `positions.rs`: the latest-position snapshot and the track history.
//! - `zones.rs`: geofences and grids managed through the API (geometry kept as GeoJSON text).
//! - `instance.rs`: one fieldlink per store ([`InstanceLock`]).
//! - `seal_marks.rs`: the replay marks of sealed payloads (docs/security.md).
//! - `rows.rs`: columns to records. `model.rs`: the records. `secret.rs`: secrets and their
//!   hashes. `error.rs`: [`StoreError`].
//! - `testing.rs` (feature `testing`): the PostgreSQL test helper other crates reuse.
//!
//! Times are stored as BIGINT milliseconds since the epoch ([`Timestamp`]), skills as JSON text,
//! secret hashes as hex. Migrations live in `migrations/sqlite` and `migrations/postgres` and run
//! on [`Store::open`].
//!
//! Not here: what the records mean. Dispatch, location and the server own their rules; this crate
//! only keeps and returns data.

mod accounts;
mod error;
mod instance;
mod model;
mod positions;
mod postgres;
mod rows;
mod seal_marks;
pub mod secret;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod zones;

use std::fmt;
use std::sync::Arc;

pub use error::{StoreError, redact_url};
pub use fieldlink_clock::Timestamp;
pub use instance::{Holder, InstanceLock};
pub use model::{
    NewToken, NewUnit, PositionRow, Role, TokenRecord, TrackRow, UnitRecord, UnitType, UnknownName,
    ZoneKind, ZoneRecord,
};
pub use seal_marks::SealMark;
pub use secret::{SecretHash, format_token, generate_id, generate_secret, parse_token};

/// Where the store lives.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (relative to the working directory; `sqlite:///abs/file.db`
    /// for an absolute path; file and directory are created when missing) or
    /// `postgres://user:password@host:5432/database`.
    pub url: String,
    /// PostgreSQL only: the schema to use, created when missing and set as `search_path` on every
    /// pooled connection. Lets tests and tenants share one database. `None` uses the server's
    /// default search path (normally `public`).
    #[serde(default)]
    pub pg_schema: Option<String>,
}

impl StoreConfig {
    /// A config for this URL, with no schema.
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            pg_schema: None,
        }
    }
}

/// Never prints a password.
impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(&self.url))
            .field("pg_schema", &self.pg_schema)
            .finish()
    }
}

/// Which database a [`Store`] is using.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The persistence interface of fieldlink. Clone it freely: clones share one pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// For messages: the URL, password redacted.
    url: Arc<str>,
}

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool (and `$db` to its database type, when
/// asked). Each arm is type-checked on its own, so one body of SQL serves both backends without
/// generic bounds.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => {
                type $db = ::sqlx::Sqlite;
                $body
            }
            $crate::Pool::Postgres($pool) => {
                type $db = ::sqlx::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_pool;

impl Store {
    /// Connects to the store at `cfg.url` and brings its schema up to date.
    pub async fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let url = redact_url(&cfg.url);
        let pool = if let Some(path) = sqlite::path_of(&cfg.url) {
            Pool::Sqlite(sqlite::open(path, &url).await?)
        } else if cfg.url.starts_with("postgres://") || cfg.url.starts_with("postgresql://") {
            Pool::Postgres(postgres::open(&cfg.url, cfg.pg_schema.as_deref(), &url).await?)
        } else {
            return Err(StoreError::BadUrl(url));
        };
        let store = Store {
            pool,
            url: url.into(),
        };
        tracing::info!(url = %store.url, "store open");
        Ok(store)
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |p| sqlx::query("SELECT 1").execute(p).await.map(drop)).map_err(
            StoreError::db(format!("checking the database at {}", self.url)),
        )
    }

    /// Closes every connection, waiting for queries in flight. Later calls on any clone fail.
    pub async fn close(&self) {
        with_pool!(self, |p| p.close().await);
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

// Dispatch persistence: the journal, incident / work-order / alarm snapshots, the outbox, timers
// and request idempotency, all written through `Store::commit` (journal.rs).
mod dispatch_model;
mod dispatch_reads;
mod dispatch_rows;
mod intercom;
mod journal;
mod outbox;
pub use dispatch_model::{
    AlarmRow, BurstRow, ChangeSet, Committed, DispatchSnapshot, DispatchState, EventRow,
    IncidentRow, NewEvent, OrderRow, OutboxEntry, OutboxRow, TimerRow,
};

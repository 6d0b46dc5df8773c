//! The PostgreSQL backend: turning a `postgres://` URL (and an optional schema) into a migrated
//! pool.
//!
//! Only connecting differs from SQLite; the queries are shared (see `lib.rs`). With a schema, it
//! is created when missing and becomes the `search_path` of every pooled connection (a startup
//! parameter, so no connection can ever run without it); the migrations then create their tables
//! there. That is how tests, and tenants sharing a database, stay apart.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use crate::StoreError;

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 8;
/// How long a query waits for a free connection (or a new one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connects to `raw_url`, prepares `schema` and migrates. `url` (redacted) is only for messages.
pub(crate) async fn open(
    raw_url: &str,
    schema: Option<&str>,
    url: &str,
) -> Result<PgPool, StoreError> {
    let mut options =
        PgConnectOptions::from_str(raw_url).map_err(|_| StoreError::BadUrl(url.to_owned()))?;
    let connect_err = |source| StoreError::Connect {
        url: url.to_owned(),
        source,
    };
    if let Some(schema) = schema {
        check_schema(schema)?;
    }
    // One direct connection first: it fails at once with the server's own words when the
    // database is down or refuses us (a pool would retry until its acquire timeout), and it
    // creates the schema before any pooled connection puts it in its search path.
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(connect_err)?;
    if let Some(schema) = schema {
        // The name is checked to be a plain lowercase identifier, so quoting is exact.
        sqlx::query(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await
        .map_err(StoreError::db(format!("creating schema {schema} in {url}")))?;
        options = options.options([("search_path", schema)]);
    }
    conn.close().await.ok();
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(connect_err)?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: url.to_owned(),
            source,
        })?;
    Ok(pool)
}

/// A schema name must be a plain lowercase identifier: no quoting surprises, no injection.
pub(crate) fn check_schema(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadSchema(name.to_owned()))
    }
}

//! Helpers for tests that need a real database, here and in other crates' end-to-end tests
//! (cargo feature `testing`).
//!
//! PostgreSQL tests isolate themselves in a schema of their own. Where PostgreSQL is not running
//! they are skipped with a clear message, except on CI (`CI=true`), where a missing database must
//! fail the build rather than let the PostgreSQL path go untested.

use std::path::Path;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::{StoreConfig, generate_id, postgres::check_schema};

/// The PostgreSQL the tests use unless `FIELDLINK_TEST_PG_URL` says otherwise.
pub const DEFAULT_PG_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// How long to wait for PostgreSQL to answer before deciding it is not there.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A config for a fresh, uniquely named schema (`t_<test name>_<random>`) on the test PostgreSQL
/// (`FIELDLINK_TEST_PG_URL`, default [`DEFAULT_PG_URL`]), or `None` when PostgreSQL is not
/// reachable and this is not CI: then a "SKIPPED" line is printed to stderr and the test should
/// return. Panics when PostgreSQL is not reachable and `CI=true`.
///
/// Call [`drop_schema`] at the end of the test to clean up.
pub async fn postgres_config_or_skip(test_name: &str) -> Option<StoreConfig> {
    let url = std::env::var("FIELDLINK_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
    let shown = crate::redact_url(&url);
    if let Err(reason) = probe(&url).await {
        let on_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        assert!(
            !on_ci,
            "{test_name}: PostgreSQL not reachable at {shown} and CI=true, so this is a failure: \
             {reason}"
        );
        eprintln!("{test_name}: SKIPPED (PostgreSQL not reachable at {shown}): {reason}");
        return None;
    }
    let name: String = test_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let schema = generate_id(&format!("t_{name}"));
    debug_assert!(check_schema(&schema).is_ok(), "{schema}");
    Some(StoreConfig {
        url,
        pg_schema: Some(schema),
    })
}

/// Drops the schema of a config made by [`postgres_config_or_skip`], with everything in it.
/// Best effort: a failure is printed, not raised, so cleanup never hides the test's own result.
pub async fn drop_schema(cfg: &StoreConfig) {
    let Some(schema) = cfg.pg_schema.as_deref() else {
        return;
    };
    if check_schema(schema).is_err() {
        return;
    }
    let result = async {
        let mut conn = PgConnection::connect(&cfg.url).await?;
        sqlx::query(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await
    }
    .await;
    if let Err(e) = result {
        eprintln!("could not drop test schema {schema}: {e}");
    }
}

/// A config for an SQLite file named `fieldlink.db` in `dir` (a temporary directory, usually).
pub fn sqlite_config(dir: &Path) -> StoreConfig {
    StoreConfig::new(format!("sqlite://{}", dir.join("fieldlink.db").display()))
}

async fn probe(url: &str) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect(url)).await {
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(conn)) => {
            conn.close().await.ok();
            Ok(())
        }
    }
}

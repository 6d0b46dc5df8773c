//! The one error type of the store, worded for the operator who reads it in a log.
//!
//! Every variant that concerns a database names it by its URL (with any password replaced by
//! `***`, see [`redact_url`]) or by the operation that failed, so that a message alone says where
//! to look. This module owns no retry policy: callers decide what to do with an error.

use thiserror::Error;

/// Everything that can go wrong in the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with this id already exists (for example a unit id that is taken).
    #[error("{what} \"{id}\" already exists")]
    AlreadyExists {
        /// The kind of record: "unit", "API token".
        what: &'static str,
        /// The id that was taken.
        id: String,
    },

    /// No record with this id exists.
    #[error("{what} \"{id}\" does not exist")]
    NotFound {
        /// The kind of record: "unit", "API token".
        what: &'static str,
        /// The id that was looked for.
        id: String,
    },

    /// The store URL is not one we understand.
    #[error(
        "the store URL {0} is not usable: expected sqlite://path/to/file.db or postgres://user@host/db"
    )]
    BadUrl(String),

    /// The PostgreSQL schema name is not a plain lowercase identifier.
    #[error(
        "the PostgreSQL schema name \"{0}\" is not usable: use lowercase letters, digits and _, \
         starting with a letter or _, at most 63 characters"
    )]
    BadSchema(String),

    /// The directory that should hold the SQLite file could not be created.
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The database could not be reached or opened.
    #[error("cannot open the database at {url}: {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },

    /// The schema migrations could not be applied.
    #[error("cannot bring the database at {url} to the current schema: {source}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// What the migrator said.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query failed.
    #[error("database error while {action}: {source}")]
    Database {
        /// What the store was doing, in words: "creating unit u1".
        action: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },

    /// Another fieldlink process holds the store ([`InstanceLock::acquire`](crate::InstanceLock::acquire)).
    #[error(
        "the store {store} is already in use by another fieldlink ({}); stop that one first, \
         or give this one a data directory (--data) or database of its own",
        holder_words(.holder)
    )]
    InUse {
        /// The store's URL, password redacted.
        store: String,
        /// Who holds it, when it said.
        holder: Option<crate::Holder>,
    },

    /// The SQLite store's lock file could not be opened or written.
    #[error("cannot use the lock file {path}: {source}")]
    LockFile {
        /// The lock file.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A stored row could not be turned back into a record (edited by hand, or written by a
    /// newer version of fieldlink).
    #[error("stored {what} \"{id}\" is unreadable: {detail}")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
        /// Its id.
        id: String,
        /// What is wrong with it.
        detail: String,
    },
}

fn holder_words(holder: &Option<crate::Holder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "it did not say which process it is".to_owned(),
    }
}

impl StoreError {
    /// Wraps a driver error with the action that failed.
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let action = action.into();
        move |source| StoreError::Database { action, source }
    }

    /// Like [`StoreError::db`], but a unique-key violation becomes [`StoreError::AlreadyExists`].
    pub(crate) fn insert(what: &'static str, id: &str) -> impl FnOnce(sqlx::Error) -> StoreError {
        let id = id.to_owned();
        move |source| match &source {
            sqlx::Error::Database(e) if e.is_unique_violation() => {
                StoreError::AlreadyExists { what, id }
            }
            _ => StoreError::Database {
                action: format!("creating {what} {id}"),
                source,
            },
        }
    }
}

/// The URL with any password replaced by `***`, safe to print.
///
/// Handles both `scheme://user:password@host/...` and a `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = &out[auth_start..auth_start + at];
            if let Some(colon) = userinfo.find(':') {
                let pw_start = auth_start + colon + 1;
                out.replace_range(pw_start..auth_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_printed() {
        assert_eq!(
            redact_url("postgres://fl:s3cret@db:5432/fl"),
            "postgres://fl:***@db:5432/fl"
        );
        assert_eq!(
            redact_url("postgres://root@127.0.0.1/test"),
            "postgres://root@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("postgres://db/fl?user=a&password=b&sslmode=require"),
            "postgres://db/fl?user=a&password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite://data/fl.db"), "sqlite://data/fl.db");
    }
}

//! Units (responder handsets) and API tokens: who may connect, and with which secret.
//!
//! Checking a presented secret is the caller's job ([`crate::SecretHash::verify`] on the record);
//! this module only keeps the records. Nothing is ever deleted: a unit is disabled, a token
//! revoked, so that history keeps pointing at something.

use fieldlink_clock::Timestamp;

use crate::rows::{TokenRaw, UnitRaw, token_columns, unit_columns};
use crate::{NewToken, NewUnit, SecretHash, Store, StoreError, TokenRecord, UnitRecord, with_pool};

impl Store {
    /// Registers a unit. [`StoreError::AlreadyExists`] when the id is taken.
    pub async fn create_unit(&self, new: &NewUnit) -> Result<UnitRecord, StoreError> {
        let skills = serde_json::to_string(&new.skills).expect("a list of strings is valid JSON");
        let (salt, hash) = new.secret.to_hex();
        let now = new.now.as_millis();
        with_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO units (id, name, unit_type, skills, secret_salt, secret_hash, \
                 seal_key, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $8)",
            )
            .bind(&new.id)
            .bind(&new.name)
            .bind(new.unit_type.as_str())
            .bind(&skills)
            .bind(&salt)
            .bind(&hash)
            .bind(&new.seal_key)
            .bind(now)
            .execute(p)
            .await
            .map(drop)
        })
        .map_err(StoreError::insert("unit", &new.id))?;
        Ok(UnitRecord {
            id: new.id.clone(),
            name: new.name.clone(),
            unit_type: new.unit_type,
            skills: new.skills.clone(),
            secret: new.secret,
            seal_key: Some(new.seal_key.clone()),
            disabled: false,
            created_at: new.now,
            updated_at: new.now,
        })
    }

    /// The unit with this id, if any.
    pub async fn get_unit(&self, id: &str) -> Result<Option<UnitRecord>, StoreError> {
        let sql = concat!("SELECT ", unit_columns!(), " FROM units WHERE id = $1");
        let raw: Option<UnitRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql).bind(id).fetch_optional(p).await
        })
        .map_err(StoreError::db(format!("reading unit {id}")))?;
        raw.map(UnitRecord::try_from).transpose()
    }

    /// Every unit, disabled ones included, ordered by id.
    pub async fn list_units(&self) -> Result<Vec<UnitRecord>, StoreError> {
        let sql = concat!("SELECT ", unit_columns!(), " FROM units ORDER BY id");
        let raw: Vec<UnitRaw> = with_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)
            .map_err(StoreError::db("listing units"))?;
        raw.into_iter().map(UnitRecord::try_from).collect()
    }

    /// Disables (or re-enables) a unit. [`StoreError::NotFound`] when there is no such unit.
    pub async fn set_unit_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let done = with_pool!(self, |p| {
            sqlx::query("UPDATE units SET disabled = $1, updated_at = $2 WHERE id = $3")
                .bind(disabled)
                .bind(now.as_millis())
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StoreError::db(format!("disabling unit {id}")))?;
        found("unit", id, done)
    }

    /// Replaces a unit's secret and the seal key derived from it (rotation).
    /// [`StoreError::NotFound`] when there is no such unit.
    pub async fn set_unit_secret(
        &self,
        id: &str,
        hash: &SecretHash,
        seal_key: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (salt, hash) = hash.to_hex();
        let done = with_pool!(self, |p| {
            sqlx::query(
                "UPDATE units SET secret_salt = $1, secret_hash = $2, seal_key = $3, \
                 updated_at = $4 WHERE id = $5",
            )
            .bind(&salt)
            .bind(&hash)
            .bind(seal_key)
            .bind(now.as_millis())
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(StoreError::db(format!("rotating the secret of unit {id}")))?;
        found("unit", id, done)
    }

    /// How many units are registered, disabled ones included.
    pub async fn count_units(&self) -> Result<u64, StoreError> {
        count(self, "SELECT COUNT(*) FROM units", "counting units").await
    }

    /// Creates an API token. [`StoreError::AlreadyExists`] when the id is taken.
    pub async fn create_token(&self, new: &NewToken) -> Result<TokenRecord, StoreError> {
        let (salt, hash) = new.secret.to_hex();
        with_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO api_tokens (id, name, role, secret_salt, secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&new.id)
            .bind(&new.name)
            .bind(new.role.as_str())
            .bind(&salt)
            .bind(&hash)
            .bind(new.now.as_millis())
            .execute(p)
            .await
            .map(drop)
        })
        .map_err(StoreError::insert("API token", &new.id))?;
        Ok(TokenRecord {
            id: new.id.clone(),
            name: new.name.clone(),
            role: new.role,
            secret: new.secret,
            created_at: new.now,
            revoked: false,
        })
    }

    /// The token with this id, if any (revoked ones included: check [`TokenRecord::revoked`]).
    pub async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE id = $1"
        );
        let raw: Option<TokenRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql).bind(token_id).fetch_optional(p).await
        })
        .map_err(StoreError::db(format!("reading API token {token_id}")))?;
        raw.map(TokenRecord::try_from).transpose()
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens ORDER BY created_at, id"
        );
        let raw: Vec<TokenRaw> = with_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)
            .map_err(StoreError::db("listing API tokens"))?;
        raw.into_iter().map(TokenRecord::try_from).collect()
    }

    /// Revokes a token for good. Revoking twice is harmless (the first time is kept).
    /// [`StoreError::NotFound`] when there is no such token.
    pub async fn revoke_token(&self, token_id: &str, now: Timestamp) -> Result<(), StoreError> {
        let done = with_pool!(self, |p| {
            sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(now.as_millis())
                .bind(token_id)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StoreError::db(format!("revoking API token {token_id}")))?;
        found("API token", token_id, done)
    }

    /// How many tokens exist, revoked ones included.
    pub async fn count_tokens(&self) -> Result<u64, StoreError> {
        count(
            self,
            "SELECT COUNT(*) FROM api_tokens",
            "counting API tokens",
        )
        .await
    }
}

/// `Ok` when an update touched a row, [`StoreError::NotFound`] otherwise.
fn found(what: &'static str, id: &str, rows: u64) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::NotFound {
            what,
            id: id.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Runs a `SELECT COUNT(*)`.
pub(crate) async fn count(
    store: &Store,
    sql: &'static str,
    action: &'static str,
) -> Result<u64, StoreError> {
    let n: i64 = with_pool!(store, |p| sqlx::query_scalar(sql).fetch_one(p).await)
        .map_err(StoreError::db(action))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

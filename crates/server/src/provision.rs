//! Provisioning units and API tokens: the operations behind `fieldlink units ...`,
//! `fieldlink tokens ...` and the admin API, in one place so both paths behave the same.
//!
//! Secrets are generated here (256 bits from the OS RNG), shown once, and stored only hashed,
//! beside the seal key derived from them (docs/security.md): the server opens sealed payloads
//! with it, and it cannot be turned back into the secret, which alone logs in.

use fieldlink_clock::Timestamp;
use fieldlink_proto::UnitId;
use fieldlink_store::{
    NewToken, NewUnit, Role, SecretHash, Store, StoreError, TokenRecord, UnitRecord, UnitType,
    format_token, generate_id, generate_secret,
};

/// What to create.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    /// Unit id (validated).
    pub id: UnitId,
    /// Display name (defaults to the id).
    pub name: String,
    /// Kind of responder.
    pub unit_type: UnitType,
    /// Skills for dispatch.
    pub skills: Vec<String>,
}

/// A unit just created or re-keyed, with its secret in clear (shown once).
#[derive(Debug, Clone)]
pub struct Issued<T> {
    /// The record as stored.
    pub record: T,
    /// The secret or token to hand over; it is not stored and cannot be shown again.
    pub secret: String,
}

/// Creates a unit with a fresh secret.
pub async fn add_unit(
    store: &Store,
    spec: UnitSpec,
    now: Timestamp,
) -> Result<Issued<UnitRecord>, StoreError> {
    add_unit_with_secret(store, spec, generate_secret(), now).await
}

/// Creates a unit with a secret the caller generated (the first-run bootstrap saves it first).
pub async fn add_unit_with_secret(
    store: &Store,
    spec: UnitSpec,
    secret: String,
    now: Timestamp,
) -> Result<Issued<UnitRecord>, StoreError> {
    let name = if spec.name.is_empty() {
        spec.id.to_string()
    } else {
        spec.name
    };
    let record = store
        .create_unit(&NewUnit {
            id: spec.id.into_string(),
            name,
            unit_type: spec.unit_type,
            skills: normalise_skills(spec.skills),
            secret: SecretHash::new(&secret),
            seal_key: seal_key(&secret),
            now,
        })
        .await?;
    Ok(Issued { record, secret })
}

/// Gives a unit a new secret; the old one stops working at the handset's next connect and, on
/// the cache refresh, for its next message.
pub async fn rotate_unit_secret(
    store: &Store,
    id: &str,
    now: Timestamp,
) -> Result<Issued<UnitRecord>, StoreError> {
    let secret = generate_secret();
    store
        .set_unit_secret(id, &SecretHash::new(&secret), &seal_key(&secret), now)
        .await?;
    let record = store
        .get_unit(id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "unit",
            id: id.to_owned(),
        })?;
    Ok(Issued { record, secret })
}

/// Disables or re-enables a unit.
pub async fn set_unit_disabled(
    store: &Store,
    id: &str,
    disabled: bool,
    now: Timestamp,
) -> Result<UnitRecord, StoreError> {
    store.set_unit_disabled(id, disabled, now).await?;
    store
        .get_unit(id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "unit",
            id: id.to_owned(),
        })
}

/// Creates an API token; the returned secret is the whole token string `fl_<id>_<secret>`.
pub async fn add_token(
    store: &Store,
    name: &str,
    role: Role,
    now: Timestamp,
) -> Result<Issued<TokenRecord>, StoreError> {
    add_token_with_secret(
        store,
        generate_id("tok"),
        generate_secret(),
        name,
        role,
        now,
    )
    .await
}

/// Creates an API token with an id and secret the caller generated.
pub async fn add_token_with_secret(
    store: &Store,
    id: String,
    secret: String,
    name: &str,
    role: Role,
    now: Timestamp,
) -> Result<Issued<TokenRecord>, StoreError> {
    let record = store
        .create_token(&NewToken {
            id: id.clone(),
            name: name.to_owned(),
            role,
            secret: SecretHash::new(&secret),
            now,
        })
        .await?;
    Ok(Issued {
        record,
        secret: format_token(&id, &secret),
    })
}

/// Upserts a unit from the config file: created when missing, its secret brought in line with
/// the file when present (the file is the source of truth for the secrets it lists).
pub async fn sync_configured_unit(
    store: &Store,
    unit: &crate::config::ConfiguredUnit,
    now: Timestamp,
) -> Result<(), StoreError> {
    let unit_type = unit.unit_type.parse().unwrap_or_default();
    match store.get_unit(&unit.id).await? {
        None => {
            store
                .create_unit(&NewUnit {
                    id: unit.id.clone(),
                    name: if unit.name.is_empty() {
                        unit.id.clone()
                    } else {
                        unit.name.clone()
                    },
                    unit_type,
                    skills: normalise_skills(unit.skills.clone()),
                    secret: SecretHash::new(&unit.secret),
                    seal_key: seal_key(&unit.secret),
                    now,
                })
                .await?;
        }
        Some(existing) => {
            // A unit stored before sealing existed gets its key from the file's secret too.
            if !existing.secret.verify(&unit.secret) || existing.seal_key.is_none() {
                let hash = SecretHash::new(&unit.secret);
                store
                    .set_unit_secret(&unit.id, &hash, &seal_key(&unit.secret), now)
                    .await?;
            }
        }
    }
    Ok(())
}

/// The seal key of a secret, as the store keeps it.
fn seal_key(secret: &str) -> String {
    fieldlink_seal::SealKey::derive(secret).as_text().to_owned()
}

fn normalise_skills(skills: Vec<String>) -> Vec<String> {
    let mut skills: Vec<String> = skills
        .into_iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    skills.sort();
    skills.dedup();
    skills
}

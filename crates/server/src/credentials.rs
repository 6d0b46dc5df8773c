//! Who may connect and who may call the API: an in-memory cache of units and API tokens.
//!
//! The store is the system of record; this cache is rebuilt from it at start and refreshed every
//! few seconds (so `fieldlink units ...` run beside a live server, or another instance, takes
//! effect without a restart), and updated at once by this process's own API calls. What the cache
//! does not know yet is looked for at once: an API token id it has never seen is read from the
//! store ([`Credentials::authenticate_token_fresh`]), and a CONNECT from an unknown unit asks for
//! an early refresh ([`Credentials::refresh_requested`]), so a handset made with the CLI a moment
//! ago gets in on its next try. Checks are
//! synchronous and cheap because the embedded broker asks on every MQTT CONNECT: a reconnect storm
//! of 10k handsets costs 10k SHA-256 computations, not 10k database round trips.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use fieldlink_store::{Role, Store, StoreError, TokenRecord, UnitRecord, parse_token};

/// A caller of the HTTP API, once its token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token id (never the secret).
    pub token_id: String,
    /// The token's name, for logs and journals.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

#[derive(Debug, Default)]
struct Cache {
    units: HashMap<String, UnitRecord>,
    tokens: HashMap<String, TokenRecord>,
    /// Bumped by every `put_*`: a reload that read the store before a put must not replace the
    /// cache with what it read (the put's record would vanish until the next refresh).
    version: u64,
}

/// The credential cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Credentials {
    store: Store,
    cache: Arc<RwLock<Cache>>,
    /// One reload at a time, so an older read never lands after a newer one.
    reloading: Arc<tokio::sync::Mutex<()>>,
    /// Woken by a CONNECT from a unit the cache does not know.
    refresh: Arc<tokio::sync::Notify>,
}

impl Credentials {
    /// Loads every unit and token from the store.
    pub async fn load(store: Store) -> Result<Self, StoreError> {
        let creds = Credentials {
            store,
            cache: Arc::default(),
            reloading: Arc::default(),
            refresh: Arc::default(),
        };
        creds.reload().await?;
        Ok(creds)
    }

    /// Replaces the cache with what the store holds now. A put that lands while the store is
    /// being read makes the reload read again, so its record is never lost.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        loop {
            let seen = self.read().version;
            let units = self.store.list_units().await?;
            let tokens = self.store.list_tokens().await?;
            let mut cache = self.write();
            if cache.version != seen {
                continue;
            }
            cache.units = units.into_iter().map(|u| (u.id.clone(), u)).collect();
            cache.tokens = tokens.into_iter().map(|t| (t.id.clone(), t)).collect();
            return Ok(());
        }
    }

    /// Puts one unit record (after this process changed it in the store).
    pub fn put_unit(&self, unit: UnitRecord) {
        let mut cache = self.write();
        cache.version += 1;
        cache.units.insert(unit.id.clone(), unit);
    }

    /// The unit's record, if known.
    pub fn unit(&self, id: &str) -> Option<UnitRecord> {
        self.read().units.get(id).cloned()
    }

    /// Every known unit, sorted by id.
    pub fn units(&self) -> Vec<UnitRecord> {
        let mut all: Vec<_> = self.read().units.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// True when the unit exists and is not disabled.
    pub fn unit_active(&self, id: &str) -> bool {
        self.read().units.get(id).is_some_and(|u| !u.disabled)
    }

    /// The seal key of an enabled unit (`None` when unknown, disabled, or registered before
    /// sealing and not re-keyed since). Looked up for every sealed message, so disabling a
    /// unit or rotating its secret takes effect on its next message.
    pub fn seal_key(&self, id: &str) -> Option<fieldlink_seal::SealKey> {
        let cache = self.read();
        let unit = cache.units.get(id).filter(|u| !u.disabled)?;
        fieldlink_seal::SealKey::from_text(unit.seal_key.as_deref()?).ok()
    }

    /// The MQTT CONNECT rule for handsets: client id, username and unit id are the same, the unit
    /// exists and is enabled, and the password is its secret.
    pub fn authenticate_handset(&self, client_id: &str, username: &str, password: &str) -> bool {
        if client_id != username {
            return false;
        }
        let cache = self.read();
        match cache.units.get(username) {
            Some(u) => !u.disabled && u.secret.verify(password),
            None => {
                // Perhaps made a moment ago beside this server: look again soon.
                self.refresh.notify_one();
                false
            }
        }
    }

    /// Resolves when a refresh was asked for (by a CONNECT from an unknown unit) since the last
    /// call; the refresh task reloads then, at most once a second.
    pub async fn refresh_requested(&self) {
        self.refresh.notified().await;
    }

    /// Checks an API token (`fl_<id>_<secret>`).
    pub fn authenticate_token(&self, token: &str) -> Option<Caller> {
        let (id, secret) = parse_token(token)?;
        let cache = self.read();
        let record = cache.tokens.get(id)?;
        (!record.revoked && record.secret.verify(secret)).then(|| Caller {
            token_id: record.id.clone(),
            name: record.name.clone(),
            role: record.role,
        })
    }

    /// [`Credentials::authenticate_token`], but a token id the cache has never seen (made by
    /// `fieldlink tokens add` beside this server a moment ago) is read from the store first, so
    /// a new token works at once. A known token that is revoked or wrong costs no query.
    pub async fn authenticate_token_fresh(&self, token: &str) -> Option<Caller> {
        if let Some(caller) = self.authenticate_token(token) {
            return Some(caller);
        }
        let (id, _) = parse_token(token)?;
        if self.read().tokens.contains_key(id) {
            return None;
        }
        match self.store.get_token(id).await {
            Ok(Some(record)) => {
                self.put_token(record);
                self.authenticate_token(token)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not look up an API token in the store; refused");
                None
            }
        }
    }

    /// Puts one token record (after this process created or revoked it).
    pub fn put_token(&self, token: TokenRecord) {
        let mut cache = self.write();
        cache.version += 1;
        cache.tokens.insert(token.id.clone(), token);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }
}

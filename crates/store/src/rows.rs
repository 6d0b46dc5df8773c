//! How records map to columns: the raw rows both backends read, and their checked conversion
//! into the public records of `model.rs`.
//!
//! The column lists live here, next to the structs they must match, so the SQL in `units.rs` and
//! `positions.rs` is written once for both backends.

use fieldlink_clock::Timestamp;

use crate::{
    PositionRow, Role, SecretHash, StoreError, TokenRecord, TrackRow, UnitRecord, ZoneKind,
    ZoneRecord,
};

// The column lists are macros, not consts, so that `concat!` can build whole `&'static str`
// queries from them.

/// Columns of `units`, in [`UnitRaw`] order.
macro_rules! unit_columns {
    () => {
        "id, name, unit_type, skills, secret_salt, secret_hash, seal_key, disabled, created_at, \
         updated_at"
    };
}
pub(crate) use unit_columns;

/// Columns of `api_tokens`, in [`TokenRaw`] order.
macro_rules! token_columns {
    () => {
        "id, name, role, secret_salt, secret_hash, created_at, revoked_at"
    };
}
pub(crate) use token_columns;

/// Columns of `latest_positions` (and the first columns of `track`), in [`PositionRaw`] order.
macro_rules! position_columns {
    () => {
        "unit, fix_time, received_at, lat, lon, alt_m, accuracy_m, speed_mps, heading_deg, \
         battery_pct, source"
    };
}
pub(crate) use position_columns;

/// Columns of `zones`, in [`ZoneRaw`] order.
macro_rules! zone_columns {
    () => {
        "id, kind, name, geometry, radius_m, members, created_at, updated_at, alarm_on"
    };
}
pub(crate) use zone_columns;

/// A `units` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct UnitRaw {
    id: String,
    name: String,
    unit_type: String,
    skills: String,
    secret_salt: String,
    secret_hash: String,
    seal_key: Option<String>,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UnitRaw> for UnitRecord {
    type Error = StoreError;
    fn try_from(r: UnitRaw) -> Result<Self, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: "unit",
            id: r.id.clone(),
            detail,
        };
        let unit_type = r.unit_type.parse().map_err(|e| corrupt(format!("{e}")))?;
        let skills = serde_json::from_str(&r.skills)
            .map_err(|e| corrupt(format!("skills are not a JSON list of strings: {e}")))?;
        let secret = SecretHash::from_hex(&r.secret_salt, &r.secret_hash)
            .ok_or_else(|| corrupt("secret hash is not valid hex".into()))?;
        Ok(UnitRecord {
            id: r.id,
            name: r.name,
            unit_type,
            skills,
            secret,
            seal_key: r.seal_key,
            disabled: r.disabled,
            created_at: Timestamp::from_millis(r.created_at),
            updated_at: Timestamp::from_millis(r.updated_at),
        })
    }
}

/// An `api_tokens` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRaw {
    id: String,
    name: String,
    role: String,
    secret_salt: String,
    secret_hash: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenRaw> for TokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRaw) -> Result<Self, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: "API token",
            id: r.id.clone(),
            detail,
        };
        let role: Role = r.role.parse().map_err(|e| corrupt(format!("{e}")))?;
        let secret = SecretHash::from_hex(&r.secret_salt, &r.secret_hash)
            .ok_or_else(|| corrupt("secret hash is not valid hex".into()))?;
        Ok(TokenRecord {
            id: r.id,
            name: r.name,
            role,
            secret,
            created_at: Timestamp::from_millis(r.created_at),
            revoked: r.revoked_at.is_some(),
        })
    }
}

/// A `latest_positions` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct PositionRaw {
    unit: String,
    fix_time: i64,
    received_at: i64,
    lat: f64,
    lon: f64,
    alt_m: Option<f64>,
    accuracy_m: Option<f32>,
    speed_mps: Option<f32>,
    heading_deg: Option<f32>,
    battery_pct: Option<f32>,
    source: String,
}

impl From<PositionRaw> for PositionRow {
    fn from(r: PositionRaw) -> Self {
        PositionRow {
            unit: r.unit,
            fix_time: Timestamp::from_millis(r.fix_time),
            received_at: Timestamp::from_millis(r.received_at),
            lat: r.lat,
            lon: r.lon,
            alt_m: r.alt_m,
            accuracy_m: r.accuracy_m,
            speed_mps: r.speed_mps,
            heading_deg: r.heading_deg,
            battery_pct: r.battery_pct,
            source: r.source,
        }
    }
}

/// A `track` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct TrackRaw {
    #[sqlx(flatten)]
    pos: PositionRaw,
    flag: Option<String>,
}

impl From<TrackRaw> for TrackRow {
    fn from(r: TrackRaw) -> Self {
        let p = PositionRow::from(r.pos);
        TrackRow {
            unit: p.unit,
            fix_time: p.fix_time,
            received_at: p.received_at,
            lat: p.lat,
            lon: p.lon,
            alt_m: p.alt_m,
            accuracy_m: p.accuracy_m,
            speed_mps: p.speed_mps,
            heading_deg: p.heading_deg,
            battery_pct: p.battery_pct,
            source: p.source,
            flag: r.flag,
        }
    }
}

/// A `zones` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct ZoneRaw {
    id: String,
    kind: String,
    name: String,
    geometry: String,
    radius_m: Option<f64>,
    members: String,
    created_at: i64,
    updated_at: i64,
    alarm_on: Option<String>,
}

impl TryFrom<ZoneRaw> for ZoneRecord {
    type Error = StoreError;
    fn try_from(r: ZoneRaw) -> Result<Self, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: "zone",
            id: r.id.clone(),
            detail,
        };
        let kind: ZoneKind = r.kind.parse().map_err(|e| corrupt(format!("{e}")))?;
        let members = serde_json::from_str(&r.members)
            .map_err(|e| corrupt(format!("members are not a JSON list of strings: {e}")))?;
        Ok(ZoneRecord {
            id: r.id,
            kind,
            name: r.name,
            geometry: r.geometry,
            radius_m: r.radius_m,
            members,
            created_at: Timestamp::from_millis(r.created_at),
            updated_at: Timestamp::from_millis(r.updated_at),
            alarm_on: r.alarm_on,
        })
    }
}

//! The records the store keeps, as the rest of fieldlink sees them.
//!
//! Plain data with no I/O. How they map to columns is in `rows.rs`; what they mean to dispatch
//! and location is those crates' business.

use std::fmt;
use std::str::FromStr;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::SecretHash;

/// How a responder moves: dispatch uses it for travel-time estimates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitType {
    /// On foot.
    #[default]
    OnFoot,
    /// Electric bicycle.
    EBike,
    /// Motorcycle.
    Motorcycle,
    /// Car.
    Car,
    /// Anything else.
    Other,
}

impl UnitType {
    /// Every unit type, in declaration order.
    pub const ALL: [UnitType; 5] = [
        UnitType::OnFoot,
        UnitType::EBike,
        UnitType::Motorcycle,
        UnitType::Car,
        UnitType::Other,
    ];

    /// The name used in JSON, config and the database: `on_foot`, `e_bike`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            UnitType::OnFoot => "on_foot",
            UnitType::EBike => "e_bike",
            UnitType::Motorcycle => "motorcycle",
            UnitType::Car => "car",
            UnitType::Other => "other",
        }
    }
}

impl fmt::Display for UnitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnitType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnitType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName::new("unit type", s, &UnitType::ALL.map(UnitType::as_str)))
    }
}

/// What an API token may do. Each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including managing units and tokens.
    Admin,
    /// Create and steer incidents and work orders.
    Dispatcher,
    /// Read only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Dispatcher, Role::Viewer];

    /// The name used in JSON, config and the database: `admin`, `dispatcher`, `viewer`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dispatcher => "dispatcher",
            Role::Viewer => "viewer",
        }
    }

    const fn rank(self) -> u8 {
        match self {
            Role::Admin => 2,
            Role::Dispatcher => 1,
            Role::Viewer => 0,
        }
    }

    /// Whether a holder of this role may do what `needed` is required for
    /// (admin ⊇ dispatcher ⊇ viewer).
    pub const fn allows(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownName::new("role", s, &Role::ALL.map(Role::as_str)))
    }
}

/// What a stored area is: a grid of the street's division of labour or any other geofence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    /// A venue, a checkpoint, an incident's scene.
    Geofence,
    /// A grid (网格): an area of responsibility responders belong to.
    Grid,
}

impl ZoneKind {
    /// Both kinds.
    pub const ALL: [ZoneKind; 2] = [ZoneKind::Geofence, ZoneKind::Grid];

    /// The name used in JSON and the database: `geofence`, `grid`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ZoneKind::Geofence => "geofence",
            ZoneKind::Grid => "grid",
        }
    }
}

impl fmt::Display for ZoneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ZoneKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ZoneKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName::new("zone kind", s, &ZoneKind::ALL.map(ZoneKind::as_str)))
    }
}

/// A name that is not one of an enum's names; says which ones would have been accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    kind: &'static str,
    got: String,
    expected: String,
}

impl UnknownName {
    fn new(kind: &'static str, got: &str, expected: &[&str]) -> Self {
        UnknownName {
            kind,
            got: got.to_owned(),
            expected: expected.join(", "),
        }
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} \"{}\" (expected one of: {})",
            self.kind, self.got, self.expected
        )
    }
}

impl std::error::Error for UnknownName {}

/// A responder handset to register.
#[derive(Clone, Debug, PartialEq)]
pub struct NewUnit {
    /// Unique id; also the MQTT username and the `{unit}` of its topics.
    pub id: String,
    /// Display name (call sign).
    pub name: String,
    /// How it moves.
    pub unit_type: UnitType,
    /// Free-form skills dispatch can match on ("first_aid", "ladder").
    pub skills: Vec<String>,
    /// Hash of the handset's secret.
    pub secret: SecretHash,
    /// The key its payloads are sealed with on the embedded broker, derived from the secret
    /// (`fieldlink_seal::SealKey::derive`; docs/security.md).
    pub seal_key: String,
    /// Creation time; becomes `created_at` and `updated_at`.
    pub now: Timestamp,
}

/// A registered responder handset.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitRecord {
    /// Unique id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// How it moves.
    pub unit_type: UnitType,
    /// Skills, in the order given.
    pub skills: Vec<String>,
    /// Hash of the current secret.
    pub secret: SecretHash,
    /// The key derived from the current secret; `None` for a unit registered before sealing,
    /// until its secret is rotated.
    pub seal_key: Option<String>,
    /// A disabled unit may not connect.
    pub disabled: bool,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it was last changed (disabled, enabled, secret rotated).
    pub updated_at: Timestamp,
}

/// An API token to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewToken {
    /// Unique id (see [`crate::generate_id`]).
    pub id: String,
    /// What it is for ("wall display", "ops laptop").
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hash of its secret.
    pub secret: SecretHash,
    /// Creation time.
    pub now: Timestamp,
}

/// A stored API token.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRecord {
    /// Unique id.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hash of its secret.
    pub secret: SecretHash,
    /// When it was created.
    pub created_at: Timestamp,
    /// A revoked token authenticates nobody. Revocation is permanent.
    pub revoked: bool,
}

/// A geofence or grid as stored. The store keeps the geometry as text and does not read it:
/// what the shape means is the location crate's business.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneRecord {
    /// Unique across geofences and grids.
    pub id: String,
    /// Geofence or grid.
    pub kind: ZoneKind,
    /// What the command room calls it.
    pub name: String,
    /// A GeoJSON geometry object (WGS-84) as JSON text: Polygon, MultiPolygon, or Point for a
    /// circle.
    pub geometry: String,
    /// The circle's radius in metres when `geometry` is a Point; `None` otherwise.
    pub radius_m: Option<f64>,
    /// Unit ids; for a grid, the responders who belong to it.
    pub members: Vec<String>,
    /// When it was first stored (kept when it is replaced).
    pub created_at: Timestamp,
    /// When it was last stored.
    pub updated_at: Timestamp,
    /// Geofences only: which crossings raise an alarm (`enter`, `exit` or `both`); the server
    /// checks the value. `None`: no alarm.
    pub alarm_on: Option<String>,
}

/// The latest known position of one unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PositionRow {
    /// Unit id.
    pub unit: String,
    /// When the handset took the fix (its clock).
    pub fix_time: Timestamp,
    /// When the server received it (server clock).
    pub received_at: Timestamp,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
    /// Altitude, metres.
    pub alt_m: Option<f64>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f32>,
    /// Ground speed, metres per second.
    pub speed_mps: Option<f32>,
    /// Course over ground, degrees from north.
    pub heading_deg: Option<f32>,
    /// Handset battery, percent.
    pub battery_pct: Option<f32>,
    /// Where it came from ("gps", "owntracks", "sim").
    pub source: String,
}

/// One fix of a unit's track history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackRow {
    /// Unit id.
    pub unit: String,
    /// When the handset took the fix (its clock).
    pub fix_time: Timestamp,
    /// When the server received it (server clock).
    pub received_at: Timestamp,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
    /// Altitude, metres.
    pub alt_m: Option<f64>,
    /// Horizontal accuracy, metres.
    pub accuracy_m: Option<f32>,
    /// Ground speed, metres per second.
    pub speed_mps: Option<f32>,
    /// Course over ground, degrees from north.
    pub heading_deg: Option<f32>,
    /// Handset battery, percent.
    pub battery_pct: Option<f32>,
    /// Where it came from ("gps", "owntracks", "sim").
    pub source: String,
    /// Why the location filter rejected this fix ("jump", "inaccurate"); `None` when accepted.
    pub flag: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in UnitType::ALL {
            assert_eq!(t.to_string().parse::<UnitType>(), Ok(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
        for r in Role::ALL {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(UnitType::EBike.as_str(), "e_bike");
        assert_eq!(UnitType::default(), UnitType::OnFoot);
        for k in ZoneKind::ALL {
            assert_eq!(k.to_string().parse::<ZoneKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert!("fence".parse::<ZoneKind>().is_err());
        let err = "bus".parse::<UnitType>().unwrap_err().to_string();
        assert!(err.contains("bus") && err.contains("on_foot"), "{err}");
    }

    #[test]
    fn roles_nest() {
        use Role::*;
        assert!(Admin.allows(Admin) && Admin.allows(Dispatcher) && Admin.allows(Viewer));
        assert!(!Dispatcher.allows(Admin) && Dispatcher.allows(Dispatcher));
        assert!(Dispatcher.allows(Viewer));
        assert!(!Viewer.allows(Dispatcher) && Viewer.allows(Viewer));
    }
}

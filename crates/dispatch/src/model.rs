//! The records dispatch reasons about: ids, actors, incidents and their reinforcement requests.
//!
//! Plain data, serde-serializable, no behaviour beyond small accessors. Work orders live in
//! `order.rs`, responders in `status.rs`, alarms in `alarm.rs`. The names of kinds and priorities
//! match `proto/fieldlink/v1/common.proto` (`IncidentKind`, `Priority`) in `snake_case`.

use std::fmt;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A responder's unit id (the handset's identity).
    UnitId
);
id_type!(
    /// An incident's id, chosen by the caller's [`IdGen`](crate::IdGen).
    IncidentId
);
id_type!(
    /// A work order's id, chosen by the caller's [`IdGen`](crate::IdGen).
    OrderId
);
id_type!(
    /// An alarm's id, chosen by the caller's [`IdGen`](crate::IdGen).
    AlarmId
);

/// Who caused a state change: every journal event names one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Actor {
    /// A named dispatcher in the command room.
    Dispatcher(String),
    /// A responder, through its handset.
    Unit(UnitId),
    /// fieldlink itself, naming the rule that fired (`accept_timeout`, `gps_arrival`, ...).
    System(String),
}

impl Actor {
    /// A system actor for `rule`.
    pub fn system(rule: &str) -> Self {
        Actor::System(rule.to_owned())
    }

    /// A dispatcher actor.
    pub fn dispatcher(name: &str) -> Self {
        Actor::Dispatcher(name.to_owned())
    }

    /// `dispatcher:NAME`, `unit:ID` or `system:RULE`, as reports print it.
    pub fn label(&self) -> String {
        match self {
            Actor::Dispatcher(n) => format!("dispatcher:{n}"),
            Actor::Unit(u) => format!("unit:{u}"),
            Actor::System(r) => format!("system:{r}"),
        }
    }
}

/// A WGS-84 point, degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

impl LatLon {
    /// Great-circle distance to `other`, metres.
    pub fn distance_m(self, other: LatLon) -> f64 {
        fieldlink_location::haversine_m(self.lat, self.lon, other.lat, other.lon)
    }
}

/// What happened (proto `IncidentKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// A missing person.
    LostPerson,
    /// Water where it should not be.
    Flooding,
    /// People in a quarrel.
    Dispute,
    /// Fire.
    Fire,
    /// A road incident.
    Traffic,
    /// Someone needs medical help.
    Medical,
    /// Anything else (SOS incidents use this kind).
    Other,
}

impl IncidentKind {
    /// The `snake_case` name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::LostPerson => "lost_person",
            IncidentKind::Flooding => "flooding",
            IncidentKind::Dispute => "dispute",
            IncidentKind::Fire => "fire",
            IncidentKind::Traffic => "traffic",
            IncidentKind::Medical => "medical",
            IncidentKind::Other => "other",
        }
    }
}

/// Urgency (proto `Priority`); the 1/3/5 targets are configurable per priority.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Low.
    Low,
    /// Normal.
    #[default]
    Normal,
    /// High.
    High,
    /// SOS and life at risk.
    Critical,
}

/// Where an incident came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "unit", rename_all = "snake_case")]
pub enum IncidentSource {
    /// Entered in the command room.
    CommandRoom,
    /// A field report from a handset.
    FieldReport(UnitId),
    /// An SOS from a handset.
    Sos(UnitId),
}

/// What the caller supplies to create an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewIncident {
    /// The client's request id: the same id creates nothing twice.
    pub request_id: Option<String>,
    /// What happened.
    pub kind: IncidentKind,
    /// How urgent.
    pub priority: Priority,
    /// Where; arrival by GPS needs it.
    pub location: Option<LatLon>,
    /// The grid (网格) it lies in, when known: dispatch prefers responders of the same grid.
    pub grid: Option<String>,
    /// Free text.
    pub description: String,
    /// Where it came from.
    pub source: IncidentSource,
}

/// Open, or closed by a named dispatcher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IncidentState {
    /// Being handled.
    Open,
    /// Closed; no more orders or timers.
    Closed {
        /// Who closed it.
        by: Actor,
        /// When.
        at: Timestamp,
    },
}

/// A reinforcement request and whether it was met.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reinforcement {
    /// 1, 2, ... within the incident.
    pub seq: u32,
    /// When it was asked for: the 5-minute clock starts here.
    pub requested_at: Timestamp,
    /// Who asked.
    pub by: Actor,
    /// When the first reinforcing responder arrived.
    pub on_scene_at: Option<Timestamp>,
}

/// An incident and the facts the 1/3/5 rules are measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// What the caller asked for.
    #[serde(flatten)]
    pub spec: NewIncident,
    /// When it was created: response and arrival run from here.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: Actor,
    /// Open or closed.
    pub state: IncidentState,
    /// Its work orders, oldest first.
    pub orders: Vec<OrderId>,
    /// When the first order was accepted.
    pub first_accepted_at: Option<Timestamp>,
    /// When the first responder was on scene.
    pub first_on_scene_at: Option<Timestamp>,
    /// Reinforcement requests, oldest first.
    pub reinforcements: Vec<Reinforcement>,
}

impl Incident {
    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.state == IncidentState::Open
    }
}

//! Responders as the command room sees them, and the candidates a caller offers for dispatch.
//!
//! Status follows Resgrid's unit states: available, committed, responding, on scene, on break,
//! out of service, offline. It is derived, never stored: from presence, from the duty status the
//! handset reports, and from the state of the responder's current order. Only available responders
//! (which implies online) are dispatched. Positions are not owned here: the caller's location
//! tracker ranks [`Candidate`]s and feeds fixes in.

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{LatLon, OrderId, UnitId};
use crate::order::OrderState;

/// A responder's own statement of availability (proto `DutyStatus`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DutyStatus {
    /// Working and ready.
    #[default]
    OnDuty,
    /// On a break.
    OnBreak,
    /// Not working.
    OffDuty,
    /// Cannot work (equipment, vehicle, ...).
    OutOfService,
}

impl DutyStatus {
    /// The `snake_case` name.
    pub fn as_str(self) -> &'static str {
        match self {
            DutyStatus::OnDuty => "on_duty",
            DutyStatus::OnBreak => "on_break",
            DutyStatus::OffDuty => "off_duty",
            DutyStatus::OutOfService => "out_of_service",
        }
    }
}

/// What the command room sees (after Resgrid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponderStatus {
    /// Online, on duty, no order: may be dispatched.
    Available,
    /// Holds an order not yet en route (dispatched, delivered or accepted).
    Committed,
    /// En route.
    Responding,
    /// On scene.
    OnScene,
    /// On a break.
    OnBreak,
    /// Off duty or out of service.
    OutOfService,
    /// Handset not connected.
    Offline,
}

impl ResponderStatus {
    /// The name the API and the journal use: `available`, `on_scene`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            ResponderStatus::Available => "available",
            ResponderStatus::Committed => "committed",
            ResponderStatus::Responding => "responding",
            ResponderStatus::OnScene => "on_scene",
            ResponderStatus::OnBreak => "on_break",
            ResponderStatus::OutOfService => "out_of_service",
            ResponderStatus::Offline => "offline",
        }
    }
}

/// One responder's dispatch-relevant state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Responder {
    /// Its unit id.
    pub unit: UnitId,
    /// Last duty status from the handset (on duty until told otherwise).
    pub duty: DutyStatus,
    /// Presence.
    pub online: bool,
    /// The live order it holds, if any (one at a time: only available units are dispatched).
    pub order: Option<OrderId>,
    /// Last GPS fix seen by dispatch, and when: an SOS is placed here.
    pub last_fix: Option<(LatLon, Timestamp)>,
}

impl Responder {
    /// A responder never heard of before: on duty, offline, free.
    pub fn new(unit: UnitId) -> Self {
        Responder {
            unit,
            duty: DutyStatus::OnDuty,
            online: false,
            order: None,
            last_fix: None,
        }
    }

    /// Same duty, presence and current order (the record that is persisted; the last fix is a
    /// cache of the location tracker's).
    pub fn same_record(&self, other: &Responder) -> bool {
        self.duty == other.duty && self.online == other.online && self.order == other.order
    }

    /// The status, given the state of its current order (if it holds one).
    ///
    /// Precedence: offline, then the order (a responder on a job stays on it whatever the duty
    /// button says), then duty status, then available.
    pub fn status(&self, order_state: Option<OrderState>) -> ResponderStatus {
        if !self.online {
            return ResponderStatus::Offline;
        }
        match order_state {
            Some(OrderState::EnRoute) => return ResponderStatus::Responding,
            Some(OrderState::OnScene) => return ResponderStatus::OnScene,
            Some(s) if !s.is_terminal() => return ResponderStatus::Committed,
            _ => {}
        }
        match self.duty {
            DutyStatus::OnDuty => ResponderStatus::Available,
            DutyStatus::OnBreak => ResponderStatus::OnBreak,
            DutyStatus::OffDuty | DutyStatus::OutOfService => ResponderStatus::OutOfService,
        }
    }
}

/// A responder the caller offers for an incident, ranked by the caller (nearest first).
///
/// The core filters by availability and skills and prefers the incident's grid, keeping the
/// caller's order within each group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The unit.
    pub unit: UnitId,
    /// Distance to the incident, metres.
    pub distance_m: f64,
    /// `on_foot`, `e_bike`, `motorcycle`, `car` or `other` (the store's `UnitType` names).
    pub unit_type: String,
    /// Skills the responder holds (`first_aid`, ...).
    pub skills: Vec<String>,
    /// The grid the responder belongs to.
    pub grid: Option<String>,
}

/// A ranked candidate with an estimated time of arrival, for "recommend".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The candidate.
    pub candidate: Candidate,
    /// Estimated travel time, seconds (distance × detour factor ÷ the unit type's speed).
    pub eta_s: f64,
    /// Whether the candidate is in the incident's grid.
    pub same_grid: bool,
}

//! Work orders: one per assigned responder, and the table of legal state changes.
//!
//! The state names match proto `OrderState` exactly (`snake_case` here, `ORDER_STATE_*` there).
//! This module owns the table; `desk` applies it and journals every change.

use std::collections::BTreeSet;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Actor, IncidentId, IncidentKind, LatLon, OrderId, Priority, UnitId};

/// The life of a work order (proto `OrderState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Written, not yet sent.
    Created,
    /// Sent to the handset, no receipt yet.
    Dispatched,
    /// The handset received it.
    Delivered,
    /// The responder took it.
    Accepted,
    /// The responder declined it.
    Rejected,
    /// The responder is on the way.
    EnRoute,
    /// The responder arrived (reported, or detected from GPS).
    OnScene,
    /// The responder finished the work.
    Resolved,
    /// Withdrawn by the command room.
    Cancelled,
    /// Moved to another responder (acceptance timeout).
    Reassigned,
}

impl OrderState {
    /// Every state, in proto order.
    pub const ALL: [OrderState; 10] = [
        OrderState::Created,
        OrderState::Dispatched,
        OrderState::Delivered,
        OrderState::Accepted,
        OrderState::Rejected,
        OrderState::EnRoute,
        OrderState::OnScene,
        OrderState::Resolved,
        OrderState::Cancelled,
        OrderState::Reassigned,
    ];

    /// The states a handset may report in a receipt.
    pub const RECEIPTS: [OrderState; 6] = [
        OrderState::Delivered,
        OrderState::Accepted,
        OrderState::Rejected,
        OrderState::EnRoute,
        OrderState::OnScene,
        OrderState::Resolved,
    ];

    /// Whether `self -> to` is a legal transition.
    ///
    /// Forward only; acceptance is required before en route or on scene, on scene before
    /// resolved. Delivered may be skipped (an accept implies delivery). Cancel is possible from
    /// every live state; reassignment only before acceptance.
    pub fn can_become(self, to: OrderState) -> bool {
        use OrderState::*;
        matches!(
            (self, to),
            (Created, Dispatched | Cancelled)
                | (
                    Dispatched,
                    Delivered | Accepted | Rejected | Cancelled | Reassigned
                )
                | (Delivered, Accepted | Rejected | Cancelled | Reassigned)
                | (Accepted, EnRoute | OnScene | Cancelled)
                | (EnRoute, OnScene | Cancelled)
                | (OnScene, Resolved | Cancelled)
        )
    }

    /// No transition leaves this state.
    pub fn is_terminal(self) -> bool {
        use OrderState::*;
        matches!(self, Rejected | Resolved | Cancelled | Reassigned)
    }

    /// Sent and not yet accepted: the acceptance timeout applies.
    pub fn awaits_acceptance(self) -> bool {
        matches!(self, OrderState::Dispatched | OrderState::Delivered)
    }

    /// The `snake_case` name.
    pub fn as_str(self) -> &'static str {
        use OrderState::*;
        match self {
            Created => "created",
            Dispatched => "dispatched",
            Delivered => "delivered",
            Accepted => "accepted",
            Rejected => "rejected",
            EnRoute => "en_route",
            OnScene => "on_scene",
            Resolved => "resolved",
            Cancelled => "cancelled",
            Reassigned => "reassigned",
        }
    }
}

/// A work order: one responder's part in an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// The incident it serves.
    pub incident: IncidentId,
    /// The responder it is for.
    pub unit: UnitId,
    /// Where it stands.
    pub state: OrderState,
    /// Who dispatched it (a dispatcher, or the system rule that chose the unit).
    pub dispatched_by: Actor,
    /// When it was created and sent.
    pub created_at: Timestamp,
    /// The reinforcement request it answers, if any.
    pub reinforcement: Option<u32>,
    /// When it was accepted.
    pub accepted_at: Option<Timestamp>,
    /// When its responder was on scene.
    pub on_scene_at: Option<Timestamp>,
    /// When it reached a terminal state.
    pub ended_at: Option<Timestamp>,
    /// The unit it went to on reassignment.
    pub reassigned_to: Option<UnitId>,
    /// Times it was re-sent for want of a receipt.
    pub resends: u32,
    /// Consecutive GPS fixes inside the arrival radius.
    pub inside_fixes: u32,
    /// Receipt states already applied: a repeated receipt is a no-op.
    pub receipts: BTreeSet<OrderState>,
}

/// What the handset is sent: the order and what it needs to know about the incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderMessage {
    /// The order.
    pub order_id: OrderId,
    /// Its incident.
    pub incident_id: IncidentId,
    /// What happened.
    pub kind: IncidentKind,
    /// How urgent.
    pub priority: Priority,
    /// Where.
    pub location: Option<LatLon>,
    /// Free text.
    pub description: String,
    /// Whether this is a reinforcement.
    pub reinforcement: bool,
    /// The order's state when this was sent.
    pub state: OrderState,
}

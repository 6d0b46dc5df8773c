//! What a command produces: journal events (facts, with their actor) and effects (messages to
//! send), bundled in an [`Outcome`]; and alarms, which are both.
//!
//! The store appends the events as JSON and gives them sequence numbers; the adapters carry out
//! the effects (MQTT downlink, consoles). Effects are written to the outbox in the same
//! transaction as the events, so an order the API acknowledged is never lost.

use std::collections::BTreeSet;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::alarm::Alarm;
use crate::model::{Actor, AlarmId, Incident, IncidentId, OrderId, UnitId};
use crate::order::{Order, OrderMessage, OrderState};
use crate::status::ResponderStatus;
use crate::timers::Timer;

/// What changed. Every variant is one state change of an incident, order, alarm or responder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// An incident was created (its full record).
    IncidentCreated {
        /// The incident.
        incident: Box<Incident>,
    },
    /// No fitting responder: the incident waits in the queue.
    IncidentQueued {
        /// The incident.
        incident: IncidentId,
    },
    /// The incident left the queue (dispatched or closed).
    IncidentDequeued {
        /// The incident.
        incident: IncidentId,
    },
    /// Reinforcement was requested; the 5-minute clock starts.
    ReinforcementRequested {
        /// The incident.
        incident: IncidentId,
        /// The request's number within the incident.
        seq: u32,
    },
    /// The incident was closed.
    IncidentClosed {
        /// The incident.
        incident: IncidentId,
    },
    /// An order was created (its full record, state `created`).
    OrderCreated {
        /// The order.
        order: Box<Order>,
    },
    /// An order changed state.
    OrderState {
        /// The order.
        order: OrderId,
        /// Its incident.
        incident: IncidentId,
        /// Its unit.
        unit: UnitId,
        /// Before.
        from: OrderState,
        /// After.
        to: OrderState,
    },
    /// An alarm was raised (its full record).
    AlarmRaised {
        /// The alarm.
        alarm: Box<Alarm>,
    },
    /// An alarm was acknowledged.
    AlarmAcknowledged {
        /// The alarm.
        alarm: AlarmId,
    },
    /// An alarm was resolved.
    AlarmResolved {
        /// The alarm.
        alarm: AlarmId,
    },
    /// A responder's status changed.
    ResponderStatus {
        /// The unit.
        unit: UnitId,
        /// Before.
        from: ResponderStatus,
        /// After.
        to: ResponderStatus,
    },
}

/// One journal entry. The store adds the sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What.
    #[serde(flatten)]
    pub change: Change,
}

/// A message for an adapter to deliver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Send (or re-send) an order to the unit's handset (MQTT QoS 1 downlink).
    SendOrder {
        /// The unit.
        unit: UnitId,
        /// The order as the handset sees it.
        order: OrderMessage,
        /// 0 for the first send, then 1, 2, ... for re-sends.
        attempt: u32,
    },
    /// Tell a handset its order is withdrawn.
    SendCancel {
        /// The unit.
        unit: UnitId,
        /// The order.
        order_id: OrderId,
        /// Why, as text for the responder.
        reason: String,
    },
    /// Tell a handset its order went to someone else (a cancel that names the new unit).
    SendReassigned {
        /// The old unit.
        unit: UnitId,
        /// The old order.
        order_id: OrderId,
        /// The unit that has it now.
        to_unit: UnitId,
    },
    /// Show a new alarm on every console.
    RaiseAlarm {
        /// The alarm.
        alarm: Alarm,
    },
    /// Remind every console of an unacknowledged alarm.
    NotifyAlarm {
        /// The alarm.
        alarm: Alarm,
    },
}

/// The records an [`Outcome`] changed, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Incidents.
    pub incidents: BTreeSet<IncidentId>,
    /// Work orders.
    pub orders: BTreeSet<OrderId>,
    /// Alarms.
    pub alarms: BTreeSet<AlarmId>,
    /// Responders whose status changed.
    pub units: BTreeSet<UnitId>,
}

/// What one command produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Journal events, in order.
    pub events: Vec<JournalEvent>,
    /// Messages to send, in order.
    pub effects: Vec<Effect>,
    /// Timers armed or re-armed (by [`TimerKind::id`](crate::TimerKind::id)), to persist with
    /// their absolute deadlines.
    pub timers_set: Vec<Timer>,
    /// Ids of timers fired or no longer needed. Apply before `timers_set`.
    pub timers_cleared: Vec<String>,
}

impl Outcome {
    /// Nothing happened (a replay, or no timer due).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.effects.is_empty()
            && self.timers_set.is_empty()
            && self.timers_cleared.is_empty()
    }

    /// The incidents, orders, alarms and units whose records this outcome changed: the
    /// snapshots the store rewrites alongside the events.
    pub fn touched(&self) -> Touched {
        let mut t = Touched::default();
        for e in &self.events {
            match &e.change {
                Change::IncidentCreated { incident } => {
                    t.incidents.insert(incident.id.clone());
                }
                Change::IncidentQueued { incident }
                | Change::IncidentDequeued { incident }
                | Change::IncidentClosed { incident }
                | Change::ReinforcementRequested { incident, .. } => {
                    t.incidents.insert(incident.clone());
                }
                Change::OrderCreated { order } => {
                    t.orders.insert(order.id.clone());
                    t.incidents.insert(order.incident.clone());
                }
                Change::OrderState {
                    order, incident, ..
                } => {
                    t.orders.insert(order.clone());
                    t.incidents.insert(incident.clone());
                }
                Change::AlarmRaised { alarm } => {
                    t.alarms.insert(alarm.id.clone());
                }
                Change::AlarmAcknowledged { alarm } | Change::AlarmResolved { alarm } => {
                    t.alarms.insert(alarm.clone());
                }
                Change::ResponderStatus { unit, .. } => {
                    t.units.insert(unit.clone());
                }
            }
        }
        t
    }

    pub(crate) fn event(&mut self, at: Timestamp, actor: &Actor, change: Change) {
        self.events.push(JournalEvent {
            at,
            actor: actor.clone(),
            change,
        });
    }
}

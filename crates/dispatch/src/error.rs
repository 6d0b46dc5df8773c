//! [`DispatchError`]: why a command was refused. A refused command changes nothing.

use thiserror::Error;

use crate::model::{AlarmId, IncidentId, OrderId, UnitId};
use crate::order::OrderState;
use crate::status::ResponderStatus;

/// Why the dispatch core refused a command. Each variant carries what the caller needs to answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DispatchError {
    /// No such incident.
    #[error("unknown incident {0}")]
    UnknownIncident(IncidentId),
    /// No such order.
    #[error("unknown order {0}")]
    UnknownOrder(OrderId),
    /// No such alarm.
    #[error("unknown alarm {0}")]
    UnknownAlarm(AlarmId),
    /// The order cannot go from `from` to `to` (e.g. accepting a cancelled order).
    #[error("order {order} cannot go from {} to {}", from.as_str(), to.as_str())]
    IllegalTransition {
        /// The order.
        order: OrderId,
        /// Its current state.
        from: OrderState,
        /// The state asked for.
        to: OrderState,
    },
    /// A receipt may only carry delivered, accepted, rejected, en route, on scene or resolved.
    #[error("{} is not a handset receipt state", .0.as_str())]
    NotAReceipt(OrderState),
    /// A unit sent a receipt for an order that is not its own.
    #[error("order {order} belongs to another unit than {unit}")]
    WrongUnit {
        /// The order.
        order: OrderId,
        /// The unit that spoke.
        unit: UnitId,
    },
    /// The incident is closed.
    #[error("incident {0} is closed")]
    IncidentClosed(IncidentId),
    /// The incident still has live orders.
    #[error(
        "incident {incident} still has open orders: {}; cancel them or wait until they end",
        list(open)
    )]
    OrdersOpen {
        /// The incident.
        incident: IncidentId,
        /// Its orders that are neither resolved, cancelled, rejected nor reassigned.
        open: Vec<OrderId>,
    },
    /// A manually chosen unit cannot be dispatched.
    #[error("unit {unit} is {}, not available", status.as_str())]
    UnitUnavailable {
        /// The unit.
        unit: UnitId,
        /// Its status.
        status: ResponderStatus,
    },
    /// An SOS came from a unit with no known position.
    #[error("no position known for unit {0}")]
    NoPosition(UnitId),
    /// An empty dispatcher name where a named dispatcher is required.
    #[error("a named dispatcher is required")]
    NoDispatcherName,
    /// Only alarms of rules outside the core (geofences) may be raised from outside.
    #[error("this kind of alarm is raised by the core's own rules only")]
    NotARuleAlarm,
}

/// Ids as a person reads them: `wo_1, wo_2`.
fn list(ids: &[OrderId]) -> String {
    let ids: Vec<&str> = ids.iter().map(|id| id.0.as_str()).collect();
    ids.join(", ")
}

impl DispatchError {
    /// A stable, machine-readable code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            DispatchError::UnknownIncident(_) => "unknown_incident",
            DispatchError::UnknownOrder(_) => "unknown_order",
            DispatchError::UnknownAlarm(_) => "unknown_alarm",
            DispatchError::IllegalTransition { .. } => "illegal_transition",
            DispatchError::NotAReceipt(_) => "not_a_receipt",
            DispatchError::WrongUnit { .. } => "wrong_unit",
            DispatchError::IncidentClosed(_) => "incident_closed",
            DispatchError::OrdersOpen { .. } => "orders_open",
            DispatchError::UnitUnavailable { .. } => "unit_unavailable",
            DispatchError::NoPosition(_) => "no_position",
            DispatchError::NoDispatcherName => "no_dispatcher_name",
            DispatchError::NotARuleAlarm => "not_a_rule_alarm",
        }
    }
}

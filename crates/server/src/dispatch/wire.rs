//! The core's effects as MQTT downlinks: each `Send*` effect becomes a `v1::Downlink` protobuf in
//! an outbox entry. The message's id (`{order}/{attempt}`, `{order}/cancel` or
//! `{order}/reassigned`) names the delivery, which handsets dedupe on, also across MQTT and
//! `/ws/handset`; the outbox row's own id is that plus a random suffix, unique across restarts
//! and races, so that a message written twice (two processes on one store once did that) can
//! never make a commit fail again and again. And the proto enums the uplink carries, as the core's.

use fieldlink_clock::Timestamp;
use fieldlink_dispatch::{
    Dispatcher, DutyStatus, Effect, IncidentKind, OrderMessage, OrderState, Outcome, Priority,
};
use fieldlink_proto::v1;
use fieldlink_store::OutboxEntry;
use prost::Message;

/// The outbox entries for the `Send*` effects of `outcome`, in effect order.
pub(super) fn outbox(core: &Dispatcher, now: Timestamp, outcome: &Outcome) -> Vec<OutboxEntry> {
    (outcome.effects.iter())
        .filter_map(|effect| {
            let (id, unit, key, body) = match effect {
                Effect::SendOrder {
                    unit,
                    order,
                    attempt,
                } => (
                    format!("{}/{attempt}", order.order_id),
                    unit,
                    &order.order_id,
                    v1::downlink::Body::Order(work_order(core, order)),
                ),
                Effect::SendCancel {
                    unit,
                    order_id,
                    reason,
                } => (
                    format!("{order_id}/cancel"),
                    unit,
                    order_id,
                    v1::downlink::Body::OrderCancelled(v1::OrderCancelled {
                        order_id: order_id.to_string(),
                        reason: reason.clone(),
                    }),
                ),
                Effect::SendReassigned {
                    unit,
                    order_id,
                    to_unit,
                } => (
                    format!("{order_id}/reassigned"),
                    unit,
                    order_id,
                    v1::downlink::Body::OrderReassigned(v1::OrderReassigned {
                        order_id: order_id.to_string(),
                        to_unit: to_unit.to_string(),
                        reason: "not accepted in time".to_owned(),
                    }),
                ),
                Effect::RaiseAlarm { .. } | Effect::NotifyAlarm { .. } => return None,
            };
            let row_id = fieldlink_store::generate_id(&id);
            let msg = v1::Downlink {
                id,
                time_ms: now.as_millis(),
                unit: unit.to_string(),
                body: Some(body),
            };
            Some(OutboxEntry {
                id: row_id,
                unit: unit.to_string(),
                key: key.to_string(),
                payload: msg.encode_to_vec(),
                created_at: now,
                next_attempt: now,
            })
        })
        .collect()
}

/// A reminder of an alarm nobody acknowledged yet (a raised alarm is told by
/// [`crate::narrate`] with its commit).
pub(super) fn log_alarm(effect: &Effect) {
    if let Effect::NotifyAlarm { alarm } = effect {
        let incident = alarm.incident.as_ref().map(ToString::to_string);
        tracing::warn!(
            alarm = %alarm.id,
            incident = incident.unwrap_or_default(),
            notifications = alarm.notifications,
            "alarm still unacknowledged after {} reminders",
            alarm.notifications
        );
    }
}

fn work_order(core: &Dispatcher, m: &OrderMessage) -> v1::WorkOrder {
    let order = core.order(&m.order_id).ok();
    let incident = core.incident(&m.incident_id).ok();
    let config = core.config();
    let accept_by = order.map(|o| o.created_at.plus(config.accept_timeout()));
    let on_scene_by = incident.map(|i| {
        let s = config.targets_for(i.spec.priority).arrival_s;
        i.created_at.plus(std::time::Duration::from_secs(s))
    });
    let co_responders = (incident.into_iter())
        .flat_map(|i| i.orders.iter())
        .filter_map(|o| core.order(o).ok())
        .filter(|o| o.id != m.order_id && !o.state.is_terminal())
        .map(|o| o.unit.to_string())
        .collect();
    v1::WorkOrder {
        order_id: m.order_id.to_string(),
        incident_id: m.incident_id.to_string(),
        kind: kind_to_proto(m.kind) as i32,
        priority: priority_to_proto(m.priority) as i32,
        title: m.kind.as_str().replace('_', " "),
        description: m.description.clone(),
        location: m.location.map(|p| v1::Position {
            lat: p.lat,
            lon: p.lon,
            alt_m: None,
            accuracy_m: None,
        }),
        address: String::new(),
        accept_by_ms: accept_by.map_or(0, Timestamp::as_millis),
        on_scene_by_ms: on_scene_by.map_or(0, Timestamp::as_millis),
        dispatcher: order.map(|o| o.dispatched_by.label()).unwrap_or_default(),
        co_responders,
        reinforcement: m.reinforcement,
    }
}

fn kind_to_proto(k: IncidentKind) -> v1::IncidentKind {
    match k {
        IncidentKind::LostPerson => v1::IncidentKind::LostPerson,
        IncidentKind::Flooding => v1::IncidentKind::Flooding,
        IncidentKind::Dispute => v1::IncidentKind::Dispute,
        IncidentKind::Fire => v1::IncidentKind::Fire,
        IncidentKind::Traffic => v1::IncidentKind::Traffic,
        IncidentKind::Medical => v1::IncidentKind::Medical,
        IncidentKind::Other => v1::IncidentKind::Other,
    }
}

fn priority_to_proto(p: Priority) -> v1::Priority {
    match p {
        Priority::Low => v1::Priority::Low,
        Priority::Normal => v1::Priority::Normal,
        Priority::High => v1::Priority::High,
        Priority::Critical => v1::Priority::Critical,
    }
}

/// A receipt's proto `OrderState` as the core's (`None` for unspecified or unknown values).
pub fn order_state_from_proto(v: i32) -> Option<OrderState> {
    let s = v1::OrderState::try_from(v).ok()?;
    Some(match s {
        v1::OrderState::Unspecified => return None,
        v1::OrderState::Created => OrderState::Created,
        v1::OrderState::Dispatched => OrderState::Dispatched,
        v1::OrderState::Delivered => OrderState::Delivered,
        v1::OrderState::Accepted => OrderState::Accepted,
        v1::OrderState::Rejected => OrderState::Rejected,
        v1::OrderState::EnRoute => OrderState::EnRoute,
        v1::OrderState::OnScene => OrderState::OnScene,
        v1::OrderState::Resolved => OrderState::Resolved,
        v1::OrderState::Cancelled => OrderState::Cancelled,
        v1::OrderState::Reassigned => OrderState::Reassigned,
    })
}

/// A handset's incident kind as the core's (unspecified or unknown values are `other`).
pub fn kind_from_proto(v: i32) -> IncidentKind {
    match v1::IncidentKind::try_from(v).unwrap_or(v1::IncidentKind::Other) {
        v1::IncidentKind::LostPerson => IncidentKind::LostPerson,
        v1::IncidentKind::Flooding => IncidentKind::Flooding,
        v1::IncidentKind::Dispute => IncidentKind::Dispute,
        v1::IncidentKind::Fire => IncidentKind::Fire,
        v1::IncidentKind::Traffic => IncidentKind::Traffic,
        v1::IncidentKind::Medical => IncidentKind::Medical,
        _ => IncidentKind::Other,
    }
}

/// A handset's suggested priority as the core's (unspecified or unknown values are `normal`).
pub fn priority_from_proto(v: i32) -> Priority {
    match v1::Priority::try_from(v).unwrap_or(v1::Priority::Normal) {
        v1::Priority::Low => Priority::Low,
        v1::Priority::High => Priority::High,
        v1::Priority::Critical => Priority::Critical,
        _ => Priority::Normal,
    }
}

/// A duty status from a handset's report as the core's (`None` for unspecified).
pub fn duty_from_proto(v: i32) -> Option<DutyStatus> {
    Some(match v1::DutyStatus::try_from(v).ok()? {
        v1::DutyStatus::Unspecified => return None,
        v1::DutyStatus::OnDuty => DutyStatus::OnDuty,
        v1::DutyStatus::OnBreak => DutyStatus::OnBreak,
        v1::DutyStatus::OffDuty => DutyStatus::OffDuty,
        v1::DutyStatus::OutOfService => DutyStatus::OutOfService,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_state_maps_from_its_proto_value() {
        // Proto numbers the states 1.. in the core's order; 0 and unknown values are refused.
        for (i, state) in OrderState::ALL.iter().enumerate() {
            assert_eq!(order_state_from_proto(i as i32 + 1), Some(*state));
            let name = v1::OrderState::try_from(i as i32 + 1).map(|s| s.as_str_name());
            let expected = format!("ORDER_STATE_{}", state.as_str().to_uppercase());
            assert_eq!(name.ok(), Some(expected.as_str()));
        }
        assert_eq!(order_state_from_proto(0), None);
        assert_eq!(order_state_from_proto(99), None);
        assert_eq!(
            duty_from_proto(v1::DutyStatus::OnBreak as i32),
            Some(DutyStatus::OnBreak)
        );
        assert_eq!(duty_from_proto(0), None);
    }

    #[test]
    fn field_report_kinds_and_priorities_round_trip_and_default() {
        for k in [
            IncidentKind::LostPerson,
            IncidentKind::Flooding,
            IncidentKind::Dispute,
            IncidentKind::Fire,
            IncidentKind::Traffic,
            IncidentKind::Medical,
            IncidentKind::Other,
        ] {
            assert_eq!(kind_from_proto(kind_to_proto(k) as i32), k);
        }
        for p in [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Critical,
        ] {
            assert_eq!(priority_from_proto(priority_to_proto(p) as i32), p);
        }
        assert_eq!(kind_from_proto(0), IncidentKind::Other);
        assert_eq!(kind_from_proto(99), IncidentKind::Other);
        assert_eq!(priority_from_proto(0), Priority::Normal);
        assert_eq!(priority_from_proto(99), Priority::Normal);
    }
}

//! One command's [`Outcome`] as a [`ChangeSet`]: the journal events (JSON, with their actor),
//! the rows of every record it touched (marked `new` when this command created them), its timers,
//! the responder records it changed, and the snapshot of the rest the core is restored from.

use std::collections::BTreeSet;

use fieldlink_clock::Timestamp;
use fieldlink_dispatch::{Change, Dispatcher, JournalEvent, Outcome, Timer, TimerKind, UnitId};
use fieldlink_store::{AlarmRow, ChangeSet, IncidentRow, NewEvent, OrderRow, TimerRow};
use serde::Serialize;
use serde_json::Value;

/// Everything `outcome` changed, with the records of the `responders` it changed, ready for
/// `Store::commit` (without outbox and request, which the caller adds).
pub(super) fn change_set(
    core: &Dispatcher,
    now: Timestamp,
    outcome: &Outcome,
    responders: &BTreeSet<UnitId>,
) -> ChangeSet {
    let touched = outcome.touched();
    let mut created = BTreeSet::new();
    for e in &outcome.events {
        match &e.change {
            Change::IncidentCreated { incident } => created.insert(incident.id.to_string()),
            Change::OrderCreated { order } => created.insert(order.id.to_string()),
            Change::AlarmRaised { alarm } => created.insert(alarm.id.to_string()),
            _ => false,
        };
    }
    let incidents = (touched.incidents.iter())
        .filter_map(|id| core.incident(id).ok())
        .map(|i| IncidentRow {
            id: i.id.to_string(),
            status: if i.is_open() { "open" } else { "closed" }.to_owned(),
            grid: i.spec.grid.clone(),
            open: i.is_open(),
            created_at: i.created_at,
            updated_at: now,
            data: json(i),
            new: created.contains(i.id.as_str()),
        })
        .collect();
    let orders = (touched.orders.iter())
        .filter_map(|id| core.order(id).ok())
        .map(|o| OrderRow {
            id: o.id.to_string(),
            incident_id: o.incident.to_string(),
            unit: o.unit.to_string(),
            state: o.state.as_str().to_owned(),
            open: !o.state.is_terminal(),
            created_at: o.created_at,
            updated_at: now,
            data: json(o),
            new: created.contains(o.id.as_str()),
        })
        .collect();
    let alarms = (touched.alarms.iter())
        .filter_map(|id| core.alarm(id).ok())
        .map(|a| {
            let state = name(&a.state);
            AlarmRow {
                id: a.id.to_string(),
                kind: json(&a.kind)["type"].as_str().unwrap_or("alarm").to_owned(),
                open: state != "resolved",
                state,
                created_at: a.raised_at,
                updated_at: now,
                data: json(a),
                new: created.contains(a.id.as_str()),
            }
        })
        .collect();
    ChangeSet {
        at: now,
        events: outcome.events.iter().map(event).collect(),
        incidents,
        orders,
        alarms,
        timers_set: outcome.timers_set.iter().map(timer).collect(),
        timers_cleared: outcome.timers_cleared.clone(),
        responders: (responders.iter())
            .filter_map(|u| core.state().responders.get(u))
            .map(|r| (r.unit.to_string(), json(r)))
            .collect(),
        snapshot: Some(json(core.state())),
        ..ChangeSet::default()
    }
}

/// A journal event: kind (`incident.created`, `order.accepted`, ...), subject, actor label.
fn event(e: &JournalEvent) -> NewEvent {
    let (kind, subject) = match &e.change {
        Change::IncidentCreated { incident } => {
            ("incident.created".to_owned(), incident.id.to_string())
        }
        Change::IncidentQueued { incident } => ("incident.queued".to_owned(), incident.to_string()),
        Change::IncidentDequeued { incident } => {
            ("incident.dequeued".to_owned(), incident.to_string())
        }
        Change::ReinforcementRequested { incident, .. } => (
            "incident.reinforcement_requested".to_owned(),
            incident.to_string(),
        ),
        Change::IncidentClosed { incident } => ("incident.closed".to_owned(), incident.to_string()),
        Change::OrderCreated { order } => ("order.created".to_owned(), order.id.to_string()),
        Change::OrderState { order, to, .. } => {
            (format!("order.{}", to.as_str()), order.to_string())
        }
        Change::AlarmRaised { alarm } => ("alarm.raised".to_owned(), alarm.id.to_string()),
        Change::AlarmAcknowledged { alarm } => ("alarm.acknowledged".to_owned(), alarm.to_string()),
        Change::AlarmResolved { alarm } => ("alarm.resolved".to_owned(), alarm.to_string()),
        Change::ResponderStatus { unit, .. } => ("responder.status".to_owned(), unit.to_string()),
    };
    NewEvent {
        at: e.at,
        kind,
        subject,
        actor: e.actor.label(),
        data: json(e),
    }
}

fn timer(t: &Timer) -> TimerRow {
    let subject = match &t.kind {
        TimerKind::AcceptTimeout { order } | TimerKind::Resend { order, .. } => order.to_string(),
        TimerKind::ResponseTarget { incident }
        | TimerKind::ArrivalTarget { incident }
        | TimerKind::ReinforcementTarget { incident, .. } => incident.to_string(),
        TimerKind::AlarmRenotify { alarm } => alarm.to_string(),
    };
    let data = json(&t.kind);
    TimerRow {
        id: t.kind.id(),
        due: t.at,
        kind: data["type"].as_str().unwrap_or("timer").to_owned(),
        subject,
        data,
    }
}

fn json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The serde name of a unit enum variant.
fn name(v: &impl Serialize) -> String {
    json(v).as_str().unwrap_or_default().to_owned()
}

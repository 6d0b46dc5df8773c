//! The server log's account of dispatch, in words: each incident created, dispatched (to which
//! unit, how far away), accepted (after how long), arrived and closed, with the names of the
//! people and units involved, and each alarm raised.
//!
//! [`committed`] reads the journal events of one commit, right after they are committed
//! (`DispatchService::execute`), and looks their records up in the core, so it tells what the
//! store holds and never a command that was rolled back. The ids stay as fields (`incident`,
//! `order`, `unit`, `alarm`) for scripts and log collectors; the message is for people.

use fieldlink_dispatch::{
    AlarmId, AlarmKind, Dispatcher, Incident, IncidentId, IncidentKind, IncidentSource, Order,
    OrderId, Priority,
};
use fieldlink_store::NewEvent;

use crate::sim::seconds;
use crate::state::AppState;

/// Tells each of one commit's journal events worth telling.
pub fn committed(state: &AppState, core: &Dispatcher, events: &[NewEvent]) {
    let names = Names { state };
    for e in events {
        tell(&names, core, e);
    }
}

/// Names of units (with their display names) and distances, from the server's state.
struct Names<'a> {
    state: &'a AppState,
}

impl Names<'_> {
    /// `patrol-07 (Wang Lei)`, or the id alone when the unit has no display name.
    fn unit(&self, id: &str) -> String {
        match self.state.credentials.unit(id) {
            Some(u) if !u.name.trim().is_empty() => format!("{id} ({})", u.name.trim()),
            _ => id.to_owned(),
        }
    }

    /// Who did it: `dispatcher Li Na`, a unit with its name, or the rule of fieldlink's that fired.
    fn actor(&self, label: &str) -> String {
        match label.split_once(':') {
            Some(("dispatcher", name)) => format!("dispatcher {name}"),
            Some(("unit", unit)) => self.unit(unit),
            Some(("system", rule)) => rule_in_words(rule),
            _ => label.to_owned(),
        }
    }

    /// How far the unit's latest position is from the incident, when both are known.
    fn distance(&self, unit: &str, incident: &Incident) -> Option<String> {
        let site = incident.spec.location?;
        let (lat, lon) = (self.state.tracker().get(unit)).map(|s| (s.fix.lat, s.fix.lon))?;
        let m = fieldlink_location::haversine_m(lat, lon, site.lat, site.lon);
        Some(if m < 1000.0 {
            format!("{} m away", m.round())
        } else {
            format!("{:.1} km away", m / 1000.0)
        })
    }
}

fn tell(names: &Names, core: &Dispatcher, e: &NewEvent) {
    let by = names.actor(&e.actor);
    match e.kind.as_str() {
        "incident.created" => {
            let Ok(i) = core.incident(&IncidentId(e.subject.clone())) else {
                return;
            };
            let what = incident_in_words(i);
            tracing::info!(incident = %i.id, by = %e.actor, "incident created: {what}, by {by}");
        }
        "incident.queued" => tracing::info!(
            incident = %e.subject,
            "incident waits: no free responder fits it; it is dispatched when one is"
        ),
        "incident.reinforcement_requested" => tracing::info!(
            incident = %e.subject, by = %e.actor, "reinforcement requested by {by}"
        ),
        "incident.closed" => {
            tracing::info!(incident = %e.subject, by = %e.actor, "incident closed by {by}")
        }
        "alarm.raised" => {
            let Ok(alarm) = core.alarm(&AlarmId(e.subject.clone())) else {
                return;
            };
            let why = alarm_in_words(names, &alarm.kind);
            let incident = alarm.incident.as_ref().map(ToString::to_string);
            let incident = incident.unwrap_or_default();
            tracing::warn!(alarm = %alarm.id, incident, "alarm raised: {why}");
        }
        "alarm.acknowledged" => {
            tracing::info!(alarm = %e.subject, by = %e.actor, "alarm acknowledged by {by}")
        }
        kind => {
            let Some(state) = kind.strip_prefix("order.") else {
                return;
            };
            let Ok(order) = core.order(&OrderId(e.subject.clone())) else {
                return;
            };
            tell_order(names, core, order, state, &by, e);
        }
    }
}

/// An order's step: dispatched, accepted, declined, reassigned, on scene, resolved, cancelled.
fn tell_order(names: &Names, core: &Dispatcher, o: &Order, state: &str, by: &str, e: &NewEvent) {
    let unit = names.unit(o.unit.as_str());
    let after = seconds(e.at.since(o.created_at));
    let (order, incident, id) = (&o.id, &o.incident, o.unit.as_str());
    match state {
        "dispatched" => {
            let far = core
                .incident(&o.incident)
                .ok()
                .and_then(|i| names.distance(id, i))
                .map(|d| format!(", {d}"))
                .unwrap_or_default();
            tracing::info!(%incident, %order, unit = id, by = %e.actor, "incident dispatched to {unit}{far}, by {by}");
        }
        "accepted" => {
            tracing::info!(%incident, %order, unit = id, "{unit} accepted the order after {after}")
        }
        "rejected" => {
            tracing::info!(%incident, %order, unit = id, "{unit} declined the order after {after}")
        }
        "reassigned" => {
            let to = (o.reassigned_to.as_ref())
                .map_or("the next responder".to_owned(), |u| names.unit(u.as_str()));
            tracing::info!(%incident, %order, unit = id, "{unit} did not accept within {after}: the order goes to {to}");
        }
        "on_scene" => {
            let since = core
                .incident(&o.incident)
                .map(|i| seconds(e.at.since(i.created_at)));
            let since = since.map(|s| format!(", {s} after the incident was created"));
            let how = if e.actor.starts_with("system:") {
                " (seen by GPS)"
            } else {
                ""
            };
            let since = since.unwrap_or_default();
            tracing::info!(%incident, %order, unit = id, "{unit} arrived on scene{how}{since}");
        }
        "resolved" => tracing::info!(%incident, %order, unit = id, "{unit} finished the work"),
        "cancelled" => {
            tracing::info!(%incident, %order, unit = id, by = %e.actor, "the order to {unit} was cancelled by {by}")
        }
        _ => {}
    }
}

/// `a fire (high priority), reported by patrol-07 at 30.27410, 120.15510 in grid hubin-01`.
fn incident_in_words(i: &Incident) -> String {
    let kind = kind_in_words(i.spec.kind);
    let priority = match i.spec.priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Critical => "critical",
    };
    let source = match &i.spec.source {
        IncidentSource::CommandRoom => String::new(),
        IncidentSource::FieldReport(u) => format!(", a field report of {u}"),
        IncidentSource::Sos(u) => format!(", an SOS of {u}"),
    };
    let place = (i.spec.location).map_or(", no position".to_owned(), |p| {
        format!(" at {:.5}, {:.5}", p.lat, p.lon)
    });
    let grid = (i.spec.grid.as_ref()).map_or(String::new(), |g| format!(" in grid {g}"));
    format!("{kind} ({priority} priority){source}{place}{grid}")
}

fn kind_in_words(kind: IncidentKind) -> &'static str {
    match kind {
        IncidentKind::LostPerson => "a lost person",
        IncidentKind::Flooding => "flooding",
        IncidentKind::Dispute => "a dispute",
        IncidentKind::Fire => "a fire",
        IncidentKind::Traffic => "a traffic incident",
        IncidentKind::Medical => "a medical emergency",
        IncidentKind::Other => "an incident",
    }
}

fn alarm_in_words(names: &Names, kind: &AlarmKind) -> String {
    match kind {
        AlarmKind::ResponseMissed => "no order accepted within the response target".to_owned(),
        AlarmKind::ArrivalMissed => "no one on scene within the arrival target".to_owned(),
        AlarmKind::ReinforcementMissed { seq } => {
            format!("reinforcement {seq} not on scene within its target")
        }
        AlarmKind::NoOneAvailable => "no free responder fits the incident".to_owned(),
        AlarmKind::Sos { unit } => format!("SOS from {}", names.unit(unit.as_str())),
        AlarmKind::Geofence { message, .. } => message.clone(),
    }
}

/// A rule of fieldlink's (`system:RULE`) as the log says it.
fn rule_in_words(rule: &str) -> String {
    match rule {
        "accept_timeout" => "fieldlink (acceptance timeout)".to_owned(),
        "gps_arrival" => "fieldlink (arrival seen by GPS)".to_owned(),
        "geofence_rule" => "fieldlink (geofence rule)".to_owned(),
        other => format!("fieldlink ({})", other.replace('_', " ")),
    }
}

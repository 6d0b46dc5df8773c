//! The demo's words: how an incident, an alarm and a responder are named on the terminal.
//!
//! Pure functions over the dispatch core's records, so the wording is tested without a server.
//! An incident is always named by the demo's number for it (`#7`), never by its internal id.

use std::time::Duration;

use fieldlink_dispatch::{Actor, Alarm, AlarmKind, Incident, Targets};

/// `#7 fire at 30.2512, 120.1634` (without a position: `#7 fire`).
pub(super) fn incident_label(n: usize, incident: &Incident) -> String {
    let kind = incident.spec.kind.as_str().replace('_', " ");
    match incident.spec.location {
        Some(at) => format!("#{n} {kind} at {:.4}, {:.4}", at.lat, at.lon),
        None => format!("#{n} {kind}"),
    }
}

/// A target in words: `1 minute`, `3 minutes`, `90 s`.
pub(super) fn target(secs: u64) -> String {
    match (secs / 60, secs % 60) {
        (1, 0) => "1 minute".to_owned(),
        (m, 0) if m > 0 => format!("{m} minutes"),
        _ => format!("{secs} s"),
    }
}

/// The narrative's line for a raised alarm: `Alarm: #7 fire at ...: not accepted within 1
/// minute.` `about` is the incident's label when the alarm concerns one of the demo's incidents,
/// `targets` that incident's 1/3/5 targets.
pub(super) fn alarm_line(alarm: &Alarm, about: Option<&str>, targets: Targets) -> String {
    let what = match &alarm.kind {
        AlarmKind::ResponseMissed => {
            format!("not accepted within {}", target(targets.response_s))
        }
        AlarmKind::ArrivalMissed => {
            format!("no one on scene within {}", target(targets.arrival_s))
        }
        AlarmKind::ReinforcementMissed { seq } => format!(
            "reinforcement {seq} not on scene within {}",
            target(targets.reinforcement_s)
        ),
        AlarmKind::NoOneAvailable => "no free responder fits; it waits in the queue".to_owned(),
        AlarmKind::Sos { unit } => format!("SOS pressed by {unit}"),
        AlarmKind::Geofence { message, .. } => message.clone(),
    };
    match about {
        Some(label) => format!("Alarm: {label}: {what}."),
        None => format!("Alarm: {what}."),
    }
}

/// Why fieldlink itself sent an order (the rule in `system:RULE`), in words.
pub(super) fn why_sent(by: &Actor) -> Option<String> {
    let Actor::System(rule) = by else {
        return None;
    };
    Some(match rule.as_str() {
        "rejected" => "the one before declined".to_owned(),
        "accept_timeout" => "the one before did not accept in time".to_owned(),
        "queue" => "a responder became free".to_owned(),
        "sos" => "the nearest to an SOS".to_owned(),
        other => other.replace('_', " "),
    })
}

/// A unit type as a person says it.
pub(super) fn unit_kind(unit_type: &str) -> String {
    match unit_type {
        "on_foot" => "on foot".to_owned(),
        "e_bike" => "e-bike".to_owned(),
        "car" => "patrol car".to_owned(),
        other => other.replace('_', " "),
    }
}

/// `12 s`, `1 min 5 s` (as `fieldlink sim` prints durations).
pub(super) fn seconds(d: Duration) -> String {
    crate::sim::seconds(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldlink_dispatch::{
        AlarmId, AlarmState, IncidentId, IncidentKind, IncidentSource, IncidentState, LatLon,
        NewIncident, Priority, Timestamp, UnitId,
    };

    fn lost_person() -> Incident {
        Incident {
            id: IncidentId("inc_1".into()),
            spec: NewIncident {
                request_id: None,
                kind: IncidentKind::LostPerson,
                priority: Priority::High,
                location: Some(LatLon {
                    lat: 30.25123,
                    lon: 120.16341,
                }),
                grid: None,
                description: String::new(),
                source: IncidentSource::CommandRoom,
            },
            created_at: Timestamp::from_millis(0),
            created_by: Actor::dispatcher("demo"),
            state: IncidentState::Open,
            orders: vec![],
            first_accepted_at: None,
            first_on_scene_at: None,
            reinforcements: vec![],
        }
    }

    fn alarm(kind: AlarmKind) -> Alarm {
        Alarm {
            id: AlarmId("al_1".into()),
            kind,
            incident: Some(IncidentId("inc_1".into())),
            state: AlarmState::Raised,
            raised_at: Timestamp::from_millis(0),
            acknowledged: None,
            notifications: 0,
        }
    }

    const TARGETS: Targets = Targets {
        response_s: 60,
        arrival_s: 180,
        reinforcement_s: 300,
    };

    #[test]
    fn alarms_name_the_incident_by_number_and_the_target_in_words() {
        let label = incident_label(7, &lost_person());
        assert_eq!(label, "#7 lost person at 30.2512, 120.1634");
        let line = |k| alarm_line(&alarm(k), Some(&label), TARGETS);
        assert_eq!(
            line(AlarmKind::ResponseMissed),
            "Alarm: #7 lost person at 30.2512, 120.1634: not accepted within 1 minute."
        );
        assert!(line(AlarmKind::ArrivalMissed).ends_with(": no one on scene within 3 minutes."));
        assert!(
            line(AlarmKind::ReinforcementMissed { seq: 2 })
                .ends_with(": reinforcement 2 not on scene within 5 minutes.")
        );
        let sos = line(AlarmKind::Sos {
            unit: UnitId("sim004".into()),
        });
        assert!(sos.ends_with(": SOS pressed by sim004."), "{sos}");
        let geofence = AlarmKind::Geofence {
            zone: "z".into(),
            unit: UnitId("sim004".into()),
            entered: true,
            message: "sim004 entered Hubin venue".into(),
        };
        assert_eq!(
            alarm_line(&alarm(geofence), None, TARGETS),
            "Alarm: sim004 entered Hubin venue."
        );
        for l in [line(AlarmKind::NoOneAvailable), sos] {
            assert!(!l.contains("inc_") && !l.contains("al_"), "{l}");
        }
    }

    #[test]
    fn targets_read_as_minutes_when_whole() {
        assert_eq!(target(60), "1 minute");
        assert_eq!(target(300), "5 minutes");
        assert_eq!(target(90), "90 s");
        assert_eq!(target(0), "0 s");
    }
}

//! Unit tests of the dispatch core on a manual timeline (plain `Timestamp`s, default 60/180/300 s
//! targets, 30 s acceptance timeout), and the helpers they share.

mod checkpoint;
mod orders;
mod queue;
mod report;
mod stored_form;
mod timers;

use crate::*;

/// The start of every test's timeline.
pub(crate) const T0: i64 = 1_800_000_000_000;

/// `T0` + `s` seconds.
pub(crate) fn at(s: f64) -> Timestamp {
    Timestamp::from_millis(T0 + (s * 1000.0).round() as i64)
}

/// The incident's site.
pub(crate) const SITE: LatLon = LatLon {
    lat: 31.2304,
    lon: 121.4737,
};

pub(crate) fn desk() -> Dispatcher {
    Dispatcher::new(DispatchConfig::default(), Box::new(SeqIds::default()))
}

pub(crate) fn unit(s: &str) -> UnitId {
    UnitId::from(s)
}

/// An on-foot candidate with first aid.
pub(crate) fn cand(u: &str, distance_m: f64, grid: &str) -> Candidate {
    Candidate {
        unit: unit(u),
        distance_m,
        unit_type: "on_foot".to_owned(),
        skills: vec!["first_aid".to_owned()],
        grid: Some(grid.to_owned()),
    }
}

/// A source that offers nobody.
pub(crate) fn nobody(_: &Incident) -> Vec<Candidate> {
    Vec::new()
}

/// A source that always offers `list`.
pub(crate) fn offer(list: Vec<Candidate>) -> impl Fn(&Incident) -> Vec<Candidate> {
    move |_| list.clone()
}

pub(crate) fn spec(request_id: Option<&str>) -> NewIncident {
    NewIncident {
        request_id: request_id.map(str::to_owned),
        kind: IncidentKind::Dispute,
        priority: Priority::Normal,
        location: Some(SITE),
        grid: Some("g1".to_owned()),
        description: "two neighbours quarrel".to_owned(),
        source: IncidentSource::CommandRoom,
    }
}

pub(crate) fn wang() -> Actor {
    Actor::dispatcher("wang")
}

/// Brings `units` online, on duty.
pub(crate) fn online(d: &mut Dispatcher, now: Timestamp, units: &[&str]) {
    for u in units {
        d.responder_presence(now, &unit(u), true, &nobody).unwrap();
    }
}

/// An incident created at `now`.
pub(crate) fn incident(d: &mut Dispatcher, now: Timestamp) -> IncidentId {
    d.create_incident(now, spec(None), wang()).unwrap().0
}

/// The orders sent in an outcome, as (unit, order, attempt).
pub(crate) fn sent(out: &Outcome) -> Vec<(UnitId, OrderId, u32)> {
    (out.effects.iter())
        .filter_map(|e| match e {
            Effect::SendOrder {
                unit,
                order,
                attempt,
            } => Some((unit.clone(), order.order_id.clone(), *attempt)),
            _ => None,
        })
        .collect()
}

/// The alarms raised in an outcome.
pub(crate) fn raised(out: &Outcome) -> Vec<AlarmKind> {
    (out.effects.iter())
        .filter_map(|e| match e {
            Effect::RaiseAlarm { alarm } => Some(alarm.kind.clone()),
            _ => None,
        })
        .collect()
}

/// u1 (grid g1) and u2 (grid g2) online; an incident at 0 s dispatched to u1 by one click.
pub(crate) fn dispatched() -> (Dispatcher, IncidentId, OrderId) {
    let mut d = desk();
    online(&mut d, at(0.0), &["u1", "u2"]);
    let i = incident(&mut d, at(0.0));
    let c = [cand("u1", 100.0, "g1"), cand("u2", 200.0, "g2")];
    let out = d.dispatch(at(0.0), &i, wang(), &c).unwrap();
    let o = sent(&out)[0].1.clone();
    (d, i, o)
}

#[test]
fn config_defaults_parse_and_validate() {
    let c: DispatchConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, DispatchConfig::default());
    assert_eq!(c.targets_for(Priority::Critical).response_s, 60);
    assert_eq!(c.targets_for(Priority::Low).arrival_s, 180);
    assert_eq!(c.targets_for(Priority::High).reinforcement_s, 300);
    assert!(c.validate().is_ok());
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<DispatchConfig>(&json).unwrap(), c);
    let bad: DispatchConfig = serde_json::from_str(
        r#"{"accept_timeout_s":0,"arrival_fixes":0,"targets":{"high":{"response_s":0}}}"#,
    )
    .unwrap();
    assert_eq!(bad.validate().unwrap_err().len(), 3);
    assert!(serde_json::from_str::<DispatchConfig>(r#"{"nope":1}"#).is_err());
}

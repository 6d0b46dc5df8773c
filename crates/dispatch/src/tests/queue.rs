//! No one available: queueing and automatic dispatch; rejection; SOS; field reports; duty status.

use super::*;

#[test]
fn queued_when_no_one_is_available_then_dispatched_when_someone_frees() {
    let mut d = desk();
    let i = incident(&mut d, at(0.0));
    let cs = vec![cand("u1", 100.0, "g1")];
    let out = d.dispatch(at(1.0), &i, wang(), &cs).unwrap();
    assert!(sent(&out).is_empty());
    assert_eq!(raised(&out), [AlarmKind::NoOneAvailable]);
    assert_eq!(d.queue().len(), 1);
    let alarm = d.queue()[0].alarm.clone();

    // u1 comes online: dispatched at once by the queue rule; the alarm is resolved.
    let out = d
        .responder_presence(at(20.0), &unit("u1"), true, &offer(cs.clone()))
        .unwrap();
    let s = sent(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, unit("u1"));
    assert_eq!(
        d.order(&s[0].1).unwrap().dispatched_by,
        Actor::system("queue")
    );
    assert!(d.queue().is_empty());
    assert_eq!(d.alarm(&alarm).unwrap().state, AlarmState::Resolved);
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e.change, Change::IncidentDequeued { .. }))
    );
}

#[test]
fn a_responder_finishing_a_job_takes_the_next_queued_incident() {
    let (mut d, _, o) = dispatched();
    let second = incident(&mut d, at(5.0));
    d.dispatch(at(5.0), &second, wang(), &[cand("u1", 10.0, "g1")])
        .unwrap();
    assert_eq!(d.queue().len(), 1, "u1 is committed");
    for s in [OrderState::Accepted, OrderState::OnScene] {
        d.receipt(at(10.0), &unit("u1"), &o, s, &nobody).unwrap();
    }
    let src = offer(vec![cand("u1", 10.0, "g1")]);
    let out = d
        .receipt(at(50.0), &unit("u1"), &o, OrderState::Resolved, &src)
        .unwrap();
    let s = sent(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(d.order(&s[0].1).unwrap().incident, second);
}

#[test]
fn a_rejection_goes_to_the_next_candidate_or_the_queue() {
    let (mut d, i, o) = dispatched();
    let src = offer(vec![cand("u1", 100.0, "g1"), cand("u2", 200.0, "g2")]);
    let out = d
        .receipt(at(3.0), &unit("u1"), &o, OrderState::Rejected, &src)
        .unwrap();
    let s = sent(&out);
    assert_eq!(s[0].0, unit("u2"));
    assert_eq!(
        d.order(&s[0].1).unwrap().dispatched_by,
        Actor::system("rejected")
    );
    let out = d
        .receipt(at(4.0), &unit("u2"), &s[0].1, OrderState::Rejected, &src)
        .unwrap();
    assert!(sent(&out).is_empty(), "both tried");
    assert_eq!(raised(&out), [AlarmKind::NoOneAvailable]);
    assert_eq!(d.queue()[0].incident, i);
}

#[test]
fn sos_creates_a_critical_incident_at_the_last_fix_and_sends_the_nearest_others() {
    let mut d = desk();
    online(&mut d, at(0.0), &["me", "a", "b", "c"]);
    let here = LatLon {
        lat: 31.0,
        lon: 121.0,
    };
    d.gps_fix(at(1.0), &unit("me"), here).unwrap();
    let cs = [
        cand("me", 0.0, "g1"),
        cand("a", 50.0, "g1"),
        cand("b", 80.0, "g2"),
        cand("c", 90.0, "g1"),
    ];
    let (i, out) = d
        .sos(at(2.0), &unit("me"), Some("sos-1".to_owned()), None, &cs)
        .unwrap();
    let inc = d.incident(&i).unwrap();
    assert_eq!(inc.spec.priority, Priority::Critical);
    assert_eq!(inc.spec.location, Some(here));
    assert_eq!(inc.spec.source, IncidentSource::Sos(unit("me")));
    assert_eq!(raised(&out), [AlarmKind::Sos { unit: unit("me") }]);
    let units: Vec<_> = sent(&out).into_iter().map(|s| s.0).collect();
    assert_eq!(
        units,
        [unit("a"), unit("b")],
        "two nearest others, not the caller"
    );
    let (again, replay) = d
        .sos(at(3.0), &unit("me"), Some("sos-1".to_owned()), None, &cs)
        .unwrap();
    assert_eq!((again, replay.is_empty()), (i, true));
    let err = d.sos(at(3.0), &unit("ghost"), None, None, &cs).unwrap_err();
    assert_eq!(err, DispatchError::NoPosition(unit("ghost")));
}

#[test]
fn a_field_report_is_an_incident_from_the_unit() {
    let mut d = desk();
    let (i, out) = d
        .field_report(at(0.0), &unit("u7"), spec(Some("fr-1")))
        .unwrap();
    assert_eq!(out.events[0].actor, Actor::Unit(unit("u7")));
    assert_eq!(
        d.incident(&i).unwrap().spec.source,
        IncidentSource::FieldReport(unit("u7"))
    );
    assert!(out.effects.is_empty(), "the command room decides");
    d.close_incident(at(5.0), &i, "wang").unwrap();
}

#[test]
fn responder_status_follows_presence_duty_and_orders() {
    let mut d = desk();
    let u = unit("u1");
    assert_eq!(d.responder_status(&u), ResponderStatus::Offline);
    online(&mut d, at(0.0), &["u1"]);
    assert_eq!(d.responder_status(&u), ResponderStatus::Available);
    for (duty, status) in [
        (DutyStatus::OnBreak, ResponderStatus::OnBreak),
        (DutyStatus::OffDuty, ResponderStatus::OutOfService),
        (DutyStatus::OutOfService, ResponderStatus::OutOfService),
        (DutyStatus::OnDuty, ResponderStatus::Available),
    ] {
        let out = d.responder_duty(at(1.0), &u, duty, &nobody).unwrap();
        assert_eq!(d.responder_status(&u), status);
        assert!(out.events.iter().all(|e| e.actor == Actor::Unit(u.clone())));
    }
    let out = d.responder_presence(at(2.0), &u, false, &nobody).unwrap();
    assert!(matches!(
        out.events[0].change,
        Change::ResponderStatus {
            to: ResponderStatus::Offline,
            ..
        }
    ));
    let i = incident(&mut d, at(3.0));
    let out = d
        .dispatch(at(3.0), &i, wang(), &[cand("u1", 1.0, "g1")])
        .unwrap();
    assert!(sent(&out).is_empty(), "offline units are not dispatched");
}

#[test]
fn reinforcements_short_of_responders_are_queued_for_the_rest() {
    let (mut d, i, _) = dispatched();
    online(&mut d, at(0.0), &["u3"]);
    let cs = vec![cand("u3", 50.0, "g1"), cand("u4", 60.0, "g1")];
    let out = d.reinforce(at(40.0), &i, wang(), 2, &cs).unwrap();
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(raised(&out), [AlarmKind::NoOneAvailable]);
    assert_eq!(
        (d.queue()[0].reinforcement, d.queue()[0].missing),
        (Some(1), 1)
    );
    let out = d
        .responder_presence(at(50.0), &unit("u4"), true, &offer(cs))
        .unwrap();
    let s = sent(&out);
    assert_eq!(s[0].0, unit("u4"));
    assert_eq!(d.order(&s[0].1).unwrap().reinforcement, Some(1));
    assert!(d.queue().is_empty());
}

//! Timers: reassignment at the acceptance timeout, re-send backoff, GPS arrival, missed targets,
//! alarm re-notification, and a restart mid-countdown.

use super::*;

fn alarms_at(d: &mut Dispatcher, s: f64) -> Vec<AlarmKind> {
    raised(&d.tick(at(s), &nobody).unwrap())
}

#[test]
fn reassignment_at_the_acceptance_timeout() {
    let (mut d, i, o) = dispatched();
    d.receipt(at(1.0), &unit("u1"), &o, OrderState::Delivered, &nobody)
        .unwrap();
    let src = offer(vec![cand("u1", 100.0, "g1"), cand("u2", 200.0, "g2")]);
    let early = d.tick(at(29.999), &src).unwrap();
    assert!(sent(&early).is_empty());
    let out = d.tick(at(30.0), &src).unwrap();
    assert_eq!(d.order(&o).unwrap().state, OrderState::Reassigned);
    assert_eq!(d.order(&o).unwrap().reassigned_to, Some(unit("u2")));
    assert!(out.effects.contains(&Effect::SendReassigned {
        unit: unit("u1"),
        order_id: o.clone(),
        to_unit: unit("u2"),
    }));
    let new = sent(&out);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].0, unit("u2"));
    assert_eq!(
        d.order(&new[0].1).unwrap().dispatched_by,
        Actor::system("accept_timeout")
    );
    assert_eq!(d.responder_status(&unit("u1")), ResponderStatus::Available);
    assert_eq!(d.responder_status(&unit("u2")), ResponderStatus::Committed);
    assert_eq!(d.incident(&i).unwrap().orders.len(), 2);
    // A late accept of the old order is refused; the new one's timeout runs from its own dispatch.
    let late = d.receipt(at(31.0), &unit("u1"), &o, OrderState::Accepted, &nobody);
    assert!(matches!(late, Err(DispatchError::IllegalTransition { .. })));
    assert!(d.state().timers.iter().any(|t| t.at == at(60.0)
        && t.kind
            == TimerKind::AcceptTimeout {
                order: new[0].1.clone()
            }));
}

#[test]
fn no_other_candidate_keeps_the_order_and_looks_again_a_timeout_later() {
    let (mut d, _, o) = dispatched();
    d.tick(at(30.0), &offer(vec![cand("u1", 100.0, "g1")]))
        .unwrap();
    assert_eq!(d.order(&o).unwrap().state, OrderState::Dispatched);
    // Someone frees up in the meantime: the next look hands them the order.
    let src = offer(vec![cand("u1", 100.0, "g1"), cand("u2", 200.0, "g2")]);
    assert!(sent(&d.tick(at(59.999), &src).unwrap()).is_empty());
    let out = d.tick(at(60.0), &src).unwrap();
    assert_eq!(d.order(&o).unwrap().state, OrderState::Reassigned);
    assert_eq!(sent(&out)[0].0, unit("u2"));
}

#[test]
fn resend_with_backoff_until_a_receipt() {
    let (mut d, _, o) = dispatched();
    let mut resent = Vec::new();
    for ms in (0..=20_000).step_by(500) {
        let now = Timestamp::from_millis(T0 + ms);
        for (_, order, attempt) in sent(&d.tick(now, &nobody).unwrap()) {
            assert_eq!(order, o);
            resent.push((ms, attempt));
        }
    }
    assert_eq!(resent, [(2_000, 1), (6_000, 2), (14_000, 3)]);
    d.receipt(at(20.0), &unit("u1"), &o, OrderState::Delivered, &nobody)
        .unwrap();
    assert!(
        sent(&d.tick(at(29.0), &nobody).unwrap()).is_empty(),
        "a receipt stops re-sends"
    );
    assert_eq!(
        DispatchConfig::default().resend_gap(10).as_secs(),
        60,
        "capped"
    );
}

#[test]
fn arrival_by_gps_after_consecutive_fixes() {
    let (mut d, i, o) = dispatched();
    let inside = LatLon {
        lat: SITE.lat + 0.0002,
        lon: SITE.lon,
    }; // ~22 m
    let outside = LatLon {
        lat: SITE.lat + 0.002,
        lon: SITE.lon,
    }; // ~222 m
    assert!(
        d.gps_fix(at(1.0), &unit("u1"), inside).unwrap().is_empty(),
        "not accepted yet"
    );
    assert!(d.gps_fix(at(2.0), &unit("u1"), inside).unwrap().is_empty());
    d.receipt(at(3.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    assert!(
        d.gps_fix(at(4.0), &unit("u1"), inside).unwrap().is_empty(),
        "one noisy fix"
    );
    assert!(d.gps_fix(at(5.0), &unit("u1"), outside).unwrap().is_empty());
    assert!(
        d.gps_fix(at(6.0), &unit("u1"), inside).unwrap().is_empty(),
        "count restarted"
    );
    let out = d.gps_fix(at(7.0), &unit("u1"), inside).unwrap();
    assert_eq!(d.order(&o).unwrap().state, OrderState::OnScene);
    assert_eq!(out.events[0].actor, Actor::system("gps_arrival"));
    assert_eq!(d.incident(&i).unwrap().first_on_scene_at, Some(at(7.0)));
    assert_eq!(d.responder_status(&unit("u1")), ResponderStatus::OnScene);
    // The handset's own on-scene report afterwards is a no-op.
    let r = d
        .receipt(at(8.0), &unit("u1"), &o, OrderState::OnScene, &nobody)
        .unwrap();
    assert!(r.is_empty());
}

#[test]
fn response_and_arrival_targets() {
    // Nobody accepts: response alarm at exactly 60 s, arrival at exactly 180 s.
    let (mut d, i, _) = dispatched();
    assert!(alarms_at(&mut d, 59.999).is_empty());
    assert_eq!(alarms_at(&mut d, 60.0), [AlarmKind::ResponseMissed]);
    assert!(alarms_at(&mut d, 179.999).is_empty());
    assert_eq!(alarms_at(&mut d, 180.0), [AlarmKind::ArrivalMissed]);
    let a = d
        .state()
        .alarms
        .values()
        .find(|a| a.kind == AlarmKind::ArrivalMissed)
        .unwrap();
    assert_eq!((a.incident.as_ref(), a.raised_at), (Some(&i), at(180.0)));

    // Accepted at 50 s and on scene at 170 s: no alarm.
    let (mut d, _, o) = dispatched();
    d.receipt(at(50.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    assert!(alarms_at(&mut d, 100.0).is_empty());
    d.receipt(at(170.0), &unit("u1"), &o, OrderState::OnScene, &nobody)
        .unwrap();
    assert!(alarms_at(&mut d, 500.0).is_empty());
}

#[test]
fn reinforcement_alarm_at_five_minutes_after_the_request() {
    let (mut d, i, o) = dispatched();
    d.receipt(at(10.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    d.receipt(at(100.0), &unit("u1"), &o, OrderState::OnScene, &nobody)
        .unwrap();
    let out = d
        .reinforce(at(120.0), &i, wang(), 1, &[cand("u2", 900.0, "g2")])
        .unwrap();
    let (_, r, _) = sent(&out)[0].clone();
    assert_eq!(d.order(&r).unwrap().reinforcement, Some(1));
    d.receipt(at(130.0), &unit("u2"), &r, OrderState::Accepted, &nobody)
        .unwrap();
    assert!(alarms_at(&mut d, 419.999).is_empty());
    assert_eq!(
        alarms_at(&mut d, 420.0),
        [AlarmKind::ReinforcementMissed { seq: 1 }]
    );

    // Met in time: no alarm.
    let (mut d, i, _) = dispatched();
    online(&mut d, at(0.0), &["u3"]);
    let out = d
        .reinforce(at(120.0), &i, wang(), 1, &[cand("u3", 90.0, "g1")])
        .unwrap();
    let r = sent(&out)[0].1.clone();
    d.receipt(at(130.0), &unit("u3"), &r, OrderState::Accepted, &nobody)
        .unwrap();
    d.receipt(at(400.0), &unit("u3"), &r, OrderState::OnScene, &nobody)
        .unwrap();
    let out = d.tick(at(1000.0), &nobody).unwrap();
    assert!(
        !raised(&out)
            .iter()
            .any(|k| matches!(k, AlarmKind::ReinforcementMissed { .. }))
    );
}

#[test]
fn alarms_renotify_until_acknowledged() {
    let (mut d, _, _) = dispatched();
    d.tick(at(60.0), &nobody).unwrap();
    let alarm = d.state().alarms.keys().next().unwrap().clone();
    let notified = |out: &Outcome| {
        out.effects
            .iter()
            .filter(|e| matches!(e, Effect::NotifyAlarm { .. }))
            .count()
    };
    assert_eq!(notified(&d.tick(at(89.999), &nobody).unwrap()), 0);
    assert_eq!(notified(&d.tick(at(90.0), &nobody).unwrap()), 1);
    assert_eq!(notified(&d.tick(at(120.0), &nobody).unwrap()), 1);
    let out = d.acknowledge_alarm(at(121.0), &alarm, "li").unwrap();
    assert_eq!(out.events[0].actor, Actor::dispatcher("li"));
    assert!(
        d.acknowledge_alarm(at(122.0), &alarm, "li")
            .unwrap()
            .is_empty()
    );
    assert_eq!(d.alarm(&alarm).unwrap().state, AlarmState::Acknowledged);
    assert_eq!(notified(&d.tick(at(150.0), &nobody).unwrap()), 0);
    d.resolve_alarm(at(151.0), &alarm, wang()).unwrap();
    assert_eq!(d.alarm(&alarm).unwrap().state, AlarmState::Resolved);
}

/// Persist mid-countdown, restore into a new dispatcher: every timer fires at its original
/// instant, exactly as in a dispatcher that never stopped.
#[test]
fn restart_mid_countdown_keeps_original_deadlines() {
    let (mut d, _, o) = dispatched();
    d.tick(at(10.0), &nobody).unwrap();
    // Persisted as the server does: the snapshot, and each responder as a record of its own.
    let json = serde_json::to_string(d.state()).unwrap();
    let records: Vec<String> = (d.state().responders.values())
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let mut state: DeskState = serde_json::from_str(&json).unwrap();
    assert!(
        state.responders.is_empty(),
        "responders are not in the snapshot"
    );
    for r in &records {
        let r: Responder = serde_json::from_str(r).unwrap();
        state.responders.insert(r.unit.clone(), r);
    }
    assert_eq!(&state, d.state());
    let mut r = Dispatcher::restore(
        DispatchConfig::default(),
        state,
        Box::new(SeqIds::starting_at(1000)),
    );
    assert_eq!(r.next_deadline(), d.next_deadline());
    assert_eq!(
        r.next_deadline(),
        Some(at(14.0)),
        "the third re-send, from the original dispatch"
    );

    let src = offer(vec![cand("u2", 200.0, "g2")]);
    for s in [14.0, 29.999] {
        assert_eq!(
            sent(&r.tick(at(s), &src).unwrap()),
            sent(&d.tick(at(s), &src).unwrap())
        );
    }
    assert_eq!(r.order(&o).unwrap().state, OrderState::Dispatched);
    let out = r.tick(at(30.0), &src).unwrap();
    assert_eq!(r.order(&o).unwrap().state, OrderState::Reassigned);
    assert_eq!(sent(&out)[0].0, unit("u2"));
    assert!(raised(&r.tick(at(59.999), &nobody).unwrap()).is_empty());
    assert_eq!(
        raised(&r.tick(at(60.0), &nobody).unwrap()),
        [AlarmKind::ResponseMissed]
    );
}

/// Every outcome lists the timers it armed and cleared, by stable id, for the store's timer table.
#[test]
fn outcomes_carry_timer_changes_for_the_store() {
    let mut d = desk();
    online(&mut d, at(0.0), &["u1"]);
    let (i, out) = d.create_incident(at(0.0), spec(None), wang()).unwrap();
    let ids: Vec<_> = out.timers_set.iter().map(|t| (t.kind.id(), t.at)).collect();
    assert_eq!(
        ids,
        [
            (format!("response:{i}"), at(60.0)),
            (format!("arrival:{i}"), at(180.0))
        ]
    );
    let out = d
        .dispatch(at(1.0), &i, wang(), &[cand("u1", 1.0, "g1")])
        .unwrap();
    let o = sent(&out)[0].1.clone();
    let mut ids: Vec<_> = out.timers_set.iter().map(|t| (t.kind.id(), t.at)).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            (format!("accept_timeout:{o}"), at(31.0)),
            (format!("resend:{o}"), at(3.0))
        ]
    );
    let out = d.tick(at(3.0), &nobody).unwrap();
    assert_eq!(out.timers_cleared, [format!("resend:{o}")]);
    assert_eq!(out.timers_set[0].at, at(7.0), "re-armed under the same id");
    let out = d
        .receipt(at(4.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    let cleared = [
        format!("accept_timeout:{o}"),
        format!("resend:{o}"),
        format!("response:{i}"),
    ];
    assert_eq!(
        out.timers_cleared, cleared,
        "accepted: its timeouts and the response target"
    );
    assert!(out.timers_set.is_empty());
}

#[test]
fn geofence_rule_alarm_is_raised_renotified_acknowledged_and_resolved() {
    let mut d = desk();
    let kind = AlarmKind::Geofence {
        zone: "venue".to_owned(),
        unit: unit("patrol-07"),
        entered: true,
        message: "patrol-07 entered Hubin venue".to_owned(),
    };
    let rule = Actor::system("geofence_rule");
    let (alarm, out) = d
        .raise_rule_alarm(at(0.0), kind.clone(), rule.clone())
        .unwrap();
    assert_eq!(raised(&out), [kind]);
    assert_eq!(out.events[0].actor, rule);
    let a = d.alarm(&alarm).unwrap();
    assert_eq!(
        (a.state.clone(), a.incident.clone()),
        (AlarmState::Raised, None)
    );
    let notified = |out: &Outcome| {
        (out.effects.iter())
            .filter(|e| matches!(e, Effect::NotifyAlarm { .. }))
            .count()
    };
    assert_eq!(notified(&d.tick(at(30.0), &nobody).unwrap()), 1);
    d.acknowledge_alarm(at(31.0), &alarm, "li").unwrap();
    assert_eq!(notified(&d.tick(at(60.0), &nobody).unwrap()), 0);
    d.resolve_alarm(at(61.0), &alarm, wang()).unwrap();
    assert_eq!(d.alarm(&alarm).unwrap().state, AlarmState::Resolved);

    // Kinds the core's own rules raise cannot be raised from outside; nothing changes.
    let before = d.state().alarms.len();
    let err = d
        .raise_rule_alarm(at(62.0), AlarmKind::NoOneAvailable, Actor::system("x"))
        .unwrap_err();
    assert_eq!(err.code(), "not_a_rule_alarm");
    assert_eq!(d.state().alarms.len(), before);
}

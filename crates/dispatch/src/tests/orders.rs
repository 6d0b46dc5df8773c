//! Order transitions (every legal and illegal one), receipts, one-click and manual dispatch.

use super::*;

/// The receipts (or cancel) that bring a fresh dispatched order to `state`.
fn path(state: OrderState) -> Vec<OrderState> {
    use OrderState::*;
    match state {
        Dispatched => vec![],
        Delivered => vec![Delivered],
        Accepted => vec![Delivered, Accepted],
        Rejected => vec![Rejected],
        EnRoute => vec![Delivered, Accepted, EnRoute],
        OnScene => vec![Delivered, Accepted, EnRoute, OnScene],
        Resolved => vec![Delivered, Accepted, EnRoute, OnScene, Resolved],
        Cancelled => vec![Cancelled],
        _ => vec![],
    }
}

fn apply(d: &mut Dispatcher, o: &OrderId, to: OrderState) -> Result<Outcome, DispatchError> {
    let now = at(5.0);
    if to == OrderState::Cancelled {
        d.cancel_order(now, o, "wang", "test", &nobody)
    } else {
        d.receipt(now, &unit("u1"), o, to, &nobody)
    }
}

#[test]
fn the_transition_table() {
    use OrderState::*;
    let legal = [
        (Created, Dispatched),
        (Created, Cancelled),
        (Dispatched, Delivered),
        (Dispatched, Accepted),
        (Dispatched, Rejected),
        (Dispatched, Cancelled),
        (Dispatched, Reassigned),
        (Delivered, Accepted),
        (Delivered, Rejected),
        (Delivered, Cancelled),
        (Delivered, Reassigned),
        (Accepted, EnRoute),
        (Accepted, OnScene),
        (Accepted, Cancelled),
        (EnRoute, OnScene),
        (EnRoute, Cancelled),
        (OnScene, Resolved),
        (OnScene, Cancelled),
    ];
    for from in OrderState::ALL {
        for to in OrderState::ALL {
            assert_eq!(
                from.can_become(to),
                legal.contains(&(from, to)),
                "{from:?} -> {to:?}"
            );
        }
    }
}

/// Every state an order can reach, then every receipt and cancel from there, through the
/// dispatcher: legal ones apply, repeats are no-ops, the rest are refused and change nothing.
#[test]
fn every_transition_through_the_dispatcher() {
    use OrderState::*;
    let reachable = [
        Dispatched, Delivered, Accepted, Rejected, EnRoute, OnScene, Resolved, Cancelled,
        Reassigned,
    ];
    let targets = [
        Delivered, Accepted, Rejected, EnRoute, OnScene, Resolved, Cancelled,
    ];
    for from in reachable {
        for to in targets {
            let (mut d, _, o) = dispatched();
            for s in path(from) {
                apply(&mut d, &o, s).unwrap();
            }
            if from == Reassigned {
                d.tick(at(30.0), &offer(vec![cand("u2", 200.0, "g2")]))
                    .unwrap();
            }
            assert_eq!(d.order(&o).unwrap().state, from);
            let before = d.state().clone();
            let result = apply(&mut d, &o, to);
            let replay = to != Cancelled
                && (from == to
                    || path(from).contains(&to)
                    || (to == Delivered && from != Dispatched));
            if replay {
                assert!(result.unwrap().is_empty(), "{from:?} -> {to:?} is a replay");
                assert_eq!(d.state(), &before);
            } else if from.can_become(to) {
                let out = result.unwrap();
                assert_eq!(d.order(&o).unwrap().state, to, "{from:?} -> {to:?}");
                assert!(out.events.iter().any(|e| matches!(
                    &e.change,
                    Change::OrderState { from: f, to: t, .. } if *f == from && *t == to
                )));
            } else {
                let err = result.unwrap_err();
                assert_eq!(
                    err,
                    DispatchError::IllegalTransition {
                        order: o.clone(),
                        from,
                        to
                    }
                );
                assert_eq!(d.state(), &before, "a refused command changes nothing");
            }
        }
    }
}

#[test]
fn receipts_check_unit_and_kind_and_are_idempotent() {
    let (mut d, i, o) = dispatched();
    let err = d.receipt(at(1.0), &unit("u2"), &o, OrderState::Accepted, &nobody);
    assert_eq!(err.unwrap_err().code(), "wrong_unit");
    let err = d.receipt(at(1.0), &unit("u1"), &o, OrderState::Cancelled, &nobody);
    assert_eq!(
        err.unwrap_err(),
        DispatchError::NotAReceipt(OrderState::Cancelled)
    );
    let first = d
        .receipt(at(2.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    assert_eq!(first.events[0].actor, Actor::Unit(unit("u1")));
    let again = d
        .receipt(at(3.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(d.incident(&i).unwrap().first_accepted_at, Some(at(2.0)));
    assert_eq!(d.responder_status(&unit("u1")), ResponderStatus::Committed);
    d.receipt(at(4.0), &unit("u1"), &o, OrderState::EnRoute, &nobody)
        .unwrap();
    assert_eq!(d.responder_status(&unit("u1")), ResponderStatus::Responding);
}

#[test]
fn create_is_idempotent_by_request_id() {
    let mut d = desk();
    let (a, out) = d
        .create_incident(at(0.0), spec(Some("req-1")), wang())
        .unwrap();
    assert_eq!(out.events.len(), 1);
    let (b, again) = d
        .create_incident(at(1.0), spec(Some("req-1")), wang())
        .unwrap();
    assert_eq!(a, b);
    assert!(again.is_empty());
    assert_eq!(d.state().incidents.len(), 1);
    let err = d.create_incident(at(1.0), spec(None), Actor::dispatcher(" "));
    assert_eq!(err.unwrap_err(), DispatchError::NoDispatcherName);
}

#[test]
fn one_click_prefers_grid_then_widens_and_checks_skills() {
    let mut d = desk();
    online(&mut d, at(0.0), &["near", "ingrid", "medic", "busy"]);
    d.responder_duty(at(0.0), &unit("busy"), DutyStatus::OnBreak, &nobody)
        .unwrap();
    let i = incident(&mut d, at(0.0));
    let cs = [
        cand("offline", 10.0, "g1"),
        cand("busy", 20.0, "g1"),
        cand("near", 50.0, "g2"),
        cand("ingrid", 300.0, "g1"),
    ];
    let out = d.dispatch(at(1.0), &i, wang(), &cs).unwrap();
    assert_eq!(
        sent(&out)[0].0,
        unit("ingrid"),
        "same grid before a nearer unit elsewhere"
    );
    assert_eq!(
        d.responder_status(&unit("ingrid")),
        ResponderStatus::Committed
    );
    assert!(out.events.iter().any(|e| e.actor == wang()
        && matches!(
            &e.change,
            Change::ResponderStatus {
                to: ResponderStatus::Committed,
                ..
            }
        )));
    let out = d.dispatch(at(2.0), &i, wang(), &cs).unwrap();
    assert_eq!(sent(&out)[0].0, unit("near"), "then widens");

    let mut medical = spec(None);
    medical.kind = IncidentKind::Medical;
    let m = d.create_incident(at(3.0), medical, wang()).unwrap().0;
    let mut untrained = cand("medic", 5.0, "g1");
    untrained.skills.clear();
    let out = d.dispatch(at(3.0), &m, wang(), &[untrained]).unwrap();
    assert!(sent(&out).is_empty(), "medical needs first_aid");
    assert_eq!(raised(&out), vec![AlarmKind::NoOneAvailable]);
}

#[test]
fn manual_dispatch_is_all_or_nothing_and_recommend_changes_nothing() {
    let mut d = desk();
    online(&mut d, at(0.0), &["a", "b"]);
    let i = incident(&mut d, at(0.0));
    let before = d.state().clone();
    let err = d.dispatch_units(at(1.0), &i, "wang", &[unit("a"), unit("ghost")]);
    assert!(matches!(
        err,
        Err(DispatchError::UnitUnavailable {
            status: ResponderStatus::Offline,
            ..
        })
    ));
    assert_eq!(d.state(), &before);

    let mut car = cand("b", 1200.0, "g2");
    car.unit_type = "car".to_owned();
    let recs = d
        .recommend(&i, &[cand("x", 1.0, "g1"), car, cand("a", 140.0, "g1")])
        .unwrap();
    assert_eq!(d.state(), &before);
    let units: Vec<_> = recs.iter().map(|r| r.candidate.unit.as_str()).collect();
    assert_eq!(units, ["a", "b"], "offline x is left out; same grid first");
    assert!((recs[0].eta_s - 140.0 * 1.3 / 1.4).abs() < 1e-9);
    assert!((recs[1].eta_s - 1200.0 * 1.3 / 6.0).abs() < 1e-9);
    assert!(recs[0].same_grid && !recs[1].same_grid);

    let out = d
        .dispatch_units(at(1.0), &i, "wang", &[unit("a"), unit("b")])
        .unwrap();
    assert_eq!(sent(&out).len(), 2);
}

#[test]
fn cancel_and_close() {
    let (mut d, i, o) = dispatched();
    let err = d.close_incident(at(1.0), &i, "wang").unwrap_err();
    assert_eq!(
        err,
        DispatchError::OrdersOpen {
            incident: i.clone(),
            open: vec![o.clone()]
        }
    );
    let out = d
        .cancel_order(at(2.0), &o, "wang", "duplicate call", &nobody)
        .unwrap();
    assert!(out.effects.contains(&Effect::SendCancel {
        unit: unit("u1"),
        order_id: o.clone(),
        reason: "duplicate call".to_owned(),
    }));
    assert_eq!(d.responder_status(&unit("u1")), ResponderStatus::Available);
    assert_eq!(
        d.close_incident(at(3.0), &i, "").unwrap_err(),
        DispatchError::NoDispatcherName
    );
    let out = d.close_incident(at(3.0), &i, "wang").unwrap();
    assert_eq!(out.events[0].actor, wang());
    assert_eq!(
        d.close_incident(at(4.0), &i, "wang").unwrap_err(),
        DispatchError::IncidentClosed(i.clone())
    );
    assert!(d.dispatch(at(4.0), &i, wang(), &[]).is_err());
    // No target alarms for a closed incident.
    let late = d.tick(at(1000.0), &nobody).unwrap();
    assert!(raised(&late).is_empty());
}

#[test]
fn journal_events_are_json_with_their_actor() {
    let (mut d, _, o) = dispatched();
    let out = d
        .receipt(at(1.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    let json = serde_json::to_value(&out.events[0]).unwrap();
    assert_eq!(json["type"], "order_state");
    assert_eq!(json["to"], "accepted");
    assert_eq!(json["actor"]["type"], "unit");
    assert_eq!(json["actor"]["name"], "u1");
    let back: JournalEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, out.events[0]);
}

#[test]
fn outcomes_name_the_records_they_touched() {
    let (mut d, i, o) = dispatched();
    let out = d.tick(at(60.0), &nobody).unwrap();
    let t = out.touched();
    assert_eq!(t.alarms.len(), 1);
    assert!(t.orders.is_empty());
    let out = d
        .receipt(at(61.0), &unit("u1"), &o, OrderState::Accepted, &nobody)
        .unwrap();
    let t = out.touched();
    assert_eq!(
        (t.orders.first(), t.incidents.first()),
        (Some(&o), Some(&i))
    );
    assert!(t.units.is_empty(), "committed before and after");
}

//! Undoing a command the caller could not persist, and the responder records a command changed.

use super::*;

#[test]
fn rollback_puts_back_orders_responders_and_timers() {
    let mut d = desk();
    online(&mut d, at(0.0), &["u1", "u2"]);
    let i = incident(&mut d, at(0.0));
    let before_state = d.state().clone();
    let before_deadline = d.next_deadline();

    let cp = d.checkpoint();
    let c = [cand("u1", 100.0, "g1")];
    let out = d.dispatch(at(1.0), &i, wang(), &c).unwrap();
    assert_eq!(sent(&out).len(), 1);
    assert_eq!(d.responder_status(&unit("u1")), ResponderStatus::Committed);
    d.gps_fix(at(2.0), &unit("u9"), SITE).unwrap();
    d.rollback(cp);

    assert_eq!(
        d.state(),
        &before_state,
        "as if the dispatch never happened"
    );
    assert_eq!(d.next_deadline(), before_deadline);
    assert_eq!(d.responder_status(&unit("u1")), ResponderStatus::Available);
    assert!(!d.state().responders.contains_key(&unit("u9")));
}

#[test]
fn keep_names_the_responders_whose_record_changed() {
    let mut d = desk();
    online(&mut d, at(0.0), &["u1", "u2"]);
    let i = incident(&mut d, at(0.0));

    let cp = d.checkpoint();
    d.dispatch(at(1.0), &i, wang(), &[cand("u1", 100.0, "g1")])
        .unwrap();
    assert_eq!(
        d.changed_responders(),
        [unit("u1")].into(),
        "u1 now holds an order"
    );
    d.keep(cp);

    let cp = d.checkpoint();
    d.gps_fix(at(2.0), &unit("u2"), SITE).unwrap();
    d.gps_fix(at(2.0), &unit("u7"), SITE).unwrap();
    assert!(
        d.changed_responders().is_empty(),
        "a new last fix is not a record change"
    );
    d.keep(cp);

    let cp = d.checkpoint();
    d.responder_presence(at(3.0), &unit("u2"), false, &nobody)
        .unwrap();
    d.responder_duty(at(3.0), &unit("u2"), DutyStatus::OnBreak, &nobody)
        .unwrap();
    assert_eq!(d.changed_responders(), [unit("u2")].into());
    d.keep(cp);
    assert!(
        d.changed_responders().is_empty(),
        "nothing recorded after keep"
    );
}

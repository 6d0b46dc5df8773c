//! Grant, deny, queue order and positions, release with hand-over, retries, refusals.

use super::*;

#[test]
fn an_idle_floor_is_granted_with_the_talk_time() {
    let mut ic = intercom();
    let out = press(&mut ic, 1.0, &u("a"), "g1", "r1");
    assert_eq!(answers(&out, &u("a")), vec![granted(60_000)]);
    assert_eq!(out.events.len(), 1);
    let e = &out.events[0];
    assert_eq!(e.actor, Actor::Unit(UnitId::from("a")));
    let Change::Granted {
        party,
        priority,
        request_id,
        deadline,
        ..
    } = &e.change
    else {
        panic!("expected a grant: {e:?}")
    };
    assert_eq!((party, *priority), (&u("a"), FloorPriority::Normal));
    assert_eq!((request_id.as_deref(), *deadline), (Some("r1"), at(61.0)));
    assert_eq!(ic.holder(&tg("g1")), Some(&u("a")));
    assert_eq!(ic.next_deadline(), Some(at(61.0)));
}

#[test]
fn a_taken_floor_is_denied_on_a_deny_group() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g2", "r1");
    let out = press(&mut ic, 1.0, &u("b"), "g2", "r2");
    let denied = Answer::Denied {
        reason: DenyReason::Busy,
        holder: Some(u("a")),
    };
    assert_eq!(answers(&out, &u("b")), vec![denied]);
    assert!(matches!(
        &changes(&out)[..],
        [Change::Denied {
            reason: DenyReason::Busy,
            ..
        }]
    ));
    assert_eq!(ic.holder(&tg("g2")), Some(&u("a")));
    assert!(ic.queue(&tg("g2")).is_empty());
}

#[test]
fn the_queue_keeps_arrival_order_and_tells_positions() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    for (i, x) in ["b", "c", "d"].into_iter().enumerate() {
        let out = press(&mut ic, 1.0 + i as f64, &u(x), "g1", &format!("r{x}"));
        assert_eq!(answers(&out, &u(x)), vec![queued(i as u32 + 1)]);
        let [Change::Queued { position, .. }] = &changes(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(*position, i as u32 + 1);
    }
    assert_eq!(ic.queue(&tg("g1")), vec![u("b"), u("c"), u("d")]);
    // b lets go while waiting: it leaves; c and d move up and are told.
    let out = let_go(&mut ic, 5.0, &u("b"), "g1", "xb");
    let reason = DequeueReason::Cancelled;
    assert!(matches!(&changes(&out)[..], [Change::Dequeued { reason: r, .. }] if *r == reason));
    assert_eq!(answers(&out, &u("c")), vec![queued(1)]);
    assert_eq!(answers(&out, &u("d")), vec![queued(2)]);
    assert_eq!(ic.holder(&tg("g1")), Some(&u("a")));
}

#[test]
fn release_hands_the_floor_to_the_next_in_queue_then_goes_idle() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    press(&mut ic, 1.0, &u("b"), "g1", "rb");
    press(&mut ic, 2.0, &u("c"), "g1", "rc");
    let out = let_go(&mut ic, 10.0, &u("a"), "g1", "xa");
    let [b] = &out.bursts[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (b.party.clone(), b.outcome, b.duration_ms),
        (u("a"), BurstOutcome::Released, 10_000)
    );
    assert_eq!(
        (b.start, b.end, b.request_id.as_deref()),
        (at(0.0), at(10.0), Some("ra"))
    );
    let kinds = changes(&out);
    assert!(matches!(
        &kinds[..],
        [Change::Released { .. }, Change::Granted { .. }]
    ));
    assert_eq!(answers(&out, &u("b")), vec![granted(60_000)]);
    let Effect::Floor { request_id, .. } = &out.effects[0];
    assert_eq!(
        request_id.as_deref(),
        Some("rb"),
        "the grant answers b's own request"
    );
    assert_eq!(answers(&out, &u("c")), vec![queued(1)]);
    let_go(&mut ic, 20.0, &u("b"), "g1", "xb");
    assert_eq!(ic.holder(&tg("g1")), Some(&u("c")));
    let out = let_go(&mut ic, 30.0, &u("c"), "g1", "xc");
    assert!(matches!(
        &changes(&out)[..],
        [Change::Released { .. }, Change::Idle { .. }]
    ));
    for x in ["a", "b", "c", "d"] {
        assert_eq!(
            answers(&out, &u(x)),
            vec![Answer::Idle],
            "idle goes to every member handset"
        );
    }
    assert!(ic.group(&tg("g1")).unwrap().floor.is_free());
}

#[test]
fn a_full_queue_denies() {
    let mut ic = intercom_with(IntercomConfig {
        max_queue: 2,
        ..IntercomConfig::default()
    });
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    press(&mut ic, 1.0, &u("b"), "g1", "rb");
    press(&mut ic, 2.0, &u("c"), "g1", "rc");
    let out = press(&mut ic, 3.0, &u("d"), "g1", "rd");
    let denied = Answer::Denied {
        reason: DenyReason::QueueFull,
        holder: Some(u("a")),
    };
    assert_eq!(answers(&out, &u("d")), vec![denied]);
    assert_eq!(ic.queue(&tg("g1")).len(), 2);
}

#[test]
fn retries_are_harmless() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g2", "r1");
    let again = press(&mut ic, 5.0, &u("a"), "g2", "r1");
    assert!(again.events.is_empty() && again.bursts.is_empty());
    assert_eq!(
        answers(&again, &u("a")),
        vec![granted(55_000)],
        "repeats the standing"
    );
    press(&mut ic, 6.0, &u("b"), "g2", "r2");
    let again = press(&mut ic, 7.0, &u("b"), "g2", "r2");
    assert!(again.events.is_empty());
    let denied = Answer::Denied {
        reason: DenyReason::Busy,
        holder: Some(u("a")),
    };
    assert_eq!(answers(&again, &u("b")), vec![denied], "repeats the denial");
    // A late duplicate of an old release does not release a later grant.
    let_go(&mut ic, 8.0, &u("a"), "g2", "x1");
    press(&mut ic, 9.0, &u("a"), "g2", "r3");
    assert!(let_go(&mut ic, 10.0, &u("a"), "g2", "x1").is_empty());
    assert_eq!(ic.holder(&tg("g2")), Some(&u("a")));
    // Releasing a floor one does not hold changes nothing.
    assert!(let_go(&mut ic, 11.0, &u("b"), "g2", "x2").is_empty());
}

#[test]
fn refused_requests_change_nothing_and_carry_a_code() {
    let mut ic = intercom();
    let before = ic.state().clone();
    let err = ic.request(
        at(1.0),
        u("a"),
        &tg("nope"),
        FloorPriority::Normal,
        Some("r"),
    );
    assert_eq!(err.unwrap_err().code(), "unknown_talkgroup");
    let err = ic.request(at(1.0), u("c"), &tg("g2"), FloorPriority::Normal, Some("r"));
    assert_eq!(err.unwrap_err().code(), "not_a_member");
    let err = ic.request(at(1.0), u("a"), &tg("r1"), FloorPriority::Normal, Some("r"));
    assert_eq!(err.unwrap_err().code(), "wrong_mode");
    assert_eq!(ic.state(), &before);
}

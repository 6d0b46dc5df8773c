//! Priority and pre-emption: emergency over imminent peril over normal, dispatcher over
//! responder, and the emergency priority an SOS gives.

use super::*;

fn ask(ic: &mut Intercom, t: f64, p: &Party, g: &str, prio: FloorPriority, rid: &str) -> Outcome {
    ic.request(at(t), p.clone(), &tg(g), prio, Some(rid))
        .unwrap()
}

#[test]
fn emergency_revokes_a_normal_talker() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    let out = ask(&mut ic, 4.0, &u("b"), "g1", FloorPriority::Emergency, "rb");
    let revoked = Answer::Revoked {
        reason: RevokeReason::PreEmpted,
    };
    assert_eq!(answers(&out, &u("a")), vec![revoked]);
    assert_eq!(answers(&out, &u("b")), vec![granted(60_000)]);
    let kinds = changes(&out);
    assert!(matches!(
        &kinds[..],
        [
            Change::Revoked {
                reason: RevokeReason::PreEmpted,
                ..
            },
            Change::Granted {
                priority: FloorPriority::Emergency,
                ..
            }
        ]
    ));
    assert_eq!(
        out.events[0].actor,
        Actor::Unit(UnitId::from("b")),
        "the pre-emptor is the actor"
    );
    let [b] = &out.bursts[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (b.party.clone(), b.outcome, b.duration_ms),
        (u("a"), BurstOutcome::PreEmpted, 4_000)
    );
    assert_eq!(ic.holder(&tg("g1")), Some(&u("b")));
}

#[test]
fn equal_or_lower_rank_waits_and_the_queue_is_ordered_by_rank() {
    let mut ic = intercom();
    ask(&mut ic, 0.0, &u("a"), "g1", FloorPriority::Emergency, "ra");
    ask(&mut ic, 1.0, &u("b"), "g1", FloorPriority::Normal, "rb");
    let out = ask(
        &mut ic,
        2.0,
        &u("c"),
        "g1",
        FloorPriority::ImminentPeril,
        "rc",
    );
    assert_eq!(
        answers(&out, &u("c")),
        vec![queued(1)],
        "imminent peril goes ahead of normal"
    );
    assert_eq!(
        answers(&out, &u("b")),
        vec![queued(2)],
        "and b is told it moved back"
    );
    let out = ask(&mut ic, 3.0, &u("d"), "g1", FloorPriority::Emergency, "rd");
    assert_eq!(
        answers(&out, &u("d")),
        vec![queued(1)],
        "emergency does not pre-empt emergency"
    );
    assert_eq!(ic.queue(&tg("g1")), vec![u("d"), u("c"), u("b")]);
    assert_eq!(ic.holder(&tg("g1")), Some(&u("a")));
}

#[test]
fn a_dispatcher_cuts_in_over_a_responder_of_the_same_priority() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    let out = press(&mut ic, 1.0, &desk(), "g1", "rd");
    assert_eq!(
        answers(&out, &u("a")),
        vec![Answer::Revoked {
            reason: RevokeReason::PreEmpted
        }]
    );
    assert_eq!(answers(&out, &desk()), vec![granted(60_000)]);
    // A responder in imminent peril still outranks a dispatcher at normal: priority comes first.
    let out = ask(
        &mut ic,
        2.0,
        &u("b"),
        "g1",
        FloorPriority::ImminentPeril,
        "rb",
    );
    assert_eq!(ic.holder(&tg("g1")), Some(&u("b")));
    assert_eq!(out.bursts[0].party, desk());
}

#[test]
fn without_dispatcher_precedence_a_dispatcher_queues() {
    let cfg = IntercomConfig {
        dispatcher_precedence: false,
        ..IntercomConfig::default()
    };
    let mut ic = intercom_with(cfg);
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    let out = press(&mut ic, 1.0, &desk(), "g1", "rd");
    assert_eq!(answers(&out, &desk()), vec![queued(1)]);
    assert_eq!(ic.holder(&tg("g1")), Some(&u("a")));
}

#[test]
fn sos_gives_emergency_priority_until_it_expires() {
    let cfg = IntercomConfig {
        sos_emergency_s: 30,
        ..IntercomConfig::default()
    };
    let mut ic = intercom_with(cfg);
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    press(&mut ic, 1.0, &u("b"), "g1", "rb");
    press(&mut ic, 2.0, &u("c"), "g1", "rc");
    // c's SOS: it jumps the queue and pre-empts a.
    let out = ic.sos(at(5.0), &UnitId::from("c"), Actor::Unit(UnitId::from("c")));
    let kinds = changes(&out);
    assert!(matches!(
        &kinds[..],
        [
            Change::SosRaised { until: Some(_), .. },
            Change::Revoked { .. },
            Change::Granted {
                priority: FloorPriority::Emergency,
                ..
            }
        ]
    ));
    assert_eq!(ic.holder(&tg("g1")), Some(&u("c")));
    assert!(ic.in_sos(&UnitId::from("c")));
    assert_eq!(
        answers(&out, &u("b")),
        Vec::<Answer>::new(),
        "b's place did not move"
    );
    // While in SOS, a dispatcher at normal cannot cut in.
    let out = press(&mut ic, 6.0, &desk(), "g1", "rd");
    assert_eq!(answers(&out, &desk()), vec![queued(1)]);
    // At 35 s the SOS ends; the dispatcher (precedence) now outranks c and takes the floor.
    assert_eq!(ic.next_deadline(), Some(at(35.0)));
    let out = ic.tick(at(35.5));
    let kinds = changes(&out);
    assert!(matches!(
        &kinds[..],
        [
            Change::SosCleared { expired: true, .. },
            Change::Revoked { .. },
            Change::Granted { .. }
        ]
    ));
    assert_eq!(out.events[0].at, at(35.0), "journalled at its deadline");
    assert_eq!(ic.holder(&tg("g1")), Some(&desk()));
    assert_eq!(out.bursts[0].priority, FloorPriority::Normal);
}

#[test]
fn a_cleared_sos_drops_the_priority_and_until_cleared_has_no_deadline() {
    let cfg = IntercomConfig {
        sos_emergency_s: 0,
        ..IntercomConfig::default()
    };
    let mut ic = intercom_with(cfg);
    let b = UnitId::from("b");
    ic.sos(at(0.0), &b, Actor::Unit(b.clone()));
    assert_eq!(ic.next_deadline(), None);
    ask(&mut ic, 1.0, &u("b"), "g2", FloorPriority::Normal, "rb");
    assert_eq!(
        ic.rank(&u("b"), FloorPriority::Normal).priority,
        FloorPriority::Emergency
    );
    let out = ic.clear_sos(at(2.0), &b, Actor::Dispatcher(ConsoleId::from("desk")));
    assert!(matches!(
        &changes(&out)[..],
        [Change::SosCleared { expired: false, .. }]
    ));
    assert!(ic.clear_sos(at(3.0), &b, Actor::system("x")).is_empty());
    let out = ask(
        &mut ic,
        4.0,
        &u("a"),
        "g2",
        FloorPriority::ImminentPeril,
        "ra",
    );
    assert_eq!(
        answers(&out, &u("a")),
        vec![granted(60_000)],
        "b is back to normal"
    );
}

#[test]
fn pressing_again_at_a_higher_priority_moves_up_and_may_pre_empt() {
    let mut ic = intercom();
    ask(
        &mut ic,
        0.0,
        &u("a"),
        "g1",
        FloorPriority::ImminentPeril,
        "ra",
    );
    press(&mut ic, 1.0, &u("b"), "g1", "rb");
    press(&mut ic, 2.0, &u("c"), "g1", "rc");
    let out = ask(
        &mut ic,
        3.0,
        &u("c"),
        "g1",
        FloorPriority::ImminentPeril,
        "rc2",
    );
    assert_eq!(
        answers(&out, &u("c")),
        vec![queued(1)],
        "equal to the holder: no pre-emption"
    );
    assert_eq!(answers(&out, &u("b")), vec![queued(2)]);
    assert!(matches!(
        &changes(&out)[..],
        [Change::Queued { position: 1, .. }]
    ));
    let out = press(&mut ic, 4.0, &u("b"), "g1", "rb2");
    assert!(
        out.events.is_empty(),
        "a press at no higher priority changes nothing"
    );
    assert_eq!(answers(&out, &u("b")), vec![queued(2)]);
    let out = ask(&mut ic, 5.0, &u("b"), "g1", FloorPriority::Emergency, "rb3");
    assert_eq!(ic.holder(&tg("g1")), Some(&u("b")));
    assert_eq!(
        answers(&out, &u("a")),
        vec![Answer::Revoked {
            reason: RevokeReason::PreEmpted
        }]
    );
    assert_eq!(answers(&out, &u("b")), vec![granted(60_000)]);
    let to_b = |e: &&Effect| matches!(e, Effect::Floor { to, .. } if *to == u("b"));
    let Effect::Floor { request_id, .. } = out.effects.iter().find(to_b).unwrap();
    assert_eq!(
        request_id.as_deref(),
        Some("rb3"),
        "the grant answers the raising press"
    );
}

#[test]
fn a_holder_pressing_again_higher_is_protected_at_that_priority() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    let out = ask(
        &mut ic,
        1.0,
        &u("a"),
        "g1",
        FloorPriority::ImminentPeril,
        "ra2",
    );
    assert_eq!(answers(&out, &u("a")), vec![granted(59_000)]);
    let out = ask(
        &mut ic,
        2.0,
        &u("b"),
        "g1",
        FloorPriority::ImminentPeril,
        "rb",
    );
    assert_eq!(answers(&out, &u("b")), vec![queued(1)]);
    assert_eq!(ic.holder(&tg("g1")), Some(&u("a")));
}

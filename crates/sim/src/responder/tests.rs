use std::time::Duration;

use fieldlink_clock::Timestamp;
use fieldlink_proto::{UnitId, v1};

use super::*;

const T0: i64 = 1_800_000_000_000;
const START: (f64, f64) = (30.2500, 120.1700);

fn at(secs: u64) -> Timestamp {
    Timestamp::from_millis(T0).plus(Duration::from_secs(secs))
}

fn responder(behaviour: Behaviour, kind: UnitKind) -> Responder {
    Responder::new(UnitId::new("r1").expect("id"), kind, START, behaviour, 7)
}

/// Orders only, answered after exactly `delay` seconds.
fn prompt(delay: u64) -> Behaviour {
    let d = Duration::from_secs(delay);
    Behaviour {
        accept_delay: (d, d),
        work_time: (Duration::from_secs(60), Duration::from_secs(60)),
        ..Behaviour::orders_only()
    }
}

fn order(id: &str, to: (f64, f64)) -> v1::Downlink {
    attempt(id, 1, to)
}

/// Delivery number `n` of order `id` (the server's downlink id is `{order}/{attempt}`).
fn attempt(id: &str, n: u32, to: (f64, f64)) -> v1::Downlink {
    v1::Downlink {
        id: format!("{id}/{n}"),
        body: Some(v1::downlink::Body::Order(v1::WorkOrder {
            order_id: id.into(),
            incident_id: "inc-1".into(),
            location: Some(v1::Position {
                lat: to.0,
                lon: to.1,
                ..Default::default()
            }),
            accept_by_ms: at(30).as_millis(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn receipts(actions: &[Action]) -> Vec<(String, v1::OrderState)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Receipt(r) => Some((
                r.order_id.clone(),
                v1::OrderState::try_from(r.state).expect("state"),
            )),
            _ => None,
        })
        .collect()
}

/// 300 m east of the start.
fn east_300() -> (f64, f64) {
    (
        START.0,
        START.1 + 300.0 / (M_PER_DEG * START.0.to_radians().cos()),
    )
}

#[test]
fn an_order_is_delivered_at_once_and_accepted_after_the_delay() {
    let mut r = responder(prompt(12), UnitKind::OnFoot);
    assert!(matches!(r.tick(at(0)).as_slice(), [Action::Fix(_)]));
    let got = r.on_downlink(at(1), &order("o1", east_300()));
    assert_eq!(receipts(&got), [("o1".into(), v1::OrderState::Delivered)]);
    for s in 1..13 {
        assert!(
            receipts(&r.tick(at(s))).is_empty(),
            "nothing before 13 s ({s})"
        );
    }
    let got = r.tick(at(13));
    assert_eq!(
        receipts(&got),
        [
            ("o1".into(), v1::OrderState::Accepted),
            ("o1".into(), v1::OrderState::EnRoute)
        ]
    );
    assert!(matches!(r.state(), ResponderState::EnRoute { .. }));
    assert_eq!(r.tally().accepted, 1);
    // A re-send of an order it already took changes nothing.
    assert!(r.on_downlink(at(14), &order("o1", east_300())).is_empty());
}

#[test]
fn a_responder_who_rejects_says_so_and_keeps_patrolling() {
    let b = Behaviour {
        reject: 1.0,
        ..prompt(5)
    };
    let mut r = responder(b, UnitKind::EBike);
    r.tick(at(0));
    r.on_downlink(at(0), &order("o1", east_300()));
    let got = r.tick(at(5));
    assert_eq!(receipts(&got), [("o1".into(), v1::OrderState::Rejected)]);
    assert_eq!(r.state(), ResponderState::Patrolling);
    assert_eq!(r.tally().rejected, 1);
}

#[test]
fn a_responder_who_never_answers_only_confirms_delivery_and_then_forgets() {
    let b = Behaviour {
        never_answer: 1.0,
        ..prompt(5)
    };
    let mut r = responder(b, UnitKind::OnFoot);
    r.tick(at(0));
    let first = r.on_downlink(at(0), &order("o1", east_300()));
    assert_eq!(receipts(&first), [("o1".into(), v1::OrderState::Delivered)]);
    // The server re-sends while it has no receipt: delivery is confirmed again, nothing more.
    let again = r.on_downlink(at(4), &attempt("o1", 2, east_300()));
    assert_eq!(receipts(&again), [("o1".into(), v1::OrderState::Delivered)]);
    for s in 1..=89 {
        assert!(receipts(&r.tick(at(s))).is_empty());
        assert!(
            matches!(r.state(), ResponderState::OrderOffered { .. }),
            "{s}"
        );
    }
    // accept_by (30 s) + 60 s: forgotten.
    r.tick(at(90));
    assert_eq!(r.state(), ResponderState::Patrolling);
    assert_eq!(r.tally().ignored, 1);
}

#[test]
fn it_travels_at_its_speed_arrives_and_resolves_then_patrols_from_the_scene() {
    let mut r = responder(prompt(0), UnitKind::Car);
    r.tick(at(0));
    let scene = east_300();
    r.on_downlink(at(0), &order("o1", scene));
    let accepted = r.tick(at(0));
    assert_eq!(receipts(&accepted).len(), 2, "accepted and en route");
    let from = r.position(at(0));
    let trip_m = {
        let (e, n) = offset_m(from, scene);
        e.abs() + n.abs()
    };
    let mut arrived_at = None;
    let mut last = from;
    for s in 1..200 {
        let got = r.tick(at(s));
        let here = r.position(at(s));
        assert!(distance_m(last, here) <= 10.0 + 0.01, "no jumps: {s}");
        last = here;
        if receipts(&got).contains(&("o1".into(), v1::OrderState::OnScene)) {
            arrived_at = Some(s);
            break;
        }
    }
    let arrived_at = arrived_at.expect("arrived");
    let expected = ((trip_m - 25.0) / 10.0).ceil() as u64;
    assert!(
        arrived_at.abs_diff(expected) <= 1,
        "{arrived_at} vs {expected}"
    );
    assert!(distance_m(r.position(at(arrived_at)), scene) <= 25.0);
    assert!(matches!(r.state(), ResponderState::OnScene { .. }));
    for s in arrived_at + 1..arrived_at + 60 {
        assert!(receipts(&r.tick(at(s))).is_empty());
    }
    let done = r.tick(at(arrived_at + 60));
    assert_eq!(receipts(&done), [("o1".into(), v1::OrderState::Resolved)]);
    assert_eq!(r.state(), ResponderState::Patrolling);
    // Patrol resumes from the scene, without a jump.
    let later = r.position(at(arrived_at + 61));
    assert!(distance_m(later, scene) <= 10.0 + 0.01);
    assert_eq!((r.tally().arrived, r.tally().resolved), (1, 1));
}

#[test]
fn a_cancel_or_a_reassignment_ends_the_job_and_a_busy_responder_declines_a_second_order() {
    let mut r = responder(prompt(0), UnitKind::OnFoot);
    r.tick(at(0));
    r.on_downlink(at(0), &order("o1", east_300()));
    r.tick(at(1));
    assert!(matches!(r.state(), ResponderState::EnRoute { .. }));
    let second = r.on_downlink(at(2), &order("o2", START));
    assert_eq!(
        receipts(&second),
        [
            ("o2".into(), v1::OrderState::Delivered),
            ("o2".into(), v1::OrderState::Rejected)
        ]
    );
    let cancel = v1::Downlink {
        body: Some(v1::downlink::Body::OrderCancelled(v1::OrderCancelled {
            order_id: "o1".into(),
            reason: "duplicate".into(),
        })),
        ..Default::default()
    };
    assert!(r.on_downlink(at(3), &cancel).is_empty());
    assert_eq!(r.state(), ResponderState::Patrolling);
    // Its late re-send is ignored.
    assert!(r.on_downlink(at(4), &order("o1", east_300())).is_empty());

    r.on_downlink(at(5), &order("o3", east_300()));
    let moved = v1::Downlink {
        body: Some(v1::downlink::Body::OrderReassigned(v1::OrderReassigned {
            order_id: "o3".into(),
            to_unit: "r2".into(),
            reason: "timeout".into(),
        })),
        ..Default::default()
    };
    r.on_downlink(at(6), &moved);
    assert_eq!(r.state(), ResponderState::Patrolling);
    assert!(receipts(&r.tick(at(7))).is_empty());
    assert_eq!(r.tally().withdrawn, 2);
    assert_eq!(r.tally().busy, 1);
}

#[test]
fn out_of_coverage_it_holds_its_fixes_and_sends_them_as_one_buffered_batch() {
    let b = Behaviour {
        extras: true,
        heartbeat_every: Duration::ZERO,
        ptt_per_hour: 0.0,
        video_per_hour: 0.0,
        field_reports_per_hour: 0.0,
        breaks_per_hour: 0.0,
        offline_per_hour: 360.0,
        offline_length: (Duration::from_secs(20), Duration::from_secs(20)),
        ..Behaviour::orders_only()
    };
    let mut r = responder(b, UnitKind::OnFoot);
    let mut went = None;
    for s in 0..3600 {
        let got = r.tick(at(s));
        if got.contains(&Action::GoOffline) {
            went = Some(s);
            break;
        }
    }
    let went = went.expect("went offline");
    assert!(matches!(r.state(), ResponderState::Offline { .. }));
    for s in went + 1..went + 20 {
        let got = r.tick(at(s));
        assert!(got.is_empty(), "silent while offline: {got:?}");
    }
    assert_eq!(r.buffered(), 19);
    let back = r.tick(at(went + 20));
    assert_eq!(back[0], Action::ComeBack);
    let Action::BufferedFixes(batch) = &back[1] else {
        panic!("a batch after coming back: {back:?}");
    };
    assert_eq!(batch.len(), 19);
    assert!(
        batch
            .windows(2)
            .all(|w| w[0].fix_time_ms < w[1].fix_time_ms)
    );
    assert!(matches!(back[2], Action::Fix(_)), "then live again");
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.tally().offline, 1);
}

/// Two hours of a default responder with an order every ten minutes.
fn shift(seed: u64) -> Vec<Action> {
    let mut r = Responder::new(
        UnitId::new("r1").expect("id"),
        UnitKind::EBike,
        START,
        Behaviour::default(),
        seed,
    );
    let mut all = Vec::new();
    for s in 0..7200 {
        if s % 600 == 5 {
            all.extend(r.on_downlink(at(s), &order(&format!("o{s}"), east_300())));
        }
        all.extend(r.tick(at(s)));
    }
    all
}

#[test]
fn the_same_seed_gives_the_same_shift_and_another_seed_another() {
    let a = shift(42);
    assert_eq!(a, shift(42));
    assert_ne!(a, shift(43));
    let kinds = |f: fn(&Action) -> bool| a.iter().filter(|x| f(x)).count();
    assert!(kinds(|x| matches!(x, Action::Heartbeat(_))) >= 60);
    assert!(kinds(|x| matches!(x, Action::Receipt(_))) >= 6);
}

#[test]
fn the_same_delivery_over_two_channels_is_answered_once() {
    let mut r = responder(prompt(5), UnitKind::OnFoot);
    r.tick(at(0));
    let over_mqtt = r.on_downlink(at(1), &order("o1", east_300()));
    assert_eq!(
        receipts(&over_mqtt),
        [("o1".into(), v1::OrderState::Delivered)]
    );
    // The copy from the WebSocket: same downlink id, no second answer.
    assert!(r.on_downlink(at(1), &order("o1", east_300())).is_empty());
    assert_eq!(r.tally().duplicates, 1);
    assert_eq!(r.tally().orders, 1);
    // A re-send is a new delivery: confirmed again while undecided.
    let resent = r.on_downlink(at(3), &attempt("o1", 2, east_300()));
    assert_eq!(
        receipts(&resent),
        [("o1".into(), v1::OrderState::Delivered)]
    );
    let got = r.tick(at(6));
    assert_eq!(
        receipts(&got),
        [
            ("o1".into(), v1::OrderState::Accepted),
            ("o1".into(), v1::OrderState::EnRoute)
        ]
    );
}

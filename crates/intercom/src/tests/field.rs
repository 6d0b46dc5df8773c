//! Maximum talk time, offline, reported bursts, restart with original deadlines, talkgroup
//! changes, and the JSON the journal and the store see.

use super::*;

#[test]
fn the_floor_is_revoked_at_the_maximum_talk_time_and_handed_over() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    press(&mut ic, 1.0, &u("b"), "g1", "rb");
    assert!(ic.tick(at(59.9)).is_empty());
    let out = ic.tick(at(61.0));
    assert_eq!(
        answers(&out, &u("a")),
        vec![Answer::Revoked {
            reason: RevokeReason::MaxTalkTime
        }]
    );
    let [b] = &out.bursts[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (b.outcome, b.end, b.duration_ms),
        (BurstOutcome::RevokedMaxTime, at(60.0), 60_000)
    );
    assert_eq!(out.events[0].actor, Actor::system("max_talk_time"));
    assert_eq!(out.events[0].at, at(60.0));
    assert_eq!(answers(&out, &u("b")), vec![granted(60_000)]);
    assert_eq!(
        ic.next_deadline(),
        Some(at(121.0)),
        "b's time runs from its grant"
    );
}

#[test]
fn a_group_may_set_its_own_talk_time() {
    let mut ic = intercom();
    let mut g = group("short", Mode::Arbitrated, BusyPolicy::Queue, &["a"]);
    g.max_talk_s = Some(10);
    ic.save_group(at(0.0), g, Actor::system("config")).unwrap();
    let out = press(&mut ic, 0.0, &u("a"), "short", "r");
    assert_eq!(answers(&out, &u("a")), vec![granted(10_000)]);
}

#[test]
fn an_offline_talker_loses_the_floor_and_leaves_every_queue() {
    let mut ic = intercom();
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    press(&mut ic, 1.0, &u("b"), "g1", "rb");
    press(&mut ic, 2.0, &u("c"), "g1", "rc");
    press(&mut ic, 3.0, &u("b"), "g2", "rb2");
    // b (holding g2, waiting on g1) goes offline.
    let out = ic.offline(at(5.0), &u("b"));
    let kinds = changes(&out);
    assert!(matches!(
        &kinds[..],
        [
            Change::Dequeued {
                reason: DequeueReason::Offline,
                ..
            },
            Change::Revoked {
                reason: RevokeReason::Offline,
                ..
            },
            Change::Idle { .. }
        ]
    ));
    assert_eq!(answers(&out, &u("c")), vec![queued(1)]);
    assert!(!answers(&out, &u("b")).contains(&Answer::Revoked {
        reason: RevokeReason::Offline
    }));
    assert_eq!(out.bursts[0].outcome, BurstOutcome::Offline);
    // a goes offline: c gets g1.
    let out = ic.offline(at(6.0), &u("a"));
    assert_eq!(answers(&out, &u("c")), vec![granted(60_000)]);
    assert!(answers(&out, &u("a")).is_empty());
    assert_eq!(ic.holder(&tg("g1")), Some(&u("c")));
    assert!(ic.queue(&tg("g1")).is_empty());
    assert!(ic.offline(at(7.0), &u("d")).is_empty());
}

#[test]
fn reported_bursts_become_log_records() {
    let mut ic = intercom();
    let a = UnitId::from("a");
    let out = ic
        .report_burst(at(10.0), &a, &tg("r1"), Some("p1"), at(1.0), at(4.5))
        .unwrap();
    let [b] = &out.bursts[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (b.outcome, b.duration_ms, b.start),
        (BurstOutcome::Reported, 3_500, at(1.0))
    );
    assert!(matches!(&changes(&out)[..], [Change::BurstReported { .. }]));
    assert!(out.effects.is_empty());
    let again = ic.report_burst(at(11.0), &a, &tg("r1"), Some("p1"), at(1.0), at(4.5));
    assert!(again.unwrap().is_empty(), "a retried report is logged once");
    let err = ic.report_burst(at(12.0), &a, &tg("r1"), Some("p2"), at(5.0), at(4.0));
    assert_eq!(err.unwrap_err().code(), "invalid_burst");
    let err = ic.report_burst(at(12.0), &a, &tg("g1"), Some("p3"), at(1.0), at(2.0));
    assert_eq!(err.unwrap_err().code(), "wrong_mode");
    let err = ic.report_burst(
        at(12.0),
        &UnitId::from("c"),
        &tg("r1"),
        None,
        at(1.0),
        at(2.0),
    );
    assert_eq!(err.unwrap_err().code(), "not_a_member");
}

#[test]
fn a_restored_state_keeps_its_original_deadlines() {
    let cfg = IntercomConfig {
        sos_emergency_s: 100,
        ..IntercomConfig::default()
    };
    let mut ic = intercom_with(cfg.clone());
    press(&mut ic, 0.0, &u("a"), "g1", "ra");
    press(&mut ic, 1.0, &u("b"), "g1", "rb");
    ic.sos(at(2.0), &UnitId::from("d"), Actor::system("test"));
    let json = serde_json::to_string(ic.state()).unwrap();
    let state: IntercomState = serde_json::from_str(&json).unwrap();
    let mut back = Intercom::restore(cfg, state);
    assert_eq!(back.state(), ic.state());
    assert_eq!(back.next_deadline(), Some(at(60.0)));
    let out = back.tick(at(200.0));
    let kinds = changes(&out);
    assert!(matches!(
        &kinds[..],
        [
            Change::Revoked { .. },
            Change::Granted { .. },
            Change::SosCleared { .. }
        ]
    ));
    assert_eq!(out.bursts[0].end, at(60.0));
    assert_eq!(out.events[2].at, at(102.0));
    // The retry memory survived too.
    assert!(
        press(&mut back, 201.0, &u("a"), "g1", "ra")
            .events
            .is_empty()
    );
}

#[test]
fn talkgroups_in_use_cannot_lose_active_members_or_be_removed() {
    let mut ic = intercom();
    let sys = Actor::system("api");
    press(&mut ic, 0.0, &u("a"), "g2", "ra");
    let smaller = group("g2", Mode::Arbitrated, BusyPolicy::Deny, &["b"]);
    let err = ic
        .save_group(at(1.0), smaller.clone(), sys.clone())
        .unwrap_err();
    assert_eq!(err.code(), "talkgroup_in_use");
    assert_eq!(
        ic.remove_group(at(1.0), &tg("g2"), sys.clone())
            .unwrap_err()
            .code(),
        "talkgroup_in_use"
    );
    let renamed = Talkgroup {
        name: "Two".into(),
        ..group("g2", Mode::Arbitrated, BusyPolicy::Deny, &["a", "b"])
    };
    ic.save_group(at(1.0), renamed, sys.clone()).unwrap();
    assert_eq!(
        ic.holder(&tg("g2")),
        Some(&u("a")),
        "a change keeps the floor"
    );
    let_go(&mut ic, 2.0, &u("a"), "g2", "xa");
    ic.save_group(at(3.0), smaller, sys.clone()).unwrap();
    let out = ic.remove_group(at(4.0), &tg("g2"), sys.clone()).unwrap();
    assert!(matches!(&changes(&out)[..], [Change::GroupRemoved { .. }]));
    let bad = Talkgroup {
        max_talk_s: Some(0),
        ..group("", Mode::Arbitrated, BusyPolicy::Deny, &[])
    };
    let err = ic.save_group(at(5.0), bad, sys).unwrap_err();
    assert!(matches!(&err, IntercomError::InvalidGroup(p) if p.len() == 2));
}

#[test]
fn journal_events_and_effects_serialize_with_type_tags() {
    let mut ic = intercom();
    let out = press(&mut ic, 0.0, &desk(), "g1", "r1");
    let e = serde_json::to_value(&out.events[0]).unwrap();
    assert_eq!(e["type"], "granted");
    assert_eq!(
        e["actor"],
        serde_json::json!({"type": "dispatcher", "name": "desk"})
    );
    assert_eq!(
        e["party"],
        serde_json::json!({"type": "console", "id": "desk"})
    );
    let f = serde_json::to_value(&out.effects[0]).unwrap();
    assert_eq!(
        f["answer"],
        serde_json::json!({"kind": "granted", "max_talk_ms": 60000})
    );
    let out = let_go(&mut ic, 1.0, &desk(), "g1", "x1");
    let b = serde_json::to_value(&out.bursts[0]).unwrap();
    assert_eq!(
        (b["outcome"].as_str(), b["duration_ms"].as_i64()),
        (Some("released"), Some(1000))
    );
}

use std::time::Duration;

use super::*;

const T0: i64 = 1_764_446_400_000;

fn t(s: i64) -> Timestamp {
    Timestamp::from_millis(T0 + s * 1000)
}

fn fix(s: i64, lat: f64, lon: f64) -> Fix {
    Fix::new(t(s), lat, lon)
}

fn tracker() -> Tracker {
    Tracker::new(LocationConfig::default())
}

#[test]
fn first_fix_creates_the_unit_online_and_indexes_it() {
    let mut tr = tracker();
    let out = tr.apply_fix("u1", fix(0, 31.2304, 121.4737), t(1));
    assert!(out.accepted && out.latest_updated && out.rejected.is_none());
    let event = out.presence.unwrap();
    assert_eq!(
        (event.from, event.to, event.at),
        (Presence::Offline, Presence::Online, t(1))
    );
    let state = tr.get("u1").unwrap();
    assert_eq!(
        (state.received_at, state.presence),
        (t(1), Presence::Online)
    );
    assert_eq!(tr.len(), 1);
    let near = tr.nearest(31.23, 121.47, 5, |_| true);
    assert_eq!(near.len(), 1);
    assert_eq!(&*near[0].unit, "u1");
}

#[test]
fn rejected_fix_is_counted_and_never_becomes_latest() {
    let mut tr = tracker();
    tr.apply_fix("u1", fix(0, 31.0, 121.0), t(0));
    // 1 s later and 1 km away: a jump.
    let out = tr.apply_fix("u1", fix(1, 31.01, 121.0), t(1));
    assert_eq!(out.rejected, Some(FilterReason::Jump));
    assert!(!out.accepted && !out.latest_updated);
    assert_eq!(tr.get("u1").unwrap().fix.lat, 31.0);
    assert_eq!(
        tr.get("u1").unwrap().last_seen,
        t(1),
        "still a message from the unit"
    );
    assert_eq!(tr.filter_counts().get(FilterReason::Jump), 1);
    // A rejected first fix creates nothing.
    let out = tr.apply_fix("u2", fix(0, 0.0, 0.0), t(0));
    assert_eq!(out.rejected, Some(FilterReason::Zero));
    assert!(tr.get("u2").is_none());
}

#[test]
fn out_of_order_batch_goes_to_history_and_keeps_the_newer_latest() {
    let mut tr = tracker();
    tr.apply_fix("u1", fix(100, 31.0010, 121.0), t(100));
    // The tunnel's buffered batch arrives after the newer fix.
    for (i, s) in [40, 60, 80].into_iter().enumerate() {
        let lat = 31.0 + i as f64 * 0.0003;
        let out = tr.apply_fix("u1", fix(s, lat, 121.0), t(101));
        assert!(out.accepted, "fix at {s}s: {out:?}");
        assert!(!out.latest_updated);
    }
    let state = tr.get("u1").unwrap();
    assert_eq!((state.fix.fix_time, state.fix.lat), (t(100), 31.0010));
}

#[test]
fn profile_sets_the_jump_limit() {
    let mut tr = tracker();
    tr.apply_fix("car", fix(0, 31.0, 121.0), t(0));
    tr.apply_fix("walker", fix(0, 31.0, 121.0), t(0));
    tr.set_profile("walker", tr.config().profile("on_foot"));
    // 10 s, 333 m: 33 m/s, a car but not a walker.
    assert!(tr.apply_fix("car", fix(10, 31.003, 121.0), t(10)).accepted);
    let out = tr.apply_fix("walker", fix(10, 31.003, 121.0), t(10));
    assert_eq!(out.rejected, Some(FilterReason::Jump));
    let bike = UnitProfile {
        max_speed_mps: 40.0,
    };
    let out = tr.apply_fix_with_profile("walker", fix(11, 31.003, 121.0), &bike, t(11));
    assert!(out.latest_updated);
}

#[test]
fn a_profile_set_before_the_first_fix_or_a_restore_still_applies() {
    let mut tr = tracker();
    let walker = tr.config().profile("on_foot");
    tr.set_profile("early", walker);
    tr.apply_fix("early", fix(0, 31.0, 121.0), t(0));
    let out = tr.apply_fix("early", fix(10, 31.003, 121.0), t(10));
    assert_eq!(out.rejected, Some(FilterReason::Jump));
    // Forgotten and restored: the registration outlives the unit's state.
    tr.remove("early");
    tr.restore("early", fix(20, 31.0, 121.0), t(20), t(20));
    let out = tr.apply_fix("early", fix(30, 31.003, 121.0), t(30));
    assert_eq!(out.rejected, Some(FilterReason::Jump));
}

#[test]
fn presence_goes_stale_then_offline_and_revives_on_any_message() {
    let mut tr = tracker();
    tr.apply_fix("u1", fix(0, 31.0, 121.0), t(0));
    assert!(tr.tick(t(59)).is_empty());
    let events = tr.tick(t(61));
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].to, events[0].at), (Presence::Stale, t(60)));
    let event = tr.seen("u1", t(70)).unwrap();
    assert_eq!((event.from, event.to), (Presence::Stale, Presence::Online));
    assert!(tr.seen("u1", t(71)).is_none());
    let events = tr.tick(t(71 + 600));
    let steps: Vec<_> = events.iter().map(|e| (e.to, e.at)).collect();
    assert_eq!(
        steps,
        [(Presence::Stale, t(131)), (Presence::Offline, t(671))]
    );
    let out = tr.apply_fix("u1", fix(700, 31.0, 121.0), t(700));
    assert_eq!(out.presence.unwrap().to, Presence::Online);
    assert!(tr.seen("nobody", t(700)).is_none());
}

#[test]
fn last_will_is_offline_at_once_and_only_once() {
    let mut tr = tracker();
    tr.apply_fix("u1", fix(0, 31.0, 121.0), t(0));
    let event = tr.mark_offline("u1", t(5)).unwrap();
    assert_eq!(
        (event.from, event.to, event.at),
        (Presence::Online, Presence::Offline, t(5))
    );
    assert!(tr.mark_offline("u1", t(6)).is_none());
    assert!(tr.tick(t(5000)).is_empty());
    assert_eq!(tr.seen("u1", t(5001)).unwrap().to, Presence::Online);
}

#[test]
fn restore_takes_presence_from_age_and_keeps_a_newer_fix() {
    let config = LocationConfig {
        stale_after: Duration::from_secs(60),
        offline_after: Duration::from_secs(600),
        ..LocationConfig::default()
    };
    let mut tr = Tracker::new(config);
    tr.restore("fresh", fix(0, 31.0, 121.0), t(0), t(10));
    tr.restore("stale", fix(0, 31.0, 121.0), t(0), t(100));
    tr.restore("gone", fix(0, 31.0, 121.0), t(0), t(1000));
    let presence = |u: &str| tr.get(u).unwrap().presence;
    assert_eq!(presence("fresh"), Presence::Online);
    assert_eq!(presence("stale"), Presence::Stale);
    assert_eq!(presence("gone"), Presence::Offline);
    tr.restore("fresh", fix(-5, 32.0, 121.0), t(-5), t(10));
    assert_eq!(tr.get("fresh").unwrap().fix.lat, 31.0);
    assert_eq!(tr.len(), 3);
    assert!(tr.remove("gone").is_some());
    assert_eq!(tr.len(), 2);
    assert_eq!(tr.iter().count(), 2);
}

#[test]
fn nearest_filters_and_within_radius_sorts() {
    let mut tr = tracker();
    for i in 0..10 {
        tr.apply_fix(
            &format!("u{i}"),
            fix(0, 31.0 + i as f64 * 0.001, 121.0),
            t(0),
        );
    }
    let odd = tr.nearest(31.0, 121.0, 3, |s| {
        s.unit.ends_with(['1', '3', '5', '7', '9'])
    });
    let names: Vec<_> = odd.iter().map(|n| &*n.unit).collect();
    assert_eq!(names, ["u1", "u3", "u5"]);
    let near = tr.within_radius(31.0, 121.0, 250.0);
    let names: Vec<_> = near.iter().map(|n| &*n.unit).collect();
    assert_eq!(names, ["u0", "u1", "u2"]);
    assert!((near[1].distance_m - 111.2).abs() < 0.5);
}

#[test]
fn nearest_equals_a_brute_force_scan_on_1000_random_units() {
    let mut rng = crate::test_rng::Rng::new(2024);
    let mut tr = tracker();
    for i in 0..1_000 {
        let (lat, lon) = (rng.range(31.1, 31.35), rng.range(121.3, 121.6));
        tr.apply_fix(&format!("u{i}"), fix(0, lat, lon), t(0));
    }
    // Some units go offline, to filter on.
    for i in (0..1_000).step_by(3) {
        tr.mark_offline(&format!("u{i}"), t(1));
    }
    for _ in 0..50 {
        let (lat, lon) = (rng.range(31.0, 31.45), rng.range(121.2, 121.7));
        for k in [1, 5, 40] {
            let online = |s: &UnitState| s.presence == Presence::Online;
            let got = tr.nearest(lat, lon, k, online);
            let mut all: Vec<(f64, &str)> = tr
                .iter()
                .filter(|s| online(s))
                .map(|s| (crate::haversine_m(lat, lon, s.fix.lat, s.fix.lon), &*s.unit))
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert_eq!(got.len(), k);
            for (g, w) in got.iter().zip(&all) {
                assert_eq!(&*g.unit, w.1);
                assert!((g.distance_m - w.0).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn every_fix_yields_a_history_record_flagged_when_rejected() {
    let mut tr = tracker();
    let first = tr.apply_fix("u1", fix(0, 31.0, 121.0), t(0));
    assert_eq!(
        (first.track.filtered, first.track.received_at),
        (None, t(0))
    );
    let mut bad = fix(1, 31.0, 121.0);
    bad.accuracy_m = Some(500.0);
    let out = tr.apply_fix("u1", bad, t(2));
    assert_eq!(out.track.filtered, Some(FilterReason::PoorAccuracy));
    assert_eq!(out.track.fix, bad);
    let rejected_first = tr.apply_fix("u2", fix(0, 0.0, 0.0), t(0));
    assert_eq!(rejected_first.track.filtered, Some(FilterReason::Zero));
}

#[test]
fn zone_events_follow_the_latest_position_only() {
    let mut tr = tracker();
    let doc = r#"{"type":"Feature","id":"scene","properties":{"radius_m":50},
                  "geometry":{"type":"Point","coordinates":[121.0,31.0]}}"#;
    assert_eq!(tr.load_zones(doc, crate::ZoneKind::Geofence).unwrap(), 1);
    let out = tr.apply_fix("u1", fix(0, 31.001, 121.0), t(0));
    assert!(out.zone_events.is_empty());
    let out = tr.apply_fix("u1", fix(10, 31.0002, 121.0), t(10));
    assert_eq!(out.zone_events.len(), 1);
    assert!(out.zone_events[0].entered);
    assert_eq!(tr.get("u1").unwrap().zones, [Arc::from("scene")]);
    // An out-of-order fix from far away changes nothing.
    let out = tr.apply_fix("u1", fix(5, 31.0006, 121.0), t(11));
    assert!(out.accepted && out.zone_events.is_empty());
    assert_eq!(tr.within_zone("scene").len(), 1);
    let out = tr.apply_fix("u1", fix(20, 31.001, 121.0), t(20));
    assert!(!out.zone_events[0].entered);
    assert!(
        tr.grid_of(31.0, 121.0).is_none(),
        "a geofence is not a grid"
    );
}

#[test]
fn bbox_and_polygon_queries() {
    let mut tr = tracker();
    tr.apply_fix("in", fix(0, 31.005, 121.005), t(0));
    tr.apply_fix("out", fix(0, 31.02, 121.005), t(0));
    let names = |v: Vec<&UnitState>| {
        v.into_iter()
            .map(|s| s.unit.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(tr.within_bbox(31.0, 121.0, 31.01, 121.01)), ["in"]);
    let square = geo::MultiPolygon(vec![geo::Polygon::new(
        geo::LineString::from(vec![
            (121.0, 31.0),
            (121.01, 31.0),
            (121.01, 31.01),
            (121.0, 31.01),
            (121.0, 31.0),
        ]),
        vec![],
    )]);
    assert_eq!(names(tr.within_polygon(&square)), ["in"]);
}

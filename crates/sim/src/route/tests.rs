//! Properties of routes: speed limit, staying inside the box, determinism.

use std::time::Duration;

use super::*;

/// Great-circle distance, metres (haversine), independent of the route's own projection.
fn haversine_m(a: RoutePoint, b: RoutePoint) -> f64 {
    let r = 6_371_008.8;
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

fn samples(route: &Route, step: Duration, n: u32) -> Vec<RoutePoint> {
    (0..n).map(|i| route.position_at(step * i)).collect()
}

#[test]
fn speed_between_consecutive_positions_never_exceeds_the_configured_speed() {
    for (seed, kind) in [
        (1, UnitKind::OnFoot),
        (2, UnitKind::EBike),
        (3, UnitKind::Car),
    ] {
        let route = Route::for_kind(seed, Bbox::SHANGCHENG, kind);
        let step = Duration::from_millis(500);
        // Long enough to go out, turn back and come home (the car's round trip is the shortest).
        let n = (2.0 * route.length_m() / kind.speed_mps() / 0.5) as u32 + 50;
        let pts = samples(&route, step, n.min(200_000));
        let limit = kind.speed_mps() * step.as_secs_f64() * 1.002 + 1e-6;
        for w in pts.windows(2) {
            let d = haversine_m(w[0], w[1]);
            assert!(
                d <= limit,
                "{kind:?} moved {d} m in {step:?} (limit {limit})"
            );
        }
        let moved: f64 = pts.windows(2).map(|w| haversine_m(w[0], w[1])).sum();
        assert!(
            moved > 0.9 * route.length_m(),
            "{kind:?} barely moved: {moved} m"
        );
    }
}

#[test]
fn routes_stay_inside_their_box() {
    let small = Bbox::new(30.250, 120.170, 30.253, 120.174).expect("valid");
    for bbox in [Bbox::SHANGCHENG, small] {
        for seed in 0..20 {
            let route = Route::for_kind(seed, bbox, UnitKind::Car);
            for p in samples(&route, Duration::from_secs(7), 2_000) {
                assert!(
                    bbox.contains(p.lat, p.lon),
                    "seed {seed}: {p:?} outside {bbox:?}"
                );
            }
        }
    }
}

#[test]
fn same_seed_same_route_and_other_seeds_differ() {
    let a = Route::for_kind(42, Bbox::SHANGCHENG, UnitKind::EBike);
    let b = Route::for_kind(42, Bbox::SHANGCHENG, UnitKind::EBike);
    let c = Route::for_kind(43, Bbox::SHANGCHENG, UnitKind::EBike);
    let step = Duration::from_secs(3);
    assert_eq!(samples(&a, step, 500), samples(&b, step, 500));
    assert_ne!(samples(&a, step, 500), samples(&c, step, 500));
}

#[test]
fn heading_points_where_the_unit_goes_and_legs_follow_streets() {
    let route = Route::for_kind(7, Bbox::SHANGCHENG, UnitKind::OnFoot);
    let step = Duration::from_secs(1);
    for w in samples(&route, step, 3_000).windows(2) {
        let (a, b) = (w[0], w[1]);
        let (dn, de) = (b.lat - a.lat, b.lon - a.lon);
        // Along a street: one of the two coordinates does not change (except at a corner).
        if dn.abs() > 1e-9 && de.abs() > 1e-9 {
            continue;
        }
        let moved = de.abs().max(dn.abs()) > 0.0;
        if moved && a.heading_deg == b.heading_deg {
            let expected = de.atan2(dn).to_degrees().rem_euclid(360.0);
            assert!((expected - a.heading_deg).abs() < 1e-6, "{a:?} -> {b:?}");
        }
    }
}

#[test]
fn bad_boxes_are_refused_in_words() {
    let err = Bbox::new(30.3, 120.1, 30.2, 120.2).expect_err("min > max");
    assert!(err.to_string().contains("min < max"), "{err}");
    assert!(Bbox::new(0.0, 0.0, 95.0, 1.0).is_err());
}

#[test]
fn a_route_is_long_and_comes_home_after_a_round_trip() {
    let route = Route::for_kind(9, Bbox::SHANGCHENG, UnitKind::Car);
    assert!(route.length_m() >= LEGS as f64 * BLOCK_M * 0.99);
    let start = route.position_at(Duration::ZERO);
    let round_trip = Duration::from_secs_f64(2.0 * route.length_m() / UnitKind::Car.speed_mps());
    let home = route.position_at(round_trip);
    assert!(haversine_m(start, home) < 0.01, "{start:?} vs {home:?}");
}

use super::*;
use crate::test_rng::Rng;

/// Scatters `n` points over a ~20 km box around Shanghai, plus a few far outliers.
fn scatter(n: u32, seed: u64) -> Vec<(u32, f64, f64)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|slot| {
            if slot % 250 == 7 {
                (slot, rng.range(20.0, 45.0), rng.range(100.0, 130.0))
            } else {
                (slot, rng.range(31.13, 31.31), rng.range(121.37, 121.58))
            }
        })
        .collect()
}

fn indexes() -> Vec<Box<dyn SpatialIndex>> {
    vec![
        Box::new(GridIndex::new(250.0)),
        Box::new(GridIndex::new(20.0)),
        Box::new(GridIndex::new(5_000.0)),
        Box::new(RTreeIndex::new()),
    ]
}

fn assert_same(got: &[Hit], want: &[Hit], what: &str) {
    let slots = |h: &[Hit]| h.iter().map(|h| h.slot).collect::<Vec<_>>();
    assert_eq!(slots(got), slots(want), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g.distance_m - w.distance_m).abs() < 1e-6, "{what}");
    }
}

#[test]
fn every_index_answers_like_the_scan() {
    let points = scatter(1_000, 42);
    let mut scan = ScanIndex::new();
    let mut others = indexes();
    for &(slot, lat, lon) in &points {
        scan.upsert(slot, lat, lon);
        others.iter_mut().for_each(|i| i.upsert(slot, lat, lon));
    }
    // Move half the units, some across cells, and remove a few.
    let mut rng = Rng::new(7);
    for &(slot, lat, lon) in points.iter().step_by(2) {
        let (lat, lon) = (lat + rng.range(-0.01, 0.01), lon + rng.range(-0.01, 0.01));
        scan.upsert(slot, lat, lon);
        others.iter_mut().for_each(|i| i.upsert(slot, lat, lon));
    }
    for slot in (0..1_000).step_by(97) {
        scan.remove(slot);
        others.iter_mut().for_each(|i| i.remove(slot));
    }
    let queries = [
        (31.22, 121.47),
        (31.3, 121.38),
        (31.0, 121.0),
        (40.0, 116.4),
        (-33.0, 151.0),
    ];
    for index in &others {
        assert_eq!(index.len(), scan.len());
        for &(lat, lon) in &queries {
            for k in [0, 1, 5, 20, 2_000] {
                let what = format!("{index:.40?} nearest {k} at {lat},{lon}");
                let want = scan.nearest(lat, lon, k, &mut |_| true);
                assert_same(&index.nearest(lat, lon, k, &mut |_| true), &want, &what);
                // A selective predicate: one unit in 50 is "available".
                let want = scan.nearest(lat, lon, k, &mut |s| s % 50 == 3);
                assert_same(
                    &index.nearest(lat, lon, k, &mut |s| s % 50 == 3),
                    &want,
                    &what,
                );
            }
            for radius in [0.0, 300.0, 2_000.0, 50_000.0, 3_000_000.0] {
                let what = format!("{index:.40?} radius {radius} at {lat},{lon}");
                let want = scan.within_radius(lat, lon, radius);
                assert_same(&index.within_radius(lat, lon, radius), &want, &what);
            }
            let mut want = scan.within_bbox(lat - 0.05, lon - 0.05, lat + 0.05, lon + 0.05);
            let mut got = index.within_bbox(lat - 0.05, lon - 0.05, lat + 0.05, lon + 0.05);
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want);
        }
    }
}

#[test]
fn moves_within_and_across_cells_keep_positions_right() {
    let mut grid = GridIndex::new(100.0);
    grid.upsert(1, 31.0, 121.0);
    grid.upsert(2, 31.0, 121.0);
    grid.upsert(1, 31.0001, 121.0001);
    grid.upsert(2, 31.01, 121.0);
    grid.upsert(3, 31.0, 121.0);
    grid.remove(1);
    grid.remove(1);
    assert_eq!(grid.len(), 2);
    assert_eq!(grid.position(1), None);
    assert_eq!(grid.position(2), Some((31.01, 121.0)));
    let near = grid.nearest(31.0, 121.0, 5, &mut |_| true);
    let slots: Vec<_> = near.iter().map(|h| h.slot).collect();
    assert_eq!(slots, [3, 2]);
    assert!(grid.heap_bytes() > 0);
}

#[test]
fn haversine_matches_known_distances() {
    // One degree of latitude on the mean sphere, and Shanghai to Beijing (about 1,067 km).
    assert!((haversine_m(0.0, 0.0, 1.0, 0.0) - 111_195.08).abs() < 0.1);
    let d = haversine_m(31.2304, 121.4737, 39.9042, 116.4074);
    assert!((d - 1_067_000.0).abs() < 3_000.0, "{d}");
}

#[test]
fn the_jump_filters_bound_never_says_within_when_haversine_says_beyond() {
    // Pairs at every scale from millimetres to hundreds of km, anywhere on the sphere, each
    // asked against limits just below, at and above the exact haversine distance.
    let mut rng = Rng::new(7);
    let mut fast = 0;
    for i in 0..200_000 {
        let (lat1, lon1) = (rng.range(-90.0, 90.0), rng.range(-180.0, 180.0));
        let step = 10f64.powf(rng.range(-8.0, 1.0));
        let lat2 = (lat1 + rng.range(-step, step)).clamp(-90.0, 90.0);
        let lon2 = lon1 + rng.range(-step, step);
        let d = haversine_m(lat1, lon1, lat2, lon2);
        for limit in [
            d * 0.999,
            d,
            d * 1.000_001,
            d + 1e-3,
            d * 1.001 + 2e-3,
            d * 2.0 + 1.0,
        ] {
            let limit = if i % 2 == 0 {
                limit
            } else {
                limit * (1.0 - f64::EPSILON)
            };
            if surely_within_m(lat1, lon1, lat2, lon2, limit) {
                fast += 1;
                assert!(
                    d < limit,
                    "{lat1},{lon1} → {lat2},{lon2}: {d} m vs {limit} m"
                );
            }
        }
    }
    // And it is a fast path, not a dead one.
    assert!(fast > 300_000, "{fast}");
    assert!(!surely_within_m(f64::NAN, 0.0, 0.0, 0.0, f64::INFINITY));
    assert!(
        !surely_within_m(0.0, 179.9999, 0.0, -179.9999, 1e6),
        "asks haversine"
    );
}

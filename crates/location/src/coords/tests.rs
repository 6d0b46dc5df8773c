use super::*;
use crate::haversine_m;

/// WGS-84 → GCJ-02 pairs `(wgs_lat, wgs_lon, gcj_lat, gcj_lon)` published in eviltransform's
/// test suite: googollee/eviltransform, `go/transform_test.go` (same table in
/// `javascript/test.js`): Shanghai, Shenzhen, Beijing.
const EVILTRANSFORM: [(f64, f64, f64, f64); 3] = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
];

/// Results published in wandergis/coordtransform's `README.md` ("//result"), lon-first there,
/// here as `(lat, lon)`: `wgs84togcj02(116.404, 39.915)` and `gcj02tobd09(116.404, 39.915)`.
const COORDTRANSFORM_WGS_TO_GCJ: ((f64, f64), (f64, f64)) =
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938));
const COORDTRANSFORM_GCJ_TO_BD: ((f64, f64), (f64, f64)) =
    ((39.915, 116.404), (39.92133699351021, 116.41036949371029));

fn within_1m(got: (f64, f64), want: (f64, f64), what: &str) {
    let d = haversine_m(got.0, got.1, want.0, want.1);
    assert!(d < 1.0, "{what}: {got:?} is {d:.3} m from {want:?}");
}

#[test]
fn wgs84_to_gcj02_matches_eviltransform_and_the_inverse_lands_within_1m() {
    for (wlat, wlon, glat, glon) in EVILTRANSFORM {
        within_1m(wgs84_to_gcj02(wlat, wlon), (glat, glon), "forward");
        within_1m(gcj02_to_wgs84(glat, glon), (wlat, wlon), "inverse");
        // The published figures agree with ours far below the metre, not just within it.
        let (la, lo) = wgs84_to_gcj02(wlat, wlon);
        assert!((la - glat).abs() < 1e-9 && (lo - glon).abs() < 1e-9);
    }
}

#[test]
fn wgs84_to_gcj02_matches_coordtransform() {
    let (wgs, gcj) = COORDTRANSFORM_WGS_TO_GCJ;
    within_1m(wgs84_to_gcj02(wgs.0, wgs.1), gcj, "forward");
    within_1m(gcj02_to_wgs84(gcj.0, gcj.1), wgs, "inverse");
}

#[test]
fn gcj02_to_bd09_matches_coordtransform_and_the_inverse_lands_within_1m() {
    let (gcj, bd) = COORDTRANSFORM_GCJ_TO_BD;
    within_1m(gcj02_to_bd09(gcj.0, gcj.1), bd, "forward");
    within_1m(bd09_to_gcj02(bd.0, bd.1), gcj, "inverse");
    let (la, lo) = gcj02_to_bd09(gcj.0, gcj.1);
    assert!((la - bd.0).abs() < 1e-9 && (lo - bd.1).abs() < 1e-9);
}

#[test]
fn wgs84_bd09_chains_through_gcj02_both_ways() {
    let (wlat, wlon, glat, glon) = EVILTRANSFORM[2];
    let bd = gcj02_to_bd09(glat, glon);
    within_1m(wgs84_to_bd09(wlat, wlon), bd, "forward");
    within_1m(bd09_to_wgs84(bd.0, bd.1), (wlat, wlon), "inverse");
    for system in [CoordSystem::Wgs84, CoordSystem::Gcj02, CoordSystem::Bd09] {
        let (la, lo) = system.from_wgs84(wlat, wlon);
        let back = system.to_wgs84(la, lo);
        assert!(haversine_m(back.0, back.1, wlat, wlon) < 0.01, "{system:?}");
    }
}

#[test]
fn gcj02_is_the_identity_outside_china() {
    // Paris, Sydney, and Tokyo (139.65°E, east of the box's 137.8347° edge).
    for (lat, lon) in [(48.8566, 2.3522), (-33.8688, 151.2093), (35.6762, 139.6503)] {
        assert!(out_of_china(lat, lon));
        assert_eq!(wgs84_to_gcj02(lat, lon), (lat, lon));
        assert_eq!(gcj02_to_wgs84(lat, lon), (lat, lon));
    }
    assert!(!out_of_china(31.2304, 121.4737));
}

#[test]
fn names_parse_and_print() {
    for system in [CoordSystem::Wgs84, CoordSystem::Gcj02, CoordSystem::Bd09] {
        assert_eq!(system.as_str().parse::<CoordSystem>(), Ok(system));
        let json = serde_json::to_string(&system).unwrap();
        assert_eq!(json, format!("\"{}\"", system.as_str()));
    }
    assert_eq!("GCJ-02".parse::<CoordSystem>(), Ok(CoordSystem::Gcj02));
    assert!("mars".parse::<CoordSystem>().is_err());
}

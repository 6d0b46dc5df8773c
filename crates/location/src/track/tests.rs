use super::*;

fn point(s: i64, lat: f64, lon: f64) -> TrackPoint {
    TrackPoint {
        fix: Fix::new(Timestamp::from_secs(1_764_446_400 + s), lat, lon),
        received_at: Timestamp::from_secs(1_764_446_400 + s),
        filtered: None,
    }
}

#[test]
fn a_late_batch_is_replayed_in_fix_time_order() {
    let points = vec![
        point(100, 31.003, 121.0),
        point(40, 31.0, 121.0),
        point(70, 31.001, 121.0),
    ];
    let track = Track::new("u1", points);
    let times: Vec<_> = track
        .points
        .iter()
        .map(|p| p.fix.fix_time.as_millis() / 1000)
        .collect();
    assert_eq!(times, [1_764_446_440, 1_764_446_470, 1_764_446_500]);
}

#[test]
fn simplification_tolerance_is_in_metres() {
    // A straight north-south line with a middle point 3 m off to the east
    // (3 m of longitude at 31°N is 3 / (111_195 * cos 31°) degrees).
    let off = 3.0 / (111_195.08 * 31.0f64.to_radians().cos());
    let points = vec![
        point(0, 31.0, 121.0),
        point(10, 31.001, 121.0 + off),
        point(20, 31.002, 121.0),
    ];
    let track = Track::new("u1", points);
    assert_eq!(
        track.simplified(5.0).points.len(),
        2,
        "3 m off is within 5 m"
    );
    assert_eq!(
        track.simplified(2.0).points.len(),
        3,
        "3 m off is beyond 2 m"
    );
    assert_eq!(track.simplified(0.0).points.len(), 3);
}

#[test]
fn flagged_points_stay_in_history_but_not_in_the_route() {
    let mut jump = point(5, 35.0, 121.0);
    jump.filtered = Some(FilterReason::Jump);
    let track = Track::new(
        "u1",
        vec![point(0, 31.0, 121.0), jump, point(10, 31.001, 121.0)],
    );
    assert_eq!(track.points.len(), 3);
    assert_eq!(track.accepted().count(), 2);
    assert_eq!(track.simplified(1.0).points.len(), 2);
    assert!(!track.to_gpx().contains("lat=\"35\""));
}

#[test]
fn geojson_is_an_rfc7946_linestring_feature() {
    let mut a = point(0, 31.0, 121.0);
    a.fix.alt_m = Some(4.0);
    let track = Track::new("u1", vec![a, point(10, 31.001, 121.002)]);
    let feature = track.to_geojson(CoordSystem::Wgs84);
    assert_eq!(feature["type"], "Feature");
    assert_eq!(feature["geometry"]["type"], "LineString");
    // Longitude first; altitude only when every point has one.
    assert_eq!(feature["geometry"]["coordinates"][0], json!([121.0, 31.0]));
    assert_eq!(
        feature["properties"]["times"][1],
        "2025-11-29T20:00:10.000Z"
    );
    assert_eq!(feature["properties"]["start"], "2025-11-29T20:00:00.000Z");
    let gcj = track.to_geojson(CoordSystem::Gcj02);
    assert_ne!(gcj["geometry"]["coordinates"][0], json!([121.0, 31.0]));
    assert_eq!(gcj["properties"]["coords"], "gcj02");
    let single = Track::new("u1", vec![point(0, 31.0, 121.0)]).to_geojson(CoordSystem::Wgs84);
    assert!(single["geometry"].is_null());
}

#[test]
fn gpx_is_well_formed_and_escapes_the_name() {
    let mut a = point(0, 31.0, 121.0);
    a.fix.alt_m = Some(4.5);
    a.fix.satellites = 9;
    let track = Track::new("<unit & \"co\">", vec![a, point(10, 31.001, 121.002)]);
    let gpx = track.to_gpx();
    assert!(gpx.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\""));
    assert!(gpx.contains("<name>&lt;unit &amp; &quot;co&quot;&gt;</name>"));
    assert!(gpx.contains(
        "<trkpt lat=\"31\" lon=\"121\"><ele>4.5</ele><time>2025-11-29T20:00:00.000Z</time><sat>9</sat></trkpt>"
    ));
    assert_eq!(gpx.matches("<trkpt ").count(), 2);
    assert!(gpx.trim_end().ends_with("</gpx>"));
}

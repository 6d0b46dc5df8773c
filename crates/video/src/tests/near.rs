//! Streams near a point: handsets (positions from the caller) and cameras, nearest first,
//! within the radius.

use std::collections::HashMap;

use super::*;

/// Hubin, Shangcheng district, Hangzhou (made-up site).
const SITE: (f64, f64) = (30.2560, 120.1650);

fn camera(id: &str, lat: f64, lon: f64) -> Camera {
    Camera {
        id: CameraId::from(id),
        name: format!("checkpoint {id}"),
        lat,
        lon,
        play_urls: vec![PlayUrl::new(
            PlayProtocol::Rtsp,
            "rtsp://cams.example.invalid/x",
        )],
        gb28181: None,
    }
}

#[test]
fn near_lists_streams_and_cameras_nearest_first_within_the_radius() {
    let mut r = registry();
    // ~111 m per 0.001° of latitude.
    r.add_camera(camera("cam-far", 30.2600, 120.1650), at(0))
        .unwrap(); // ~445 m
    r.add_camera(camera("cam-mid", 30.2575, 120.1650), at(0))
        .unwrap(); // ~167 m
    r.add_camera(camera("cam-out", 30.2700, 120.1650), at(0))
        .unwrap(); // ~1.56 km
    start(&mut r, at(0));
    r.stream_started(&unit("u2"), &sid("s2"), hd(), None, at(0))
        .unwrap();
    r.stream_started(&unit("u3"), &sid("s3"), hd(), None, at(0))
        .unwrap();
    let positions: HashMap<UnitId, (f64, f64)> = [
        (unit("u1"), (30.2561, 120.1650)), // ~11 m
        (unit("u2"), (30.2590, 120.1650)), // ~334 m
    ]
    .into();
    let found = r.near(SITE.0, SITE.1, 500.0, |u| positions.get(u).copied());
    let ids: Vec<&str> = found.iter().map(Nearby::id).collect();
    assert_eq!(
        ids,
        ["s1", "cam-mid", "s2", "cam-far"],
        "u3 has no position"
    );
    assert!(found.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
    assert!(
        (found[1].distance_m - 166.8).abs() < 1.0,
        "{}",
        found[1].distance_m
    );
    assert!(
        matches!(&found[0].source, NearbySource::Handset { stream } if stream.unit.as_str() == "u1")
    );

    let json = serde_json::to_value(&found[1]).unwrap();
    assert_eq!(json["kind"], "camera");
    assert_eq!(json["camera"]["id"], "cam-mid");

    let close = r.near(SITE.0, SITE.1, 166.0, |u| positions.get(u).copied());
    assert_eq!(close.iter().map(Nearby::id).collect::<Vec<_>>(), ["s1"]);
}

#[test]
fn the_radius_is_inclusive_and_ties_go_by_id() {
    let mut r = registry();
    r.add_camera(camera("b", 30.2570, 120.1650), at(0)).unwrap();
    r.add_camera(camera("a", 30.2570, 120.1650), at(0)).unwrap();
    let d = fieldlink_location::haversine_m(SITE.0, SITE.1, 30.2570, 120.1650);
    let found = r.near(SITE.0, SITE.1, d, |_| None);
    assert_eq!(found.iter().map(Nearby::id).collect::<Vec<_>>(), ["a", "b"]);
    assert!(r.near(SITE.0, SITE.1, d - 0.01, |_| None).is_empty());
}

#[test]
fn cameras_are_added_and_removed_through_the_api_with_checks() {
    let mut r = registry();
    let out = r.add_camera(camera("c1", 30.25, 120.17), at(0)).unwrap();
    assert_eq!(kinds(&out), ["camera_added"]);
    let again = r
        .add_camera(camera("c1", 30.25, 120.17), at(1))
        .unwrap_err();
    assert_eq!(again.code(), "camera_exists");
    let mut bad = camera("c2", 95.0, 120.17);
    bad.play_urls.clear();
    let err = r.add_camera(bad, at(1)).unwrap_err();
    let VideoError::InvalidCamera { problems, .. } = &err else {
        panic!("{err:?}");
    };
    let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
    assert_eq!(fields, ["lat", "play_urls"]);
    assert_eq!(
        kinds(&r.remove_camera(&CameraId::from("c1"), at(2)).unwrap()),
        ["camera_removed"]
    );
    let gone = r.remove_camera(&CameraId::from("c1"), at(3)).unwrap_err();
    assert_eq!(gone.code(), "unknown_camera");
}

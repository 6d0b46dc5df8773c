//! Camera files: GeoJSON and CSV, good and bad, and importing them into the registry.

use super::*;

const EXAMPLE: &str = include_str!("../../../../config/cameras.example.geojson");

fn fields(e: &ImportErrors) -> Vec<(String, String)> {
    (e.0.iter())
        .map(|e| (e.at.to_string(), e.field.clone()))
        .collect()
}

#[test]
fn the_shipped_example_geojson_imports() {
    let cams = cameras_from_geojson(EXAMPLE, CoordSystem::Wgs84).unwrap();
    assert_eq!(cams.len(), 6);
    let c = &cams[0];
    assert_eq!(
        (c.id.as_str(), c.lat, c.lon),
        ("cp-example-001", 30.2571, 120.1642)
    );
    assert_eq!(c.play_urls[1].protocol, PlayProtocol::Hls);
    assert!(
        c.gb28181
            .as_ref()
            .is_some_and(|g| is_gb28181_code(&g.channel_id))
    );
    assert!(
        cams.iter()
            .all(|c| (c.lat - 30.25).abs() < 0.02 && (c.lon - 120.17).abs() < 0.02)
    );

    let mut r = registry();
    let out = r
        .import_cameras("cameras.example.geojson", cams.clone(), at(0))
        .unwrap();
    let imported = VideoChange::CamerasImported {
        source: "cameras.example.geojson".to_owned(),
        added: 6,
        updated: 0,
        unchanged: 0,
    };
    assert_eq!(changes(&out), [imported]);
    let mut moved = cams;
    moved[2].name = "renamed".to_owned();
    let out = r.import_cameras("again", moved, at(1)).unwrap();
    assert!(matches!(
        &changes(&out)[..],
        [VideoChange::CamerasImported {
            added: 0,
            updated: 1,
            unchanged: 5,
            ..
        }]
    ));
}

#[test]
fn geojson_errors_name_the_feature_and_the_field() {
    let text = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "id": "ok", "properties": {"name": "A", "play_urls": [{"protocol": "rtsp", "url": "rtsp://x"}]},
       "geometry": {"type": "Point", "coordinates": [120.17, 30.25]}},
      {"type": "Feature", "properties": {"name": "no id", "play_urls": []},
       "geometry": {"type": "Point", "coordinates": [120.17, 30.25]}},
      {"type": "Feature", "id": "bad-url", "properties": {"name": "B", "play_urls": [{"protocol": "ftp", "url": "ftp://x"}]},
       "geometry": {"type": "Point", "coordinates": [120.17, 30.25]}},
      {"type": "Feature", "id": "no-channel", "properties": {"name": "C", "gb28181_device_id": "34020000001320000001"},
       "geometry": {"type": "Point", "coordinates": [120.17, 30.25]}},
      {"type": "Feature", "id": "polygon", "properties": {"name": "D"},
       "geometry": {"type": "Polygon", "coordinates": []}},
      {"type": "Feature", "id": "ok", "properties": {"name": "dup", "play_urls": [{"protocol": "hls", "url": "https://x"}]},
       "geometry": {"type": "Point", "coordinates": [120.17, 95.0]}}
    ]}"#;
    let err = cameras_from_geojson(text, CoordSystem::Wgs84).unwrap_err();
    let got = fields(&err);
    let want = [
        ("feature 1", "id"),
        ("feature 2 (bad-url)", "properties.play_urls[0].protocol"),
        ("feature 2 (bad-url)", "properties.play_urls"),
        ("feature 3 (no-channel)", "properties.gb28181_channel_id"),
        ("feature 3 (no-channel)", "properties.play_urls"),
        ("feature 4 (polygon)", "geometry.type"),
        ("feature 5 (ok)", "geometry.coordinates"),
        ("feature 5 (ok)", "properties.id"),
    ];
    let want: Vec<(String, String)> = (want.iter())
        .map(|(a, f)| (a.to_string(), f.to_string()))
        .collect();
    assert_eq!(got, want, "{err}");
    assert!(
        err.to_string()
            .contains("duplicate id \"ok\" (first at feature 0 (ok))"),
        "{err}"
    );

    let not_json = cameras_from_geojson("{", CoordSystem::Wgs84).unwrap_err();
    assert_eq!(fields(&not_json), [("file".to_owned(), "json".to_owned())]);
}

#[test]
fn gcj02_files_are_converted_to_wgs84() {
    let text = r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "id": 7,
      "properties": {"name": "A", "play_urls": [{"protocol": "rtsp", "url": "rtsp://x"}]},
      "geometry": {"type": "Point", "coordinates": [120.1700, 30.2500]}}]}"#;
    let cams = cameras_from_geojson(text, CoordSystem::Gcj02).unwrap();
    assert_eq!(cams[0].id.as_str(), "7");
    let d = fieldlink_location::haversine_m(cams[0].lat, cams[0].lon, 30.25, 120.17);
    assert!(
        (300.0..700.0).contains(&d),
        "GCJ-02 is offset by a few hundred metres: {d}"
    );
}

#[test]
fn csv_imports_with_quotes_bom_and_blank_lines() {
    let text = "\u{feff}id,name,lat,lon,rtsp_url,gb28181_device_id,gb28181_channel_id\r\n\
        cp-1,\"Hubin, north gate\",30.2571,120.1642,rtsp://cams.example.invalid/1,,\r\n\
        \r\n\
        cp-2,\"The \"\"old\"\" bridge\",30.2462,120.1685,,34020000001320000003,34020000001310000003\r\n";
    let cams = cameras_from_csv(text, CoordSystem::Wgs84).unwrap();
    assert_eq!(cams.len(), 2);
    assert_eq!(cams[0].name, "Hubin, north gate");
    assert_eq!(
        cams[0].play_urls,
        [PlayUrl::new(
            PlayProtocol::Rtsp,
            "rtsp://cams.example.invalid/1"
        )]
    );
    assert_eq!(cams[1].name, "The \"old\" bridge");
    assert!(cams[1].play_urls.is_empty());
    assert_eq!(
        cams[1].gb28181.as_ref().unwrap().device_id,
        "34020000001320000003"
    );
}

#[test]
fn csv_errors_name_the_line_and_the_field() {
    let text = "id,name,lat,lon,rtsp_url,gb28181_device_id,gb28181_channel_id\n\
        cp-1,A,30.25,120.17,rtsp://x,,\n\
        cp-2,B,north,120.17,rtsp://x,,\n\
        cp-3,C,30.25,120.17\n\
        cp-4,D,30.25,120.17,,,\n\
        cp-5,E,30.25,120.17,,3402000000132000000X,34020000001310000005\n\
        cp-6,\"F,30.25,120.17,rtsp://x,,\n\
        cp-1,G,30.25,181,rtsp://x,,\n\
        cp-7,H,30.25,120.17,,34020000001320000007,\n";
    let err = cameras_from_csv(text, CoordSystem::Wgs84).unwrap_err();
    let want = [
        ("line 3", "lat"),
        ("line 4", "record"),
        ("line 5", "rtsp_url"),
        ("line 6", "gb28181_device_id"),
        ("line 7", "record"),
        ("line 8", "lon"),
        ("line 8", "id"),
        ("line 9", "gb28181_channel_id"),
        ("line 9", "rtsp_url"),
    ];
    let want: Vec<(String, String)> = (want.iter())
        .map(|(a, f)| (a.to_string(), f.to_string()))
        .collect();
    assert_eq!(fields(&err), want, "{err}");
    assert!(err.0[1].message.contains("expected 7 fields, found 4"));

    let header = cameras_from_csv("id,name,lat,lon\n", CoordSystem::Wgs84).unwrap_err();
    assert_eq!(
        fields(&header),
        [("line 1".to_owned(), "header".to_owned())]
    );
}

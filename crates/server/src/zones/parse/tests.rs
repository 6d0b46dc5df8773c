use super::*;

const SQUARE: &str = r#"{"type": "Polygon", "coordinates": [[[120.16, 30.255], [120.165, 30.255], [120.165, 30.259], [120.16, 30.259], [120.16, 30.255]]]}"#;

fn body(id: Option<&str>, geometry: &str, props: &str) -> Vec<u8> {
    let id = id.map_or(String::new(), |i| format!(r#""id": "{i}", "#));
    format!(r#"{{"type": "Feature", {id}"geometry": {geometry}, "properties": {props}}}"#)
        .into_bytes()
}

fn code(r: Result<(Zone, Vec<String>, Option<AlarmOn>), Invalid>) -> &'static str {
    r.expect_err("refused").code
}

fn known(id: &str) -> bool {
    id.starts_with('u')
}

#[test]
fn a_grid_with_members_and_a_circle_geofence_parse() {
    let b = body(
        Some("g1"),
        SQUARE,
        r#"{"name": "湖滨 1", "members": ["u1", "u2", "u1"]}"#,
    );
    let (zone, members, _) = parse_feature(&b, ZoneKind::Grid, None, known).expect("valid");
    assert_eq!(
        (&*zone.id, zone.name.as_str(), zone.kind),
        ("g1", "湖滨 1", ZoneKind::Grid)
    );
    assert_eq!(members, ["u1", "u2"]);
    assert!(zone.contains(30.257, 120.162));

    let circle = r#"{"type": "Point", "coordinates": [120.16, 30.25]}"#;
    let b = body(None, circle, r#"{"radius_m": 120}"#);
    let (zone, members, _) = parse_feature(&b, ZoneKind::Geofence, Some("scene"), known).unwrap();
    assert_eq!(&*zone.id, "scene");
    assert_eq!(zone.name, "scene", "the name defaults to the id");
    assert!(members.is_empty());
    assert!(matches!(zone.shape, Shape::Circle { radius_m, .. } if radius_m == 120.0));
}

#[test]
fn every_mistake_has_its_code() {
    let grid = |id: Option<&str>, geometry: &str, props: &str| {
        code(parse_feature(
            &body(id, geometry, props),
            ZoneKind::Grid,
            None,
            known,
        ))
    };
    assert_eq!(
        code(parse_feature(b"{nope", ZoneKind::Grid, None, known)),
        "bad_json"
    );
    assert_eq!(
        code(parse_feature(
            SQUARE.as_bytes(),
            ZoneKind::Grid,
            None,
            known
        )),
        "bad_feature"
    );
    assert_eq!(grid(None, SQUARE, "{}"), "bad_id");
    assert_eq!(grid(Some("a b"), SQUARE, "{}"), "bad_id");
    assert_eq!(
        grid(Some("g"), SQUARE, r#"{"kind": "geofence"}"#),
        "kind_mismatch"
    );
    assert_eq!(grid(Some("g"), SQUARE, r#"{"name": 5}"#), "bad_name");
    assert_eq!(
        grid(Some("g"), SQUARE, r#"{"members": "u1"}"#),
        "bad_members"
    );
    assert_eq!(
        grid(Some("g"), SQUARE, r#"{"members": ["x9"]}"#),
        "unknown_member"
    );
    let line = r#"{"type": "LineString", "coordinates": [[120.16, 30.25], [120.17, 30.25]]}"#;
    assert_eq!(grid(Some("g"), line, "{}"), "bad_geometry");
    let open = r#"{"type": "Polygon", "coordinates": [[[120.16, 30.25], [120.17, 30.25], [120.17, 30.26], [120.16, 30.26]]]}"#;
    assert_eq!(grid(Some("g"), open, "{}"), "bad_geometry");
    let flat = r#"{"type": "Polygon", "coordinates": [[[120.16, 30.25], [120.17, 30.25], [120.18, 30.25], [120.16, 30.25]]]}"#;
    assert_eq!(grid(Some("g"), flat, "{}"), "bad_geometry");
    let outside = r#"{"type": "Polygon", "coordinates": [[[200, 30.25], [120.17, 30.25], [120.17, 30.26], [200, 30.25]]]}"#;
    assert_eq!(grid(Some("g"), outside, "{}"), "bad_geometry");
    let point = r#"{"type": "Point", "coordinates": [120.16, 30.25]}"#;
    assert_eq!(grid(Some("g"), point, "{}"), "bad_radius");
    assert_eq!(grid(Some("g"), point, r#"{"radius_m": -3}"#), "bad_radius");
    assert_eq!(grid(Some("g"), point, r#"{"radius_m": 1e9}"#), "bad_radius");

    let b = body(Some("g1"), SQUARE, "{}");
    assert_eq!(
        code(parse_feature(&b, ZoneKind::Grid, Some("g2"), known)),
        "id_mismatch"
    );
    let b = body(Some("f"), SQUARE, r#"{"members": ["u1"]}"#);
    assert_eq!(
        code(parse_feature(&b, ZoneKind::Geofence, None, known)),
        "bad_members"
    );
}

#[test]
fn gcj02_coordinates_are_stored_in_wgs84() {
    let b = body(Some("g"), SQUARE, r#"{"coords": "gcj02"}"#);
    let (zone, _, _) = parse_feature(&b, ZoneKind::Grid, None, known).unwrap();
    let Shape::Polygon(p) = &zone.shape else {
        panic!("a polygon")
    };
    let first = p.0[0].exterior().0[0];
    let (lat, lon) = fieldlink_location::gcj02_to_wgs84(30.255, 120.16);
    assert!(
        (first.x - lon).abs() < 1e-9 && (first.y - lat).abs() < 1e-9,
        "{first:?}"
    );
}

#[test]
fn a_store_record_gives_back_the_same_area() {
    let circle = r#"{"type": "Point", "coordinates": [120.16, 30.25]}"#;
    for (geometry, props, kind) in [
        (
            SQUARE,
            r#"{"name": "湖滨", "members": ["u1"]}"#,
            ZoneKind::Grid,
        ),
        (circle, r#"{"radius_m": 80.5}"#, ZoneKind::Geofence),
    ] {
        let (zone, members, _) =
            parse_feature(&body(Some("z"), geometry, props), kind, None, known).unwrap();
        let now = fieldlink_clock::Timestamp::from_millis(1_000);
        let record = crate::zones::to_record(&zone, &members, None, now);
        assert_eq!(record.members, members);
        assert_eq!(crate::zones::from_record(&record).unwrap(), zone);
    }
}

#[test]
fn alarm_on_is_for_geofences_and_checked() {
    let circle = r#"{"type": "Point", "coordinates": [120.165, 30.255]}"#;
    for (value, want) in [
        ("\"enter\"", Some(AlarmOn::Enter)),
        ("\"exit\"", Some(AlarmOn::Exit)),
        ("\"both\"", Some(AlarmOn::Both)),
        ("null", None),
    ] {
        let props = format!(r#"{{"radius_m": 80, "alarm_on": {value}}}"#);
        let b = body(Some("v"), circle, &props);
        let (_, _, alarm_on) = parse_feature(&b, ZoneKind::Geofence, None, known).unwrap();
        assert_eq!(alarm_on, want);
    }
    let b = body(
        Some("v"),
        circle,
        r#"{"radius_m": 80, "alarm_on": "inside"}"#,
    );
    assert_eq!(
        code(parse_feature(&b, ZoneKind::Geofence, None, known)),
        "bad_alarm_on"
    );
    let b = body(Some("g"), SQUARE, r#"{"alarm_on": "enter"}"#);
    assert_eq!(
        code(parse_feature(&b, ZoneKind::Grid, None, known)),
        "bad_alarm_on"
    );
    assert!(AlarmOn::Both.fires(true) && AlarmOn::Both.fires(false));
    assert!(AlarmOn::Enter.fires(true) && !AlarmOn::Enter.fires(false));
    assert!(!AlarmOn::Exit.fires(true) && AlarmOn::Exit.fires(false));
}

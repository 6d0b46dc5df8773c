use super::*;
use serde_json::json;

const M: f64 = 1.0 / 111_195.08; // degrees of latitude per metre

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_764_446_400 + s)
}

fn square(id: &str, lat: f64, lon: f64, side_deg: f64) -> serde_json::Value {
    let ring = json!([
        [lon, lat],
        [lon + side_deg, lat],
        [lon + side_deg, lat + side_deg],
        [lon, lat + side_deg],
        [lon, lat]
    ]);
    json!({ "type": "Feature", "id": id, "properties": { "name": format!("grid {id}") },
            "geometry": { "type": "Polygon", "coordinates": [ring] } })
}

fn city() -> Zones {
    let doc = json!({ "type": "FeatureCollection", "features": [
        square("g1", 31.0, 121.0, 0.01),
        square("g2", 31.0, 121.01, 0.01),
        { "type": "Feature", "properties": { "id": "scene", "kind": "geofence", "radius_m": 100.0 },
          "geometry": { "type": "Point", "coordinates": [121.005, 31.005] } },
    ]});
    let mut zones = Zones::new(15.0);
    assert_eq!(
        zones
            .load_geojson(&doc.to_string(), ZoneKind::Grid)
            .unwrap(),
        3
    );
    zones
}

#[test]
fn geojson_loads_polygons_and_circles_and_grid_of_finds_the_grid() {
    let zones = city();
    assert_eq!(zones.len(), 3);
    assert_eq!(zones.get("scene").unwrap().kind, ZoneKind::Geofence);
    assert_eq!(zones.get("g1").unwrap().name, "grid g1");
    assert_eq!(&*zones.grid_of(31.005, 121.005).unwrap().id, "g1");
    assert_eq!(&*zones.grid_of(31.005, 121.015).unwrap().id, "g2");
    assert!(zones.grid_of(31.05, 121.005).is_none());
    let mut here: Vec<_> = zones.containing(31.005, 121.005).map(|z| &*z.id).collect();
    here.sort_unstable();
    assert_eq!(here, ["g1", "scene"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let doc = json!({ "type": "FeatureCollection", "features": [
        { "type": "Feature", "properties": {}, "geometry": { "type": "Point", "coordinates": [1, 2] } },
        { "type": "Feature", "id": "open", "geometry": { "type": "Polygon",
          "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 2]]] } },
        { "type": "Feature", "id": "dot", "geometry": { "type": "Point", "coordinates": [1, 2] } },
        square("a", 31.0, 121.0, 0.01),
        square("a", 31.0, 121.0, 0.01),
    ]});
    let Err(GeofenceError::Invalid(problems)) =
        Zones::parse_geojson(&doc.to_string(), ZoneKind::Grid)
    else {
        panic!("expected problems");
    };
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(problems[0].starts_with("feature 0: no id"));
    assert!(problems[3].contains("duplicate id"));
    assert!(matches!(
        Zones::parse_geojson("{", ZoneKind::Grid),
        Err(GeofenceError::Json(_))
    ));
}

#[test]
fn to_geojson_round_trips() {
    let zones = city();
    let features: Vec<_> = zones.iter().map(Zone::to_geojson).collect();
    let doc = json!({ "type": "FeatureCollection", "features": features });
    let again = Zones::parse_geojson(&doc.to_string(), ZoneKind::Geofence).unwrap();
    assert_eq!(again, zones.iter().cloned().collect::<Vec<_>>());
}

#[test]
fn areas_drawn_in_gcj02_are_stored_in_wgs84() {
    let (glat, glon) = crate::wgs84_to_gcj02(31.0, 121.0);
    let doc = json!({ "type": "Feature", "id": "c", "properties": { "coords": "gcj02", "radius_m": 5.0 },
                      "geometry": { "type": "Point", "coordinates": [glon, glat] } });
    let zone = &Zones::parse_geojson(&doc.to_string(), ZoneKind::Geofence).unwrap()[0];
    assert!(zone.contains(31.0, 121.0), "{zone:?}");
}

#[test]
fn distance_outside_is_in_metres() {
    let zones = city();
    let g1 = zones.get("g1").unwrap();
    assert_eq!(g1.distance_outside_m(31.005, 121.005), 0.0);
    let d = g1.distance_outside_m(31.0 - 20.0 * M, 121.005);
    assert!((d - 20.0).abs() < 0.05, "{d}");
    let scene = zones.get("scene").unwrap();
    let d = scene.distance_outside_m(31.005 + 130.0 * M, 121.005);
    assert!((d - 30.0).abs() < 0.05, "{d}");
}

#[test]
fn hysteresis_stops_boundary_noise_from_flapping() {
    let mut zones = Zones::new(15.0);
    zones.upsert(Zone {
        id: Arc::from("g1"),
        name: "g1".into(),
        kind: ZoneKind::Grid,
        shape: Shape::Polygon(
            Zones::parse_geojson(&square("g1", 31.0, 121.0, 0.01).to_string(), ZoneKind::Grid)
                .unwrap()
                .remove(0)
                .shape_polygon(),
        ),
    });
    let unit: Arc<str> = Arc::from("u1");
    let mut inside = Vec::new();
    // Standing on the southern edge, GPS noise of ±10 m across it.
    let mut events = Vec::new();
    for (i, noise_m) in [5.0, -8.0, 9.0, -10.0, 3.0, -6.0].into_iter().enumerate() {
        let lat = 31.0 + noise_m * M;
        events.extend(zones.update(&unit, &mut inside, lat, 121.005, t(i as i64)));
    }
    let steps: Vec<_> = events.iter().map(|e| (e.entered, e.at)).collect();
    assert_eq!(steps, [(true, t(0))], "one enter, no flapping");
    // Walking 20 m south is leaving.
    let events = zones.update(&unit, &mut inside, 31.0 - 20.0 * M, 121.005, t(10));
    assert_eq!(events.len(), 1);
    assert!(!events[0].entered && events[0].kind == ZoneKind::Grid);
    assert!(inside.is_empty());
    // Far away is left at once, and a removed area is left on the next fix.
    zones.update(&unit, &mut inside, 31.005, 121.005, t(11));
    assert_eq!(inside.len(), 1);
    zones.remove("g1");
    let events = zones.update(&unit, &mut inside, 31.005, 121.005, t(12));
    assert_eq!((events.len(), events[0].entered), (1, false));
}

impl Zone {
    fn shape_polygon(self) -> MultiPolygon<f64> {
        match self.shape {
            Shape::Polygon(p) => p,
            Shape::Circle { .. } => panic!("not a polygon"),
        }
    }
}

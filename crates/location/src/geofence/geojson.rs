//! GeoJSON in and out for areas: the files in `config/` and the geofence and grid API.
//!
//! Owns the mapping only: a Feature with a Polygon or MultiPolygon geometry is a polygon area;
//! a Feature with a Point geometry and a `radius_m` property is a circle (GeoJSON has no
//! circle). The id is the Feature's `id` or `properties.id`; the name is `properties.name` or
//! the id. Areas drawn on a Chinese map SDK may say `"coords": "gcj02"` (or `bd09`) in their
//! properties and are converted to WGS-84 on load. Parsed with serde_json by hand: the shapes
//! needed are few and the `geojson` crate would add a second geometry model beside geo's.

use std::sync::Arc;

use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde_json::{Map, Value, json};

use super::{Shape, Zone, ZoneKind, Zones};
use crate::coords::CoordSystem;

/// Why a GeoJSON document of areas was refused: every problem found, not just the first.
#[derive(Debug, thiserror::Error)]
pub enum GeofenceError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not areas as described in the module docs.
    #[error("invalid areas: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Zones {
    /// Parses a FeatureCollection (or a single Feature) into areas of `kind`. A feature's
    /// `properties.kind` (`grid` or `geofence`) overrides `kind`.
    pub fn parse_geojson(text: &str, kind: ZoneKind) -> Result<Vec<Zone>, GeofenceError> {
        let doc: Value = serde_json::from_str(text)?;
        let features = match doc.get("type").and_then(Value::as_str) {
            Some("FeatureCollection") => doc["features"].as_array().cloned().unwrap_or_default(),
            Some("Feature") => vec![doc],
            _ => {
                let problem = "expected a FeatureCollection or a Feature".to_owned();
                return Err(GeofenceError::Invalid(vec![problem]));
            }
        };
        let mut zones = Vec::new();
        let mut problems = Vec::new();
        for (i, feature) in features.iter().enumerate() {
            match zone_of(feature, kind) {
                Ok(zone) if zones.iter().any(|z: &Zone| z.id == zone.id) => {
                    problems.push(format!("feature {i}: duplicate id {:?}", zone.id));
                }
                Ok(zone) => zones.push(zone),
                Err(problem) => problems.push(format!("feature {i}: {problem}")),
            }
        }
        if problems.is_empty() {
            Ok(zones)
        } else {
            Err(GeofenceError::Invalid(problems))
        }
    }
}

fn zone_of(feature: &Value, default_kind: ZoneKind) -> Result<Zone, String> {
    let empty = Map::new();
    let props = feature["properties"].as_object().unwrap_or(&empty);
    let id = match feature.get("id").or_else(|| props.get("id")) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("no id (Feature id or properties.id)".into()),
    };
    let kind = match props.get("kind").and_then(Value::as_str) {
        None => default_kind,
        Some("grid") => ZoneKind::Grid,
        Some("geofence") => ZoneKind::Geofence,
        Some(other) => return Err(format!("unknown kind {other:?}")),
    };
    let coords = match props.get("coords").and_then(Value::as_str) {
        None => CoordSystem::Wgs84,
        Some(name) => name.parse().map_err(|e| format!("{e}"))?,
    };
    let name = props
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&id)
        .to_owned();
    let geometry = &feature["geometry"];
    let c = &geometry["coordinates"];
    let shape = match geometry["type"].as_str() {
        Some("Polygon") => Shape::Polygon(MultiPolygon(vec![polygon(c, coords)?])),
        Some("MultiPolygon") => {
            let parts = c.as_array().ok_or("MultiPolygon coordinates")?;
            let polygons = parts.iter().map(|p| polygon(p, coords));
            Shape::Polygon(MultiPolygon(polygons.collect::<Result<_, _>>()?))
        }
        Some("Point") => {
            let centre = position(c, coords)?;
            let radius_m = props
                .get("radius_m")
                .and_then(Value::as_f64)
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or("a Point needs a positive properties.radius_m")?;
            Shape::Circle {
                lat: centre.y,
                lon: centre.x,
                radius_m,
            }
        }
        other => return Err(format!("unsupported geometry {other:?}")),
    };
    Ok(Zone {
        id: Arc::from(id),
        name,
        kind,
        shape,
    })
}

fn polygon(rings: &Value, coords: CoordSystem) -> Result<Polygon<f64>, String> {
    let rings = rings.as_array().ok_or("Polygon coordinates")?;
    let mut rings = rings.iter().map(|ring| {
        let points = ring.as_array().ok_or_else(|| "ring".to_owned())?;
        let line: Vec<Coord<f64>> = points
            .iter()
            .map(|p| position(p, coords))
            .collect::<Result<_, _>>()?;
        if line.len() < 4 || line.first() != line.last() {
            return Err(
                "a ring needs at least 4 positions, the last equal to the first".to_owned(),
            );
        }
        Ok(LineString(line))
    });
    let exterior = rings.next().ok_or("a Polygon needs an exterior ring")??;
    let interiors = rings.collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, interiors))
}

fn position(p: &Value, coords: CoordSystem) -> Result<Coord<f64>, String> {
    let (lon, lat) = match p.as_array().map(Vec::as_slice) {
        Some([lon, lat, ..]) => (lon.as_f64(), lat.as_f64()),
        _ => (None, None),
    };
    match (lon, lat) {
        (Some(lon), Some(lat))
            if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) =>
        {
            let (lat, lon) = coords.to_wgs84(lat, lon);
            Ok(Coord { x: lon, y: lat })
        }
        _ => Err(format!("bad position {p}")),
    }
}

impl Zone {
    /// The area as a GeoJSON Feature (WGS-84), in the shape [`Zones::parse_geojson`] reads.
    pub fn to_geojson(&self) -> Value {
        let ring = |l: &LineString<f64>| l.coords().map(|c| json!([c.x, c.y])).collect::<Vec<_>>();
        let polygon = |p: &Polygon<f64>| {
            let mut rings = vec![ring(p.exterior())];
            rings.extend(p.interiors().iter().map(ring));
            rings
        };
        let mut properties = json!({ "name": self.name, "kind": self.kind });
        let geometry = match &self.shape {
            Shape::Polygon(mp) if mp.0.len() == 1 => {
                json!({ "type": "Polygon", "coordinates": polygon(&mp.0[0]) })
            }
            Shape::Polygon(mp) => {
                let parts: Vec<_> = mp.iter().map(polygon).collect();
                json!({ "type": "MultiPolygon", "coordinates": parts })
            }
            Shape::Circle { lat, lon, radius_m } => {
                properties["radius_m"] = json!(radius_m);
                json!({ "type": "Point", "coordinates": [lon, lat] })
            }
        };
        json!({ "type": "Feature", "id": &*self.id, "geometry": geometry, "properties": properties })
    }
}

//! The API's body for a geofence or grid: one GeoJSON Feature (RFC 7946), the same shape the
//! config's files hold and the API answers.
//!
//! ```json
//! {"type": "Feature", "id": "hubin-01",
//!  "geometry": {"type": "Polygon", "coordinates": [[[120.16, 30.255], ...]]},
//!  "properties": {"name": "湖滨 1", "members": ["u001"], "coords": "gcj02"}}
//! ```
//!
//! A circle is a `Point` with `properties.radius_m`. `properties.coords` (`wgs84` by default,
//! `gcj02`, `bd09`) says which system the coordinates are in; they are stored in WGS-84.
//! `properties.members` is for grids only. `properties.alarm_on` (`enter`, `exit` or `both`) is
//! for geofences only: which crossings raise a geofence alarm. Geometry is read by the location core's GeoJSON
//! reader; this module checks the envelope first so each mistake gets its own error code.

use fieldlink_location::{Shape, Zone, ZoneKind, Zones};
use geo::Area;
use serde_json::{Map, Value};

/// The largest circle accepted, metres: a street, not a province.
pub const MAX_RADIUS_M: f64 = 50_000.0;
/// The longest id accepted.
pub const MAX_ID_CHARS: usize = 64;
/// The longest name accepted.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a body was refused: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// `bad_json`, `bad_feature`, `bad_id`, `id_mismatch`, `kind_mismatch`, `bad_name`,
    /// `bad_geometry`, `bad_radius`, `bad_members`, `unknown_member`, `bad_alarm_on`.
    pub code: &'static str,
    /// What to change.
    pub message: String,
}

fn invalid(code: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        message: message.into(),
    }
}

/// Which crossings of a geofence raise an alarm (`properties.alarm_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmOn {
    /// A unit entering.
    Enter,
    /// A unit leaving.
    Exit,
    /// Either.
    Both,
}

impl AlarmOn {
    /// `enter`, `exit` or `both`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmOn::Enter => "enter",
            AlarmOn::Exit => "exit",
            AlarmOn::Both => "both",
        }
    }

    /// The value for a name, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "enter" => Some(AlarmOn::Enter),
            "exit" => Some(AlarmOn::Exit),
            "both" => Some(AlarmOn::Both),
            _ => None,
        }
    }

    /// Whether a crossing (entered, or left) raises an alarm.
    pub fn fires(self, entered: bool) -> bool {
        match self {
            AlarmOn::Enter => entered,
            AlarmOn::Exit => !entered,
            AlarmOn::Both => true,
        }
    }
}

/// Reads `properties.alarm_on` (absent or null: none); only geofences may carry one.
pub fn alarm_on(raw: Option<&Value>, kind: ZoneKind) -> Result<Option<AlarmOn>, Invalid> {
    let value = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    if kind == ZoneKind::Grid {
        return Err(invalid(
            "bad_alarm_on",
            "only geofences raise alarms; a grid has no properties.alarm_on",
        ));
    }
    (value.as_str().and_then(AlarmOn::from_name))
        .map(Some)
        .ok_or_else(|| {
            invalid(
                "bad_alarm_on",
                format!("properties.alarm_on {value} must be \"enter\", \"exit\" or \"both\""),
            )
        })
}

/// Reads a Feature for an area of `kind`. `path_id` is the id of a `PUT .../{id}`: the body may
/// omit its id then, and must not contradict it. `known_unit` says whether a member exists.
/// Returns the area, its members and its alarm rule.
pub fn parse_feature(
    body: &[u8],
    kind: ZoneKind,
    path_id: Option<&str>,
    known_unit: impl Fn(&str) -> bool,
) -> Result<(Zone, Vec<String>, Option<AlarmOn>), Invalid> {
    let mut f: Value = serde_json::from_slice(body)
        .map_err(|e| invalid("bad_json", format!("the body is not JSON: {e}")))?;
    let feature_hint = "send a GeoJSON Feature: {\"type\": \"Feature\", \"id\": ..., \"geometry\": {...}, \"properties\": {\"name\": ...}}";
    if f.get("type").and_then(Value::as_str) != Some("Feature") {
        return Err(invalid("bad_feature", feature_hint));
    }
    let props = match f.get_mut("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => std::mem::take(p),
        Some(_) => return Err(invalid("bad_feature", "properties must be an object")),
    };
    let body_id = match f.get("id").or_else(|| props.get("id")) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(invalid(
                "bad_id",
                format!("the id {other} must be a string"),
            ));
        }
    };
    let id = match (path_id, body_id) {
        (Some(p), Some(b)) if p != b => {
            let message = format!("the body's id {b:?} is not the id in the path {p:?}");
            return Err(invalid("id_mismatch", message));
        }
        (Some(p), _) => p.to_owned(),
        (None, Some(b)) => b,
        (None, None) => return Err(invalid("bad_id", "give the area an id (the Feature's id)")),
    };
    check_id(&id)?;
    if let Some(k) = props.get("kind") {
        let wanted = super::kind_name(kind);
        if k.as_str() != Some(wanted) {
            let message = format!("properties.kind is {k}, but this endpoint holds {wanted}s");
            return Err(invalid("kind_mismatch", message));
        }
    }
    match props.get("name") {
        None => {}
        Some(Value::String(n)) if n.chars().count() <= MAX_NAME_CHARS => {}
        Some(_) => {
            let message =
                format!("properties.name must be text of at most {MAX_NAME_CHARS} characters");
            return Err(invalid("bad_name", message));
        }
    }
    let members = members(props.get("members"), kind, &known_unit)?;
    let alarm_on = alarm_on(props.get("alarm_on"), kind)?;
    check_geometry(f.get("geometry"), props.get("radius_m"))?;

    f["id"] = Value::String(id);
    f["properties"] = Value::Object(props);
    let zone = Zones::parse_geojson(&f.to_string(), kind)
        .map_err(|e| invalid("bad_geometry", e.to_string()))?
        .pop()
        .ok_or_else(|| invalid("bad_geometry", "no area in the body"))?;
    if matches!(&zone.shape, Shape::Polygon(p) if p.unsigned_area() <= 0.0) {
        return Err(invalid("bad_geometry", "the polygon has no area"));
    }
    Ok((zone, members, alarm_on))
}

fn check_id(id: &str) -> Result<(), Invalid> {
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        let message = format!(
            "the id {id:?} must be 1 to {MAX_ID_CHARS} letters, digits, '-', '_' or '.' (it appears in URLs)"
        );
        Err(invalid("bad_id", message))
    }
}

fn members(
    raw: Option<&Value>,
    kind: ZoneKind,
    known_unit: &impl Fn(&str) -> bool,
) -> Result<Vec<String>, Invalid> {
    let list = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(invalid(
                "bad_members",
                "properties.members must be a list of unit ids",
            ));
        }
    };
    if kind == ZoneKind::Geofence && !list.is_empty() {
        return Err(invalid(
            "bad_members",
            "only grids have members; a geofence has none",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for m in list {
        let id = m
            .as_str()
            .ok_or_else(|| invalid("bad_members", format!("member {m} is not a unit id")))?;
        if !known_unit(id) {
            return Err(invalid(
                "unknown_member",
                format!("no unit has the id {id:?}"),
            ));
        }
        if !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

fn check_geometry(geometry: Option<&Value>, radius: Option<&Value>) -> Result<(), Invalid> {
    let kind = geometry.and_then(|g| g.get("type")).and_then(Value::as_str);
    match kind {
        Some("Polygon" | "MultiPolygon") => Ok(()),
        Some("Point") => match radius.and_then(Value::as_f64) {
            Some(r) if r.is_finite() && r > 0.0 && r <= MAX_RADIUS_M => Ok(()),
            _ => Err(invalid(
                "bad_radius",
                format!(
                    "a circle is a Point with properties.radius_m, more than 0 and at most {MAX_RADIUS_M} metres"
                ),
            )),
        },
        _ => Err(invalid(
            "bad_geometry",
            "geometry must be a GeoJSON Polygon, MultiPolygon, or Point (a circle, with properties.radius_m)",
        )),
    }
}

#[cfg(test)]
mod tests;

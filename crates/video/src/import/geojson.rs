//! Cameras from a GeoJSON FeatureCollection of Points (RFC 7946: `[lon, lat]`).
//!
//! Each feature carries its id as the feature `id` (or `properties.id`), and in `properties`:
//! `name`, `play_urls` (`[{"protocol": "rtsp", "url": "rtsp://…"}]`, protocols rtsp, rtmp, hls,
//! webrtc), `gb28181_device_id` and `gb28181_channel_id`. Other properties are ignored.

use fieldlink_location::CoordSystem;
use serde_json::Value;

use super::{ImportAt, ImportErrors, Problems, gb28181};
use crate::model::{Camera, CameraId, PlayProtocol, PlayUrl};

/// Parses a GeoJSON camera file whose coordinates are in `coords`.
pub fn cameras_from_geojson(text: &str, coords: CoordSystem) -> Result<Vec<Camera>, ImportErrors> {
    let mut p = Problems::default();
    let mut cameras = Vec::new();
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            p.push(&ImportAt::File, "json", e.to_string());
            return p.into_result(cameras);
        }
    };
    if doc.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        p.push(&ImportAt::File, "type", "is not \"FeatureCollection\"");
    }
    let Some(features) = doc.get("features").and_then(Value::as_array) else {
        p.push(&ImportAt::File, "features", "is missing or not an array");
        return p.into_result(cameras);
    };
    for (index, f) in features.iter().enumerate() {
        feature(&mut p, index, f, coords, &mut cameras);
    }
    p.into_result(cameras)
}

fn feature(p: &mut Problems, index: usize, f: &Value, coords: CoordSystem, out: &mut Vec<Camera>) {
    let props = f.get("properties").filter(|v| v.is_object());
    let prop = |k: &str| props.and_then(|v| v.get(k)).filter(|v| !v.is_null());
    let id = id_text(f.get("id")).or_else(|| id_text(prop("id")));
    let at = ImportAt::Feature {
        index,
        id: id.clone(),
    };
    if id.is_none() {
        p.push(&at, "id", "is missing (feature id or properties.id)");
    }
    if props.is_none() {
        p.push(&at, "properties", "is missing or not an object");
    }
    let Some((lon, lat)) = point(p, &at, f.get("geometry")) else {
        return;
    };
    let name = match prop("name").map(|v| v.as_str()) {
        Some(Some(s)) => s.to_owned(),
        Some(None) => {
            p.push(&at, "properties.name", "is not a string");
            String::new()
        }
        None => {
            p.push(&at, "properties.name", "is missing");
            return;
        }
    };
    let play_urls = play_urls(p, &at, prop("play_urls"));
    let mut text = |k: &str| match prop(k) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            p.push(&at, &format!("properties.{k}"), "is not a string");
            None
        }
    };
    let (device, channel) = (text("gb28181_device_id"), text("gb28181_channel_id"));
    let names = [
        "properties.gb28181_device_id",
        "properties.gb28181_channel_id",
    ];
    let gb = gb28181(p, &at, names, device.as_deref(), channel.as_deref());
    let Some(id) = id else { return };
    let camera = Camera {
        id: CameraId(id),
        name,
        lat,
        lon,
        play_urls,
        gb28181: gb,
    };
    let name_of = |field: &str| match field {
        "lat" | "lon" => "geometry.coordinates".to_owned(),
        f => format!("properties.{f}"),
    };
    p.finish(&at, camera, coords, name_of, out);
}

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `[lon, lat]` of a Point geometry.
fn point(p: &mut Problems, at: &ImportAt, g: Option<&Value>) -> Option<(f64, f64)> {
    let Some(g) = g.filter(|g| g.is_object()) else {
        p.push(at, "geometry", "is missing");
        return None;
    };
    if g.get("type").and_then(Value::as_str) != Some("Point") {
        p.push(at, "geometry.type", "is not \"Point\"");
        return None;
    }
    let c = g.get("coordinates").and_then(Value::as_array);
    match c.map(|c| c.iter().map(Value::as_f64).collect::<Vec<_>>()) {
        Some(v) if v.len() >= 2 && v.iter().all(Option::is_some) => Some((v[0]?, v[1]?)),
        _ => {
            p.push(at, "geometry.coordinates", "is not [lon, lat]");
            None
        }
    }
}

fn play_urls(p: &mut Problems, at: &ImportAt, v: Option<&Value>) -> Vec<PlayUrl> {
    let Some(v) = v else { return Vec::new() };
    let Some(list) = v.as_array() else {
        p.push(at, "properties.play_urls", "is not an array");
        return Vec::new();
    };
    let mut urls = Vec::new();
    for (i, u) in list.iter().enumerate() {
        let field = format!("properties.play_urls[{i}]");
        let protocol = u.get("protocol").and_then(Value::as_str);
        let url = u.get("url").and_then(Value::as_str);
        match (protocol.map(|s| (s, PlayProtocol::parse(s))), url) {
            (Some((_, Some(protocol))), Some(url)) => urls.push(PlayUrl::new(protocol, url)),
            (Some((s, None)), _) => {
                let message = format!("{s:?} is not rtsp, rtmp, hls or webrtc");
                p.push(at, &format!("{field}.protocol"), message);
            }
            (None, _) => p.push(at, &format!("{field}.protocol"), "is missing"),
            (_, None) => p.push(at, &format!("{field}.url"), "is missing"),
        }
    }
    urls
}

//! Cameras from CSV with the header `id,name,lat,lon,rtsp_url,gb28181_device_id,gb28181_channel_id`.
//!
//! A small reader of RFC 4180 on one line per record: fields may be quoted (`"a, b"`, with `""`
//! for a quote); a quoted field spanning lines is refused. Blank lines are skipped; a UTF-8
//! byte-order mark (Excel writes one) is dropped. `rtsp_url` and the GB/T 28181 pair may be
//! empty, but not all three.

use fieldlink_location::CoordSystem;

use super::{ImportAt, ImportErrors, Problems, gb28181};
use crate::model::{Camera, CameraId, PlayProtocol, PlayUrl};

/// The header a camera CSV must start with.
pub const CSV_HEADER: [&str; 7] = [
    "id",
    "name",
    "lat",
    "lon",
    "rtsp_url",
    "gb28181_device_id",
    "gb28181_channel_id",
];

/// Parses a CSV camera file whose coordinates are in `coords`.
pub fn cameras_from_csv(text: &str, coords: CoordSystem) -> Result<Vec<Camera>, ImportErrors> {
    let mut p = Problems::default();
    let mut cameras = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let header = lines.next().map(|(_, l)| split(l));
    let expected = CSV_HEADER.join(",");
    match header {
        Some(Ok(h)) if h.iter().map(|f| f.trim()).eq(CSV_HEADER) => {}
        _ => {
            p.push(&ImportAt::Line(1), "header", format!("is not {expected}"));
            return p.into_result(cameras);
        }
    }
    for (n, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let at = ImportAt::Line(n);
        let fields = match split(line) {
            Ok(f) if f.len() == CSV_HEADER.len() => f,
            Ok(f) => {
                let message = format!("expected {} fields, found {}", CSV_HEADER.len(), f.len());
                p.push(&at, "record", message);
                continue;
            }
            Err(message) => {
                p.push(&at, "record", message);
                continue;
            }
        };
        let f: Vec<&str> = fields.iter().map(|s| s.trim()).collect();
        let mut number = |field: &str, s: &str| match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Some(x),
            _ => {
                p.push(&at, field, format!("{s:?} is not a number"));
                None
            }
        };
        let (lat, lon) = (number("lat", f[2]), number("lon", f[3]));
        let gb = gb28181(
            &mut p,
            &at,
            [CSV_HEADER[5], CSV_HEADER[6]],
            Some(f[5]),
            Some(f[6]),
        );
        let (Some(lat), Some(lon)) = (lat, lon) else {
            continue;
        };
        let play_urls = match f[4] {
            "" => Vec::new(),
            url => vec![PlayUrl::new(PlayProtocol::Rtsp, url)],
        };
        let camera = Camera {
            id: CameraId(f[0].to_owned()),
            name: f[1].to_owned(),
            lat,
            lon,
            play_urls,
            gb28181: gb,
        };
        let name_of = |field: &str| match field {
            "play_urls" => "rtsp_url".to_owned(),
            f => f.to_owned(),
        };
        p.finish(&at, camera, coords, name_of, &mut cameras);
    }
    p.into_result(cameras)
}

/// Splits one CSV line into fields, unquoting quoted ones.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err("a quote inside an unquoted field".to_owned()),
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) if was_quoted && !c.is_whitespace() => {
                return Err("text after a closing quote".to_owned());
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field (a field may not span lines)".to_owned());
    }
    fields.push(field);
    Ok(fields)
}

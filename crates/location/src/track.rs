//! Track history as the command room replays it: ordering, simplification and export.
//!
//! Owns [`TrackPoint`] (what the tracker hands the store for every fix, flagged or not) and
//! [`Track`] (a unit's points over a time range, as the store returns them): Douglas–Peucker
//! simplification with a tolerance in metres, GeoJSON (RFC 7946) and GPX 1.1 export. Does not
//! own storage, batching or retention (the store does, with `LocationConfig::track_retention`).

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::sync::Arc;

use geo::{Coord, LineString, SimplifyIdx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::coords::CoordSystem;
use crate::filter::FilterReason;
use crate::fix::Fix;
use crate::index::EARTH_RADIUS_M;
use fieldlink_clock::Timestamp;

/// One fix as history keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    /// The fix as received.
    pub fix: Fix,
    /// When it reached us.
    pub received_at: Timestamp,
    /// The filter that rejected it: kept for audit, never drawn as the route.
    pub filtered: Option<FilterReason>,
}

/// A unit's history over a time range, in fix-time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// The unit.
    pub unit: Arc<str>,
    /// Points by fix time; flagged points included.
    pub points: Vec<TrackPoint>,
}

impl Track {
    /// A track from points in any order (a buffered batch arrives late): sorted by fix time,
    /// arrival order kept among equal times.
    pub fn new(unit: impl Into<Arc<str>>, mut points: Vec<TrackPoint>) -> Self {
        points.sort_by_key(|p| p.fix.fix_time);
        Track {
            unit: unit.into(),
            points,
        }
    }

    /// The points that passed the filters: the route.
    pub fn accepted(&self) -> impl Iterator<Item = &TrackPoint> {
        self.points.iter().filter(|p| p.filtered.is_none())
    }

    /// The route without flagged points, simplified by Douglas–Peucker so that no dropped point
    /// was farther than `tolerance_m` metres from the line kept. geo simplifies in coordinate
    /// units, so the points are first projected onto a plane in metres (equirectangular about
    /// the track's mean latitude: under 0.1 % of error across a city).
    pub fn simplified(&self, tolerance_m: f64) -> Track {
        let route: Vec<TrackPoint> = self.accepted().copied().collect();
        if route.len() < 3 || tolerance_m <= 0.0 {
            return Track::new(Arc::clone(&self.unit), route);
        }
        let lat0 = route.iter().map(|p| p.fix.lat).sum::<f64>() / route.len() as f64;
        let (lon0, m_per_deg) = (route[0].fix.lon, EARTH_RADIUS_M * PI / 180.0);
        let cos0 = lat0.to_radians().cos();
        let plane: LineString<f64> = route
            .iter()
            .map(|p| Coord {
                x: (p.fix.lon - lon0) * cos0 * m_per_deg,
                y: (p.fix.lat - lat0) * m_per_deg,
            })
            .collect();
        let kept = plane.simplify_idx(tolerance_m);
        let points = kept.into_iter().map(|i| route[i]).collect();
        Track {
            unit: Arc::clone(&self.unit),
            points,
        }
    }

    /// The route as an RFC 7946 Feature with a LineString geometry (`[lon, lat]`, plus altitude
    /// when every point has one) and the fix times in `properties.times`. RFC 7946 positions
    /// are WGS-84; `coords` other than WGS-84 is for Chinese map SDKs and is named in
    /// `properties.coords`. Fewer than two points give a null geometry, as the RFC allows.
    pub fn to_geojson(&self, coords: CoordSystem) -> Value {
        let route: Vec<&TrackPoint> = self.accepted().collect();
        let with_alt = !route.is_empty() && route.iter().all(|p| p.fix.alt_m.is_some());
        let positions: Vec<Value> = route
            .iter()
            .map(|p| {
                let (lat, lon) = coords.from_wgs84(p.fix.lat, p.fix.lon);
                match p.fix.alt_m {
                    Some(alt) if with_alt => json!([lon, lat, alt]),
                    _ => json!([lon, lat]),
                }
            })
            .collect();
        let geometry = if positions.len() >= 2 {
            json!({ "type": "LineString", "coordinates": positions })
        } else {
            Value::Null
        };
        let times: Vec<String> = route.iter().map(|p| p.fix.fix_time.to_rfc3339()).collect();
        json!({
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "unit": &*self.unit,
                "coords": coords.as_str(),
                "start": times.first(),
                "end": times.last(),
                "times": times,
            },
        })
    }

    /// The route as a GPX 1.1 document with one track segment (always WGS-84, as GPX requires).
    pub fn to_gpx(&self) -> String {
        let mut out = String::with_capacity(128 + 96 * self.points.len());
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str("<gpx version=\"1.1\" creator=\"fieldlink\" ");
        out.push_str("xmlns=\"http://www.topografix.com/GPX/1/1\">\n");
        let _ = writeln!(
            out,
            "  <trk>\n    <name>{}</name>\n    <trkseg>",
            xml_escape(&self.unit)
        );
        for p in self.accepted() {
            let f = &p.fix;
            let _ = write!(out, "      <trkpt lat=\"{}\" lon=\"{}\">", f.lat, f.lon);
            // GPX 1.1 fixes the child order: ele, time, ..., sat.
            if let Some(alt) = f.alt_m {
                let _ = write!(out, "<ele>{alt}</ele>");
            }
            let _ = write!(out, "<time>{}</time>", f.fix_time.to_rfc3339());
            if f.satellites > 0 {
                let _ = write!(out, "<sat>{}</sat>", f.satellites);
            }
            out.push_str("</trkpt>\n");
        }
        out.push_str("    </trkseg>\n  </trk>\n</gpx>\n");
        out
    }
}

/// Escapes the five XML special characters (unit ids come from handsets).
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;

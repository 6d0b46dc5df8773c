//! `GET /api/v1/units/{id}/track`: where a unit went, from the store's track history.
//!
//! Reads the fixes of a time range (default: the last 24 hours), orders them by fix time (a
//! buffered batch arrives late but replays in place), optionally simplifies the route
//! (Douglas–Peucker, tolerance in metres) and answers JSON, GeoJSON (RFC 7946 Feature with a
//! LineString) or GPX 1.1. Flagged fixes are only in the JSON answer, and only on request.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use fieldlink_location::{CoordSystem, FilterReason, Track, TrackPoint};
use fieldlink_store::{Role, TrackRow};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::{Path, Query};
use super::location::{parse_coords, parse_flag};
use super::units::unit_not_found;
use crate::state::AppState;
use crate::uplink::source_from_name;

/// The range answered when `from` is not given: this long before `to`.
const DEFAULT_RANGE: Duration = Duration::from_secs(24 * 3600);
/// Most fixes one answer reads from the store; a longer range is cut and says so.
pub const MAX_POINTS: u32 = 100_000;
/// Largest simplification tolerance accepted, metres.
const MAX_SIMPLIFY_M: f64 = 10_000.0;

/// Query of the track endpoint; every field is optional.
#[derive(Debug, Default, Deserialize)]
pub struct TrackQuery {
    from: Option<String>,
    to: Option<String>,
    simplify_m: Option<String>,
    format: Option<String>,
    include_flagged: Option<String>,
    coords: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    GeoJson,
    Gpx,
}

fn parse_format(raw: Option<&str>) -> Result<Format, ApiError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("json") => Ok(Format::Json),
        Some("geojson") => Ok(Format::GeoJson),
        Some("gpx") => Ok(Format::Gpx),
        Some(other) => Err(ApiError::bad_request(
            "bad_format",
            format!("unknown format {other:?}: use json, geojson or gpx"),
        )),
    }
}

fn parse_tolerance(raw: Option<&str>) -> Result<Option<f64>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=MAX_SIMPLIFY_M).contains(v))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "bad_simplify",
                    format!(
                        "simplify_m {s:?} must be a number of metres from 0 to {MAX_SIMPLIFY_M}"
                    ),
                )
            }),
    }
}

/// A stored row as the location core's point. The store keeps the filter's name; a name this
/// build does not know (written by a newer one) is still kept off the route, as `invalid`.
fn track_point(r: &TrackRow) -> TrackPoint {
    let filtered = r.flag.as_deref().map(|flag| {
        FilterReason::ALL
            .into_iter()
            .find(|f| f.as_str() == flag)
            .unwrap_or(FilterReason::Invalid)
    });
    TrackPoint {
        fix: fieldlink_location::Fix {
            fix_time: r.fix_time,
            lat: r.lat,
            lon: r.lon,
            alt_m: r.alt_m,
            accuracy_m: r.accuracy_m,
            speed_mps: r.speed_mps,
            heading_deg: r.heading_deg,
            battery_pct: r.battery_pct,
            satellites: 0,
            source: source_from_name(&r.source),
            seq: 0,
        },
        received_at: r.received_at,
        filtered,
    }
}

fn point_json(p: &TrackPoint, coords: CoordSystem) -> Value {
    let f = &p.fix;
    let (lat, lon) = coords.from_wgs84(f.lat, f.lon);
    json!({
        "fix_time": f.fix_time.to_rfc3339(),
        "received_at": p.received_at.to_rfc3339(),
        "lat": lat,
        "lon": lon,
        "alt_m": f.alt_m,
        "accuracy_m": f.accuracy_m,
        "speed_mps": f.speed_mps,
        "heading_deg": f.heading_deg,
        "battery_pct": f.battery_pct,
        "flag": p.filtered.map(FilterReason::as_str),
    })
}

/// `GET /api/v1/units/{id}/track?from&to&simplify_m&format&include_flagged&coords` (viewer)
pub async fn track(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    Query(q): Query<TrackQuery>,
) -> Result<Response, ApiError> {
    auth.require(Role::Viewer)?;
    let coords = parse_coords(q.coords.as_deref())?;
    let format = parse_format(q.format.as_deref())?;
    let tolerance = parse_tolerance(q.simplify_m.as_deref())?;
    let include_flagged = parse_flag(q.include_flagged.as_deref(), "include_flagged")?;
    let to = super::params::time(q.to.as_deref(), "to")?.unwrap_or_else(|| state.clock.now());
    let from =
        super::params::time(q.from.as_deref(), "from")?.unwrap_or_else(|| to.minus(DEFAULT_RANGE));
    if from > to {
        return Err(ApiError::bad_request(
            "bad_time_range",
            format!(
                "from ({}) is after to ({}): give the earlier time as from",
                from.to_rfc3339(),
                to.to_rfc3339()
            ),
        ));
    }
    if format == Format::Gpx && coords != CoordSystem::Wgs84 {
        return Err(ApiError::bad_request(
            "bad_coords",
            "GPX is always WGS-84: leave coords out, or ask for json or geojson",
        ));
    }
    state
        .credentials
        .unit(&id)
        .ok_or_else(|| unit_not_found(&id))?;

    // Simplification draws the route, which never includes flagged fixes.
    let with_flagged = include_flagged && format == Format::Json && tolerance.is_none();
    let rows = state
        .store
        .track(&id, from, to, with_flagged, MAX_POINTS)
        .await?;
    let truncated = rows.len() >= MAX_POINTS as usize;
    let mut track = Track::new(id.as_str(), rows.iter().map(track_point).collect());
    if let Some(tolerance_m) = tolerance {
        track = track.simplified(tolerance_m);
    }

    Ok(match format {
        Format::Json => Json(json!({
            "unit": id,
            "from": from.to_rfc3339(),
            "to": to.to_rfc3339(),
            "coords": coords.as_str(),
            "simplify_m": tolerance,
            "truncated": truncated,
            "count": track.points.len(),
            "points": track.points.iter().map(|p| point_json(p, coords)).collect::<Vec<_>>(),
        }))
        .into_response(),
        Format::GeoJson => (
            [(header::CONTENT_TYPE, "application/geo+json")],
            track.to_geojson(coords).to_string(),
        )
            .into_response(),
        Format::Gpx => (
            [(header::CONTENT_TYPE, "application/gpx+xml")],
            track.to_gpx(),
        )
            .into_response(),
    })
}

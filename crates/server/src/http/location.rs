//! Location queries over the units' latest positions: the `?bbox=&status=&coords=` filters of
//! `GET /api/v1/units`, and `GET /api/v1/units/nearest`.
//!
//! Positions are kept in WGS-84; `coords` (`wgs84`, `gcj02`, `bd09`) says which system the caller
//! speaks: the query point is converted to WGS-84 before searching, and every position answered is
//! converted back. Distances are always great-circle metres between WGS-84 positions.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use fieldlink_location::{CoordSystem, Presence};
use fieldlink_store::{Role, UnitRecord};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::Query;
use super::units::UnitView;
use crate::state::AppState;

/// Most units `nearest` answers at once.
pub const MAX_NEAREST: usize = 100;
/// Units `nearest` answers when `k` is not given.
const DEFAULT_NEAREST: usize = 5;

/// Parses `?coords=`: absent means WGS-84.
pub fn parse_coords(raw: Option<&str>) -> Result<CoordSystem, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(CoordSystem::Wgs84),
        Some(name) => name
            .parse()
            .map_err(|e: fieldlink_location::UnknownCoordSystem| {
                ApiError::bad_request("bad_coords", e.to_string())
            }),
    }
}

/// A box `minLon,minLat,maxLon,maxLat` in the caller's coordinate system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    min_lon: f64,
    min_lat: f64,
    max_lon: f64,
    max_lat: f64,
}

impl Bbox {
    /// Parses `?bbox=minLon,minLat,maxLon,maxLat` (the GeoJSON order).
    pub fn parse(raw: &str) -> Result<Bbox, ApiError> {
        let bad = |why: &str| {
            ApiError::bad_request(
                "bad_bbox",
                format!(
                    "bbox {raw:?} {why}: give minLon,minLat,maxLon,maxLat in degrees, e.g. 120.10,30.20,120.20,30.30"
                ),
            )
        };
        let parts: Vec<f64> = raw
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad("is not four numbers"))?;
        let [min_lon, min_lat, max_lon, max_lat] = parts[..] else {
            return Err(bad("is not four numbers"));
        };
        if !parts.iter().all(|v| v.is_finite())
            || !(-180.0..=180.0).contains(&min_lon)
            || !(-180.0..=180.0).contains(&max_lon)
            || !(-90.0..=90.0).contains(&min_lat)
            || !(-90.0..=90.0).contains(&max_lat)
        {
            return Err(bad("is outside the earth's coordinates"));
        }
        if min_lon > max_lon || min_lat > max_lat {
            return Err(bad("has its minimum above its maximum"));
        }
        Ok(Bbox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }

    /// Whether the point is inside (edges included).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

/// Parses `?status=`: one of, or a comma-separated list of, `online`, `stale`, `offline`.
pub fn parse_status(raw: &str) -> Result<Vec<Presence>, ApiError> {
    raw.split(',')
        .map(|s| match s.trim().to_ascii_lowercase().as_str() {
            "online" => Ok(Presence::Online),
            "stale" => Ok(Presence::Stale),
            "offline" => Ok(Presence::Offline),
            other => Err(ApiError::bad_request(
                "bad_status",
                format!("unknown status {other:?}: use online, stale or offline"),
            )),
        })
        .collect()
}

/// Query of `GET /api/v1/units/nearest`.
#[derive(Debug, Default, Deserialize)]
pub struct NearestQuery {
    lat: Option<String>,
    lon: Option<String>,
    k: Option<String>,
    available: Option<String>,
    coords: Option<String>,
}

/// One answer of `nearest`: the unit, and how far it is from the query point.
#[derive(Debug, Serialize)]
pub struct NearUnit {
    /// Great-circle metres from the query point.
    distance_m: f64,
    #[serde(flatten)]
    unit: UnitView,
}

fn number(
    raw: Option<&str>,
    name: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, ApiError> {
    let raw = raw.ok_or_else(|| {
        ApiError::bad_request("bad_point", format!("{name} is required, in degrees"))
    })?;
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_point",
                format!(
                    "{name} {raw:?} is not a number of degrees between {} and {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

/// Parses a `true`/`false` flag; absent means false.
pub fn parse_flag(raw: Option<&str>, name: &str) -> Result<bool, ApiError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "bad_flag",
            format!("{name} {other:?} must be true or false"),
        )),
    }
}

/// `GET /api/v1/units/nearest?lat&lon&k&available&coords` (viewer): the `k` units nearest to
/// the point, nearest first. `available=true` keeps only units online and not disabled.
pub async fn nearest(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<NearestQuery>,
) -> Result<Json<Vec<NearUnit>>, ApiError> {
    auth.require(Role::Viewer)?;
    let coords = parse_coords(q.coords.as_deref())?;
    let lat = number(q.lat.as_deref(), "lat", -90.0..=90.0)?;
    let lon = number(q.lon.as_deref(), "lon", -180.0..=180.0)?;
    let k = match q.k.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_NEAREST,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=MAX_NEAREST).contains(k))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "bad_k",
                    format!("k {raw:?} must be a whole number from 1 to {MAX_NEAREST}"),
                )
            })?,
    };
    let available = parse_flag(q.available.as_deref(), "available")?;
    let (lat, lon) = coords.to_wgs84(lat, lon);

    let records: HashMap<String, UnitRecord> = state
        .credentials
        .units()
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    // The core's lock before (never inside) the tracker's: see `units`.
    let statuses =
        super::units::responder_statuses(&state, records.keys().map(String::as_str)).await;
    let tracker = state.tracker();
    let found = tracker.nearest(lat, lon, k, |s| {
        records
            .get(&*s.unit)
            .is_some_and(|r| !available || (!r.disabled && s.presence == Presence::Online))
    });
    let answer = found
        .into_iter()
        .filter_map(|n| {
            let record = records.get(&*n.unit)?;
            Some(NearUnit {
                distance_m: n.distance_m,
                unit: UnitView::new(
                    record,
                    tracker.get(&n.unit),
                    super::units::status_of(&statuses, &n.unit),
                )
                .in_coords(coords),
            })
        })
        .collect();
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_parses_in_geojson_order_and_refuses_nonsense() {
        let b = Bbox::parse("120.1,30.2,120.2,30.3").expect("valid");
        assert!(b.contains(30.25, 120.15));
        assert!(!b.contains(30.35, 120.15));
        for bad in [
            "",
            "1,2,3",
            "a,b,c,d",
            "120.2,30.2,120.1,30.3",
            "200,0,201,1",
        ] {
            assert_eq!(Bbox::parse(bad).unwrap_err().code, "bad_bbox", "{bad}");
        }
    }

    #[test]
    fn coords_and_status_parse() {
        assert_eq!(parse_coords(None).unwrap(), CoordSystem::Wgs84);
        assert_eq!(parse_coords(Some("GCJ02")).unwrap(), CoordSystem::Gcj02);
        assert_eq!(parse_coords(Some("mars")).unwrap_err().code, "bad_coords");
        assert_eq!(
            parse_status("online,stale").unwrap(),
            vec![Presence::Online, Presence::Stale]
        );
        assert_eq!(parse_status("asleep").unwrap_err().code, "bad_status");
    }
}

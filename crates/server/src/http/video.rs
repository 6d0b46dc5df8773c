//! `/api/v1/streams` and `/api/v1/cameras`: what can be watched near a point (现场可视), the fixed
//! cameras, and asking a handset to start or stop its camera.
//!
//! Positions answered and points sent are in the caller's `coords` (WGS-84 by default).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use fieldlink_location::CoordSystem;
use fieldlink_store::Role;
use fieldlink_video::{Camera, RequestId, StartOptions, StreamId, UnitId, VideoChange, VideoError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::{Body, OptionalJson, Path, Query};
use super::location::parse_coords;
use crate::state::AppState;
use crate::video::VideoCommandError;

/// Default and largest radius of `near`, metres.
const DEFAULT_RADIUS_M: f64 = 500.0;
const MAX_RADIUS_M: f64 = 10_000.0;

impl From<VideoError> for ApiError {
    fn from(e: VideoError) -> Self {
        let status = match e {
            VideoError::UnknownStream(_) | VideoError::UnknownCamera(_) => StatusCode::NOT_FOUND,
            VideoError::InvalidCamera { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<VideoCommandError> for ApiError {
    fn from(e: VideoCommandError) -> Self {
        match e {
            VideoCommandError::Refused(e) => e.into(),
            VideoCommandError::Store(e) => ApiError::store(e),
        }
    }
}

/// `GET /api/v1/streams` query.
#[derive(Debug, Deserialize)]
pub struct StreamsQuery {
    /// `lat,lon`.
    near: Option<String>,
    radius_m: Option<f64>,
    coords: Option<String>,
}

fn convert(v: &mut Value, coords: CoordSystem) {
    if let (Some(lat), Some(lon)) = (v["lat"].as_f64(), v["lon"].as_f64()) {
        let (lat, lon) = coords.from_wgs84(lat, lon);
        v["lat"] = json!(lat);
        v["lon"] = json!(lon);
    }
}

/// `GET /api/v1/streams?near=lat,lon&radius_m=&coords=` (viewer): with `near`, the handsets'
/// live or stale streams (at their unit's latest position) and the fixed cameras within
/// `radius_m` (default 500 m), nearest first, each with `distance_m`; without, every stream.
pub async fn streams(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<StreamsQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let coords = parse_coords(q.coords.as_deref())?;
    let Some(near) = q.near.as_deref().filter(|s| !s.trim().is_empty()) else {
        let registry = state.video.read().await;
        let all: Vec<&fieldlink_video::Stream> = registry.streams().collect();
        return Ok(Json(json!({ "streams": all })));
    };
    let bad = || {
        ApiError::bad_request(
            "bad_near",
            "near must be lat,lon in degrees, e.g. near=30.2741,120.1551",
        )
    };
    let (lat, lon) = near.split_once(',').ok_or_else(bad)?;
    let (lat, lon): (f64, f64) = (
        lat.trim().parse().map_err(|_| bad())?,
        lon.trim().parse().map_err(|_| bad())?,
    );
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(bad());
    }
    let radius = q.radius_m.unwrap_or(DEFAULT_RADIUS_M);
    if !(radius > 0.0 && radius <= MAX_RADIUS_M) {
        return Err(ApiError::bad_request(
            "bad_radius",
            format!("radius_m must be above 0 and at most {MAX_RADIUS_M}"),
        ));
    }
    let (lat, lon) = coords.to_wgs84(lat, lon);
    let positions: std::collections::HashMap<String, (f64, f64)> = {
        let registry = state.video.read().await;
        let units: Vec<String> = registry.streams().map(|s| s.unit.to_string()).collect();
        let tracker = state.tracker();
        (units.into_iter())
            .filter_map(|u| {
                let s = tracker.get(&u)?;
                Some((u, (s.fix.lat, s.fix.lon)))
            })
            .collect()
    };
    let registry = state.video.read().await;
    let found = registry.near(lat, lon, radius, |u| positions.get(u.as_str()).copied());
    let mut list: Vec<Value> = found.iter().map(|n| json!(n)).collect();
    for v in &mut list {
        convert(v, coords);
    }
    Ok(Json(
        json!({ "near": { "radius_m": radius }, "streams": list }),
    ))
}

/// `GET /api/v1/cameras?coords=` (viewer): every fixed camera.
pub async fn cameras(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<StreamsQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let coords = parse_coords(q.coords.as_deref())?;
    let registry = state.video.read().await;
    let mut list: Vec<Value> = registry.cameras().map(|c| json!(c)).collect();
    for v in &mut list {
        convert(v, coords);
    }
    Ok(Json(json!({ "cameras": list })))
}

/// `POST /api/v1/cameras` (dispatcher): adds or updates fixed cameras from a GeoJSON
/// FeatureCollection of Points, or from CSV (`Content-Type: text/csv`), WGS-84. All or nothing:
/// any invalid camera refuses the whole body, naming the line or feature and field.
pub async fn import(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let csv = camera_body_is_csv(&headers)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::bad_request("bad_cameras", "the body must be UTF-8 text"))?;
    let parsed = if csv {
        fieldlink_video::cameras_from_csv(text, CoordSystem::Wgs84)
    } else {
        fieldlink_video::cameras_from_geojson(text, CoordSystem::Wgs84)
    };
    let cameras: Vec<Camera> =
        parsed.map_err(|e| ApiError::bad_request("bad_cameras", e.to_string()))?;
    let actor = format!("dispatcher:{caller}");
    let summary = (state.video)
        .execute(&state, &actor, &cameras.clone(), |r, now| {
            let out = r.import_cameras("api", cameras, now)?;
            let summary = (out.events.iter()).find_map(|e| match &e.change {
                VideoChange::CamerasImported {
                    added,
                    updated,
                    unchanged,
                    ..
                } => Some(json!({ "added": added, "updated": updated, "unchanged": unchanged })),
                _ => None,
            });
            Ok((summary.unwrap_or(Value::Null), out))
        })
        .await?;
    Ok(Json(summary))
}

/// Whether a camera import is CSV (`text/csv`) or GeoJSON (a JSON type, or no Content-Type);
/// 415 for anything else.
fn camera_body_is_csv(headers: &HeaderMap) -> Result<bool, ApiError> {
    let given = (headers.get(header::CONTENT_TYPE)).map(|v| String::from_utf8_lossy(v.as_bytes()));
    let essence = (given.as_deref())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("text/csv") => Ok(true),
        None | Some("application/json") => Ok(false),
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => Ok(false),
        Some(_) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send cameras as GeoJSON (Content-Type: application/geo+json or application/json) \
                 or CSV (Content-Type: text/csv); got {}",
                given.unwrap_or_default()
            ),
        )),
    }
}

/// `POST /api/v1/units/{id}/video/start` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    max_width: u32,
    #[serde(default)]
    max_height: u32,
    #[serde(default)]
    max_bitrate_kbps: u32,
    /// Idempotency: the same id asks once.
    #[serde(default)]
    request_id: Option<String>,
}

impl StartBody {
    /// A start request with only a reason and a request id (the WebSocket command).
    pub(crate) fn for_command(reason: String, request_id: Option<String>) -> Self {
        StartBody {
            reason,
            request_id,
            ..StartBody::default()
        }
    }
}

/// Asks `unit` to start streaming, for `caller`; the request id and when it times out.
pub(crate) async fn start_video(
    state: &AppState,
    caller: &str,
    unit: String,
    b: StartBody,
) -> Result<Value, ApiError> {
    if state.credentials.unit(&unit).is_none() {
        return Err(ApiError::not_found(
            "unit_not_found",
            format!("no unit has the id {unit:?}"),
        ));
    }
    let id = b
        .request_id
        .clone()
        .unwrap_or_else(|| fieldlink_store::generate_id("vr"));
    let request = RequestId::from(id.as_str());
    let options = StartOptions {
        max_width: b.max_width,
        max_height: b.max_height,
        max_bitrate_kbps: b.max_bitrate_kbps,
        reason: b.reason,
    };
    let u = UnitId::from(unit.as_str());
    let actor = format!("dispatcher:{caller}");
    (state.video)
        .execute(state, &actor, &[], |r, now| {
            Ok(((), r.request_start(&u, request.clone(), options, now)?))
        })
        .await?;
    let registry = state.video.read().await;
    let pending = registry.request(&request);
    Ok(json!({ "request": id, "unit": unit, "pending": pending }))
}

/// `POST /api/v1/units/{id}/video/start` (dispatcher): `{"reason", "max_width", "max_height",
/// "max_bitrate_kbps", "request_id"}` (all optional) → 202 with the request id. The handset
/// receives a `VideoRequest`; the command room sees `video.request_fulfilled` when its stream
/// appears, or `video.request_timed_out` (`video.request_timeout_s`).
pub async fn start(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(unit): Path<String>,
    OptionalJson(b): OptionalJson<StartBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let v = start_video(&state, &caller, unit, b).await?;
    Ok((StatusCode::ACCEPTED, Json(v)))
}

/// `POST /api/v1/streams/{id}/stop` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/streams/{id}/stop` (dispatcher): asks the handset to stop that stream → 202.
pub async fn stop(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(stream): Path<String>,
    OptionalJson(b): OptionalJson<StopBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let id = fieldlink_store::generate_id("vr");
    let request = RequestId::from(id.as_str());
    let s = StreamId::from(stream.as_str());
    let actor = format!("dispatcher:{caller}");
    (state.video)
        .execute(&state, &actor, &[], |r, now| {
            Ok(((), r.request_stop(&s, request.clone(), &b.reason, now)?))
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "request": id, "stream": stream })),
    ))
}

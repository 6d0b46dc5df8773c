//! `/api/v1/units`: the responders, their latest position and presence, their responder status
//! (from the dispatch core), and their provisioning.
//!
//! Lock order: the dispatch core, then the tracker (as `DispatchService::execute` does when it
//! ranks candidates). The handlers here never nest them: they copy the statuses they need out of
//! the core, let it go, and only then take the tracker.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use std::collections::HashMap;

use fieldlink_dispatch::ResponderStatus;
use fieldlink_location::{CoordSystem, UnitState};
use fieldlink_proto::UnitId;
use fieldlink_store::{Role, UnitRecord, UnitType};
use serde::{Deserialize, Serialize};

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::{Json as JsonBody, Path, Query};
use super::location::{Bbox, parse_coords, parse_status};
use crate::provision::{self, UnitSpec};
use crate::state::AppState;

/// One unit as the command room sees it.
#[derive(Debug, Serialize)]
pub struct UnitView {
    id: String,
    name: String,
    #[serde(rename = "type")]
    unit_type: UnitType,
    skills: Vec<String>,
    disabled: bool,
    /// True while the unit's presence is online (fresh fixes or heartbeats).
    online: bool,
    /// `online`, `stale`, `offline`, or `unknown` before the first message.
    presence: &'static str,
    /// The responder status dispatch sees: `available`, `committed`, `responding`, `on_scene`,
    /// `on_break`, `out_of_service` or `offline`.
    status: ResponderStatus,
    lat: Option<f64>,
    lon: Option<f64>,
    /// When the handset took the latest fix (RFC 3339).
    fix_time: Option<String>,
    /// When that fix reached fieldlink (RFC 3339).
    received_at: Option<String>,
    /// When any message from the unit last arrived (RFC 3339).
    last_seen: Option<String>,
    accuracy_m: Option<f32>,
    speed_mps: Option<f32>,
    heading_deg: Option<f32>,
    battery_pct: Option<f32>,
    /// `native` (fieldlink protobuf) or `owntracks`.
    source: Option<&'static str>,
}

impl UnitView {
    /// The view of a unit and its latest state (positions in WGS-84).
    pub(super) fn new(
        record: &UnitRecord,
        state: Option<&UnitState>,
        status: ResponderStatus,
    ) -> Self {
        let fix = state.map(|s| &s.fix);
        UnitView {
            id: record.id.clone(),
            name: record.name.clone(),
            unit_type: record.unit_type,
            skills: record.skills.clone(),
            disabled: record.disabled,
            online: state.is_some_and(|s| s.presence == fieldlink_location::Presence::Online),
            presence: state.map_or("unknown", |s| s.presence.as_str()),
            status,
            lat: fix.map(|f| f.lat),
            lon: fix.map(|f| f.lon),
            fix_time: fix.map(|f| f.fix_time.to_rfc3339()),
            received_at: state.map(|s| s.received_at.to_rfc3339()),
            last_seen: state.map(|s| s.last_seen.to_rfc3339()),
            accuracy_m: fix.and_then(|f| f.accuracy_m),
            speed_mps: fix.and_then(|f| f.speed_mps),
            heading_deg: fix.and_then(|f| f.heading_deg),
            battery_pct: fix.and_then(|f| f.battery_pct),
            source: fix.map(|f| crate::uplink::source_name(f.source)),
        }
    }

    /// The same view with its position in `coords`.
    pub(super) fn in_coords(mut self, coords: CoordSystem) -> Self {
        if let (Some(lat), Some(lon)) = (self.lat, self.lon) {
            let (lat, lon) = coords.from_wgs84(lat, lon);
            (self.lat, self.lon) = (Some(lat), Some(lon));
        }
        self
    }
}

/// Query of `GET /api/v1/units`: every filter is optional.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// `minLon,minLat,maxLon,maxLat`, in the `coords` system.
    bbox: Option<String>,
    /// `online`, `stale`, `offline`, or a comma-separated list of them.
    status: Option<String>,
    /// `wgs84` (default), `gcj02` or `bd09`.
    coords: Option<String>,
    /// A grid id: only units whose latest position lies in it (geometry, no hysteresis).
    grid: Option<String>,
    /// Responder statuses (`available`, `committed`, `responding`, `on_scene`, `on_break`,
    /// `out_of_service`, `offline`), comma-separated. Not `status`, which filters presence.
    responder_status: Option<String>,
}

/// A unit's status in a map from [`responder_statuses`] (offline when missing).
pub(super) fn status_of(statuses: &HashMap<String, ResponderStatus>, id: &str) -> ResponderStatus {
    (statuses.get(id).copied()).unwrap_or(ResponderStatus::Offline)
}

/// Parses `responder_status=`: a comma-separated list of responder statuses.
fn parse_responder_status(raw: &str) -> Result<Vec<ResponderStatus>, ApiError> {
    raw.split(',')
        .map(|s| {
            let name = s.trim().to_ascii_lowercase();
            serde_json::from_value(serde_json::Value::String(name.clone())).map_err(|_| {
                ApiError::bad_request(
                    "bad_responder_status",
                    format!(
                        "unknown responder status {name:?}: use available, committed, responding, \
                         on_scene, on_break, out_of_service or offline"
                    ),
                )
            })
        })
        .collect()
}

/// The responder status of each unit, copied out of the dispatch core (whose lock is released
/// before the caller takes the tracker's). Units the core never heard of are offline.
pub(super) async fn responder_statuses<'a>(
    state: &AppState,
    ids: impl Iterator<Item = &'a str>,
) -> HashMap<String, ResponderStatus> {
    let core = state.dispatch.read().await;
    ids.map(|id| {
        let unit = fieldlink_dispatch::UnitId(id.to_owned());
        (id.to_owned(), core.responder_status(&unit))
    })
    .collect()
}

/// One unit's responder status (the core's lock is held only for the read).
async fn responder_status(state: &AppState, id: &str) -> ResponderStatus {
    let core = state.dispatch.read().await;
    core.responder_status(&fieldlink_dispatch::UnitId(id.to_owned()))
}

/// `GET /api/v1/units?bbox=&grid=&status=&responder_status=&coords=` (viewer). With `bbox` or
/// `grid`, units without a position are left out; with `status` (presence), units never heard
/// from are left out; `responder_status` filters on the dispatch status.
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<UnitView>>, ApiError> {
    auth.require(Role::Viewer)?;
    let coords = parse_coords(q.coords.as_deref())?;
    let bbox = q.bbox.as_deref().map(Bbox::parse).transpose()?;
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let wanted_rs = match q.responder_status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(parse_responder_status(raw)?),
    };
    let records = state.credentials.units();
    let statuses = responder_statuses(&state, records.iter().map(|r| r.id.as_str())).await;
    let rs = |id: &str| status_of(&statuses, id);
    let tracker = state.tracker();
    let grid = match q.grid.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => match tracker.zones().get(id) {
            Some(z) if z.kind == fieldlink_location::ZoneKind::Grid => Some(z),
            _ => {
                let message = format!("no grid has the id {id:?} (see GET /api/v1/grids)");
                return Err(ApiError::not_found("grid_not_found", message));
            }
        },
    };
    Ok(Json(
        records
            .iter()
            .map(|r| (r, tracker.get(&r.id)))
            .filter(|(_, s)| match &status {
                None => true,
                Some(wanted) => s.is_some_and(|s| wanted.contains(&s.presence)),
            })
            .filter(|(_, s)| match grid {
                None => true,
                Some(z) => s.is_some_and(|s| z.contains(s.fix.lat, s.fix.lon)),
            })
            .filter(|(r, _)| wanted_rs.as_ref().is_none_or(|w| w.contains(&rs(&r.id))))
            .map(|(r, s)| UnitView::new(r, s, rs(&r.id)).in_coords(coords))
            .filter(|v| match (&bbox, v.lat, v.lon) {
                (None, _, _) => true,
                (Some(b), Some(lat), Some(lon)) => b.contains(lat, lon),
                (Some(_), _, _) => false,
            })
            .collect(),
    ))
}

/// `GET /api/v1/units/{id}?coords=` (viewer)
pub async fn get_one(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<UnitView>, ApiError> {
    auth.require(Role::Viewer)?;
    let coords = parse_coords(q.coords.as_deref())?;
    let record = state
        .credentials
        .unit(&id)
        .ok_or_else(|| unit_not_found(&id))?;
    let status = responder_status(&state, &id).await;
    let tracker = state.tracker();
    Ok(Json(
        UnitView::new(&record, tracker.get(&id), status).in_coords(coords),
    ))
}

/// Body of `POST /api/v1/units`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUnitBody {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    unit_type: Option<UnitType>,
    #[serde(default)]
    skills: Vec<String>,
}

/// A unit with its secret, answered once on creation or rotation.
#[derive(Debug, Serialize)]
pub struct IssuedUnit {
    #[serde(flatten)]
    unit: UnitView,
    /// The MQTT password of this unit. Shown once; only a hash is stored.
    secret: String,
}

/// `POST /api/v1/units` (admin): creates a unit and returns its secret once.
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<NewUnitBody>,
) -> Result<(StatusCode, Json<IssuedUnit>), ApiError> {
    auth.require(Role::Admin)?;
    let id =
        UnitId::new(body.id).map_err(|e| ApiError::bad_request("bad_unit_id", e.to_string()))?;
    let issued = provision::add_unit(
        &state.store,
        UnitSpec {
            id,
            name: body.name,
            unit_type: body.unit_type.unwrap_or_default(),
            skills: body.skills,
        },
        state.clock.now(),
    )
    .await?;
    state.credentials.put_unit(issued.record.clone());
    tracing::info!(unit = %issued.record.id, by = %auth.0.name, "unit created");
    Ok((
        StatusCode::CREATED,
        Json(IssuedUnit {
            unit: UnitView::new(&issued.record, None, ResponderStatus::Offline),
            secret: issued.secret,
        }),
    ))
}

/// `POST /api/v1/units/{id}/disable` (admin): its next connect and its next message are refused.
pub async fn disable(
    state: State<AppState>,
    auth: Authenticated,
    id: Path<String>,
) -> Result<Json<UnitView>, ApiError> {
    set_disabled(state, auth, id, true).await
}

/// `POST /api/v1/units/{id}/enable` (admin)
pub async fn enable(
    state: State<AppState>,
    auth: Authenticated,
    id: Path<String>,
) -> Result<Json<UnitView>, ApiError> {
    set_disabled(state, auth, id, false).await
}

async fn set_disabled(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    disabled: bool,
) -> Result<Json<UnitView>, ApiError> {
    auth.require(Role::Admin)?;
    state
        .credentials
        .unit(&id)
        .ok_or_else(|| unit_not_found(&id))?;
    let record =
        provision::set_unit_disabled(&state.store, &id, disabled, state.clock.now()).await?;
    state.credentials.put_unit(record.clone());
    tracing::info!(unit = %id, disabled, by = %auth.0.name, "unit access changed");
    let status = responder_status(&state, &id).await;
    let tracker = state.tracker();
    Ok(Json(UnitView::new(&record, tracker.get(&id), status)))
}

/// `POST /api/v1/units/{id}/rotate-secret` (admin): a new secret, returned once.
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<IssuedUnit>, ApiError> {
    auth.require(Role::Admin)?;
    state
        .credentials
        .unit(&id)
        .ok_or_else(|| unit_not_found(&id))?;
    let issued = provision::rotate_unit_secret(&state.store, &id, state.clock.now()).await?;
    state.credentials.put_unit(issued.record.clone());
    tracing::info!(unit = %id, by = %auth.0.name, "unit secret rotated");
    let status = responder_status(&state, &id).await;
    let view = UnitView::new(&issued.record, state.tracker().get(&id), status);
    Ok(Json(IssuedUnit {
        unit: view,
        secret: issued.secret,
    }))
}

pub(super) fn unit_not_found(id: &str) -> ApiError {
    ApiError::not_found("unit_not_found", format!("no unit has the id {id:?}"))
}

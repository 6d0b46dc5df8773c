//! `/api/v1/geofences` and `/api/v1/grids`: the areas of the location core, managed through the
//! API (kept in the store) or loaded from the config's files (read-only).
//!
//! One set of handlers serves both paths; the const parameter `GRID` says which kind the path
//! holds. Bodies and answers are GeoJSON Features (see `crate::zones::parse`); lists are
//! FeatureCollections. Reads need a viewer token, writes a dispatcher (or admin) token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fieldlink_location::{Zone, ZoneKind};
use fieldlink_store::{Role, UnitRecord};
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::{JsonBytes, Path, Query};
use super::location::parse_coords;
use super::units::UnitView;
use crate::state::AppState;
use crate::zones::{self, AlarmOn, Origin, ZoneMeta};

/// Query of `GET /api/v1/grids/{id}/units`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CoordsQuery {
    /// `wgs84` (default), `gcj02` or `bd09`.
    coords: Option<String>,
}

const fn kind(grid: bool) -> ZoneKind {
    if grid {
        ZoneKind::Grid
    } else {
        ZoneKind::Geofence
    }
}

fn not_found(kind: ZoneKind, id: &str) -> ApiError {
    let name = zones::kind_name(kind);
    ApiError::not_found("zone_not_found", format!("no {name} has the id {id:?}"))
}

/// The area `id` of `kind` with its metadata, or 404.
fn find(state: &AppState, kind: ZoneKind, id: &str) -> Result<(Zone, Option<ZoneMeta>), ApiError> {
    let zone = state.tracker().zones().get(id).cloned();
    match zone {
        Some(zone) if zone.kind == kind => Ok((zone, state.zone_book().get(id).cloned())),
        _ => Err(not_found(kind, id)),
    }
}

/// `GET /api/v1/{geofences|grids}` (viewer): a FeatureCollection, ordered by id.
pub async fn list<const GRID: bool>(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let mut found: Vec<Zone> = {
        let tracker = state.tracker();
        let all = tracker.zones().iter();
        all.filter(|z| z.kind == kind(GRID)).cloned().collect()
    };
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let book = state.zone_book();
    let features: Vec<Value> = found
        .iter()
        .map(|z| zones::feature(z, book.get(&z.id)))
        .collect();
    Ok(Json(
        json!({ "type": "FeatureCollection", "features": features }),
    ))
}

/// `GET /api/v1/{geofences|grids}/{id}` (viewer): the Feature.
pub async fn get_one<const GRID: bool>(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let (zone, meta) = find(&state, kind(GRID), &id)?;
    Ok(Json(zones::feature(&zone, meta.as_ref())))
}

/// `POST /api/v1/{geofences|grids}` (dispatcher): creates an area; 409 when the id is taken by
/// any geofence or grid.
pub async fn create<const GRID: bool>(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let (zone, members, alarm_on) = parse(&state, &body, kind(GRID), None)?;
    if state.tracker().zones().get(&zone.id).is_some() {
        let message = format!(
            "a geofence or grid with the id {:?} already exists; PUT replaces it",
            zone.id
        );
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            message,
        ));
    }
    let answer = save(&state, zone, members, alarm_on, &caller, true).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `PUT /api/v1/{geofences|grids}/{id}` (dispatcher): creates (201) or replaces (200) the area.
pub async fn put<const GRID: bool>(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let (zone, members, alarm_on) = parse(&state, &body, kind(GRID), Some(&id))?;
    let existing = state.tracker().zones().get(&id).map(|z| z.kind);
    if let Some(other) = existing.filter(|k| *k != kind(GRID)) {
        let message = format!(
            "{id:?} is a {}; change it under its own path",
            zones::kind_name(other)
        );
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "kind_mismatch",
            message,
        ));
    }
    writable(&state, &id)?;
    let answer = save(&state, zone, members, alarm_on, &caller, false).await?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(answer)))
}

/// `DELETE /api/v1/{geofences|grids}/{id}` (dispatcher): 204. Units inside get their exit event
/// with their next fix.
pub async fn delete<const GRID: bool>(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    find(&state, kind(GRID), &id)?;
    writable(&state, &id)?;
    match state.store.delete_zone(&id).await {
        Ok(()) | Err(fieldlink_store::StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    state.tracker().remove_zone(&id);
    state.zone_book().remove(&id);
    tracing::info!(zone = %id, kind = zones::kind_name(kind(GRID)), by = %caller, "zone deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/grids/{id}/units?coords=` (viewer): the grid's members with their presence and
/// whether they are inside now, and the other units whose latest position is inside.
pub async fn grid_units(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    Query(q): Query<CoordsQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let coords = parse_coords(q.coords.as_deref())?;
    let (zone, meta) = find(&state, ZoneKind::Grid, &id)?;
    let members = meta.map(|m| m.members).unwrap_or_default();
    let records = state.credentials.units();
    // The core's lock before (never inside) the tracker's: see `units`.
    let statuses =
        super::units::responder_statuses(&state, records.iter().map(|r| r.id.as_str())).await;
    let tracker = state.tracker();
    let inside = |unit: &str| {
        tracker
            .get(unit)
            .is_some_and(|s| zone.contains(s.fix.lat, s.fix.lon))
    };
    let view = |r: &UnitRecord| {
        let status = super::units::status_of(&statuses, &r.id);
        UnitView::new(r, tracker.get(&r.id), status).in_coords(coords)
    };
    let member_views: Vec<Value> = members
        .iter()
        .filter_map(|m| records.iter().find(|r| &r.id == m))
        .map(|r| {
            let mut v = serde_json::to_value(view(r)).unwrap_or_default();
            v["in_grid"] = json!(inside(&r.id));
            v
        })
        .collect();
    let others: Vec<UnitView> = records
        .iter()
        .filter(|r| !members.contains(&r.id) && inside(&r.id))
        .map(view)
        .collect();
    Ok(Json(
        json!({ "grid": id, "members": member_views, "others_inside": others }),
    ))
}

fn parse(
    state: &AppState,
    body: &[u8],
    kind: ZoneKind,
    path_id: Option<&str>,
) -> Result<(Zone, Vec<String>, Option<AlarmOn>), ApiError> {
    zones::parse_feature(body, kind, path_id, |u| state.credentials.unit(u).is_some())
        .map_err(|e| ApiError::bad_request(e.code, e.message))
}

/// 409 for an area from a config file.
fn writable(state: &AppState, id: &str) -> Result<(), ApiError> {
    match state.zone_book().get(id).map(|m| &m.origin) {
        Some(Origin::File(path)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "read_only_zone",
            format!(
                "{id:?} comes from the file {} of the config; change it there",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Stores the area (only if new, with `create`), then shows it to the core (so a failed write
/// changes nothing).
async fn save(
    state: &AppState,
    zone: Zone,
    members: Vec<String>,
    alarm_on: Option<AlarmOn>,
    caller: &str,
    create: bool,
) -> Result<Value, ApiError> {
    let record = zones::to_record(&zone, &members, alarm_on, state.clock.now());
    let stored = if create {
        state.store.create_zone(&record).await?
    } else {
        state.store.put_zone(&record).await?
    };
    let meta = ZoneMeta {
        members: stored.members,
        origin: Origin::Api {
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        },
        alarm_on,
    };
    let answer = zones::feature(&zone, Some(&meta));
    let (id, kind) = (zone.id.clone(), zones::kind_name(zone.kind));
    state.tracker().upsert_zone(zone);
    state.zone_book().insert(&id, meta);
    tracing::info!(zone = %id, kind, by = %caller, "zone saved");
    Ok(answer)
}

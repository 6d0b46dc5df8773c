//! `/api/v1/incidents` and `/api/v1/orders`: the command room's side of dispatch (alarms are in
//! `alarms.rs`).
//!
//! Writes need a dispatcher or admin token and name the caller (the token's name) as the actor;
//! reads need a viewer token and come from the dispatch core's memory (the store holds the same,
//! committed before any write answered). Refusals carry the core's stable codes
//! (`DispatchError::code`, mapped in `error.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fieldlink_dispatch::{
    Candidate, Change, Dispatcher, IncidentId, IncidentKind, IncidentSource, LatLon, NewIncident,
    Order, OrderId, Outcome, Priority, UnitId,
};
use fieldlink_store::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::{OptionalJson, Path, Query};
use crate::dispatch::{grid_at, near};
use crate::state::AppState;

/// `POST /api/v1/incidents` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncidentBody {
    kind: IncidentKind,
    #[serde(default)]
    priority: Priority,
    lat: f64,
    lon: f64,
    #[serde(default)]
    description: String,
    /// Idempotency: the same id creates nothing twice and answers with the first incident.
    #[serde(default)]
    request_id: Option<String>,
}

/// `POST /api/v1/incidents/{id}/dispatch` body: absent or `{}` for one click.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    #[serde(default)]
    pub(crate) units: Option<Vec<String>>,
}

/// `GET /api/v1/alarms` query.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    /// The status to keep; absent or empty keeps all.
    pub status: Option<String>,
}

/// `GET /api/v1/incidents` query.
#[derive(Debug, Deserialize)]
pub struct IncidentQuery {
    /// `open` or `closed`; absent or empty keeps all.
    pub status: Option<String>,
    /// The grid id the incident lies in; absent or empty keeps all.
    pub grid: Option<String>,
}

/// Most responders one reinforcement request may ask for.
const MAX_REINFORCE: usize = 20;

/// `POST /api/v1/incidents/{id}/reinforce` body: absent or `{}` asks for one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReinforceBody {
    #[serde(default)]
    pub(crate) count: Option<usize>,
}

/// `POST /api/v1/orders/{id}/cancel` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub(crate) reason: String,
}

/// An incident with its orders.
fn incident_view(core: &Dispatcher, id: &IncidentId) -> Result<Value, ApiError> {
    let i = core.incident(id)?;
    let orders: Vec<&Order> = i.orders.iter().filter_map(|o| core.order(o).ok()).collect();
    let queued = core.queue().iter().any(|q| &q.incident == id);
    Ok(json!({ "incident": i, "orders": orders, "queued": queued }))
}

/// `POST /api/v1/incidents`: 201 with the incident; 200 with the first one for a repeated
/// `request_id`.
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    super::extract::Json(b): super::extract::Json<NewIncidentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let (created, view) = create_incident(&state, caller, b).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Creates an incident for `caller`: `(false, the first one)` for a repeated `request_id`.
pub(crate) async fn create_incident(
    state: &AppState,
    caller: String,
    b: NewIncidentBody,
) -> Result<(bool, Value), ApiError> {
    if !(-90.0..=90.0).contains(&b.lat) || !(-180.0..=180.0).contains(&b.lon) {
        return Err(ApiError::bad_request(
            "bad_position",
            "lat must be within -90..90 and lon within -180..180 (WGS-84 degrees)",
        ));
    }
    if b.request_id
        .as_deref()
        .is_some_and(|r| r.is_empty() || r.len() > 200)
    {
        return Err(ApiError::bad_request(
            "bad_request_id",
            "request_id must be 1 to 200 characters",
        ));
    }
    let location = LatLon {
        lat: b.lat,
        lon: b.lon,
    };
    let spec = NewIncident {
        request_id: b.request_id.clone(),
        kind: b.kind,
        priority: b.priority,
        location: Some(location),
        grid: grid_at(state, location),
        description: b.description,
        source: IncidentSource::CommandRoom,
    };
    let actor = fieldlink_dispatch::Actor::Dispatcher(caller);
    let (id, replayed): (IncidentId, bool) = (state.dispatch)
        .execute(state, b.request_id, |d, now, _| {
            let replayed =
                (spec.request_id.as_ref()).is_some_and(|r| d.state().requests.contains_key(r));
            let (id, out) = d.create_incident(now, spec, actor)?;
            Ok(((id, replayed), out))
        })
        .await?;
    let core = state.dispatch.read().await;
    Ok((!replayed, incident_view(&core, &id)?))
}

/// `GET /api/v1/incidents?status=open|closed&grid=ID`: newest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let open = match q.status.as_deref() {
        None | Some("") => None,
        Some("open") => Some(true),
        Some("closed") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_status",
                format!("status {other:?} is not open or closed"),
            ));
        }
    };
    let grid = q.grid.as_deref().filter(|g| !g.is_empty());
    let core = state.dispatch.read().await;
    let mut incidents: Vec<_> = (core.state().incidents.values())
        .filter(|i| open.is_none_or(|o| i.is_open() == o))
        .filter(|i| grid.is_none_or(|g| i.spec.grid.as_deref() == Some(g)))
        .collect();
    incidents.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    Ok(Json(json!({ "incidents": incidents })))
}

/// `GET /api/v1/incidents/{id}`: the incident, its orders, whether it waits in the queue.
pub async fn get_one(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let core = state.dispatch.read().await;
    Ok(Json(incident_view(&core, &IncidentId(id))?))
}

/// The orders an outcome created, as they stand after the command.
fn created_orders(d: &Dispatcher, out: &Outcome) -> Vec<Order> {
    (out.events.iter())
        .filter_map(|e| match &e.change {
            Change::OrderCreated { order } => d.order(&order.id).ok().cloned(),
            _ => None,
        })
        .collect()
}

/// The responders ranked nearest the incident. Ranked before the core's write lock is taken;
/// positions barely move in between.
async fn candidates_for(state: &AppState, id: &IncidentId) -> Result<Vec<Candidate>, ApiError> {
    let location = {
        let core = state.dispatch.read().await;
        core.incident(id)?.spec.location
    };
    Ok(location.map(|at| near(state, at)).unwrap_or_default())
}

/// `POST /api/v1/incidents/{id}/dispatch`: one click (no body or `{}`: the nearest available,
/// fitting responder; queued with an alarm when there is none), or `{"units": [...]}`.
pub async fn dispatch(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<DispatchBody>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    Ok(Json(dispatch_incident(&state, caller, id, b).await?))
}

/// Dispatches incident `id` for `caller`: one click, or the units named.
pub(crate) async fn dispatch_incident(
    state: &AppState,
    caller: String,
    id: String,
    b: DispatchBody,
) -> Result<Value, ApiError> {
    let id = IncidentId(id);
    let candidates = candidates_for(state, &id).await?;
    let orders: Vec<Order> = (state.dispatch)
        .execute(state, None, |d, now, _| {
            let out = match &b.units {
                Some(units) => {
                    let units: Vec<UnitId> = units.iter().map(|u| UnitId(u.clone())).collect();
                    d.dispatch_units(now, &id, &caller, &units)?
                }
                None => d.dispatch(
                    now,
                    &id,
                    fieldlink_dispatch::Actor::Dispatcher(caller),
                    &candidates,
                )?,
            };
            Ok((created_orders(d, &out), out))
        })
        .await?;
    let core = state.dispatch.read().await;
    let queued = core.queue().iter().any(|q| q.incident == id);
    Ok(json!({ "orders": orders, "queued": queued }))
}

/// `GET /api/v1/incidents/{id}/recommend`: the fitting responders in dispatch order, with
/// distance and ETA; dispatches nothing.
pub async fn recommend(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    Ok(Json(recommend_for(&state, id).await?))
}

/// The ranked recommendation for incident `id`.
pub(crate) async fn recommend_for(state: &AppState, id: String) -> Result<Value, ApiError> {
    let id = IncidentId(id);
    let candidates = candidates_for(state, &id).await?;
    let core = state.dispatch.read().await;
    let ranked = core.recommend(&id, &candidates)?;
    Ok(json!({ "recommendations": ranked }))
}

/// `POST /api/v1/incidents/{id}/reinforce`: `{"count": n}` (default 1) reinforcing orders to
/// the next nearest fitting responders (those not yet on the incident); any still missing are
/// queued. The reinforcement clock (default 5 min) runs from this request.
pub async fn reinforce(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    OptionalJson(b): OptionalJson<ReinforceBody>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    Ok(Json(reinforce_incident(&state, caller, id, b).await?))
}

/// Requests reinforcement of incident `id` for `caller`.
pub(crate) async fn reinforce_incident(
    state: &AppState,
    caller: String,
    id: String,
    b: ReinforceBody,
) -> Result<Value, ApiError> {
    let count = b.count.unwrap_or(1);
    if !(1..=MAX_REINFORCE).contains(&count) {
        return Err(ApiError::bad_request(
            "bad_count",
            format!("count must be 1 to {MAX_REINFORCE} responders"),
        ));
    }
    let id = IncidentId(id);
    let candidates = candidates_for(state, &id).await?;
    let orders: Vec<Order> = (state.dispatch)
        .execute(state, None, |d, now, _| {
            let actor = fieldlink_dispatch::Actor::Dispatcher(caller);
            let out = d.reinforce(now, &id, actor, count, &candidates)?;
            Ok((created_orders(d, &out), out))
        })
        .await?;
    let core = state.dispatch.read().await;
    let incident = core.incident(&id)?;
    let queued = core.queue().iter().any(|q| q.incident == id);
    Ok(json!({
        "reinforcement": incident.reinforcements.last(),
        "orders": orders,
        "queued": queued,
    }))
}

/// `POST /api/v1/orders/{id}/cancel`: `{"reason": "..."}`; the order is withdrawn and its
/// handset receives `order_cancelled` with the reason.
pub async fn cancel(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    super::extract::Json(b): super::extract::Json<CancelBody>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    Ok(Json(cancel_order(&state, caller, id, b).await?))
}

/// Cancels order `id` for `caller`.
pub(crate) async fn cancel_order(
    state: &AppState,
    caller: String,
    id: String,
    b: CancelBody,
) -> Result<Value, ApiError> {
    let reason = b.reason.trim().to_owned();
    if reason.is_empty() || reason.len() > 500 {
        return Err(ApiError::bad_request(
            "bad_reason",
            "reason must be 1 to 500 characters: the responder is told why",
        ));
    }
    let id = OrderId(id);
    (state.dispatch)
        .execute(state, None, |d, now, src| {
            Ok(((), d.cancel_order(now, &id, &caller, &reason, src)?))
        })
        .await?;
    let core = state.dispatch.read().await;
    let o = core.order(&id)?;
    Ok(json!({ "order": o, "status": core.responder_status(&o.unit) }))
}

/// `POST /api/v1/incidents/{id}/close`: when every order has ended.
pub async fn close(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    Ok(Json(close_incident(&state, caller, id).await?))
}

/// Closes incident `id` for `caller`.
pub(crate) async fn close_incident(
    state: &AppState,
    caller: String,
    id: String,
) -> Result<Value, ApiError> {
    let id = IncidentId(id);
    (state.dispatch)
        .execute(state, None, |d, now, _| {
            Ok(((), d.close_incident(now, &id, &caller)?))
        })
        .await?;
    let core = state.dispatch.read().await;
    incident_view(&core, &id)
}

/// `GET /api/v1/orders/{id}`.
pub async fn order(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let core = state.dispatch.read().await;
    let o = core.order(&OrderId(id))?;
    Ok(Json(
        json!({ "order": o, "status": core.responder_status(&o.unit) }),
    ))
}

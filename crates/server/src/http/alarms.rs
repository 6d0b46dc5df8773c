//! `/api/v1/alarms`: the alarms of dispatch (target missed, no one available, SOS, geofence
//! rules), listed for viewers, acknowledged and resolved by a named dispatcher.

use axum::Json;
use axum::extract::State;
use fieldlink_dispatch::{Actor, AlarmId};
use fieldlink_store::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::dispatch::StatusQuery;
use super::error::ApiError;
use super::extract::{OptionalJson, Path, Query};
use crate::state::AppState;

/// `GET /api/v1/alarms?status=raised|acknowledged|resolved`: newest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<StatusQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let core = state.dispatch.read().await;
    let mut list: Vec<_> = (core.state().alarms.values())
        .filter(|a| {
            q.status.as_deref().is_none_or(|s| {
                s.is_empty()
                    || serde_json::to_value(&a.state)
                        .ok()
                        .as_ref()
                        .and_then(Value::as_str)
                        == Some(s)
            })
        })
        .collect();
    list.sort_by(|a, b| b.raised_at.cmp(&a.raised_at).then(a.id.cmp(&b.id)));
    Ok(Json(json!({ "alarms": list })))
}

/// `POST /api/v1/alarms/{id}/ack`: a named dispatcher has it; re-notification stops.
pub async fn ack(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    Ok(Json(acknowledge(&state, caller, id).await?))
}

/// Acknowledges alarm `id` for `caller`.
pub(crate) async fn acknowledge(
    state: &AppState,
    caller: String,
    id: String,
) -> Result<Value, ApiError> {
    let id = AlarmId(id);
    (state.dispatch)
        .execute(state, None, |d, now, _| {
            Ok(((), d.acknowledge_alarm(now, &id, &caller)?))
        })
        .await?;
    let core = state.dispatch.read().await;
    Ok(json!({ "alarm": core.alarm(&id)? }))
}

/// Body of `POST /api/v1/alarms/{id}/resolve` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Why it is over, in the dispatcher's words (logged with the resolution).
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/alarms/{id}/resolve`: a named dispatcher closes the alarm (acknowledged or
/// not); re-notification stops. A repeat is a no-op; the core's refusals keep their codes
/// (unknown alarm 404, conflicts 409).
pub async fn resolve(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ResolveBody>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let note = body.note;
    Ok(Json(resolve_with(&state, caller, id, note).await?))
}

/// Resolves alarm `id` for `caller`, with an optional note for the log.
pub(crate) async fn resolve_with(
    state: &AppState,
    caller: String,
    id: String,
    note: Option<String>,
) -> Result<Value, ApiError> {
    let id = AlarmId(id);
    let actor = Actor::dispatcher(&caller);
    (state.dispatch)
        .execute(state, None, |d, now, _| {
            Ok(((), d.resolve_alarm(now, &id, actor)?))
        })
        .await?;
    tracing::info!(alarm = %id, by = %caller, note = note.as_deref().unwrap_or(""), "alarm resolved");
    let core = state.dispatch.read().await;
    Ok(json!({ "alarm": core.alarm(&id)? }))
}

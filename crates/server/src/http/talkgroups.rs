//! `/api/v1/talkgroups`: talkgroups (config file and API), who holds each floor and who waits,
//! the talk-burst log, and a dispatcher taking and releasing the floor.
//!
//! A dispatcher takes the floor as the console named like their token (`consoles` of the group
//! must list it); by default a console outranks a responder of the same priority and so cuts in
//! (`intercom.dispatcher_precedence`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fieldlink_intercom::{Actor, Effect, FloorPriority, Intercom, Party, Talkgroup, TalkgroupId};
use fieldlink_store::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::{OptionalJson, Path, Query};
use crate::state::AppState;

/// Most log rows one call answers.
const MAX_LOG: u32 = 10_000;

fn view(state: &AppState, core: &Intercom, g: &TalkgroupId) -> Result<Value, ApiError> {
    let group = core.group(g)?;
    let source = if state.intercom.is_configured(g) {
        "file"
    } else {
        "api"
    };
    Ok(json!({
        "talkgroup": group.spec,
        "source": source,
        "holder": core.holder(g).map(ToString::to_string),
        "queue": core.queue(g).iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}

/// `GET /api/v1/talkgroups` (viewer).
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let core = state.intercom.read().await;
    let ids: Vec<TalkgroupId> = core.state().groups.keys().cloned().collect();
    let all = (ids.iter())
        .map(|g| view(&state, &core, g))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "talkgroups": all })))
}

/// `GET /api/v1/talkgroups/{id}` (viewer).
pub async fn get_one(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let core = state.intercom.read().await;
    Ok(Json(view(&state, &core, &TalkgroupId::from(id.as_str()))?))
}

fn read_only(id: &TalkgroupId) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "read_only_talkgroup",
        format!("talkgroup {id} comes from the config file; change it there"),
    )
}

/// `PUT /api/v1/talkgroups/{id}` (dispatcher): creates (201) or replaces (200) it. The body is a
/// talkgroup (`name`, `mode`, `busy`, `max_talk_s`, `units`, `consoles`); its `id`, if given,
/// must be the path's.
pub async fn put(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    super::extract::Json(mut body): super::extract::Json<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    if !body.is_object() {
        // Indexing anything else by "id" below would panic.
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_body",
            "the body must be a talkgroup object: {\"name\", \"mode\", \"units\", ...}",
        ));
    }
    match body.get("id") {
        None => body["id"] = json!(id),
        Some(v) if v == &json!(id) => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "id_mismatch",
                "the body's id differs from the path's",
            ));
        }
    }
    let spec: Talkgroup = super::extract::from_value(body)?;
    let g = spec.id.clone();
    if state.intercom.is_configured(&g) {
        return Err(read_only(&g));
    }
    let existed = state.intercom.read().await.group(&g).is_ok();
    (state.intercom)
        .execute(&state, |c, now| {
            Ok((
                (),
                c.save_group(now, spec, Actor::Dispatcher(caller.as_str().into()))?,
            ))
        })
        .await?;
    let core = state.intercom.read().await;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(&state, &core, &g)?)))
}

/// `DELETE /api/v1/talkgroups/{id}` (dispatcher): 204; 409 while its floor is in use.
pub async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    let g = TalkgroupId::from(id.as_str());
    if state.intercom.is_configured(&g) {
        return Err(read_only(&g));
    }
    (state.intercom)
        .execute(&state, |c, now| {
            Ok((
                (),
                c.remove_group(now, &g, Actor::Dispatcher(caller.as_str().into()))?,
            ))
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/talkgroups/{id}/log` query.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/talkgroups/{id}/log?from&to&limit` (viewer): the talk bursts that started in
/// `[from, to)` (RFC 3339; default the last 24 h), oldest first.
pub async fn log(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::Viewer)?;
    let g = TalkgroupId::from(id.as_str());
    state.intercom.read().await.group(&g)?;
    let now = state.clock.now();
    let to = super::params::time(q.to.as_deref(), "to")?
        .unwrap_or(now.plus(std::time::Duration::from_millis(1)));
    let from = super::params::time(q.from.as_deref(), "from")?
        .unwrap_or(to.minus(std::time::Duration::from_secs(24 * 3600)));
    let limit = q.limit.unwrap_or(1000).clamp(1, MAX_LOG);
    let rows = (state.store)
        .talk_bursts(g.as_str(), from, to, limit)
        .await
        .map_err(ApiError::store)?;
    let bursts: Vec<Value> = (rows.iter())
        .map(|b| {
            json!({
                "talkgroup": b.talkgroup,
                "party": b.party,
                "start": b.start.to_rfc3339(),
                "end": b.end.to_rfc3339(),
                "duration_ms": b.duration_ms,
                "outcome": b.outcome,
                "priority": b.data["priority"],
            })
        })
        .collect();
    Ok(Json(json!({ "talkgroup": g, "bursts": bursts })))
}

/// `POST /api/v1/talkgroups/{id}/floor` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorBody {
    #[serde(default)]
    priority: FloorPriority,
}

/// `POST /api/v1/talkgroups/{id}/floor` (dispatcher): the caller's console asks for the floor
/// (`{"priority": "normal"|"imminent_peril"|"emergency"}`) → the arbiter's answer (`granted`
/// with `max_talk_ms`, `queued` with `position`, `denied` with `reason`).
pub async fn take_floor(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<FloorBody>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    Ok(Json(
        request_floor(&state, &caller, id, body.priority).await?,
    ))
}

/// The console of `caller` asks for the floor of talkgroup `id` at `priority`.
pub(crate) async fn request_floor(
    state: &AppState,
    caller: &str,
    id: String,
    priority: FloorPriority,
) -> Result<Value, ApiError> {
    let g = TalkgroupId::from(id.as_str());
    let party = Party::console(caller);
    let answer = (state.intercom)
        .execute(state, |c, now| {
            let out = c.request(now, party.clone(), &g, priority, None)?;
            let answer = (out.effects.iter()).find_map(|e| match e {
                Effect::Floor { to, answer, .. } if to == &party => Some(answer.clone()),
                _ => None,
            });
            Ok((answer, out))
        })
        .await?;
    let core = state.intercom.read().await;
    Ok(json!({ "answer": answer, "floor": view(state, &core, &g)? }))
}

/// `POST /api/v1/talkgroups/{id}/floor/release` (dispatcher): the caller's console gives the
/// floor back (or leaves the queue).
pub async fn release_floor(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Dispatcher)?.name.clone();
    Ok(Json(release(&state, &caller, id).await?))
}

/// The console of `caller` gives the floor of talkgroup `id` back (or leaves its queue).
pub(crate) async fn release(state: &AppState, caller: &str, id: String) -> Result<Value, ApiError> {
    let g = TalkgroupId::from(id.as_str());
    let party = Party::console(caller);
    (state.intercom)
        .execute(state, |c, now| Ok(((), c.release(now, party, &g, None)?)))
        .await?;
    let core = state.intercom.read().await;
    Ok(json!({ "floor": view(state, &core, &g)? }))
}

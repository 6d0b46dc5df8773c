//! The command room's commands by name, for the WebSocket (`command {id, op, args}`): the same
//! functions the HTTP endpoints call, so both paths validate, act and answer alike.
//!
//! | op | args | HTTP twin |
//! | --- | --- | --- |
//! | `create_incident` | the body of `POST /api/v1/incidents` | same |
//! | `dispatch` | `incident`, `units?` | `POST /api/v1/incidents/{id}/dispatch` |
//! | `recommend` | `incident` | `GET /api/v1/incidents/{id}/recommend` |
//! | `reinforce` | `incident`, `count?` | `POST /api/v1/incidents/{id}/reinforce` |
//! | `cancel` | `order`, `reason` | `POST /api/v1/orders/{id}/cancel` |
//! | `close` | `incident` | `POST /api/v1/incidents/{id}/close` |
//! | `ack_alarm`, `resolve_alarm` | `alarm`, `note?` | `POST /api/v1/alarms/{id}/ack`, `.../resolve` |
//! | `take_floor`, `release_floor` | `talkgroup`, `priority?` | `POST /api/v1/talkgroups/{id}/floor`, `.../floor/release` |
//! | `request_video` | `unit`, `reason?`, `request_id?` | `POST /api/v1/units/{id}/video/start` |
//!
//! The command's `id` only pairs the answer with the request; idempotent creation uses
//! `request_id` inside the arguments, as over HTTP.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::alarms;
use super::dispatch::{self, CancelBody, DispatchBody, NewIncidentBody, ReinforceBody};
use super::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnIncident {
    incident: String,
    #[serde(default)]
    units: Option<Vec<String>>,
    #[serde(default)]
    count: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnOrder {
    order: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnTalkgroup {
    talkgroup: String,
    #[serde(default)]
    priority: fieldlink_intercom::FloorPriority,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnUnit {
    unit: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnAlarm {
    alarm: String,
    #[serde(default)]
    note: Option<String>,
}

fn args<T: DeserializeOwned>(op: &str, v: Value) -> Result<T, ApiError> {
    let v = if v.is_null() { json!({}) } else { v };
    super::extract::from_value(v).map_err(|e| {
        ApiError::bad_request("bad_args", format!("{op}: {}", e.message)).with_field(e.field)
    })
}

/// Runs `op` for the dispatcher named `caller` (the hub checked the role).
pub async fn run(state: &AppState, caller: &str, op: &str, v: Value) -> Result<Value, ApiError> {
    let caller = caller.to_owned();
    match op {
        "create_incident" => {
            let body: NewIncidentBody = args(op, v)?;
            Ok(dispatch::create_incident(state, caller, body).await?.1)
        }
        "dispatch" => {
            let a: OnIncident = args(op, v)?;
            let body = DispatchBody { units: a.units };
            dispatch::dispatch_incident(state, caller, a.incident, body).await
        }
        "recommend" => {
            let a: OnIncident = args(op, v)?;
            dispatch::recommend_for(state, a.incident).await
        }
        "reinforce" => {
            let a: OnIncident = args(op, v)?;
            let body = ReinforceBody { count: a.count };
            dispatch::reinforce_incident(state, caller, a.incident, body).await
        }
        "cancel" => {
            let a: OnOrder = args(op, v)?;
            let body = CancelBody { reason: a.reason };
            dispatch::cancel_order(state, caller, a.order, body).await
        }
        "close" => {
            let a: OnIncident = args(op, v)?;
            dispatch::close_incident(state, caller, a.incident).await
        }
        "ack_alarm" => {
            let a: OnAlarm = args(op, v)?;
            alarms::acknowledge(state, caller, a.alarm).await
        }
        "resolve_alarm" => {
            let a: OnAlarm = args(op, v)?;
            alarms::resolve_with(state, caller, a.alarm, a.note).await
        }
        "take_floor" => {
            let a: OnTalkgroup = args(op, v)?;
            super::talkgroups::request_floor(state, &caller, a.talkgroup, a.priority).await
        }
        "release_floor" => {
            let a: OnTalkgroup = args(op, v)?;
            super::talkgroups::release(state, &caller, a.talkgroup).await
        }
        "request_video" => {
            let a: OnUnit = args(op, v)?;
            let body = super::video::StartBody::for_command(a.reason, a.request_id);
            super::video::start_video(state, &caller, a.unit, body).await
        }
        other => Err(ApiError::bad_request(
            "unknown_op",
            format!(
                "no command {other:?}; the commands are create_incident, dispatch, recommend, reinforce, cancel, close, ack_alarm, resolve_alarm, take_floor, release_floor, request_video"
            ),
        )),
    }
}

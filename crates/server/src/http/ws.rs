//! `/ws` (command room), `/ws/handset` (handsets) and `POST /api/v1/ws-ticket`.
//!
//! The sockets themselves belong to the hub (`crates/push`: authentication, subscriptions,
//! resume, back-pressure; its README is the protocol's reference). A browser cannot set an
//! `Authorization` header on a WebSocket, so it first asks for a ticket here with its token and
//! opens `/ws?ticket=...`; the ticket works once, within `push.ticket_ttl_ms`.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::Response;
use fieldlink_push::{Endpoint, upgrade};
use fieldlink_store::Role;
use serde_json::{Value, json};

use super::auth::Authenticated;
use super::error::ApiError;
use crate::state::AppState;

/// `GET /ws`: the command room's live picture and commands.
pub async fn command_room(State(state): State<AppState>, req: Request) -> Response {
    upgrade(state.push.clone(), Endpoint::CommandRoom, req).await
}

/// `GET /ws/handset`: a handset's orders and receipts (credential `<unit>:<secret>`).
pub async fn handset(State(state): State<AppState>, req: Request) -> Response {
    upgrade(state.push.clone(), Endpoint::Handset, req).await
}

/// `POST /api/v1/ws-ticket`: a single-use ticket for `/ws?ticket=`, for the caller's role.
pub async fn ticket(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let caller = auth.require(Role::Viewer)?;
    let principal = crate::push::principal_of(caller);
    let ticket = state.push.tickets().issue(principal, state.clock.now());
    let expires_in_s = state.push.config().ticket_ttl_ms / 1000;
    Ok(Json(
        json!({ "ticket": ticket, "expires_in_s": expires_in_s }),
    ))
}

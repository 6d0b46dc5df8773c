//! The HTTP side: validating an upgrade request and handing the socket to a session.
//!
//! Everything that can be refused is refused here, before the 101, with a JSON error
//! (`{"error": {"code", "message"}}`, as the rest of the API): a foreign Origin (403), a full
//! hub (503), a bad credential (401), a principal on the wrong endpoint (403). Only a request
//! without any credential is upgraded unauthenticated, and must then send `auth` first.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role as WsRole, WebSocketConfig};
use tracing::debug;

use crate::hub::Hub;
use crate::session::{self, admits};
use crate::stats::bump;
use crate::wire::Protocol;

/// Which WebSocket endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/ws`: the command room (admin, dispatcher, viewer).
    CommandRoom,
    /// `/ws/handset`: a responder's handset.
    Handset,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The credential a request carries.
enum Credential<'a> {
    Bearer(&'a str),
    Ticket(&'a str),
    None,
}

fn credential<B>(req: &Request<B>) -> Credential<'_> {
    if let Some(auth) = header_str(req.headers(), header::AUTHORIZATION)
        && let Some(token) = auth.strip_prefix("Bearer ")
    {
        return Credential::Bearer(token.trim());
    }
    match query_param(req.uri().query(), "ticket") {
        Some(ticket) => Credential::Ticket(ticket),
        None => Credential::None,
    }
}

/// Upgrades a request to `endpoint` to a WebSocket session of `hub`, or refuses it. The server's
/// axum router calls this with the raw request (`axum::extract::Request`).
pub async fn upgrade(hub: Arc<Hub>, endpoint: Endpoint, mut req: Request<Body>) -> Response {
    let counters = &hub.counters;
    let headers = req.headers();

    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| hub.config.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            bump(&counters.refused_origin);
            return refuse(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this Origin may not open a WebSocket",
            );
        }
    }
    if req.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "expected a WebSocket upgrade",
        );
    }
    if header_str(headers, header::SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut response = refuse(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_version",
            "only WebSocket version 13 is spoken",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "Sec-WebSocket-Key is missing",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let protocol =
        header_str(headers, header::SEC_WEBSOCKET_PROTOCOL).and_then(Protocol::negotiate);

    if hub.is_shutting_down() {
        bump(&counters.refused_capacity);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        );
    }
    let Some(slot) = hub.reserve_slot() else {
        bump(&counters.refused_capacity);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "too many WebSocket connections",
        );
    };

    let principal = match credential(&req) {
        Credential::Bearer(token) => hub.backend.authenticate_token(token).await,
        Credential::Ticket(ticket) => hub.tickets().redeem(ticket, hub.clock.now()),
        Credential::None => None,
    };
    let had_credential = !matches!(credential(&req), Credential::None);
    if had_credential && principal.is_none() {
        bump(&counters.refused_auth);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "the token or ticket is not valid",
        );
    }
    if let Some(p) = &principal
        && let Err(why) = admits(endpoint, p)
    {
        bump(&counters.refused_role);
        return refuse(StatusCode::FORBIDDEN, "wrong_endpoint", why);
    }

    let on_upgrade = hyper::upgrade::on(&mut req);
    let config = WebSocketConfig::default()
        .read_buffer_size(hub.config.read_buffer_bytes.max(1024))
        .max_message_size(Some(hub.config.max_message_bytes))
        .max_frame_size(Some(hub.config.max_frame_bytes))
        .write_buffer_size(hub.config.write_buffer_bytes)
        .max_write_buffer_size(hub.config.max_write_buffer_bytes);
    let session_hub = hub.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let ws = WebSocketStream::from_raw_socket(io, WsRole::Server, Some(config)).await;
                let protocol = protocol.unwrap_or(Protocol::Json);
                session::run(session_hub, endpoint, principal, protocol, ws, slot).await;
            }
            Err(e) => debug!(error = %e, "WebSocket upgrade failed"),
        }
    });

    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(protocol) = protocol {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol.name()),
        );
    }
    response
}

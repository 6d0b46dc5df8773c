//! Operational endpoints: liveness, readiness, Prometheus metrics, and the 404 and 405 answers.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the broker side is connected, the store answers, and every service's commits
/// go through (a loop that cannot commit is not ready, with the reason).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let broker = state.downlink.is_connected();
    let store = state.store.ping().await;
    let problems = state.health.problems();
    let ready = broker && store.is_ok() && problems.is_empty();
    let services: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let body = json!({
        "ready": ready,
        "broker": if broker { "connected" } else { "not connected" },
        "store": match &store { Ok(()) => "open".to_owned(), Err(e) => format!("error: {e}") },
        "services": if services.is_empty() { json!("committing") } else { json!(services) },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: every metric in the Prometheus / OpenMetrics text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    crate::push::refresh_metrics(&state);
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        tracing::error!(error = %e, "could not encode metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A path that exists, with a method it does not take; axum adds the `Allow` header.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; the Allow header lists the methods it takes",
            uri.path()
        ),
    )
}

/// Any other path.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(
        "no_such_endpoint",
        format!("there is no endpoint at {}", uri.path()),
    )
}

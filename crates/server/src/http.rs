//! The HTTP API: health, metrics and the `/api/v1` resources.
//!
//! `app(state)` builds the router without a socket, so tests can drive it directly; `serve`
//! runs it on a listener until shutdown. Health and metrics need no token; everything under
//! `/api/v1` needs `Authorization: Bearer <token>` with a role that allows the call. Every error
//! answer is `{"error": {"code", "message"}}` (`http/error.rs`), axum's own refusals included
//! (`http/extract.rs` and the fallbacks below).

mod alarms;
mod auth;
pub(crate) mod commands;
mod dispatch;
mod error;
mod extract;
mod location;
mod ops;
mod params;
mod reject;
mod reports;
mod talkgroups;
mod track;
mod units;
mod video;
mod ws;
mod zones;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::Authenticated;
pub use error::ApiError;

use crate::state::AppState;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/units", get(units::list).post(units::create))
        .route("/api/v1/units/nearest", get(location::nearest))
        .route("/api/v1/units/{id}", get(units::get_one))
        .route("/api/v1/units/{id}/track", get(track::track))
        .route("/api/v1/units/{id}/disable", post(units::disable))
        .route("/api/v1/units/{id}/enable", post(units::enable))
        .route(
            "/api/v1/units/{id}/rotate-secret",
            post(units::rotate_secret),
        )
        .route(
            "/api/v1/geofences",
            get(zones::list::<false>).post(zones::create::<false>),
        )
        .route(
            "/api/v1/geofences/{id}",
            get(zones::get_one::<false>)
                .put(zones::put::<false>)
                .delete(zones::delete::<false>),
        )
        .route(
            "/api/v1/grids",
            get(zones::list::<true>).post(zones::create::<true>),
        )
        .route(
            "/api/v1/grids/{id}",
            get(zones::get_one::<true>)
                .put(zones::put::<true>)
                .delete(zones::delete::<true>),
        )
        .route("/api/v1/grids/{id}/units", get(zones::grid_units))
        .route(
            "/api/v1/incidents",
            get(dispatch::list).post(dispatch::create),
        )
        .route("/api/v1/incidents/{id}", get(dispatch::get_one))
        .route("/api/v1/incidents/{id}/dispatch", post(dispatch::dispatch))
        .route("/api/v1/incidents/{id}/recommend", get(dispatch::recommend))
        .route(
            "/api/v1/incidents/{id}/reinforce",
            post(dispatch::reinforce),
        )
        .route("/api/v1/incidents/{id}/close", post(dispatch::close))
        .route("/api/v1/orders/{id}", get(dispatch::order))
        .route("/api/v1/orders/{id}/cancel", post(dispatch::cancel))
        .route("/api/v1/reports/sla", get(reports::sla))
        .route("/api/v1/alarms", get(alarms::list))
        .route("/api/v1/alarms/{id}/ack", post(alarms::ack))
        .route("/api/v1/alarms/{id}/resolve", post(alarms::resolve))
        .route("/api/v1/talkgroups", get(talkgroups::list))
        .route(
            "/api/v1/talkgroups/{id}",
            get(talkgroups::get_one)
                .put(talkgroups::put)
                .delete(talkgroups::delete),
        )
        .route("/api/v1/talkgroups/{id}/log", get(talkgroups::log))
        .route(
            "/api/v1/talkgroups/{id}/floor",
            post(talkgroups::take_floor),
        )
        .route(
            "/api/v1/talkgroups/{id}/floor/release",
            post(talkgroups::release_floor),
        )
        .route("/api/v1/streams", get(video::streams))
        .route("/api/v1/streams/{id}/stop", post(video::stop))
        .route("/api/v1/cameras", get(video::cameras).post(video::import))
        .route("/api/v1/units/{id}/video/start", post(video::start))
        .route("/api/v1/ws-ticket", post(ws::ticket))
        .route("/ws", axum::routing::any(ws::command_room))
        .route("/ws/handset", axum::routing::any(ws::handset))
        // Unknown paths and wrong methods answer the API's error shape too (axum adds `Allow`
        // to the 405).
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// How long a client may take over its TLS handshake before the socket is closed.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `app` over TLS on `listener` (HTTPS, and WSS for `/ws` and `/ws/handset`) until
/// `shutdown` is cancelled; then every connection finishes its request in flight and closes.
/// A failed handshake (wrong protocol, a client that does not trust the certificate) closes
/// that socket only; it is logged at debug level with the peer's address.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    let service = TowerToHyperService::new(app(state));
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, usually: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept an HTTPS connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let (acceptor, service, shutdown) = (acceptor.clone(), service.clone(), shutdown.clone());
        connections.spawn(async move {
            let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::pin!(conn);
            let done = tokio::select! {
                done = conn.as_mut() => done,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

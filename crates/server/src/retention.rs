//! Track-history retention: fixes older than `location.track_retention` are deleted once at
//! start and then once an hour, and the rows deleted are counted in
//! `fieldlink_track_rows_pruned_total`. A failed prune is logged and tried again next hour; the
//! history only grows a little meanwhile.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How often old history is pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Prunes now, then every [`PRUNE_INTERVAL`] until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while shutdown.run_until_cancelled(ticker.tick()).await.is_some() {
        prune_once(&state).await;
    }
}

/// Deletes the history older than the retention now; returns how many rows went.
pub async fn prune_once(state: &AppState) -> u64 {
    let retention = state.tracker().config().track_retention;
    let cutoff = state.clock.now().minus(retention);
    match state.store.prune_track(cutoff).await {
        Ok(rows) => {
            state.metrics.track_rows_pruned.inc_by(rows);
            if rows > 0 {
                tracing::info!(rows, older_than = %cutoff.to_rfc3339(), "old track history pruned");
            }
            rows
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not prune old track history; trying again in an hour");
            0
        }
    }
}

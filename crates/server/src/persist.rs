//! Writing positions to the store in batches, and reading them back at start.
//!
//! Positions are not journalled one by one (DESIGN.md, "Delivery and durability"): every fix is
//! queued here and written each `store.flush_interval_ms` as one transaction of track history plus
//! one upsert of the latest positions (coalesced per unit: latest wins). A failed write keeps the
//! rows and tries again on the next tick; past `MAX_PENDING_ROWS` the oldest history rows are
//! dropped and counted, so a long database outage cannot exhaust memory.
//!
//! The replay marks of sealed payloads (`fieldlink_ingest::ReplayMarks`) are written with the
//! same flush, after the positions; a failed write keeps them for the next tick too.
//!
//! At start, [`restore`] rebuilds the tracker's cache from the stored latest positions, and
//! [`restore_seal_marks`] reads the replay marks back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldlink_ingest::{Channel, Mark, ReplayMarks};
use fieldlink_proto::UnitId;
use fieldlink_store::{PositionRow, SealMark, Store, TrackRow};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::uplink::source_from_name;

/// History rows kept in memory while the store is unreachable, at most.
const MAX_PENDING_ROWS: usize = 1_000_000;

#[derive(Debug, Default)]
struct Pending {
    track: Vec<TrackRow>,
    latest: HashMap<String, PositionRow>,
}

/// The queue between the uplink path and the store. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PendingWrites(Arc<Mutex<Pending>>);

impl PendingWrites {
    /// Queues one history row, and the unit's latest position when `is_latest`.
    pub fn push(&self, row: TrackRow, is_latest: bool) {
        let mut p = self.lock();
        if is_latest {
            p.latest.insert(row.unit.clone(), position_row(&row));
        }
        p.track.push(row);
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock())
    }

    fn put_back(&self, mut failed: Pending) -> usize {
        let mut p = self.lock();
        failed.track.append(&mut p.track);
        p.track = failed.track;
        for (unit, row) in failed.latest {
            p.latest.entry(unit).or_insert(row);
        }
        let excess = p.track.len().saturating_sub(MAX_PENDING_ROWS);
        p.track.drain(..excess);
        excess
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn position_row(r: &TrackRow) -> PositionRow {
    PositionRow {
        unit: r.unit.clone(),
        fix_time: r.fix_time,
        received_at: r.received_at,
        lat: r.lat,
        lon: r.lon,
        alt_m: r.alt_m,
        accuracy_m: r.accuracy_m,
        speed_mps: r.speed_mps,
        heading_deg: r.heading_deg,
        battery_pct: r.battery_pct,
        source: r.source.clone(),
    }
}

/// Writes what is pending every `interval`, and once more after `shutdown`.
pub async fn run(
    state: AppState,
    pending: PendingWrites,
    replay: ReplayMarks,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                flush(&state, &pending).await;
                flush_seal_marks(&state, &replay).await;
            }
            () = shutdown.cancelled() => {
                flush(&state, &pending).await;
                flush_seal_marks(&state, &replay).await;
                return;
            }
        }
    }
}

/// Writes the replay marks that changed since the last flush.
async fn flush_seal_marks(state: &AppState, replay: &ReplayMarks) {
    let changed = replay.take_changed();
    if changed.is_empty() {
        return;
    }
    let rows: Vec<SealMark> = changed
        .iter()
        .map(|m| SealMark {
            unit: m.unit.to_string(),
            channel: m.channel.as_str().to_owned(),
            last: m.last,
        })
        .collect();
    if let Err(e) = state.store.save_seal_marks(&rows).await {
        state.metrics.store_write_errors.inc();
        tracing::warn!(error = %e, units = rows.len(), "could not write the replay marks to the store; keeping them for the next try");
        replay.put_back(changed);
    }
}

/// The stored replay marks, for [`ReplayMarks::restore`]. A row that no longer parses (a unit
/// id or channel this version does not know) is skipped with a warning.
pub async fn restore_seal_marks(store: &Store) -> Result<Vec<Mark>, fieldlink_store::StoreError> {
    let rows = store.load_seal_marks().await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let mark = UnitId::new(&r.unit)
                .ok()
                .zip(Channel::parse(&r.channel))
                .map(|(unit, channel)| Mark {
                    unit,
                    channel,
                    last: r.last,
                });
            if mark.is_none() {
                tracing::warn!(unit = %r.unit, channel = %r.channel, "skipping a stored replay mark this version cannot read");
            }
            mark
        })
        .collect())
}

/// Writes everything pending now.
pub async fn flush(state: &AppState, pending: &PendingWrites) {
    let batch = pending.take();
    if batch.track.is_empty() && batch.latest.is_empty() {
        return;
    }
    let latest: Vec<PositionRow> = batch.latest.values().cloned().collect();
    let result = async {
        state.store.append_track(&batch.track).await?;
        state.store.upsert_latest_positions(&latest).await
    }
    .await;
    match result {
        Ok(()) => {
            state
                .metrics
                .track_rows_written
                .inc_by(batch.track.len() as u64);
        }
        Err(e) => {
            state.metrics.store_write_errors.inc();
            let rows = batch.track.len();
            let dropped = pending.put_back(batch);
            tracing::warn!(error = %e, rows, dropped, "could not write positions to the store; keeping them for the next try");
        }
    }
}

/// Rebuilds the tracker from the stored latest positions.
pub async fn restore(
    state: &AppState,
    store: &Store,
) -> Result<usize, fieldlink_store::StoreError> {
    let rows = store.load_latest_positions().await?;
    let now = state.clock.now();
    let mut tracker = state.tracker();
    for r in &rows {
        let fix = fieldlink_location::Fix {
            fix_time: r.fix_time,
            lat: r.lat,
            lon: r.lon,
            alt_m: r.alt_m,
            accuracy_m: r.accuracy_m,
            speed_mps: r.speed_mps,
            heading_deg: r.heading_deg,
            battery_pct: r.battery_pct,
            satellites: 0,
            source: source_from_name(&r.source),
            seq: 0,
        };
        tracker.restore(&r.unit, fix, r.received_at, now);
    }
    Ok(rows.len())
}

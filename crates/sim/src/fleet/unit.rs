//! One unit of a fleet: connect, then publish a fix along the route at every tick.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fieldlink_proto::v1;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Common, PublishedFix};
use crate::route::{Route, UnitKind};
use crate::{Handset, HandsetConfig, SimError};

/// First wait before reconnecting a lost handset; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Battery drain of a simulated handset, percent per hour.
const DRAIN_PCT_PER_HOUR: f32 = 8.0;

/// Everything one unit's task needs.
#[derive(Debug)]
pub(super) struct UnitTask {
    pub(super) handset: HandsetConfig,
    pub(super) kind: UnitKind,
    pub(super) route: Route,
    pub(super) jitter: Duration,
    pub(super) satellites: u32,
    pub(super) accuracy_m: f32,
    pub(super) battery_pct: f32,
    pub(super) common: Arc<Common>,
}

impl UnitTask {
    /// Connects (reporting the outcome on `ready`), then publishes until cancelled.
    pub(super) async fn run(self, ready: mpsc::Sender<Result<(), SimError>>) {
        let first = tokio::select! {
            _ = self.common.cancel.cancelled() => return,
            r = self.connect() => r,
        };
        let handset = match first {
            Ok(h) => h,
            Err(e) => {
                let _ = ready.send(Err(e)).await;
                return;
            }
        };
        // Counted before the fleet hears of it, so `stats()` after `start` sees every unit.
        let counters = &self.common.counters;
        counters.connected.fetch_add(1, Ordering::Relaxed);
        let _ = ready.send(Ok(())).await;
        drop(ready);
        let mut handset = Some(handset);
        let mut backoff = MIN_BACKOFF;
        let mut retry_at = Instant::now();
        let mut ticker =
            tokio::time::interval_at(Instant::now() + self.jitter, self.common.fix_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.common.cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if handset.as_ref().is_some_and(|h| !h.is_connected()) {
                handset = None;
                counters.connected.fetch_sub(1, Ordering::Relaxed);
                retry_at = Instant::now() + backoff;
            }
            let Some(h) = handset.as_ref() else {
                if Instant::now() < retry_at {
                    continue;
                }
                match self.connect().await {
                    Ok(h) => {
                        handset = Some(h);
                        backoff = MIN_BACKOFF;
                        counters.connected.fetch_add(1, Ordering::Relaxed);
                        counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(unit = %self.handset.unit, error = %e, "reconnect failed");
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        retry_at = Instant::now() + backoff;
                    }
                }
                continue;
            };
            self.publish_one(h).await;
        }
        if let Some(h) = handset {
            counters.connected.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = h.disconnect().await {
                tracing::debug!(unit = %self.handset.unit, error = %e, "disconnect");
            }
        }
    }

    /// Connects under the fleet's connect permit.
    async fn connect(&self) -> Result<Handset, SimError> {
        // The semaphore is never closed, so acquiring only fails if that changes.
        let _permit = self.common.connect_permits.acquire().await;
        Handset::connect(self.handset.clone()).await
    }

    /// Publishes the fix for now and records it.
    async fn publish_one(&self, handset: &Handset) {
        let now = self.common.clock.now();
        let elapsed = now.since(self.common.start_time);
        let p = self.route.position_at(elapsed);
        let hours = elapsed.as_secs_f32() / 3600.0;
        let fix = v1::GpsFix {
            fix_time_ms: now.as_millis(),
            lat: p.lat,
            lon: p.lon,
            alt_m: Some(8.0),
            accuracy_m: Some(self.accuracy_m),
            speed_mps: Some(p.speed_mps as f32),
            heading_deg: Some(p.heading_deg as f32),
            satellites: self.satellites,
            source: v1::FixSource::Gnss as i32,
            battery_pct: Some((self.battery_pct - hours * DRAIN_PCT_PER_HOUR).max(5.0)),
            seq: 0,
        };
        let counters = &self.common.counters;
        match handset.publish_fix(fix).await {
            Ok(mut report) => {
                counters.fixes_sent.fetch_add(1, Ordering::Relaxed);
                let published = PublishedFix {
                    kind: self.kind,
                    fix: report.fixes.pop().unwrap_or_default(),
                    report_id: report.id,
                };
                let mut positions = self
                    .common
                    .positions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                positions.insert(self.handset.unit.clone(), published);
            }
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(unit = %self.handset.unit, error = %e, "fix not sent");
            }
        }
    }
}

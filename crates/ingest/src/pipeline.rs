//! The ingest task: drains the uplink queue through the [`Decoder`] and forwards what passes.
//!
//! One message at a time, in arrival order: decode and validate (timed), count, and either
//! forward a [`Received`] to the sink or count and log (rate-limited) the [`Rejection`]. A bad
//! message costs one counter increment and never stops the loop.
//!
//! Rate limit: before decoding, each message is charged to the unit its topic names
//! ([`Throttle`], `Limits::throttle`). Over the unit's rate it is dropped and counted as
//! `throttled`, and the first drop of a flood is logged with the unit: one flooding handset costs
//! a topic parse per message, and the others' messages keep flowing.
//!
//! Replay: a message that came sealed is forwarded only when its counter is newer than the last
//! one accepted from its unit ([`ReplayMarks`]); otherwise it is refused as `replayed`.
//!
//! Back-pressure: when the sink is full the task waits for room. Uplinks then gather in the
//! uplink queue, and behind it in the broker (see `broker.rs` / `external.rs` for where they
//! stop). Nothing is dropped here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fieldlink_clock::{SharedClock, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::IngestMetrics;
use crate::decode::{Decoder, Envelope, Rejection, UnitDirectory};
use crate::replay::ReplayMarks;
use crate::source::RawMessage;
use crate::throttle::{Throttle, Verdict};

/// How often the throttle forgets units that have been quiet this long.
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// An accepted uplink and when fieldlink received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// When the pipeline took it off the uplink queue (from the injected clock).
    pub received_at: Timestamp,
    /// The decoded message and its unit.
    pub envelope: Envelope,
}

/// Runs until `shutdown` is cancelled, the uplink queue ends, or the sink is dropped.
#[allow(clippy::too_many_arguments)] // the task's inputs, each named at the one call site
pub async fn run(
    mut uplink: mpsc::Receiver<RawMessage>,
    decoder: Decoder,
    units: Arc<dyn UnitDirectory + Send + Sync>,
    replay: ReplayMarks,
    clock: SharedClock,
    metrics: IngestMetrics,
    sink: mpsc::Sender<Received>,
    shutdown: CancellationToken,
) {
    let limits = decoder.limits();
    let mut throttle = Throttle::new(limits.throttle);
    let started_at = Instant::now();
    let mut last_sweep = Duration::ZERO;
    loop {
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            message = uplink.recv() => match message {
                Some(m) => m,
                None => {
                    tracing::info!("the MQTT uplink ended");
                    break;
                }
            },
        };
        metrics.set_queue_depth(uplink.len());
        let received_at = clock.now();
        let started = Instant::now();
        let now = started.duration_since(started_at);
        if decoder.is_downlink(&message.topic) {
            // The uplink filter `{root}/u/+/+` brings fieldlink's own downlinks back: not an
            // uplink, and not a rejection either (an alert on rejections must stay quiet).
            metrics.downlink_seen();
            continue;
        }
        if let Some(unit) = decoder.unit_of(&message.topic)
            && let Verdict::Drop { flagged } = throttle.check(&unit, now)
        {
            if flagged {
                tracing::warn!(%unit, limit_per_s = limits.throttle.rate_per_s, "unit is flooding: its messages are dropped until it slows down");
            }
            let rate_per_s = limits.throttle.rate_per_s;
            metrics.rejected(&message.topic, &Rejection::Throttled { unit, rate_per_s });
            continue;
        }
        if now.saturating_sub(last_sweep) > SWEEP_EVERY {
            throttle.forget_idle(now, SWEEP_EVERY);
            last_sweep = now;
        }
        let decoded = decoder
            .decode(&message.topic, &message.payload, units.as_ref())
            .and_then(|envelope| fresh(envelope, &replay));
        metrics.observe_decode(started.elapsed());
        match decoded {
            Ok(envelope) => {
                metrics.accepted(&envelope.message);
                let received = Received {
                    received_at,
                    envelope,
                };
                // Sink full: wait (back-pressure, see the module notes).
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    sent = sink.send(received) => if sent.is_err() {
                        tracing::info!("ingest sink closed; stopping the MQTT pipeline");
                        break;
                    },
                }
            }
            Err(rejection) => metrics.rejected(&message.topic, &rejection),
        }
    }
    metrics.set_queue_depth(0);
}

/// `envelope` when it came plain, or sealed with a counter newer than its unit's last.
fn fresh(envelope: Envelope, replay: &ReplayMarks) -> Result<Envelope, Rejection> {
    let Some(freshness) = envelope.freshness else {
        return Ok(envelope);
    };
    match replay.accept(&envelope.unit, freshness) {
        Ok(()) => Ok(envelope),
        Err(last) => Err(Rejection::Replayed {
            counter: freshness.counter(),
            unit: envelope.unit,
            last,
        }),
    }
}

//! The ingest task: drains the uplink queue through the [`Decoder`] and forwards what passes.
//!
//! One message at a time, in arrival order: decode and validate (timed), count, and either
//! forward a [`Received`] to the sink or count and log (rate-limited) the [`Rejection`]. A bad
//! message costs one counter increment and never stops the loop.
//!
//! Back-pressure: when the sink is full the task waits for room. Uplinks then gather in the
//! uplink queue, and behind it in the broker (see `broker.rs` / `external.rs` for where they
//! stop). Nothing is dropped here.

use std::sync::Arc;
use std::time::Instant;

use fieldlink_clock::{SharedClock, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::IngestMetrics;
use crate::decode::{Decoder, Envelope, UnitDirectory};
use crate::source::RawMessage;

/// An accepted uplink and when fieldlink received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// When the pipeline took it off the uplink queue (from the injected clock).
    pub received_at: Timestamp,
    /// The decoded message and its unit.
    pub envelope: Envelope,
}

/// Runs until `shutdown` is cancelled, the uplink queue ends, or the sink is dropped.
pub async fn run(
    mut uplink: mpsc::Receiver<RawMessage>,
    decoder: Decoder,
    units: Arc<dyn UnitDirectory + Send + Sync>,
    clock: SharedClock,
    metrics: IngestMetrics,
    sink: mpsc::Sender<Received>,
    shutdown: CancellationToken,
) {
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
        let decoded = decoder.decode(&message.topic, &message.payload, units.as_ref());
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

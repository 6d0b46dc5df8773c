//! fieldlink's in-process link to rumqttd: the thread that moves uplinks from the router into
//! the `uplink_queue`, and keeps `fieldlink_connected_handsets` current.
//!
//! rumqttd's link API is blocking, hence a std thread rather than a task. Two details matter:
//! - The router stops forwarding to a link whose buffer filled up (it sends `Unschedule`)
//!   until the link says `ready()`; without that answer the link stalls after ~200 messages.
//! - rumqttd has no connect/disconnect events for embedders (its alerts carry only cursor
//!   jumps and bad publishes). Its router *meters* do carry the exact connection count, but
//!   are pushed only for an interval in which something was published. So every
//!   [`METER_INTERVAL`] this thread reads the meters and publishes an empty "tick" on
//!   [`tick_topic`] (which no unit can own) so the next meter always comes; the gauge lags a
//!   connect or disconnect by about one interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fieldlink_proto::Topics;
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::meters::MetersLink;
use rumqttd::{Meter, Notification};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::IngestMetrics;
use crate::source::RawMessage;

/// The client id of fieldlink's own link. A unit id cannot start with `_`, so a handset that
/// passes the [`Authenticator`](super::Authenticator) rule (client id == unit id) cannot take
/// it over (rumqttd replaces a connection when a second one uses the same client id).
pub(super) const CLIENT_ID: &str = "_fieldlink-ingest";

/// How often the router meters are pushed and read.
pub(super) const METER_INTERVAL: Duration = Duration::from_secs(1);

/// How long one wait for the router lasts, so that cancellation is seen promptly.
const POLL: Duration = Duration::from_millis(250);

/// `{root}/u/_fieldlink/tick`: under the uplink filter (so rumqttd accepts it), but `_fieldlink`
/// is not a valid unit id, so no handset can publish there as itself. Dropped by the link.
pub(super) fn tick_topic(topics: &Topics) -> String {
    format!("{}/u/_fieldlink/tick", topics.root())
}

pub(super) struct Consumer {
    pub(super) link_rx: LinkRx,
    pub(super) link_tx: Arc<Mutex<LinkTx>>,
    pub(super) meters: MetersLink,
    pub(super) tick_topic: String,
    pub(super) tx: mpsc::Sender<RawMessage>,
    pub(super) metrics: IngestMetrics,
    pub(super) shutdown: CancellationToken,
    /// Cleared when this thread ends (the `Downlink::is_connected` probe).
    pub(super) link_up: Arc<AtomicBool>,
    /// Cleared by the broker thread if rumqttd's listener stops.
    pub(super) listening: Arc<AtomicBool>,
}

impl Consumer {
    pub(super) fn run(mut self) {
        let why = self.pump();
        self.link_up.store(false, Ordering::Release);
        match why {
            Stop::Shutdown => tracing::debug!("MQTT link thread stopped for shutdown"),
            Stop::QueueClosed => tracing::debug!("MQTT link thread stopped: the pipeline is gone"),
            Stop::Broker(e) => {
                tracing::error!("the embedded MQTT broker dropped fieldlink's link: {e}")
            }
        }
    }

    fn pump(&mut self) -> Stop {
        let mut next_tick = Instant::now();
        let mut next_read = Instant::now();
        loop {
            if self.shutdown.is_cancelled() {
                return Stop::Shutdown;
            }
            let now = Instant::now();
            if now >= next_read {
                self.read_meters();
                next_read = now + POLL;
            }
            if now >= next_tick {
                if let Err(e) = self.tick() {
                    return Stop::Broker(e);
                }
                next_tick = now + METER_INTERVAL;
            }
            // The readiness probe: the link is up and rumqttd still listens.
            let up = self.listening.load(Ordering::Acquire);
            self.link_up.store(up, Ordering::Release);

            let deadline = next_read.min(next_tick);
            match self.link_rx.recv_deadline(deadline) {
                Ok(Some(Notification::Forward(forward))) => {
                    let publish = forward.publish;
                    if publish.topic == self.tick_topic.as_bytes() {
                        continue;
                    }
                    // rumqttd checked the topic is UTF-8 before accepting the publish.
                    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                    let message = RawMessage {
                        topic,
                        payload: publish.payload,
                    };
                    // Full queue: wait here (see the note at the queue in broker.rs).
                    if self.tx.blocking_send(message).is_err() {
                        return Stop::QueueClosed;
                    }
                }
                // The router paused this link because its buffer filled; resume it.
                Ok(Some(Notification::Unschedule)) => {
                    if let Err(e) = self.link_rx.ready() {
                        return Stop::Broker(e.to_string());
                    }
                }
                Ok(Some(Notification::Disconnect(..))) => {
                    return Stop::Broker("the router disconnected it".to_owned());
                }
                // Acks and other notifications carry nothing for us; `None` means "poll again".
                Ok(Some(_)) | Ok(None) => {}
                // Deadline passed (or the router went away: the next tick's publish says so).
                Err(LinkError::RecvTimeout(_)) => {}
                Err(e) => return Stop::Broker(e.to_string()),
            }
        }
    }

    /// Publishes the tick that makes the router's next meter come.
    /// On error, says why in words (rumqttd's error type is too large to pass around).
    fn tick(&mut self) -> Result<(), String> {
        let mut link = self.link_tx.lock().unwrap_or_else(|p| p.into_inner());
        link.publish(self.tick_topic.clone(), Bytes::new())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Reads the meters the router pushed (non-blocking) into the gauge.
    fn read_meters(&mut self) {
        while let Ok(meters) = self.meters.recv() {
            for meter in meters {
                if let Meter::Router(_, router) = meter {
                    // The router counts fieldlink's own link as a connection.
                    let handsets = router.total_connections.saturating_sub(1);
                    self.metrics
                        .set_connected_handsets(i64::try_from(handsets).unwrap_or(i64::MAX));
                }
            }
        }
    }
}

enum Stop {
    Shutdown,
    QueueClosed,
    Broker(String),
}

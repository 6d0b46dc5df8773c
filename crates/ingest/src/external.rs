//! An external MQTT broker (Mosquitto, EMQX, ...) instead of the embedded one, through rumqttc.
//!
//! [`connect`] starts a task that keeps one client connected: it subscribes to the uplink
//! filters (QoS 1) after every CONNACK (the session is clean, so the broker forgets them on
//! each disconnect), reconnects with exponential backoff when the connection fails, logs why in
//! words, and counts each re-established connection in `fieldlink_broker_reconnects_total`. It
//! feeds the same [`Source`] as the embedded broker.
//!
//! On an external broker the broker's own ACL binds each username to its topics (`deploy/`
//! ships the files); fieldlink itself needs read on the uplink filters and write on downlinks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fieldlink_proto::Topics;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::source::{Downlink, RawMessage, Source, SourceWorker};
use crate::{IngestError, IngestMetrics};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How to reach an external broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalBrokerConfig {
    /// `mqtt://host:port` (`tcp://` is accepted too; the port defaults to 1883), or
    /// `mqtts://host:port` for MQTT over TLS (the port defaults to 8883; see `tls`).
    pub url: String,
    /// With `mqtts://`: how the broker's certificate is verified (its CA, or the system's
    /// roots; the host name of the URL must match it) and the client certificate, if any.
    #[serde(skip)]
    pub tls: fieldlink_tls::ClientTls,
    /// The MQTT client id fieldlink connects with. Default `fieldlink`.
    pub client_id: String,
    /// Username, when the broker wants one.
    pub username: Option<String>,
    /// Password, when the broker wants one.
    pub password: Option<String>,
    /// MQTT keep-alive, seconds (at least 1). Default 30.
    #[serde(deserialize_with = "crate::secs::deserialize")]
    pub keep_alive: Duration,
    /// Largest MQTT packet fieldlink accepts from the broker, bytes. Larger than the decoder's
    /// payload limit on purpose, so an oversized uplink is counted as `too_large` instead of
    /// breaking the connection. Default 1 MiB.
    pub max_packet_bytes: usize,
    /// Capacity of the `uplink_queue` between the client and the pipeline. Default 8,192.
    pub uplink_queue: usize,
}

impl Default for ExternalBrokerConfig {
    fn default() -> Self {
        ExternalBrokerConfig {
            url: "mqtt://127.0.0.1:1883".to_owned(),
            tls: fieldlink_tls::ClientTls::default(),
            client_id: "fieldlink".to_owned(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(30),
            max_packet_bytes: 1024 * 1024,
            uplink_queue: 8192,
        }
    }
}

impl ExternalBrokerConfig {
    fn options(&self) -> Result<MqttOptions, IngestError> {
        let bad = |reason: &str| IngestError::BadUrl {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        let (rest, tls, default_port) = if let Some(rest) = self.url.strip_prefix("mqtts://") {
            (rest, true, 8883)
        } else {
            let rest = (self.url.strip_prefix("mqtt://"))
                .or_else(|| self.url.strip_prefix("tcp://"))
                .ok_or_else(|| bad("it must start with mqtt:// or mqtts://"))?;
            (rest, false, 1883)
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("the port must be a number from 1 to 65535"))?,
            ),
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(bad("it must be mqtt://host:port"));
        }
        if self.client_id.is_empty() {
            return Err(IngestError::InvalidConfig(
                "the external broker's client_id must not be empty".to_owned(),
            ));
        }
        if self.keep_alive < Duration::from_secs(1) || self.uplink_queue == 0 {
            return Err(IngestError::InvalidConfig(
                "keep_alive must be at least 1 second and uplink_queue at least 1".to_owned(),
            ));
        }
        let mut options = MqttOptions::new(self.client_id.clone(), host, port);
        options
            .set_keep_alive(self.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(self.max_packet_bytes, self.max_packet_bytes);
        if let Some(user) = &self.username {
            options.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        if tls {
            let config = fieldlink_tls::client_config(&self.tls)
                .map_err(|e| IngestError::InvalidConfig(format!("external broker TLS: {e}")))?;
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config),
            ));
        }
        Ok(options)
    }
}

/// Connects to the external broker in `cfg` and subscribes to `topics`' uplink filters.
///
/// Returns at once; the connection is made (and remade) in a task on the current tokio
/// runtime, so this must be called inside one. `Source::downlink.is_connected()` says when
/// the broker has accepted the connection. Cancelling `shutdown` disconnects and ends the task.
pub fn connect(
    cfg: &ExternalBrokerConfig,
    topics: &Topics,
    metrics: &IngestMetrics,
    shutdown: CancellationToken,
) -> Result<Source, IngestError> {
    let options = cfg.options()?;
    // A small request queue: downlinks wait here while the broker is away.
    let (client, eventloop) = AsyncClient::new(options, 64);
    // When full, the task awaits space before polling the broker again: the broker then holds
    // QoS 1 uplinks for us (up to its inflight limit) and we stop acknowledging; nothing is
    // dropped here, but a pipeline stalled longer than the keep-alive loses the connection.
    let (tx, uplink) = mpsc::channel(cfg.uplink_queue);
    let connected = Arc::new(AtomicBool::new(false));
    let driver = Driver {
        url: cfg.url.clone(),
        client: client.clone(),
        filters: topics.uplink_filters().to_vec(),
        tx,
        connected: Arc::clone(&connected),
        metrics: metrics.clone(),
        shutdown,
    };
    let task = tokio::spawn(driver.run(eventloop));
    Ok(Source {
        uplink,
        downlink: Downlink::external(topics.clone(), client, connected, metrics.clone()),
        worker: SourceWorker::task(task),
    })
}

struct Driver {
    url: String,
    client: AsyncClient,
    filters: Vec<String>,
    tx: mpsc::Sender<RawMessage>,
    connected: Arc<AtomicBool>,
    metrics: IngestMetrics,
    shutdown: CancellationToken,
}

impl Driver {
    async fn run(self, mut eventloop: EventLoop) {
        let mut backoff = MIN_BACKOFF;
        let mut ever_connected = false;
        let mut subscribe_pending = false;
        loop {
            let event = tokio::select! {
                _ = self.shutdown.cancelled() => break,
                event = eventloop.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    self.connected.store(true, Ordering::Release);
                    if ever_connected {
                        self.metrics.broker_reconnected();
                        tracing::info!(url = %self.url, "reconnected to the MQTT broker");
                    } else {
                        tracing::info!(url = %self.url, "connected to the MQTT broker");
                    }
                    ever_connected = true;
                    backoff = MIN_BACKOFF;
                    subscribe_pending = true;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let message = RawMessage {
                        topic: p.topic,
                        payload: p.payload,
                    };
                    tokio::select! {
                        _ = self.shutdown.cancelled() => break,
                        sent = self.tx.send(message) => if sent.is_err() { break },
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                        tracing::error!(
                            url = %self.url,
                            filters = %self.filters.join(", "),
                            "the MQTT broker refused fieldlink's uplink subscription: \
                             check its ACL gives this user read access to these filters"
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.connected.store(false, Ordering::Release);
                    tracing::warn!(
                        url = %self.url,
                        retry_in_s = backoff.as_secs_f64(),
                        "cannot reach the MQTT broker ({e}); retrying"
                    );
                    tokio::select! {
                        _ = self.shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            if subscribe_pending {
                let filters = self
                    .filters
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                // Not `subscribe().await`: the request queue is drained by this very loop. If
                // it is full, try again after the next event.
                subscribe_pending = self.client.try_subscribe_many(filters).is_err();
            }
        }
        self.connected.store(false, Ordering::Release);
        // Say goodbye politely, but do not wait long for a broker that is not answering.
        if self.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Ok(event) = eventloop.poll().await {
                    if let Event::Outgoing(rumqttc::Outgoing::Disconnect) = event {
                        break;
                    }
                }
            })
            .await;
        }
    }
}

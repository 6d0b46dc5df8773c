//! The ingest metrics, and the rate-limited log of rejections.
//!
//! [`IngestMetrics::register`] puts these on the server's registry (served at `/metrics`):
//!
//! | metric | meaning |
//! | --- | --- |
//! | `fieldlink_mqtt_messages_total{kind}` | accepted uplinks, by kind (`gps`, ..., `owntracks`) |
//! | `fieldlink_mqtt_rejected_total{reason}` | refused uplinks, by [`Rejection::reason`] |
//! | `fieldlink_decode_seconds` | decode + validate time per message |
//! | `fieldlink_connected_handsets` | MQTT clients connected to the embedded broker |
//! | `fieldlink_uplink_queue_depth` | messages waiting between the broker and the pipeline |
//! | `fieldlink_broker_reconnects_total` | reconnections to an external broker |
//! | `fieldlink_mqtt_downlinks_seen_total` | messages on a downlink topic seen on the uplink subscription (fieldlink's own downlinks, echoed by the broker); skipped, not rejections |
//! | `fieldlink_downlink_failures_total` | downlinks not handed to the broker (no seal key, link down, shutting down); the order's re-send timer tries again |
//! | `fieldlink_mqtt_connect_refused_total{reason}` | connections the embedded broker refused, by [`Refusal::reason`] |
//!
//! Every label value is created at registration, so a dashboard sees zeros rather than gaps,
//! and the hot path touches pre-resolved counters (no label hashing per message).
//!
//! A flood of bad messages must not flood the log: each reason logs at most one line per
//! [`LOG_INTERVAL`], and the next line says how many were suppressed in between.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::decode::{Rejection, Uplink};

/// At most one log line per rejection reason per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why the embedded broker refused a connection (`fieldlink_mqtt_connect_refused_total{reason}`).
/// Each is decided in fieldlink's own listeners (`broker/front.rs`) and logged with the peer's
/// address; rumqttd checks logins once more on its loopback port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `bad_identity`: an empty client id or username, or one with `+`, `#`, `/` or a control
    /// character (see [`fieldlink_proto::topic::is_safe_mqtt_identity`]); also a CONNECT with no
    /// login at all. Answered with CONNACK code 2.
    BadIdentity,
    /// `bad_credentials`: unknown or disabled unit, client id not the username, wrong secret.
    /// Answered with CONNACK code 5.
    BadCredentials,
    /// `too_many_connections`: the address already holds `max_connections_per_address`.
    TooManyConnections,
    /// `tls_handshake`: the TLS handshake failed or did not finish in time.
    TlsHandshake,
    /// `bad_connect`: no MQTT 3.1.1 CONNECT within the connection timeout: bytes that are not
    /// one, one too large, or one for MQTT 3.1 or 5 (answered with CONNACK code 1).
    BadConnect,
}

impl Refusal {
    /// Every reason, in label order.
    pub const ALL: [Refusal; 5] = [
        Refusal::BadIdentity,
        Refusal::BadCredentials,
        Refusal::TooManyConnections,
        Refusal::TlsHandshake,
        Refusal::BadConnect,
    ];

    /// The metric label.
    pub const fn reason(self) -> &'static str {
        match self {
            Refusal::BadIdentity => "bad_identity",
            Refusal::BadCredentials => "bad_credentials",
            Refusal::TooManyConnections => "too_many_connections",
            Refusal::TlsHandshake => "tls_handshake",
            Refusal::BadConnect => "bad_connect",
        }
    }

    /// What it means, in the log.
    fn why(self) -> &'static str {
        match self {
            Refusal::BadIdentity => {
                "the client id or username is missing, empty, or has '+', '#', '/' or a control character"
            }
            Refusal::BadCredentials => "unknown unit, disabled, or wrong secret",
            Refusal::TooManyConnections => "too many connections from this address",
            Refusal::TlsHandshake => "the TLS handshake failed or took too long",
            Refusal::BadConnect => {
                "no MQTT 3.1.1 CONNECT in time (silent, malformed, too large, or MQTT 3.1 or 5)"
            }
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

type Labels = [(&'static str, &'static str); 1];

/// The ingest metrics. Cheap to clone (shared inside).
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    messages: Vec<Counter>,
    rejected: Vec<Counter>,
    decode_seconds: Histogram,
    connected_handsets: Gauge,
    uplink_queue_depth: Gauge,
    broker_reconnects: Counter,
    downlink_failures: Counter,
    downlinks_seen: Counter,
    connect_refused: Vec<Counter>,
    log_limiter: Mutex<LogLimiter>,
    connect_log_limiter: Mutex<LogLimiter>,
}

impl IngestMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let messages = Family::<Labels, Counter>::default();
        let rejected = Family::<Labels, Counter>::default();
        let connect_refused = Family::<Labels, Counter>::default();
        // Decoding one message takes a few microseconds: buckets from 1 µs to ~33 ms.
        let decode_seconds = Histogram::new(exponential_buckets(1e-6, 2.0, 16));
        let inner = Inner {
            messages: Uplink::KINDS
                .iter()
                .map(|k| messages.get_or_create(&[("kind", *k)]).clone())
                .collect(),
            rejected: Rejection::REASONS
                .iter()
                .map(|r| rejected.get_or_create(&[("reason", *r)]).clone())
                .collect(),
            decode_seconds: decode_seconds.clone(),
            connected_handsets: Gauge::default(),
            uplink_queue_depth: Gauge::default(),
            broker_reconnects: Counter::default(),
            downlink_failures: Counter::default(),
            downlinks_seen: Counter::default(),
            connect_refused: Refusal::ALL
                .iter()
                .map(|r| {
                    connect_refused
                        .get_or_create(&[("reason", r.reason())])
                        .clone()
                })
                .collect(),
            log_limiter: Mutex::new(LogLimiter::new(LOG_INTERVAL, Rejection::REASONS.len())),
            connect_log_limiter: Mutex::new(LogLimiter::new(LOG_INTERVAL, Refusal::ALL.len())),
        };
        registry.register(
            "fieldlink_mqtt_messages",
            "MQTT uplink messages accepted, by kind",
            messages,
        );
        registry.register(
            "fieldlink_mqtt_rejected",
            "MQTT uplink messages refused, by reason",
            rejected,
        );
        registry.register(
            "fieldlink_decode_seconds",
            "Time to decode and validate one uplink message",
            decode_seconds,
        );
        registry.register(
            "fieldlink_connected_handsets",
            "MQTT clients connected to the embedded broker (refreshed every second)",
            inner.connected_handsets.clone(),
        );
        registry.register(
            "fieldlink_uplink_queue_depth",
            "Uplink messages waiting between the broker and the decoder",
            inner.uplink_queue_depth.clone(),
        );
        registry.register(
            "fieldlink_broker_reconnects",
            "Reconnections to the external MQTT broker",
            inner.broker_reconnects.clone(),
        );
        registry.register(
            "fieldlink_downlink_failures",
            "Downlinks that could not be handed to the MQTT broker",
            inner.downlink_failures.clone(),
        );
        registry.register(
            "fieldlink_mqtt_downlinks_seen",
            "Messages on a downlink topic seen on the uplink subscription (fieldlink's own downlinks echoed by the broker); skipped",
            inner.downlinks_seen.clone(),
        );
        registry.register(
            "fieldlink_mqtt_connect_refused",
            "MQTT connections the embedded broker refused before or at login, by reason",
            connect_refused,
        );
        IngestMetrics {
            inner: Arc::new(inner),
        }
    }

    /// Accepted messages of `kind` (one of [`Uplink::KINDS`]) so far.
    pub fn messages_total(&self, kind: &str) -> u64 {
        Uplink::KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.inner.messages[i].get())
    }

    /// Messages on a downlink topic skipped by the pipeline so far.
    pub fn downlinks_seen_total(&self) -> u64 {
        self.inner.downlinks_seen.get()
    }

    pub(crate) fn downlink_seen(&self) {
        self.inner.downlinks_seen.inc();
    }

    /// Refused messages for `reason` (one of [`Rejection::REASONS`]) so far.
    pub fn rejected_total(&self, reason: &str) -> u64 {
        Rejection::REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.inner.rejected[i].get())
    }

    /// The current `fieldlink_connected_handsets`.
    pub fn connected_handsets(&self) -> i64 {
        self.inner.connected_handsets.get()
    }

    /// Reconnections to the external broker so far.
    pub fn broker_reconnects_total(&self) -> u64 {
        self.inner.broker_reconnects.get()
    }

    /// Connections refused for `reason` (a [`Refusal::reason`]) so far.
    pub fn connect_refused_total(&self, reason: &str) -> u64 {
        Refusal::ALL
            .iter()
            .position(|r| r.reason() == reason)
            .map_or(0, |i| self.inner.connect_refused[i].get())
    }

    /// Counts a refused connection and logs it, rate-limited per reason (a storm of bad logins
    /// must not flood the log), with the peer's address when known (`None` only for a login
    /// refused on rumqttd's loopback port, which does not tell it) and the ids escaped and clipped.
    pub(crate) fn connect_refused(
        &self,
        refusal: Refusal,
        peer: Option<std::net::SocketAddr>,
        login: Option<(&str, &str)>,
    ) {
        let i = refusal.index();
        self.inner.connect_refused[i].inc();
        let verdict = self
            .inner
            .connect_log_limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .allow(i, Instant::now());
        if let Some(suppressed) = verdict {
            use tracing::field as f;
            let clip = crate::decode::clip;
            tracing::warn!(
                reason = refusal.reason(),
                suppressed,
                peer = peer.map(f::display),
                client_id = login.map(|(c, _)| f::debug(clip(c))),
                username = login.map(|(_, u)| f::debug(clip(u))),
                "MQTT connection refused: {}",
                refusal.why()
            );
        }
    }

    pub(crate) fn accepted(&self, message: &Uplink) {
        if let Some(i) = Uplink::KINDS.iter().position(|k| *k == message.kind()) {
            self.inner.messages[i].inc();
        }
    }

    /// Counts `rejection` and logs it, rate-limited per reason.
    pub(crate) fn rejected(&self, topic: &str, rejection: &Rejection) {
        let i = rejection.index();
        self.inner.rejected[i].inc();
        let verdict = self
            .inner
            .log_limiter
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .allow(i, Instant::now());
        if let Some(suppressed) = verdict {
            tracing::warn!(
                reason = rejection.reason(),
                suppressed,
                topic = %crate::decode::clip(topic),
                "MQTT message refused: {rejection}"
            );
        }
    }

    pub(crate) fn observe_decode(&self, elapsed: Duration) {
        self.inner.decode_seconds.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn set_connected_handsets(&self, n: i64) {
        self.inner.connected_handsets.set(n);
    }

    pub(crate) fn set_queue_depth(&self, n: usize) {
        self.inner
            .uplink_queue_depth
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn broker_reconnected(&self) {
        self.inner.broker_reconnects.inc();
    }

    pub(crate) fn downlink_failed(&self) {
        self.inner.downlink_failures.inc();
    }

    /// Downlinks that could not be handed to the broker so far.
    pub fn downlink_failures_total(&self) -> u64 {
        self.inner.downlink_failures.get()
    }
}

/// One log line per key per interval; counts what it holds back.
#[derive(Debug)]
struct LogLimiter {
    interval: Duration,
    /// Per key: when it last logged, and how many were suppressed since.
    slots: Vec<Option<(Instant, u64)>>,
}

impl LogLimiter {
    fn new(interval: Duration, keys: usize) -> Self {
        LogLimiter {
            interval,
            slots: vec![None; keys],
        }
    }

    /// `Some(suppressed since the last line)` when key `i` may log at `now`, else `None`.
    fn allow(&mut self, i: usize, now: Instant) -> Option<u64> {
        let slot = &mut self.slots[i];
        match slot {
            Some((last, suppressed)) if now.duration_since(*last) < self.interval => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let n = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(n)
            }
            None => {
                *slot = Some((now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_logs_once_per_interval_and_counts_the_rest() {
        let mut l = LogLimiter::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        assert_eq!(l.allow(0, t0), Some(0));
        for s in 1..10 {
            assert_eq!(l.allow(0, t0 + Duration::from_secs(s)), None);
        }
        // another reason has its own budget
        assert_eq!(l.allow(1, t0 + Duration::from_secs(1)), Some(0));
        assert_eq!(l.allow(0, t0 + Duration::from_secs(10)), Some(9));
        assert_eq!(l.allow(0, t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn every_label_is_present_from_the_start() {
        let mut registry = Registry::default();
        let _m = IngestMetrics::register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        for kind in Uplink::KINDS {
            assert!(text.contains(&format!(
                "fieldlink_mqtt_messages_total{{kind=\"{kind}\"}} 0"
            )));
        }
        for reason in Rejection::REASONS {
            assert!(text.contains(&format!(
                "fieldlink_mqtt_rejected_total{{reason=\"{reason}\"}} 0"
            )));
        }
        assert!(text.contains("fieldlink_connected_handsets 0"));
        assert!(text.contains("fieldlink_broker_reconnects_total 0"));
        for (i, refusal) in Refusal::ALL.into_iter().enumerate() {
            assert_eq!(refusal.index(), i, "ALL is in label order");
            let reason = refusal.reason();
            assert!(text.contains(&format!(
                "fieldlink_mqtt_connect_refused_total{{reason=\"{reason}\"}} 0"
            )));
        }
        assert!(text.contains("fieldlink_decode_seconds_bucket"));
    }
}

//! The server's own metrics (the ingest crate registers its own beside them).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of `fieldlink_fixes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `accepted`, `out_of_order`, or the filter that rejected the fix.
    pub outcome: &'static str,
}

/// Label of `fieldlink_zone_events_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneEventLabel {
    /// `enter` or `exit`.
    pub kind: &'static str,
}

/// Label of the WebSocket refusal and close counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why (`origin`, `auth`, `too_slow`, ...).
    pub reason: String,
}

/// Label of `fieldlink_inputs_dropped_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    /// `dispatch`, `intercom` or `video`.
    pub service: &'static str,
}

/// `fieldlink_fix_index_latency_seconds`: a fix's age when it lands in the location index.
///
/// Observed once per fix that became its unit's latest position: the server's clock at that
/// moment minus the fix time the handset stamped (`GpsFix.fix_time_ms`, OwnTracks `tst`). It
/// therefore holds the whole uplink path (handset → broker → ingest → location core) plus the
/// handset's clock offset and any time a fix spent buffered on the handset (a batch sent after a
/// signal loss is old on arrival). Negative ages (a handset clock ahead) count in the first
/// bucket. Buckets: 0.25 ms × 1.5ⁿ, n = 0..27 (up to about 14 s), then `+Inf`.
#[derive(Debug, Clone)]
pub struct FixIndexLatency(pub Histogram);

impl Default for FixIndexLatency {
    fn default() -> Self {
        FixIndexLatency(Histogram::new(exponential_buckets(0.000_25, 1.5, 28)))
    }
}

impl FixIndexLatency {
    /// Records one fix indexed at `now_ms` whose fix time is `fix_ms` (both ms since the epoch).
    pub fn observe(&self, fix_ms: i64, now_ms: i64) {
        self.0
            .observe(now_ms.saturating_sub(fix_ms).max(0) as f64 / 1000.0);
    }
}

/// Metrics of the server crate.
#[derive(Debug, Clone, Default)]
pub struct ServerMetrics {
    /// API calls refused for a missing, unknown or wrong token.
    pub auth_refused: Counter,
    /// Fixes by what became of them in the location core.
    pub fixes: Family<OutcomeLabel, Counter>,
    /// Age of each fix when it landed in the location index (fix time → indexed).
    pub fix_index_latency: FixIndexLatency,
    /// Units whose presence is online.
    pub units_online: Gauge,
    /// Track-history rows written to the store.
    pub track_rows_written: Counter,
    /// Failed writes of positions or history (retried on the next flush).
    pub store_write_errors: Counter,
    /// Track-history rows deleted by retention.
    pub track_rows_pruned: Counter,
    /// Units entering or leaving a geofence or grid.
    pub zone_events: Family<ZoneEventLabel, Counter>,
    /// WebSocket connections open now (copied from the hub's counters at each scrape).
    pub ws_connections: Gauge,
    /// WebSocket sessions authenticated.
    pub ws_sessions: Counter,
    /// WebSocket upgrades refused, by reason.
    pub ws_refused: Family<ReasonLabel, Counter>,
    /// WebSocket sessions the server closed, by reason.
    pub ws_closed: Family<ReasonLabel, Counter>,
    /// Journal events written to WebSocket clients.
    pub ws_events_sent: Counter,
    /// Position batches written to WebSocket clients.
    pub ws_position_batches: Counter,
    /// Malformed WebSocket messages received.
    pub ws_malformed: Counter,
    /// Orders and order updates queued to a handset's WebSocket (besides MQTT).
    pub ws_orders_delivered: Counter,
    /// Handset inputs dropped because a service's queue was full.
    pub inputs_dropped: Family<ServiceLabel, Counter>,
    /// Commands whose store commit failed (the core was put back; nothing was sent).
    pub commit_errors: Family<ServiceLabel, Counter>,
}

impl ServerMetrics {
    /// Counts a failed commit of `service` (dispatch, intercom, video).
    pub fn commit_failed(&self, service: &'static str) {
        self.commit_errors
            .get_or_create(&ServiceLabel { service })
            .inc();
    }

    /// The dropped-inputs counter of `service`.
    pub fn dropped(&self, service: &'static str) -> Counter {
        self.inputs_dropped
            .get_or_create(&ServiceLabel { service })
            .clone()
    }
}

impl ServerMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ServerMetrics::default();
        registry.register(
            "fieldlink_http_auth_refused",
            "API calls refused for a missing, unknown, revoked or wrong token",
            m.auth_refused.clone(),
        );
        registry.register(
            "fieldlink_fixes",
            "Position fixes by outcome: accepted, out_of_order, or the filter that rejected them",
            m.fixes.clone(),
        );
        registry.register(
            "fieldlink_fix_index_latency_seconds",
            "Age of a fix when it became its unit's latest position in the location index: server clock minus the handset's fix time",
            m.fix_index_latency.0.clone(),
        );
        registry.register(
            "fieldlink_units_online",
            "Units whose presence is online",
            m.units_online.clone(),
        );
        registry.register(
            "fieldlink_track_rows_written",
            "Track-history rows written to the store",
            m.track_rows_written.clone(),
        );
        registry.register(
            "fieldlink_store_write_errors",
            "Failed writes of positions or history to the store (kept and retried)",
            m.store_write_errors.clone(),
        );
        registry.register(
            "fieldlink_track_rows_pruned",
            "Track-history rows deleted because they were older than location.track_retention",
            m.track_rows_pruned.clone(),
        );
        registry.register(
            "fieldlink_zone_events",
            "Units entering (kind=enter) or leaving (kind=exit) a geofence or grid",
            m.zone_events.clone(),
        );
        registry.register(
            "fieldlink_ws_connections",
            "WebSocket connections open now",
            m.ws_connections.clone(),
        );
        registry.register(
            "fieldlink_ws_sessions",
            "WebSocket sessions authenticated",
            m.ws_sessions.clone(),
        );
        registry.register(
            "fieldlink_ws_refused",
            "WebSocket upgrades refused, by reason: origin, capacity, auth, role",
            m.ws_refused.clone(),
        );
        registry.register(
            "fieldlink_ws_closed",
            "WebSocket sessions closed by the server, by reason (too_slow, idle, too_big, ...)",
            m.ws_closed.clone(),
        );
        registry.register(
            "fieldlink_ws_events_sent",
            "Journal events written to WebSocket clients",
            m.ws_events_sent.clone(),
        );
        registry.register(
            "fieldlink_ws_position_batches",
            "Position batches written to WebSocket clients",
            m.ws_position_batches.clone(),
        );
        registry.register(
            "fieldlink_ws_malformed",
            "Malformed WebSocket messages received",
            m.ws_malformed.clone(),
        );
        registry.register(
            "fieldlink_commit_errors",
            "Dispatch, intercom and video commands whose store commit failed: the core was put back and nothing was sent",
            m.commit_errors.clone(),
        );
        registry.register(
            "fieldlink_inputs_dropped",
            "Handset inputs (receipts, fixes, floor requests, video metadata) dropped because a service's queue was full",
            m.inputs_dropped.clone(),
        );
        registry.register(
            "fieldlink_ws_orders_delivered",
            "Orders and order updates queued to a handset's WebSocket (MQTT carries them too)",
            m.ws_orders_delivered.clone(),
        );
        m
    }
}

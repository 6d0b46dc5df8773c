//! The state every HTTP handler and background task shares.
//!
//! Owns nothing itself: the store is the system of record, the tracker and credentials are caches
//! rebuilt from it at start. The tracker sits behind a std `Mutex` (as mini-redis's `Db` does):
//! every critical section is a few hash-map and index operations with no `.await` inside, so an
//! async lock would only add cost.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use fieldlink_clock::SharedClock;
use fieldlink_ingest::Downlink;
use fieldlink_location::Tracker;
use fieldlink_store::Store;
use prometheus_client::registry::Registry;

use crate::credentials::Credentials;
use crate::dispatch::DispatchService;
use crate::health::CommitHealth;
use crate::metrics::ServerMetrics;
use crate::zones::ZoneBook;

/// Shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// The system of record.
    pub store: Store,
    /// Units and API tokens.
    pub credentials: Credentials,
    /// Latest positions and presence, and the geofences and grids (the core keeps the areas
    /// and which of them each unit is in).
    pub tracker: Mutex<Tracker>,
    /// Members and origin of each geofence and grid. Lock after the tracker, never before.
    pub zones: Mutex<ZoneBook>,
    /// Every metric, for `/metrics`.
    pub registry: Registry,
    /// The server's own metric handles.
    pub metrics: ServerMetrics,
    /// The clock all decisions use.
    pub clock: SharedClock,
    /// Publishes to handsets; also tells whether the broker side is connected.
    pub downlink: Downlink,
    /// Incidents, work orders and alarms (the dispatch core and its input queue).
    pub dispatch: DispatchService,
    /// The WebSocket hub: the command room's live picture, orders to handsets.
    pub push: Arc<fieldlink_push::Hub>,
    /// Talkgroups and floor control (the intercom core and its input queue).
    pub intercom: crate::intercom::IntercomService,
    /// Held from a commit that writes journal events until the hub has them: dispatch and the
    /// intercom commit independently, and the hub must see the events in sequence order. Lock
    /// order: a core (dispatch, then intercom), then this; never the reverse.
    pub journal_order: tokio::sync::Mutex<()>,
    /// Live streams, fixed cameras and video requests (the registry and its input queue).
    pub video: crate::video::VideoService,
    /// Whether each service's commits go through (for `/readyz` and the log).
    pub health: CommitHealth,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("downlink", &self.downlink)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    /// The parts.
    pub fn inner(&self) -> &Inner {
        &self.0
    }

    /// A handle that does not keep the state alive (for the parts the state itself owns).
    pub fn downgrade(&self) -> Weak<Inner> {
        Arc::downgrade(&self.0)
    }

    /// The state behind a [`downgrade`](Self::downgrade)d handle, while it lives.
    pub fn upgrade(weak: &Weak<Inner>) -> Option<AppState> {
        weak.upgrade().map(AppState)
    }

    /// A commit of `service` failed (nothing changed): counted in
    /// `fieldlink_commit_errors_total`, logged (rate-limited) and reported by `/readyz`.
    pub fn commit_failed(&self, service: &'static str, error: &dyn std::fmt::Display) {
        self.metrics.commit_failed(service);
        self.health.failed(service, error);
    }

    /// A commit of `service` went through.
    pub fn commit_succeeded(&self, service: &'static str) {
        self.health.succeeded(service);
    }

    /// Locks the zone book (briefly; after the tracker when both are needed).
    pub fn zone_book(&self) -> MutexGuard<'_, ZoneBook> {
        self.0.zones.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the tracker (briefly: never hold it across an `.await`).
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.0.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

//! Counters of the hub, exposed by the server as metrics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::close::CloseReason;

/// A copy of the hub's counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushStats {
    /// WebSocket connections open now (including those still authenticating).
    pub connections: u64,
    /// Sessions authenticated since start.
    pub sessions_total: u64,
    /// Upgrades refused: Origin not allowed.
    pub refused_origin: u64,
    /// Upgrades refused: connection cap or shutting down.
    pub refused_capacity: u64,
    /// Upgrades or `auth` messages refused: bad credential.
    pub refused_auth: u64,
    /// Upgrades refused: principal not allowed on this endpoint.
    pub refused_role: u64,
    /// Sessions closed, by reason label ([`CloseReason::label`]).
    pub closed: BTreeMap<String, u64>,
    /// Journal events written to clients.
    pub events_sent: u64,
    /// `positions` batches written to clients.
    pub batches_sent: u64,
    /// All messages written to clients.
    pub messages_sent: u64,
    /// Malformed messages received.
    pub malformed: u64,
    /// Live events dropped because their seq was not after the last one delivered.
    pub duplicates_dropped: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sessions_total: AtomicU64,
    pub refused_origin: AtomicU64,
    pub refused_capacity: AtomicU64,
    pub refused_auth: AtomicU64,
    pub refused_role: AtomicU64,
    pub closed: [AtomicU64; CloseReason::ALL.len()],
    pub events_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub messages_sent: AtomicU64,
    pub malformed: AtomicU64,
    pub duplicates_dropped: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn closed(&self, reason: CloseReason) {
        bump(&self.closed[reason.index()]);
    }

    pub fn snapshot(&self, connections: u64) -> PushStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PushStats {
            connections,
            sessions_total: get(&self.sessions_total),
            refused_origin: get(&self.refused_origin),
            refused_capacity: get(&self.refused_capacity),
            refused_auth: get(&self.refused_auth),
            refused_role: get(&self.refused_role),
            closed: CloseReason::ALL
                .iter()
                .map(|r| (r.label().to_owned(), get(&self.closed[r.index()])))
                .collect(),
            events_sent: get(&self.events_sent),
            batches_sent: get(&self.batches_sent),
            messages_sent: get(&self.messages_sent),
            malformed: get(&self.malformed),
            duplicates_dropped: get(&self.duplicates_dropped),
        }
    }
}

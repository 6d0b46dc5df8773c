//! The hub: the registry of sessions and the fan-out of journal events, positions and orders.
//!
//! Fan-out never awaits a socket: each session has a bounded queue (events, results, orders) and
//! a coalescing map (positions) that its own writer task drains. A session whose queue is full
//! is closed with 4008 and resumes by sequence, so a stalled client costs the others nothing and
//! no journal event is ever silently dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use fieldlink_clock::Clock;
use serde_json::Value;

use crate::backend::{Backend, JournalEvent};
use crate::close::CloseReason;
use crate::config::PushConfig;
use crate::principal::Tickets;
use crate::protocol::{PositionUpdate, ServerMessage};
use crate::session::{Offer, SessionShared};
use crate::stats::{Counters, PushStats};

/// The WebSocket hub. Cheap to share: `Hub::new` returns an `Arc`.
pub struct Hub {
    pub(crate) config: PushConfig,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) clock: Arc<dyn Clock>,
    tickets: Tickets,
    /// Command-room sessions by id.
    sessions: RwLock<HashMap<u64, Arc<SessionShared>>>,
    /// Handset sessions by unit: one per unit, the newest wins.
    handsets: RwLock<HashMap<String, Arc<SessionShared>>>,
    next_id: AtomicU64,
    connections: AtomicUsize,
    shutting_down: AtomicBool,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.config)
            .field("connections", &self.connections.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every update is a single insert/remove.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A hub over `backend`, with its time from `clock` (tickets).
    pub fn new(config: PushConfig, backend: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Arc<Hub> {
        let tickets = Tickets::new(Duration::from_millis(config.ticket_ttl_ms));
        Arc::new(Hub {
            config,
            backend,
            clock,
            tickets,
            sessions: RwLock::new(HashMap::new()),
            handsets: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            counters: Counters::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &PushConfig {
        &self.config
    }

    /// The tickets of this hub (the server's `POST /api/v1/ws-ticket` issues them).
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// A journal event, already committed to the store: to every command-room session subscribed
    /// to its channel whose filter matches. Call in seq order; an event whose seq is not after
    /// the last one a session got is dropped for that session as a duplicate. Never waits.
    pub fn journal(&self, event: JournalEvent) {
        let event = Arc::new(event);
        for session in read(&self.sessions).values() {
            match session.offer_event(&event) {
                Offer::Queued | Offer::NotWanted => {}
                Offer::Duplicate => crate::stats::bump(&self.counters.duplicates_dropped),
                Offer::Overflow => {
                    session.request_close(CloseReason::TooSlow, &self.counters);
                }
            }
        }
    }

    /// A unit's latest position: coalesced per session and unit (latest wins) and sent in one
    /// `positions` batch per tick. Never waits.
    pub fn position(&self, update: PositionUpdate) {
        for session in read(&self.sessions).values() {
            session.offer_position(&update);
        }
    }

    /// Queues an `order` message to the handset of `unit`: true when a handset session for it is
    /// open and the message was queued. MQTT stays the path of record; this is the fast path.
    pub fn to_handset(&self, unit: &str, order: Value) -> bool {
        let Some(session) = read(&self.handsets).get(unit).cloned() else {
            return false;
        };
        match session.try_queue(ServerMessage::Order { data: order }) {
            Offer::Queued => true,
            Offer::Overflow => {
                session.request_close(CloseReason::TooSlow, &self.counters);
                false
            }
            Offer::NotWanted | Offer::Duplicate => false,
        }
    }

    /// The counters, for metrics.
    pub fn stats(&self) -> PushStats {
        self.counters
            .snapshot(self.connections.load(Ordering::Relaxed) as u64)
    }

    /// Closes every session with 1001 and refuses new ones.
    pub fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        for session in read(&self.sessions).values() {
            session.request_close(CloseReason::Shutdown, &self.counters);
        }
        for session in read(&self.handsets).values() {
            session.request_close(CloseReason::Shutdown, &self.counters);
        }
    }

    /// True once [`Hub::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Handset sessions open now, by unit.
    pub fn handsets_connected(&self) -> Vec<String> {
        let mut units: Vec<String> = read(&self.handsets).keys().cloned().collect();
        units.sort();
        units
    }

    /// The principal of a ticket (64 hex digits, redeemed once) or else of a bearer token.
    pub(crate) async fn authenticate(&self, token: &str) -> Option<crate::principal::Principal> {
        if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Some(principal) = self.tickets.redeem(token, self.clock.now()) {
                return Some(principal);
            }
        }
        self.backend.authenticate_token(token).await
    }

    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes a connection slot, or `None` when the cap is reached.
    pub(crate) fn reserve_slot(self: &Arc<Self>) -> Option<Slot> {
        let before = self.connections.fetch_add(1, Ordering::SeqCst);
        if before >= self.config.max_connections {
            self.connections.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot { hub: self.clone() })
    }

    pub(crate) fn register(&self, session: &Arc<SessionShared>) {
        crate::stats::bump(&self.counters.sessions_total);
        match session.principal.role.unit() {
            Some(unit) if session.is_handset() => {
                let old = write(&self.handsets).insert(unit.to_owned(), session.clone());
                if let Some(old) = old {
                    old.request_close(CloseReason::Replaced, &self.counters);
                }
            }
            _ => {
                write(&self.sessions).insert(session.id, session.clone());
            }
        }
    }

    pub(crate) fn unregister(&self, session: &SessionShared) {
        write(&self.sessions).remove(&session.id);
        if let Some(unit) = session.principal.role.unit() {
            let mut handsets = write(&self.handsets);
            if handsets.get(unit).is_some_and(|s| s.id == session.id) {
                handsets.remove(unit);
            }
        }
    }
}

/// A taken connection slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    hub: Arc<Hub>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

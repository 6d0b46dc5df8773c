//! The hub: the registry of sessions and the fan-out of journal events, positions and orders.
//!
//! Fan-out never awaits a socket: each session has a bounded queue (events, results, orders) and
//! a slot for the shared positions batch that its own writer task drains. Positions cost O(1)
//! per fix: [`Hub::position`] writes into one hub-level map (latest per unit) and a ticker task
//! turns it, once per tick, into one batch serialised once per coordinate system in use, which
//! every positions-subscribed session shares. A session whose queue is full
//! is closed with 4008 and resumes by sequence, so a stalled client costs the others nothing and
//! no journal event is ever silently dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use fieldlink_clock::Clock;
use serde_json::Value;

use crate::backend::{Backend, JournalEvent};
use crate::close::CloseReason;
use crate::config::PushConfig;
use crate::filter::Coords;
use crate::positions::PositionBatch;
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
    /// Positions since the last tick, latest per unit (WGS-84).
    positions: Mutex<HashMap<String, PositionUpdate>>,
    /// Whether the positions ticker task was spawned.
    ticker_started: AtomicBool,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The positions ticker: one [`Hub::position_tick`] per `period`, until the hub is dropped or
/// shut down.
async fn position_ticker(hub: Weak<Hub>, period: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        if hub.is_shutting_down() {
            return;
        }
        hub.position_tick();
    }
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// A hub over `backend`, with its time from `clock` (tickets).
    pub fn new(config: PushConfig, backend: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Arc<Hub> {
        let tickets = Tickets::new(Duration::from_millis(config.ticket_ttl_ms));
        let hub = Arc::new(Hub {
            config,
            backend,
            clock,
            tickets,
            sessions: RwLock::new(HashMap::new()),
            handsets: RwLock::new(HashMap::new()),
            positions: Mutex::new(HashMap::new()),
            ticker_started: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            counters: Counters::default(),
        });
        hub.ensure_ticker();
        hub
    }

    /// Spawns the positions ticker unless it runs already (or, outside a tokio runtime, leaves
    /// it to the first session). It holds only a `Weak<Hub>`: it stops when the hub is dropped
    /// or shut down.
    pub(crate) fn ensure_ticker(self: &Arc<Self>) {
        if self.ticker_started.swap(true, Ordering::SeqCst) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(position_ticker(
                    Arc::downgrade(self),
                    self.config.position_tick(),
                ));
            }
            Err(_) => self.ticker_started.store(false, Ordering::SeqCst),
        }
    }

    /// One tick: the coalesced positions become one shared batch, serialised once per
    /// coordinate system in use, offered to every session that wants positions.
    fn position_tick(&self) {
        let updates = {
            let mut map = lock(&self.positions);
            if map.is_empty() {
                return;
            }
            let capacity = map.len();
            std::mem::replace(&mut *map, HashMap::with_capacity(capacity))
        };
        let mut coords_in_use: Vec<Coords> = Vec::with_capacity(2);
        let sessions: Vec<Arc<SessionShared>> = read(&self.sessions)
            .values()
            .filter(|s| match s.wants_positions() {
                Some(coords) => {
                    if !coords_in_use.contains(&coords) {
                        coords_in_use.push(coords);
                    }
                    true
                }
                None => false,
            })
            .cloned()
            .collect();
        if sessions.is_empty() {
            return;
        }
        let at_ms = self.clock.now().as_millis();
        let batch = Arc::new(PositionBatch::new(
            at_ms,
            updates.into_values(),
            &coords_in_use,
        ));
        for session in &sessions {
            session.offer_positions(&batch);
        }
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

    /// A unit's latest position: coalesced per unit (latest wins) in one hub-level map and sent,
    /// once per tick, in one shared `positions` batch to every session whose filter wants it.
    /// O(1) whatever the number of sessions; never waits.
    pub fn position(&self, update: PositionUpdate) {
        let mut map = lock(&self.positions);
        if let Some(slot) = map.get_mut(&update.unit) {
            *slot = update;
        } else {
            map.insert(update.unit.clone(), update);
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
        if token.len() == 64
            && token.bytes().all(|b| b.is_ascii_hexdigit())
            && let Some(principal) = self.tickets.redeem(token, self.clock.now())
        {
            return Some(principal);
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

//! One WebSocket session: its shared state (subscription, queue, pending positions), its
//! reader (the task that ran the upgrade) and its writer (a task of its own).
//!
//! The writer is the only one that touches the socket's sending half, so a stalled client blocks
//! nothing but its own writer. Everything else reaches it through the bounded queue, the
//! pending-positions slot (with its wake-up) or the close signal.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::debug;

use crate::backend::JournalEvent;
use crate::close::CloseReason;
use crate::filter::{Channel, Coords, Filter};
use crate::hub::{Hub, Slot};
use crate::positions::{Pending, PositionBatch};
use crate::principal::Principal;
use crate::protocol::{ClientMessage, EventMessage, Limits, ServerMessage};
use crate::stats::{Counters, bump};
use crate::upgrade::Endpoint;
use crate::wire::{Protocol, decode_client};

mod reader;
mod writer;

use reader::Reader;
use writer::write_loop;

/// What the writer sends, in queue order.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A journal event, shared between sessions, converted to `Coords` when written.
    Event(Arc<JournalEvent>, Coords),
    /// Any other message (boxed: a queue slot stays the size of an event's; these are the rare
    /// ones: hello, results, errors, orders).
    Message(Box<ServerMessage>),
}

/// The outcome of offering something to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Queued,
    NotWanted,
    Duplicate,
    Overflow,
}

/// Where a session stands in its subscription.
#[derive(Debug)]
enum Mode {
    /// Nothing subscribed yet.
    Idle,
    /// A snapshot or replay is being read: live events wait here, in arrival order.
    Buffering(Vec<Arc<JournalEvent>>),
    /// Live: events after `last_seq` go straight to the queue.
    Live { last_seq: i64 },
}

#[derive(Debug)]
struct Subscription {
    channels: BTreeSet<Channel>,
    filter: Filter,
    mode: Mode,
}

/// The part of a session the hub reaches.
#[derive(Debug)]
pub(crate) struct SessionShared {
    pub id: u64,
    pub principal: Principal,
    endpoint: Endpoint,
    sub: Mutex<Subscription>,
    tx: mpsc::Sender<Outbound>,
    /// Positions not written yet: the newest shared batch (plus the per-unit latest of older
    /// ones when the writer fell behind).
    positions: Mutex<Pending>,
    /// Wakes the writer when a batch is offered.
    positions_ready: Notify,
    close: watch::Sender<Option<CloseReason>>,
    /// Most live events held while a snapshot or replay is read.
    buffer_cap: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent; a panic elsewhere must not wedge the hub.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionShared {
    pub fn is_handset(&self) -> bool {
        self.endpoint == Endpoint::Handset
    }

    /// Asks the session to close; the first reason wins and is counted. Returns true if it was
    /// the first.
    pub fn request_close(&self, reason: CloseReason, counters: &Counters) -> bool {
        let first = self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
        if first {
            counters.closed(reason);
        }
        first
    }

    fn closing(&self) -> bool {
        self.close.borrow().is_some()
    }

    pub fn offer_event(&self, event: &Arc<JournalEvent>) -> Offer {
        let mut sub = lock(&self.sub);
        if !sub.channels.contains(&event.channel)
            || !sub
                .filter
                .matches(event.unit.as_deref(), event.lat_lon, event.grid.as_deref())
        {
            return Offer::NotWanted;
        }
        let coords = sub.filter.coords;
        match &mut sub.mode {
            Mode::Idle => Offer::NotWanted,
            Mode::Buffering(buffer) => {
                if buffer.len() >= self.buffer_cap {
                    Offer::Overflow
                } else {
                    buffer.push(event.clone());
                    Offer::Queued
                }
            }
            Mode::Live { last_seq } => {
                if event.seq <= *last_seq {
                    return Offer::Duplicate;
                }
                match self.tx.try_send(Outbound::Event(event.clone(), coords)) {
                    Ok(()) => {
                        *last_seq = event.seq;
                        Offer::Queued
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => Offer::Overflow,
                    Err(mpsc::error::TrySendError::Closed(_)) => Offer::NotWanted,
                }
            }
        }
    }

    /// The coordinate system of this session's positions, when it wants them now.
    pub fn wants_positions(&self) -> Option<Coords> {
        let sub = lock(&self.sub);
        (sub.channels.contains(&Channel::Positions) && !matches!(sub.mode, Mode::Idle))
            .then_some(sub.filter.coords)
    }

    /// Offers the tick's shared batch: it replaces the pending one (whose units, filtered, are
    /// kept per unit should the writer not have taken it yet), and the writer is woken.
    pub fn offer_positions(&self, batch: &Arc<PositionBatch>) {
        {
            let sub = lock(&self.sub);
            if !sub.channels.contains(&Channel::Positions) || matches!(sub.mode, Mode::Idle) {
                return;
            }
            lock(&self.positions).offer(Arc::clone(batch), &sub.filter);
        }
        self.positions_ready.notify_one();
    }

    pub fn try_queue(&self, msg: ServerMessage) -> Offer {
        match self.tx.try_send(Outbound::Message(Box::new(msg))) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Overflow,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::NotWanted,
        }
    }

    /// Queues from the reader, waiting for room (the client's own messages slow only itself).
    async fn queue(&self, item: Outbound) -> bool {
        self.tx.send(item).await.is_ok()
    }

    /// The `positions` frame of what is pending, selected by the session's filter. While a
    /// snapshot or replay is being sent, positions wait (coalesced) so that they follow it; the
    /// reader wakes the writer again when the session goes live.
    fn take_positions(&self, protocol: Protocol, max_bytes: usize) -> Vec<Message> {
        let filter = {
            let sub = lock(&self.sub);
            if matches!(sub.mode, Mode::Buffering(_)) {
                return Vec::new();
            }
            sub.filter.clone()
        };
        let pending = lock(&self.positions).take();
        pending.frames(&filter, protocol, max_bytes)
    }
}

/// A journal event as a message, in `coords`.
pub(crate) fn event_message(event: &JournalEvent, coords: Coords) -> ServerMessage {
    let (lat, lon) = match event.lat_lon {
        Some((lat, lon)) => {
            let (lat, lon) = coords.convert(lat, lon);
            (Some(lat), Some(lon))
        }
        None => (None, None),
    };
    ServerMessage::Event(EventMessage {
        seq: event.seq,
        channel: event.channel,
        kind: event.kind.clone(),
        subject: event.subject.clone(),
        actor: event.actor.clone(),
        at: fieldlink_clock::Timestamp::from_millis(event.at_ms),
        at_ms: event.at_ms,
        unit: event.unit.clone(),
        lat,
        lon,
        grid: event.grid.clone(),
        data: event.data.clone(),
    })
}

fn close_frame(reason: CloseReason, written_seq: Option<i64>) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: reason.text(written_seq).into(),
    }))
}

/// Whether the principal may use the endpoint, and why not.
pub(crate) fn admits(endpoint: Endpoint, principal: &Principal) -> Result<(), &'static str> {
    match (endpoint, principal.role.unit()) {
        (Endpoint::CommandRoom, None) | (Endpoint::Handset, Some(_)) => Ok(()),
        (Endpoint::CommandRoom, Some(_)) => Err("handsets use /ws/handset"),
        (Endpoint::Handset, None) => Err("only handsets (responders) may use /ws/handset"),
    }
}

/// Runs a session over an upgraded socket until it ends. `principal` is `None` when the upgrade
/// carried no credential: the first message must then be `auth`.
pub(crate) async fn run<S>(
    hub: Arc<Hub>,
    endpoint: Endpoint,
    principal: Option<Principal>,
    protocol: Protocol,
    ws: S,
    slot: Slot,
) where
    S: Stream<Item = Result<Message, tungstenite::Error>>
        + Sink<Message, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let principal = match principal {
        Some(p) => p,
        None => match first_message_auth(&hub, endpoint, &mut stream).await {
            Ok(p) => p,
            Err(reason) => {
                hub.counters.closed(reason);
                close_early(&hub, &mut sink, &mut stream, reason).await;
                drop(slot);
                return;
            }
        },
    };
    if hub.is_shutting_down() {
        hub.counters.closed(CloseReason::Shutdown);
        close_early(&hub, &mut sink, &mut stream, CloseReason::Shutdown).await;
        return;
    }

    let config = &hub.config;
    let (tx, rx) = mpsc::channel(config.outbound_queue.max(1));
    let (close, mut close_rx) = watch::channel(None);
    let shared = Arc::new(SessionShared {
        id: hub.next_session_id(),
        principal,
        endpoint,
        sub: Mutex::new(Subscription {
            channels: BTreeSet::new(),
            filter: Filter::default(),
            mode: Mode::Idle,
        }),
        tx,
        positions: Mutex::new(Pending::default()),
        positions_ready: Notify::new(),
        close,
        buffer_cap: config.outbound_queue.max(1) + config.resume_limit as usize,
    });
    hub.ensure_ticker();
    hub.register(&shared);
    debug!(session = shared.id, name = %shared.principal.name, "push session opened");
    let writer = tokio::spawn(write_loop(hub.clone(), shared.clone(), sink, rx, protocol));

    let mut reader = Reader {
        hub: &hub,
        shared: &shared,
        malformed_in_a_row: 0,
    };
    let hello = ServerMessage::Hello {
        session: shared.id.to_string(),
        name: shared.principal.name.clone(),
        role: shared.principal.role.name().to_owned(),
        unit: shared.principal.role.unit().map(str::to_owned),
        protocol: protocol.name().to_owned(),
        limits: limits(config),
    };
    let mut ok = shared.queue(Outbound::Message(Box::new(hello))).await;
    let handset_unit = shared.principal.role.unit().filter(|_| shared.is_handset());
    if let (true, Some(unit)) = (ok, handset_unit) {
        for order in hub.backend.open_orders_for(unit).await {
            if !shared
                .queue(Outbound::Message(Box::new(ServerMessage::Order {
                    data: order,
                })))
                .await
            {
                ok = false;
                break;
            }
        }
    }
    if ok && !shared.closing() {
        reader.run(&mut stream, &mut close_rx).await;
    }

    hub.unregister(&shared);
    shared.request_close(CloseReason::Client, &hub.counters);
    let _ = writer.await;
    drain_until_close(&hub, &mut stream).await;
    debug!(session = shared.id, "push session closed");
    drop(slot);
}

/// The closing handshake's second half: reads until the client's close reply (or EOF), within
/// `close_grace_ms`, before the socket is dropped. Dropping it with unread bytes (say, pongs)
/// would reset the connection, and the client could lose what is still in its buffer, the close
/// frame included.
async fn drain_until_close<R>(hub: &Hub, stream: &mut R)
where
    R: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let _ = timeout(hub.config.close_grace(), async {
        while let Some(Ok(frame)) = stream.next().await {
            if frame.is_close() {
                break;
            }
        }
    })
    .await;
}

/// Closes a session that never started (failed `auth`, shutting down).
async fn close_early<W, R>(hub: &Hub, sink: &mut W, stream: &mut R, reason: CloseReason)
where
    W: Sink<Message, Error = tungstenite::Error> + Unpin,
    R: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let sent = timeout(
        hub.config.close_grace(),
        sink.send(close_frame(reason, None)),
    )
    .await;
    if matches!(sent, Ok(Ok(()))) {
        drain_until_close(hub, stream).await;
    }
}

fn limits(config: &crate::config::PushConfig) -> Limits {
    Limits {
        max_message_bytes: config.max_message_bytes as u64,
        max_frame_bytes: config.max_frame_bytes as u64,
        outbound_queue: config.outbound_queue as u64,
        position_tick_ms: config.position_tick_ms,
        resume_limit: u64::from(config.resume_limit),
        ping_interval_ms: config.ping_interval_ms,
        idle_timeout_ms: config.idle_timeout_ms,
    }
}

/// Waits for the `auth` message of a connection that came without a credential.
async fn first_message_auth<S>(
    hub: &Hub,
    endpoint: Endpoint,
    stream: &mut S,
) -> Result<Principal, CloseReason>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let deadline = Instant::now() + hub.config.auth_timeout();
    loop {
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(CloseReason::AuthRequired),
            Ok(None) => return Err(CloseReason::Client),
            Ok(Some(Err(tungstenite::Error::Capacity(_)))) => return Err(CloseReason::TooBig),
            Ok(Some(Err(_))) => return Err(CloseReason::ProtocolError),
            Ok(Some(Ok(frame))) => frame,
        };
        let decoded = match &frame {
            Message::Text(t) => decode_client(t.as_bytes(), false),
            Message::Binary(b) => decode_client(b, true),
            Message::Close(_) => return Err(CloseReason::Client),
            _ => continue,
        };
        let Ok(ClientMessage::Auth { token }) = decoded else {
            bump(&hub.counters.refused_auth);
            return Err(CloseReason::AuthRequired);
        };
        let Some(principal) = hub.authenticate(&token).await else {
            bump(&hub.counters.refused_auth);
            return Err(CloseReason::AuthRequired);
        };
        if admits(endpoint, &principal).is_err() {
            bump(&hub.counters.refused_role);
            return Err(CloseReason::Forbidden);
        }
        return Ok(principal);
    }
}

//! What the hub needs from the rest of fieldlink, implemented by the server.
//!
//! The hub knows nothing of dispatch or the store: it asks the [`Backend`] to authenticate, to
//! build snapshots, to read the journal and to execute commands. Methods return boxed futures so
//! that the server can hand the hub an `Arc<dyn Backend>`.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::filter::{Channel, Filter};
use crate::principal::Principal;

/// A boxed, sendable future, as [`Backend`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The state of some channels, consistent with the journal up to `seq` inclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The journal sequence the snapshot includes; live events after it follow.
    pub seq: i64,
    /// The items, free-form (the backend decides the shape; the hub passes it through).
    pub items: Value,
}

/// One journal event, as the store wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// Strictly increasing journal sequence.
    pub seq: i64,
    /// When it happened, ms since the epoch.
    pub at_ms: i64,
    /// The channel it belongs to.
    pub channel: Channel,
    /// What happened (`incident_created`, `order_accepted`, ...).
    pub kind: String,
    /// What it happened to (an incident or order id, a unit).
    pub subject: String,
    /// Who did it (a user, a unit, `system`).
    pub actor: String,
    /// The unit concerned, for the unit filter.
    pub unit: Option<String>,
    /// `(lat, lon)` in WGS-84, for the bbox filter.
    pub lat_lon: Option<(f64, f64)>,
    /// The grid concerned, for the grid filter.
    pub grid: Option<String>,
    /// The details.
    pub data: Value,
}

/// Why a backend read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// The journal no longer holds the events after the requested sequence (retention).
    Gap {
        /// The oldest sequence still held.
        oldest: i64,
    },
    /// Anything else (store down, ...): the client is told `unavailable` and may retry.
    Unavailable(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Gap { oldest } => write!(f, "journal starts at seq {oldest}"),
            BackendError::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// A command from the command room (`command {id, op, args}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The client's request id: a retry with the same id must be harmless (the backend makes it
    /// idempotent).
    pub id: String,
    /// `create_incident`, `dispatch`, `recommend`, `reinforce`, `cancel`, `close`,
    /// `request_video`, ...: the backend decides which exist.
    pub op: String,
    /// The operation's arguments.
    pub args: Value,
}

/// A command's or a handset input's refusal, sent as `error {id, code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// Machine-readable (`not_found`, `conflict`, `invalid`, ...).
    pub code: String,
    /// For a human.
    pub message: String,
}

impl CommandError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// What a handset sends on `/ws/handset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HandsetMessage {
    /// A work-order receipt (`order_id`, `state`: delivered, accepted, rejected, en_route,
    /// on_scene, resolved, ...), all fields as sent.
    Receipt(serde_json::Map<String, Value>),
    /// A status report (duty, battery, ...), all fields as sent.
    Status(serde_json::Map<String, Value>),
}

/// The rest of fieldlink, seen from the hub.
pub trait Backend: Send + Sync + 'static {
    /// The principal of a bearer token (a command-room token, or a handset's unit credential):
    /// `None` when it is not valid. Tickets are handled by the hub before this is asked.
    fn authenticate_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Principal>>;

    /// The current state of `channels` as `principal` may see it, narrowed by `filter` and in
    /// `filter.coords`, with the journal sequence it is consistent with.
    fn snapshot<'a>(
        &'a self,
        principal: &'a Principal,
        channels: &'a [Channel],
        filter: &'a Filter,
    ) -> BoxFuture<'a, Result<Snapshot, BackendError>>;

    /// Up to `limit` journal events with `seq > after_seq`, in order. `Err(Gap)` when events
    /// after `after_seq` were already dropped by retention, and also when `after_seq` is beyond
    /// the journal's end (a client that saw a journal since reset): the hub then sends
    /// `snapshot_needed` and a snapshot. An empty page means the client is up to date.
    fn journal_since(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<JournalEvent>, BackendError>>;

    /// Executes a command of the command room; `principal` may command (the hub checked).
    fn command<'a>(
        &'a self,
        principal: &'a Principal,
        command: Command,
    ) -> BoxFuture<'a, Result<Value, CommandError>>;

    /// A receipt or status from the handset of `unit`.
    fn handset_input<'a>(
        &'a self,
        unit: &'a str,
        message: HandsetMessage,
    ) -> BoxFuture<'a, Result<Value, CommandError>>;

    /// Every work order still open for `unit`, sent to its handset when it connects.
    fn open_orders_for<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Vec<Value>>;
}

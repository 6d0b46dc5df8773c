//! The messages of the WebSocket protocol, as JSON (`fieldlink.v1.json`). The protobuf form
//! (`fieldlink.v1.proto`, [`crate::wire`]) mirrors them field for field. `README.md` of this crate
//! is the protocol's reference.

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::filter::{Channel, Filter};

/// What a client sends. A text frame is JSON; a binary frame is protobuf (`push.proto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The credential, when the upgrade carried none: a bearer token or a ticket.
    Auth {
        /// The token or ticket.
        token: String,
    },
    /// Replaces the session's subscription: a snapshot (or, with `resume_from`, the missed
    /// journal events) then live events.
    Subscribe {
        /// The channels wanted.
        channels: Vec<Channel>,
        /// What part of them.
        #[serde(default)]
        filter: Filter,
        /// The last journal seq the client holds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_from: Option<i64>,
    },
    /// Stops these channels.
    Unsubscribe {
        /// The channels to stop.
        channels: Vec<Channel>,
    },
    /// A command of the command room.
    Command {
        /// Request id, echoed in the `result` or `error`.
        id: String,
        /// The operation.
        op: String,
        /// Its arguments.
        #[serde(default)]
        args: Value,
    },
    /// A handset's work-order receipt; an `id` field, when present, is echoed in the answer.
    Receipt(serde_json::Map<String, Value>),
    /// A handset's status; an `id` field, when present, is echoed in the answer.
    Status(serde_json::Map<String, Value>),
}

/// The limits a client is told in `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest message the server accepts.
    pub max_message_bytes: u64,
    /// Largest frame the server accepts.
    pub max_frame_bytes: u64,
    /// Queued messages before the client is closed as too slow (4008).
    pub outbound_queue: u64,
    /// Interval of `positions` batches.
    pub position_tick_ms: u64,
    /// Most events replayed on resume.
    pub resume_limit: u64,
    /// Interval of the server's pings.
    pub ping_interval_ms: u64,
    /// Silence after which the server closes (4000).
    pub idle_timeout_ms: u64,
}

/// One journal event as sent to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    /// Journal sequence.
    pub seq: i64,
    /// Channel.
    pub channel: Channel,
    /// What happened.
    pub kind: String,
    /// To what.
    pub subject: String,
    /// By whom.
    pub actor: String,
    /// When: RFC 3339 with milliseconds and `Z`, the protocol's time format.
    pub at: Timestamp,
    /// The same instant in ms since the epoch, an explicit extra for clients that count.
    pub at_ms: i64,
    /// The unit concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Latitude, in the session's coordinate system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude, in the session's coordinate system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// The grid concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    /// Details.
    pub data: Value,
}

/// The latest position of one unit: what the server gives [`crate::Hub::position`], and one
/// element of a `positions` batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionUpdate {
    /// The unit.
    pub unit: String,
    /// Latitude (WGS-84 when given to the hub; the session's system on the wire).
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Time of the fix: RFC 3339 with milliseconds and `Z`.
    pub at: Timestamp,
    /// The same instant in ms since the epoch (explicit extra).
    pub at_ms: i64,
    /// m/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Degrees from north.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
    /// Metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Responder status (available, en_route, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The grid the unit is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message of an authenticated session.
    Hello {
        /// Session id (for logs and support).
        session: String,
        /// The principal's name.
        name: String,
        /// The principal's role.
        role: String,
        /// A responder's unit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        /// `fieldlink.v1.json` or `fieldlink.v1.proto`.
        protocol: String,
        /// The limits in force.
        limits: Limits,
    },
    /// The state of `channels` as of journal `seq`, possibly in several parts: a snapshot larger
    /// than the hub's limit comes as consecutive `snapshot` messages with the same `seq` and
    /// `channels`, each top-level array of `items` split between them (concatenate in `part`
    /// order until `last`).
    Snapshot {
        /// The channels it covers.
        channels: Vec<Channel>,
        /// The journal seq it is consistent with.
        seq: i64,
        /// The backend's items (this part's share of them).
        items: Value,
        /// 1-based number of this part.
        #[serde(default = "first_part")]
        part: u32,
        /// True on the snapshot's last part.
        #[serde(default = "last_part")]
        last: bool,
    },
    /// One journal event.
    Event(EventMessage),
    /// Coalesced positions: the latest of each unit that moved since the last batch.
    Positions {
        /// When the batch was sent: RFC 3339 with milliseconds and `Z`.
        at: Timestamp,
        /// The same instant in ms since the epoch (explicit extra).
        at_ms: i64,
        /// One entry per unit.
        units: Vec<PositionUpdate>,
    },
    /// A command's or handset input's success.
    Result {
        /// The request id.
        id: String,
        /// The backend's answer.
        data: Value,
    },
    /// A refusal or a malformed message.
    Error {
        /// The request id, when the failed message had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Machine-readable.
        code: String,
        /// For a human.
        message: String,
    },
    /// The resume point is older than the journal keeps (or too far back): a snapshot follows.
    SnapshotNeeded {
        /// The `resume_from` asked.
        from: i64,
        /// The oldest seq the journal holds (or could replay).
        oldest: i64,
    },
    /// A work order for a handset.
    Order {
        /// The order as the backend shaped it.
        data: Value,
    },
}

fn first_part() -> u32 {
    1
}

fn last_part() -> bool {
    true
}

impl ServerMessage {
    /// An `error` message.
    pub fn error(id: Option<String>, code: &str, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            id,
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

//! How the dispatch records of `dispatch_model.rs` map to columns: the column lists, the raw rows
//! both backends read, and their checked conversion (JSON text back to a [`Value`]).
//!
//! JSON is stored as TEXT on both backends (the store never queries inside it), so one SQL text
//! serves both and the bytes written are the bytes read.

use fieldlink_clock::Timestamp;
use serde_json::Value;

use crate::{
    AlarmRow, EventRow, IncidentRow, OrderRow, OutboxEntry, OutboxRow, StoreError, TimerRow,
};

/// Columns of `journal`, in [`EventRaw`] order.
macro_rules! event_columns {
    () => {
        "seq, at_ms, kind, subject, actor, data"
    };
}
pub(crate) use event_columns;

/// Columns of `incidents`, in [`IncidentRaw`] order.
macro_rules! incident_columns {
    () => {
        "id, status, grid, open, created_at_ms, updated_at_ms, data"
    };
}
pub(crate) use incident_columns;

/// Columns of `work_orders`, in [`OrderRaw`] order.
macro_rules! order_columns {
    () => {
        "id, incident_id, unit, state, open, created_at_ms, updated_at_ms, data"
    };
}
pub(crate) use order_columns;

/// Columns of `alarms`, in [`AlarmRaw`] order.
macro_rules! alarm_columns {
    () => {
        "id, kind, state, open, created_at_ms, updated_at_ms, data"
    };
}
pub(crate) use alarm_columns;

/// Columns of `outbox`, in [`OutboxRaw`] order.
macro_rules! outbox_columns {
    () => {
        "id, unit, key, payload, created_at_ms, next_attempt_ms, attempts, done_at_ms"
    };
}
pub(crate) use outbox_columns;

/// Columns of `timers`, in [`TimerRaw`] order.
macro_rules! timer_columns {
    () => {
        "id, due_ms, kind, subject, data"
    };
}
pub(crate) use timer_columns;

/// JSON text for a column. Serialising a [`Value`] cannot fail.
pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}

/// Parses a stored JSON column, naming the record when it is not JSON.
pub(crate) fn parse_json(what: &'static str, id: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        id: id.to_owned(),
        detail: format!("data is not JSON: {e}"),
    })
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// A `journal` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRaw {
    seq: i64,
    at_ms: i64,
    kind: String,
    subject: String,
    actor: String,
    data: String,
}

impl TryFrom<EventRaw> for EventRow {
    type Error = StoreError;
    fn try_from(r: EventRaw) -> Result<Self, StoreError> {
        let data = parse_json("journal event", &r.seq.to_string(), &r.data)?;
        Ok(EventRow {
            seq: r.seq,
            at: ts(r.at_ms),
            kind: r.kind,
            subject: r.subject,
            actor: r.actor,
            data,
        })
    }
}

/// An `incidents` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct IncidentRaw {
    id: String,
    status: String,
    grid: Option<String>,
    open: bool,
    created_at_ms: i64,
    updated_at_ms: i64,
    data: String,
}

impl TryFrom<IncidentRaw> for IncidentRow {
    type Error = StoreError;
    fn try_from(r: IncidentRaw) -> Result<Self, StoreError> {
        let data = parse_json("incident", &r.id, &r.data)?;
        Ok(IncidentRow {
            id: r.id,
            status: r.status,
            grid: r.grid,
            open: r.open,
            created_at: ts(r.created_at_ms),
            updated_at: ts(r.updated_at_ms),
            data,
            new: false,
        })
    }
}

/// A `work_orders` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct OrderRaw {
    id: String,
    incident_id: String,
    unit: String,
    state: String,
    open: bool,
    created_at_ms: i64,
    updated_at_ms: i64,
    data: String,
}

impl TryFrom<OrderRaw> for OrderRow {
    type Error = StoreError;
    fn try_from(r: OrderRaw) -> Result<Self, StoreError> {
        let data = parse_json("work order", &r.id, &r.data)?;
        Ok(OrderRow {
            id: r.id,
            incident_id: r.incident_id,
            unit: r.unit,
            state: r.state,
            open: r.open,
            created_at: ts(r.created_at_ms),
            updated_at: ts(r.updated_at_ms),
            data,
            new: false,
        })
    }
}

/// An `alarms` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct AlarmRaw {
    id: String,
    kind: String,
    state: String,
    open: bool,
    created_at_ms: i64,
    updated_at_ms: i64,
    data: String,
}

impl TryFrom<AlarmRaw> for AlarmRow {
    type Error = StoreError;
    fn try_from(r: AlarmRaw) -> Result<Self, StoreError> {
        let data = parse_json("alarm", &r.id, &r.data)?;
        Ok(AlarmRow {
            id: r.id,
            kind: r.kind,
            state: r.state,
            open: r.open,
            created_at: ts(r.created_at_ms),
            updated_at: ts(r.updated_at_ms),
            data,
            new: false,
        })
    }
}

/// An `outbox` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRaw {
    id: String,
    unit: String,
    key: String,
    payload: Vec<u8>,
    created_at_ms: i64,
    next_attempt_ms: i64,
    attempts: i64,
    done_at_ms: Option<i64>,
}

impl From<OutboxRaw> for OutboxRow {
    fn from(r: OutboxRaw) -> Self {
        OutboxRow {
            entry: OutboxEntry {
                id: r.id,
                unit: r.unit,
                key: r.key,
                payload: r.payload,
                created_at: ts(r.created_at_ms),
                next_attempt: ts(r.next_attempt_ms),
            },
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            done_at: r.done_at_ms.map(ts),
        }
    }
}

/// A `timers` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct TimerRaw {
    id: String,
    due_ms: i64,
    kind: String,
    subject: String,
    data: String,
}

impl TryFrom<TimerRaw> for TimerRow {
    type Error = StoreError;
    fn try_from(r: TimerRaw) -> Result<Self, StoreError> {
        let data = parse_json("timer", &r.id, &r.data)?;
        Ok(TimerRow {
            id: r.id,
            due: ts(r.due_ms),
            kind: r.kind,
            subject: r.subject,
            data,
        })
    }
}

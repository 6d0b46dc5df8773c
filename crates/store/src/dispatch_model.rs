//! The dispatch records the store keeps: journal events, snapshots of incidents, work orders and
//! alarms, outbound messages, timers, and the [`ChangeSet`] that writes them together.
//!
//! The store is generic over the dispatch core's types: every record carries the few columns the
//! store must filter or order on (ids, status, unit, times, an `open` flag) and the rest as a
//! serde JSON [`Value`] the core owns. The core decides what is terminal; the store only keeps
//! the flag it is given.

use fieldlink_clock::Timestamp;
use serde_json::Value;

/// Everything one command changed, written by [`crate::Store::commit`] in one transaction.
///
/// Within a commit the parts are applied in field order, except that `timers_cleared` is applied
/// before `timers_set` (so clearing and setting the same id in one commit re-arms it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChangeSet {
    /// When the command was handled: stamps the idempotency record of `request`.
    pub at: Timestamp,
    /// The client's request id and the result to answer it with. When the id was already
    /// committed, nothing is written and the first result is returned instead.
    pub request: Option<(String, Value)>,
    /// Journal events, in order; each gets the next sequence number.
    pub events: Vec<NewEvent>,
    /// Incident snapshots to write.
    pub incidents: Vec<IncidentRow>,
    /// Work-order snapshots to write.
    pub orders: Vec<OrderRow>,
    /// Alarm snapshots to write.
    pub alarms: Vec<AlarmRow>,
    /// New outbound messages. A duplicate id fails the commit.
    pub outbox: Vec<OutboxEntry>,
    /// Outbound messages finished (receipt arrived, or superseded): `(outbox id, when)`.
    /// Unknown or already finished ids are ignored, so a repeated receipt is harmless.
    pub outbox_done: Vec<(String, Timestamp)>,
    /// Timers to arm; an existing id is re-armed (new deadline, lease dropped).
    pub timers_set: Vec<TimerRow>,
    /// Ids of timers to remove (fired or no longer needed); unknown ids are ignored.
    pub timers_cleared: Vec<String>,
    /// Responder records to write (`(unit, record)`), replacing each unit's row.
    pub responders: Vec<(String, Value)>,
    /// Talkgroups to write (`(id, definition)`), replacing each one's row.
    pub talkgroups_saved: Vec<(String, Value)>,
    /// Ids of talkgroups to delete.
    pub talkgroups_removed: Vec<String>,
    /// Finished talk bursts to append to the log.
    pub bursts: Vec<BurstRow>,
    /// Fixed cameras to write (`(id, record)`), replacing each one's row.
    pub cameras_saved: Vec<(String, Value)>,
    /// Ids of fixed cameras to delete.
    pub cameras_removed: Vec<String>,
    /// The core's state after this command but its responders, replacing the single
    /// `dispatch_snapshot` row (with the journal's last sequence number); read back by
    /// [`crate::Store::load_dispatch_snapshot`].
    pub snapshot: Option<Value>,
}

impl ChangeSet {
    /// True when there is nothing to write and no request to record.
    pub fn is_empty(&self) -> bool {
        self.request.is_none()
            && self.events.is_empty()
            && self.incidents.is_empty()
            && self.orders.is_empty()
            && self.alarms.is_empty()
            && self.outbox.is_empty()
            && self.outbox_done.is_empty()
            && self.timers_set.is_empty()
            && self.timers_cleared.is_empty()
            && self.responders.is_empty()
            && self.talkgroups_saved.is_empty()
            && self.talkgroups_removed.is_empty()
            && self.bursts.is_empty()
            && self.cameras_saved.is_empty()
            && self.cameras_removed.is_empty()
            && self.snapshot.is_none()
    }
}

/// What [`crate::Store::commit`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Committed {
    /// Everything was written; these are the sequence numbers of the events, in order.
    Written(Vec<i64>),
    /// The request id was committed before: nothing was written; this is its first result.
    Replayed(Value),
}

/// A journal event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// When it happened (the core's clock).
    pub at: Timestamp,
    /// What happened, e.g. `order.accepted`.
    pub kind: String,
    /// The incident, work order or alarm id it is about.
    pub subject: String,
    /// Who did it: a dispatcher, a unit, or the system and the rule that fired.
    pub actor: String,
    /// The event itself.
    pub data: Value,
}

/// A stored journal event.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// Its sequence number: strictly increasing in commit order, with gaps after rollbacks.
    pub seq: i64,
    /// When it happened.
    pub at: Timestamp,
    /// What happened.
    pub kind: String,
    /// The incident, work order or alarm id it is about.
    pub subject: String,
    /// Who did it.
    pub actor: String,
    /// The event itself.
    pub data: Value,
}

/// A snapshot of an incident.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentRow {
    /// The incident id.
    pub id: String,
    /// Its status, as the core names it (filterable).
    pub status: String,
    /// The grid it lies in, if known (filterable).
    pub grid: Option<String>,
    /// False once terminal (closed): restart reloads open incidents only.
    pub open: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The core's full snapshot.
    pub data: Value,
    /// In a [`ChangeSet`]: true when this commit creates it, so an existing id fails the whole
    /// commit ([`crate::StoreError::AlreadyExists`]); false replaces (or inserts) the row.
    /// Always false when read back.
    pub new: bool,
}

/// A snapshot of a work order.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRow {
    /// The work-order id.
    pub id: String,
    /// The incident it serves.
    pub incident_id: String,
    /// The unit it is assigned to.
    pub unit: String,
    /// Its state, as the core names it.
    pub state: String,
    /// False once terminal (resolved, cancelled, reassigned, rejected).
    pub open: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The core's full snapshot.
    pub data: Value,
    /// As [`IncidentRow::new`].
    pub new: bool,
}

/// A snapshot of an alarm.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmRow {
    /// The alarm id.
    pub id: String,
    /// What raised it (target missed, no one available, SOS, geofence...).
    pub kind: String,
    /// Its state, as the core names it (raised, acknowledged, resolved...).
    pub state: String,
    /// False once terminal (resolved).
    pub open: bool,
    /// When it was raised.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The core's full snapshot.
    pub data: Value,
    /// As [`IncidentRow::new`].
    pub new: bool,
}

/// One finished talk burst (a row of the talk-burst log).
#[derive(Clone, Debug, PartialEq)]
pub struct BurstRow {
    /// The talkgroup.
    pub talkgroup: String,
    /// Who talked: `unit:ID` or `console:ID`.
    pub party: String,
    /// When the floor was granted (or the reported start).
    pub start: Timestamp,
    /// When it ended.
    pub end: Timestamp,
    /// `end - start`, milliseconds.
    pub duration_ms: i64,
    /// How it ended (`released`, `revoked`, `pre_empted`, `offline`, `reported`, ...).
    pub outcome: String,
    /// The intercom core's full record.
    pub data: Value,
}

/// A new outbound message to a unit (a downlink), re-sent until marked done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message id (unique).
    pub id: String,
    /// The unit it goes to.
    pub unit: String,
    /// What the receiver dedupes re-sends on, e.g. the order id.
    pub key: String,
    /// The encoded message.
    pub payload: Vec<u8>,
    /// When it was queued.
    pub created_at: Timestamp,
    /// When to send it first (usually `created_at`).
    pub next_attempt: Timestamp,
}

/// A stored outbound message with its delivery bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// The message as queued (`next_attempt` is the current one).
    pub entry: OutboxEntry,
    /// How many send attempts were recorded.
    pub attempts: u32,
    /// When it was marked done, if it was.
    pub done_at: Option<Timestamp>,
}

/// A timer with an absolute deadline.
#[derive(Clone, Debug, PartialEq)]
pub struct TimerRow {
    /// The timer id (unique; setting it again re-arms it).
    pub id: String,
    /// When it fires.
    pub due: Timestamp,
    /// What it is for, e.g. `accept_timeout`.
    pub kind: String,
    /// The incident, work order or alarm it is about.
    pub subject: String,
    /// The core's details.
    pub data: Value,
}

/// What the core needs to rebuild itself at restart ([`crate::Store::load_dispatch_state`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DispatchState {
    /// Open incidents, oldest first.
    pub incidents: Vec<IncidentRow>,
    /// Open work orders, oldest first.
    pub orders: Vec<OrderRow>,
    /// Open alarms, oldest first.
    pub alarms: Vec<AlarmRow>,
    /// Every timer, soonest first, with its original deadline.
    pub timers: Vec<TimerRow>,
    /// The journal's last sequence number (0 when empty), for clients resuming after it.
    pub last_seq: i64,
}

/// The dispatch core's state as last committed ([`crate::Store::load_dispatch_snapshot`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchSnapshot {
    /// The core's state but its responders (JSON it owns).
    pub data: Value,
    /// Every responder record (JSON the core owns), by unit id.
    pub responders: Vec<Value>,
    /// The journal's last sequence number when it was written.
    pub last_seq: i64,
    /// When the command that wrote it was handled.
    pub updated_at: Timestamp,
}

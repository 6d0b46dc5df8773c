//! Incidents, work orders, alarms and the 1/3/5-minute rules: the dispatch core, with no I/O.
//!
//! A state machine in the style of rumqttc's `state.rs`: every command takes the current time
//! (`now`) and returns an [`Outcome`] (journal events naming their [`Actor`], and [`Effect`]s
//! for the adapters to deliver) or a [`DispatchError`] that changed nothing. It owns incidents,
//! orders, alarms, responder statuses, the queue and the pending timers; it does not own
//! positions (the caller's location tracker ranks [`Candidate`]s), persistence (the store keeps
//! the [`DeskState`] and the journal), nor the wire (MQTT and WebSocket adapters).
//!
//! Restart: [`DeskState`] is serde-serializable (its responders one record each) and its timers
//! are absolute deadlines, so [`Dispatcher::restore`] resumes every countdown at its original
//! instant. A command the caller could not persist is undone through a [`Checkpoint`].
//!
//! Layout:
//! - `model`: ids, [`Actor`], [`Incident`] and what creates one.
//! - `order`: [`Order`] and the table of legal [`OrderState`] changes (names as in proto).
//! - `status`: [`Responder`], [`ResponderStatus`] (after Resgrid), [`Candidate`].
//! - `config`: [`DispatchConfig`] and its defaults (60/180/300 s, 30 s acceptance timeout).
//! - `journal`: [`JournalEvent`], [`Effect`], [`Outcome`].
//! - `alarm`: [`Alarm`]s: raise, re-notify, acknowledge, resolve.
//! - `ids`: [`IdGen`]; ids come from the caller.
//! - `desk`: [`Dispatcher`], [`DeskState`], accessors, creating incidents.
//! - `checkpoint`: undo a command; which responder records it changed.
//! - `dispatch`: one click, manual dispatch, recommend, reinforce, ranking.
//! - `queue`: waiting for a free responder; reassignment; [`CandidateSource`].
//! - `lifecycle`: receipts, cancel, close, and the order transition every change goes through.
//! - `field`: GPS arrival, duty status, presence, SOS, field reports.
//! - `timers`: absolute-deadline timers and [`Dispatcher::tick`].
//! - `report`: the supervision report and its CSV.

mod alarm;
mod checkpoint;
mod config;
mod desk;
mod dispatch;
mod error;
mod field;
mod ids;
mod journal;
mod lifecycle;
mod model;
mod order;
mod queue;
mod report;
mod status;
mod timers;

#[cfg(test)]
mod tests;

pub use alarm::{Alarm, AlarmKind, AlarmState};
pub use checkpoint::Checkpoint;
pub use config::{DispatchConfig, Targets};
pub use desk::{DeskState, Dispatcher};
pub use error::DispatchError;
pub use ids::{IdGen, SeqIds};
pub use journal::{Change, Effect, JournalEvent, Outcome, Touched};
pub use model::{
    Actor, AlarmId, Incident, IncidentId, IncidentKind, IncidentSource, IncidentState, LatLon,
    NewIncident, OrderId, Priority, Reinforcement, UnitId,
};
pub use order::{Order, OrderMessage, OrderState};
pub use queue::{CandidateSource, Queued};
pub use report::{GroupBy, Report, ReportRow, percentile_s, supervision_report};
pub use status::{Candidate, DutyStatus, Recommendation, Responder, ResponderStatus};
pub use timers::{Timer, TimerKind, Timers};

pub use fieldlink_clock::Timestamp;

//! Talkgroups, floor control after 3GPP MCPTT (TS 24.380) and the talk-burst log: the intercom
//! core, with no I/O.
//!
//! A state machine in the style of rumqttc's `state.rs` and of `fieldlink-dispatch`: every
//! command takes the current time (`now`) and returns an [`Outcome`] (journal events naming their
//! [`Actor`], floor answers as [`Effect`]s for the adapters to send, and finished-burst
//! [`BurstRecord`]s for the log) or an [`IntercomError`] that changed nothing. It owns talkgroups,
//! floors, queues, SOS priorities and the request ids already answered; it does not own presence
//! (the caller reports [`Intercom::offline`]), persistence (the store keeps the
//! [`IntercomState`], the journal and the burst log), nor the wire (the adapter maps
//! [`Answer`] to `fieldlink.v1.FloorAnswer`, one variant each, and `PttMessage` to
//! [`Intercom::request`], [`Intercom::release`] and [`Intercom::report_burst`]).
//!
//! Restart: [`IntercomState`] is serde-serializable and every deadline (maximum talk time, SOS
//! end) is an absolute instant kept in the state, so [`Intercom::restore`] and
//! [`Intercom::tick`] fire them at their original times. [`Intercom::next_deadline`] says when
//! to tick.
//!
//! Layout:
//! - `model`: ids, [`Party`], [`Actor`], [`FloorPriority`], [`Mode`], [`BusyPolicy`],
//!   [`Talkgroup`].
//! - `config`: [`IntercomConfig`] and its defaults.
//! - `journal`: [`JournalEvent`], [`Change`], [`Effect`], [`Answer`], [`BurstRecord`],
//!   [`Outcome`].
//! - `intercom`: [`Intercom`], [`IntercomState`], accessors, talkgroup management, request ids.
//! - `floor`: [`Floor`], [`Rank`] and the grant / revoke / hand-over moves.
//! - `arbiter`: [`Intercom::request`] and [`Intercom::release`].
//! - `field`: offline, SOS, [`Intercom::tick`], reported bursts.

mod arbiter;
mod config;
mod error;
mod field;
mod floor;
mod intercom;
mod journal;
mod model;

#[cfg(test)]
mod tests;

pub use config::IntercomConfig;
pub use error::IntercomError;
pub use floor::{Floor, Holder, Rank, Waiting};
pub use intercom::{Group, Intercom, IntercomState, Seen};
pub use journal::{
    Answer, BurstOutcome, BurstRecord, Change, DenyReason, DequeueReason, Effect, JournalEvent,
    Outcome, RevokeReason,
};
pub use model::{
    Actor, BusyPolicy, ConsoleId, FloorPriority, Mode, Party, Talkgroup, TalkgroupId, UnitId,
};

pub use fieldlink_clock::Timestamp;

//! [`IntercomError`]: why a command was refused. A refused command changes nothing.
//!
//! An adapter answering a handset's refused floor request sends `FloorAnswer.denied` with
//! [`IntercomError::code`] as the reason.

use fieldlink_clock::Timestamp;
use thiserror::Error;

use crate::model::{Mode, Party, TalkgroupId};

/// Why the intercom core refused a command. Each variant carries what the caller needs.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum IntercomError {
    /// No such talkgroup.
    #[error("unknown talkgroup {0}")]
    UnknownGroup(TalkgroupId),
    /// The party is not a member of the talkgroup.
    #[error("{party} is not a member of talkgroup {group}")]
    NotMember {
        /// The group.
        group: TalkgroupId,
        /// The party that spoke.
        party: Party,
    },
    /// The command needs the other mode (a floor request on a `reported` group, a reported
    /// burst on an `arbitrated` one).
    #[error(
        "talkgroup {group} is in {} mode, which does not take this (floor requests need arbitrated, reported bursts need reported)",
        mode.as_str()
    )]
    WrongMode {
        /// The group.
        group: TalkgroupId,
        /// Its mode.
        mode: Mode,
    },
    /// A reported burst ends before it starts.
    #[error("burst ends ({end}) before it starts ({start})")]
    InvalidBurst {
        /// Reported start.
        start: Timestamp,
        /// Reported end.
        end: Timestamp,
    },
    /// The change would drop someone who holds or waits for the floor, or change the mode of a
    /// group in use; the floor must be free of them first.
    #[error("talkgroup {0} is in use")]
    GroupInUse(TalkgroupId),
    /// The talkgroup definition is unusable (every problem listed).
    #[error("invalid talkgroup: {}", .0.join("; "))]
    InvalidGroup(Vec<String>),
}

impl IntercomError {
    /// A stable, machine-readable code for API answers and denied reasons.
    pub fn code(&self) -> &'static str {
        match self {
            IntercomError::UnknownGroup(_) => "unknown_talkgroup",
            IntercomError::NotMember { .. } => "not_a_member",
            IntercomError::WrongMode { .. } => "wrong_mode",
            IntercomError::InvalidBurst { .. } => "invalid_burst",
            IntercomError::GroupInUse(_) => "talkgroup_in_use",
            IntercomError::InvalidGroup(_) => "invalid_talkgroup",
        }
    }
}

//! What a command produces: journal events (facts, with their actor), effects (floor answers to
//! send) and talk-burst log records, bundled in an [`Outcome`].
//!
//! The store appends the events as JSON and gives them sequence numbers, and appends the
//! [`BurstRecord`]s to the talk-burst log (`GET /api/v1/talkgroups/{id}/log`). The adapters
//! carry out the [`Effect`]s. Floor answers are kept abstract ([`Answer`] mirrors the `oneof` of
//! `fieldlink.v1.FloorAnswer` one to one) so this crate needs no protobuf; the adapter builds the
//! `v1::FloorAnswer`.

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Actor, FloorPriority, Party, Talkgroup, TalkgroupId, UnitId};

/// Why a request was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The floor is taken and the group's policy is `deny`.
    Busy,
    /// The floor is taken and the queue is full.
    QueueFull,
}

/// Why a talker lost the floor against its will.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// Someone of higher rank took the floor.
    PreEmpted,
    /// The maximum talk time ran out.
    MaxTalkTime,
    /// The handset went offline.
    Offline,
}

impl DenyReason {
    /// The text of `FloorDenied.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Busy => "busy",
            DenyReason::QueueFull => "queue full",
        }
    }
}

impl RevokeReason {
    /// The text of `FloorRevoked.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::PreEmpted => "pre-empted",
            RevokeReason::MaxTalkTime => "max talk time",
            RevokeReason::Offline => "offline",
        }
    }
}

/// Why a party left the queue without being granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DequeueReason {
    /// It released (push-to-talk let go while waiting).
    Cancelled,
    /// The handset went offline.
    Offline,
}

/// How a talk burst ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BurstOutcome {
    /// The talker released the floor.
    Released,
    /// Revoked at the maximum talk time.
    RevokedMaxTime,
    /// Revoked for a talker of higher rank.
    PreEmpted,
    /// Lost because the handset went offline.
    Offline,
    /// Reported after the fact by the handsets' own platform (a `reported` group).
    Reported,
}

/// One finished talk burst: a row of the talk-burst log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BurstRecord {
    /// The talkgroup.
    pub group: TalkgroupId,
    /// Who talked.
    pub party: Party,
    /// The request id that won the floor (or reported the burst), if any.
    pub request_id: Option<String>,
    /// The priority the floor was held at (at the end of the burst).
    pub priority: FloorPriority,
    /// Granted (or reported start).
    pub start: Timestamp,
    /// Ended.
    pub end: Timestamp,
    /// `end - start`, milliseconds.
    pub duration_ms: i64,
    /// How it ended.
    pub outcome: BurstOutcome,
}

/// What changed. Every variant is one state change of a talkgroup, its floor or a unit's SOS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// A talkgroup was created or changed (its full definition).
    GroupSaved {
        /// The group.
        group: Box<Talkgroup>,
    },
    /// A talkgroup was removed.
    GroupRemoved {
        /// The group.
        group: TalkgroupId,
    },
    /// The floor was granted.
    Granted {
        /// The group.
        group: TalkgroupId,
        /// The new talker.
        party: Party,
        /// The effective priority (raised to emergency by an SOS).
        priority: FloorPriority,
        /// The request that won it.
        request_id: Option<String>,
        /// When the maximum talk time runs out.
        deadline: Timestamp,
    },
    /// A request was denied.
    Denied {
        /// The group.
        group: TalkgroupId,
        /// The party that asked.
        party: Party,
        /// Its effective priority.
        priority: FloorPriority,
        /// The request.
        request_id: Option<String>,
        /// Why.
        reason: DenyReason,
        /// Who holds the floor.
        holder: Option<Party>,
    },
    /// A request was queued.
    Queued {
        /// The group.
        group: TalkgroupId,
        /// The party that asked.
        party: Party,
        /// Its effective priority.
        priority: FloorPriority,
        /// The request.
        request_id: Option<String>,
        /// Its place, 1 = next.
        position: u32,
    },
    /// A party left the queue without the floor.
    Dequeued {
        /// The group.
        group: TalkgroupId,
        /// The party.
        party: Party,
        /// Why.
        reason: DequeueReason,
    },
    /// The talker released the floor.
    Released {
        /// The group.
        group: TalkgroupId,
        /// The talker.
        party: Party,
        /// The release message's id.
        request_id: Option<String>,
    },
    /// The talker lost the floor.
    Revoked {
        /// The group.
        group: TalkgroupId,
        /// The talker.
        party: Party,
        /// Why.
        reason: RevokeReason,
    },
    /// Nobody holds the floor and nobody waits.
    Idle {
        /// The group.
        group: TalkgroupId,
    },
    /// A unit's SOS raised it to emergency priority.
    SosRaised {
        /// The unit.
        unit: UnitId,
        /// Until when; `None` = until cleared.
        until: Option<Timestamp>,
    },
    /// A unit's emergency priority ended.
    SosCleared {
        /// The unit.
        unit: UnitId,
        /// True when its time ran out, false when cleared.
        expired: bool,
    },
    /// A burst from a `reported` group was logged.
    BurstReported {
        /// The record.
        record: BurstRecord,
    },
}

/// One journal entry. The store adds the sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEvent {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What.
    #[serde(flatten)]
    pub change: Change,
}

/// The arbiter's answer, mirroring the `oneof answer` of `fieldlink.v1.FloorAnswer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// `FloorGranted`: talk now, for at most `max_talk_ms`.
    Granted {
        /// Milliseconds left until the floor is revoked.
        max_talk_ms: i64,
    },
    /// `FloorDenied`.
    Denied {
        /// Why; the text for `reason` is [`DenyReason::as_str`].
        reason: DenyReason,
        /// Who holds the floor.
        holder: Option<Party>,
    },
    /// `FloorRevoked`; the text for `reason` is [`RevokeReason::as_str`].
    Revoked {
        /// Why.
        reason: RevokeReason,
    },
    /// `FloorQueued`: 1 = next.
    Queued {
        /// The place in the queue.
        position: u32,
    },
    /// `FloorIdle`: nobody holds the floor.
    Idle,
}

/// A message for an adapter to deliver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Send a `FloorAnswer` to `to` (a unit's MQTT downlink, QoS 1, or a console's session).
    Floor {
        /// The recipient.
        to: Party,
        /// `FloorAnswer.talkgroup`.
        group: TalkgroupId,
        /// `FloorAnswer.request_id`: the request this answers, if any.
        request_id: Option<String>,
        /// The answer.
        answer: Answer,
    },
}

/// What one command produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Journal events, in order.
    pub events: Vec<JournalEvent>,
    /// Messages to send, in order.
    pub effects: Vec<Effect>,
    /// Finished talk bursts, for the talk-burst log.
    pub bursts: Vec<BurstRecord>,
}

impl Outcome {
    /// Nothing happened (a replay, or nothing due).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.effects.is_empty() && self.bursts.is_empty()
    }

    pub(crate) fn event(&mut self, at: Timestamp, actor: &Actor, change: Change) {
        let actor = actor.clone();
        self.events.push(JournalEvent { at, actor, change });
    }

    pub(crate) fn send(&mut self, to: &Party, group: &TalkgroupId, rid: Option<&str>, a: Answer) {
        self.effects.push(Effect::Floor {
            to: to.clone(),
            group: group.clone(),
            request_id: rid.map(str::to_owned),
            answer: a,
        });
    }
}

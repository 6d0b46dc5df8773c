//! Why an uplink was refused: one variant per rule, a stable metric label for each, and a
//! message in plain words for the log.

use fieldlink_proto::{TopicError, UnitId};
use thiserror::Error;

/// Longest piece of sender-controlled text (topic, unit, `_type`) kept in a rejection, so a
/// hostile payload cannot blow up a log line.
const MAX_ECHO: usize = 120;

/// Why a message was refused. [`Rejection::reason`] is the metric label; `Display` is for people.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Rejection {
    /// The topic is not a fieldlink topic, names an unknown kind, or its unit id is not allowed.
    #[error("topic {topic:?} is not an uplink topic of ours: {detail}")]
    BadTopic {
        /// The topic (clipped).
        topic: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The payload is larger than [`Limits::max_payload_bytes`](super::Limits).
    #[error("payload of {size} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The payload does not decode as the topic's message type.
    #[error("payload is not a valid {what}: {detail}")]
    Malformed {
        /// What it should have been (`GpsReport`, `OwnTracks JSON`, ...).
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// The payload's `unit` field is set and is not the topic's unit.
    #[error(
        "payload says unit {payload_unit:?} but was published on the topic of unit {topic_unit}"
    )]
    UnitMismatch {
        /// The unit of the topic.
        topic_unit: UnitId,
        /// The unit in the payload (clipped).
        payload_unit: String,
    },
    /// The unit is not provisioned, or is disabled.
    #[error("unit {unit} is unknown or disabled")]
    UnknownUnit {
        /// The topic's unit.
        unit: UnitId,
    },
    /// Latitude or longitude is not finite or out of range.
    #[error(
        "coordinates lat {lat}, lon {lon} are not valid WGS-84 degrees (lat -90..=90, lon -180..=180)"
    )]
    BadCoordinates {
        /// Latitude as sent.
        lat: f64,
        /// Longitude as sent.
        lon: f64,
    },
    /// Another number (heading, speed, accuracy, battery, altitude) is not finite or out of range.
    #[error("{field} = {value} is out of range (expected {expected})")]
    BadValue {
        /// The field's name on the wire.
        field: &'static str,
        /// The value as sent.
        value: f64,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// A `GpsReport` with no fix.
    #[error("GPS report carries no fix")]
    EmptyBatch,
    /// A `GpsReport` with more fixes than [`Limits::max_batch_fixes`](super::Limits).
    #[error("GPS report carries {count} fixes, more than the limit of {max}")]
    BatchTooLarge {
        /// Fixes in the report.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An OwnTracks `_type` fieldlink does not use (transition, waypoint, card, ...).
    #[error("OwnTracks message of type {kind:?} is not used by fieldlink")]
    IgnoredType {
        /// The `_type` (clipped).
        kind: String,
    },
    /// A plain payload where every payload must be sealed (the embedded broker).
    #[error(
        "unit {unit} sent an unsealed payload; on this broker every payload must be sealed with the unit's key (see `fieldlink seal`)"
    )]
    Unsealed {
        /// The topic's unit.
        unit: UnitId,
    },
    /// A sealed payload that does not open with the key of the topic's unit, for the topic's
    /// kind: another unit's key, an old secret, altered bytes, or a message moved to another
    /// topic.
    #[error("payload on the topic of unit {unit} does not open with that unit's key: {detail}")]
    Forged {
        /// The topic's unit.
        unit: UnitId,
        /// Why it did not open.
        detail: String,
    },
    /// A sealed payload whose counter is not newer than the last one accepted from the unit.
    #[error(
        "unit {unit} sent counter {counter}, not newer than {last} already accepted: a replayed or duplicated message"
    )]
    Replayed {
        /// The topic's unit.
        unit: UnitId,
        /// The counter in the message.
        counter: u64,
        /// The last counter accepted from the unit.
        last: u64,
    },
    /// The unit sends faster than its rate limit (`mqtt.max_messages_per_s`); dropped unread.
    #[error("unit {unit} sends more than {rate_per_s} messages a second; dropped")]
    Throttled {
        /// The flooding unit.
        unit: UnitId,
        /// Its limit.
        rate_per_s: u32,
    },
}

impl Rejection {
    /// Every [`Rejection::reason`], for metrics.
    pub const REASONS: [&'static str; 14] = [
        "bad_topic",
        "too_large",
        "malformed",
        "unit_mismatch",
        "unknown_unit",
        "bad_coordinates",
        "bad_value",
        "empty_batch",
        "batch_too_large",
        "ignored_type",
        "unsealed",
        "forged",
        "replayed",
        "throttled",
    ];

    /// The metric label (`fieldlink_mqtt_rejected_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::BadTopic { .. } => "bad_topic",
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Malformed { .. } => "malformed",
            Rejection::UnitMismatch { .. } => "unit_mismatch",
            Rejection::UnknownUnit { .. } => "unknown_unit",
            Rejection::BadCoordinates { .. } => "bad_coordinates",
            Rejection::BadValue { .. } => "bad_value",
            Rejection::EmptyBatch => "empty_batch",
            Rejection::BatchTooLarge { .. } => "batch_too_large",
            Rejection::IgnoredType { .. } => "ignored_type",
            Rejection::Unsealed { .. } => "unsealed",
            Rejection::Forged { .. } => "forged",
            Rejection::Replayed { .. } => "replayed",
            Rejection::Throttled { .. } => "throttled",
        }
    }

    /// The index of [`Rejection::reason`] in [`Rejection::REASONS`].
    pub(crate) fn index(&self) -> usize {
        let reason = self.reason();
        Self::REASONS
            .iter()
            .position(|r| *r == reason)
            .expect("every reason is listed in REASONS")
    }

    pub(crate) fn bad_topic(topic: &str, error: &TopicError) -> Self {
        let detail = match error {
            TopicError::BadUnitId(_) => "the unit id is not allowed".to_owned(),
            TopicError::UnknownKind { kind, .. } => {
                format!("unknown message kind {:?}", clip(kind))
            }
            TopicError::Unknown(_) | TopicError::BadRoot(_) => {
                "not under the fieldlink or OwnTracks prefix".to_owned()
            }
        };
        Rejection::BadTopic {
            topic: clip(topic),
            detail,
        }
    }
}

/// `s`, cut to at most [`MAX_ECHO`] bytes on a character boundary.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= MAX_ECHO {
        return s.to_owned();
    }
    let mut end = MAX_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

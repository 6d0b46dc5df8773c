//! The MQTT topic grammar: the only place that builds or parses a topic string.
//!
//! ```text
//! {root}/u/{unit}/{gps|status|ptt|video|sos|ack|report}   uplink
//! {root}/u/{unit}/down                                    downlink
//! {owntracks}/{user}/{device}                             OwnTracks JSON (user = unit)
//! ```
//! `root` defaults to `fl/v1` and `owntracks` to `owntracks`; both are configurable so that tenants
//! and parallel tests can share one broker.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The default topic root.
pub const DEFAULT_ROOT: &str = "fl/v1";
/// The default OwnTracks topic prefix (the app's own default).
pub const DEFAULT_OWNTRACKS_PREFIX: &str = "owntracks";
/// Longest unit id accepted.
pub const MAX_UNIT_ID_LEN: usize = 64;

/// Why a topic or an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopicError {
    /// The unit id is empty, too long or uses characters outside the safe alphabet.
    #[error(
        "unit id {0:?} is not allowed: use 1 to 64 of the letters A-Z a-z, digits, '_', '-' or '.', starting with a letter or digit"
    )]
    BadUnitId(String),
    /// The topic root is empty or contains wildcards, empty levels or control characters.
    #[error(
        "topic prefix {0:?} is not allowed: it must be non-empty levels separated by '/', without '+', '#' or control characters"
    )]
    BadRoot(String),
    /// The topic is under our root but its shape is unknown.
    #[error("topic {0:?} is not a fieldlink topic")]
    Unknown(String),
    /// The last level names no uplink kind.
    #[error("topic {topic:?} has an unknown message kind {kind:?}")]
    UnknownKind {
        /// The whole topic.
        topic: String,
        /// The unknown last level.
        kind: String,
    },
}

/// A unit (responder handset) id: 1 to 64 characters of `[A-Za-z0-9_.-]`, starting with a letter
/// or digit. This keeps ids safe in topics (no `+`, `#`, `/`), URLs, logs and file names.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId(String);

impl UnitId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, TopicError> {
        let id = id.into();
        if is_valid_unit_id(&id) {
            Ok(UnitId(id))
        } else {
            Err(TopicError::BadUnitId(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// True when `id` is a valid unit id (see [`UnitId`]).
pub fn is_valid_unit_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_UNIT_ID_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// True when `s` may be an MQTT client id or username: not empty, and free of the topic
/// wildcards `+` and `#`, of the level separator `/` and of control characters (C0, DEL, C1).
///
/// Brokers substitute usernames and client ids into ACL patterns (`%u`, `${username}`), and
/// fieldlink puts unit ids into topics: an identity with these characters could widen a pattern
/// or name another unit's topic. The embedded broker refuses such a CONNECT before it checks the
/// credentials. Every [`UnitId`] passes (its alphabet is narrower).
pub fn is_safe_mqtt_identity(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| matches!(c, '+' | '#' | '/') || c.is_control())
}

impl fmt::Debug for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UnitId {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnitId::new(s)
    }
}

impl AsRef<str> for UnitId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The uplink message kinds, one per topic suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UplinkKind {
    /// `GpsReport`
    Gps,
    /// `StatusHeartbeat`
    Status,
    /// `PttMessage`
    Ptt,
    /// `VideoMessage`
    Video,
    /// `Sos`
    Sos,
    /// `Ack`
    Ack,
    /// `Report`
    Report,
}

impl UplinkKind {
    /// Every kind, in a fixed order (for metrics labels).
    pub const ALL: [UplinkKind; 7] = [
        UplinkKind::Gps,
        UplinkKind::Status,
        UplinkKind::Ptt,
        UplinkKind::Video,
        UplinkKind::Sos,
        UplinkKind::Ack,
        UplinkKind::Report,
    ];

    /// The topic suffix.
    pub const fn as_str(self) -> &'static str {
        match self {
            UplinkKind::Gps => "gps",
            UplinkKind::Status => "status",
            UplinkKind::Ptt => "ptt",
            UplinkKind::Video => "video",
            UplinkKind::Sos => "sos",
            UplinkKind::Ack => "ack",
            UplinkKind::Report => "report",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        UplinkKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for UplinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// `{root}/u/{unit}/{kind}`
    Uplink {
        /// The unit the topic names.
        unit: UnitId,
        /// Which message type the payload is.
        kind: UplinkKind,
    },
    /// `{root}/u/{unit}/down`
    Downlink {
        /// The unit the topic names.
        unit: UnitId,
    },
    /// `{owntracks}/{user}/{device}`; `user` is the unit id.
    OwnTracks {
        /// The OwnTracks user, which must be the unit id (and the MQTT username).
        user: UnitId,
        /// The OwnTracks device name (free, but from the same safe alphabet).
        device: String,
    },
}

impl Topic {
    /// The unit the topic belongs to.
    pub fn unit(&self) -> &UnitId {
        match self {
            Topic::Uplink { unit, .. } | Topic::Downlink { unit } => unit,
            Topic::OwnTracks { user, .. } => user,
        }
    }
}

/// The topic grammar under one configured root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    root: String,
    owntracks: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            root: DEFAULT_ROOT.to_owned(),
            owntracks: DEFAULT_OWNTRACKS_PREFIX.to_owned(),
        }
    }
}

fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.split('/').all(|level| {
            !level.is_empty()
                && !level
                    .chars()
                    .any(|c| c == '+' || c == '#' || c.is_control())
        })
}

impl Topics {
    /// A grammar with the given fieldlink root (e.g. `fl/v1`) and OwnTracks prefix (e.g. `owntracks`).
    pub fn new(root: &str, owntracks: &str) -> Result<Self, TopicError> {
        for p in [root, owntracks] {
            if !valid_prefix(p) {
                return Err(TopicError::BadRoot(p.to_owned()));
            }
        }
        Ok(Topics {
            root: root.to_owned(),
            owntracks: owntracks.to_owned(),
        })
    }

    /// The fieldlink root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The OwnTracks prefix.
    pub fn owntracks_prefix(&self) -> &str {
        &self.owntracks
    }

    /// `{root}/u/{unit}/{kind}`
    pub fn uplink(&self, unit: &UnitId, kind: UplinkKind) -> String {
        format!("{}/u/{}/{}", self.root, unit, kind.as_str())
    }

    /// `{root}/u/{unit}/down`
    pub fn downlink(&self, unit: &UnitId) -> String {
        format!("{}/u/{}/down", self.root, unit)
    }

    /// `{owntracks}/{user}/{device}`
    pub fn owntracks(&self, user: &UnitId, device: &str) -> String {
        format!("{}/{}/{}", self.owntracks, user, device)
    }

    /// The subscription filters that receive every uplink: `{root}/u/+/+` and `{owntracks}/+/+`.
    /// (The first also matches downlinks; [`Topics::parse`] tells them apart.)
    pub fn uplink_filters(&self) -> [String; 2] {
        [
            format!("{}/u/+/+", self.root),
            format!("{}/+/+", self.owntracks),
        ]
    }

    /// Whether `topic` is a downlink topic (`{root}/u/{unit}/down`; the unit id is not checked).
    /// The uplink filter `{root}/u/+/+` also receives fieldlink's own downlinks back from the
    /// broker; the pipeline skips them with this cheap test before anything else.
    pub fn is_downlink(&self, topic: &str) -> bool {
        (topic.strip_suffix("/down"))
            .and_then(|rest| strip_level_prefix(rest, &self.root))
            .and_then(|rest| rest.strip_prefix("u/"))
            .is_some_and(|unit| !unit.is_empty() && !unit.contains('/'))
    }

    /// Parses a topic under this grammar.
    pub fn parse(&self, topic: &str) -> Result<Topic, TopicError> {
        let unknown = || TopicError::Unknown(topic.to_owned());
        if let Some(rest) = strip_level_prefix(topic, &self.root).and_then(|r| r.strip_prefix("u/"))
        {
            let (unit, kind) = rest.split_once('/').ok_or_else(unknown)?;
            let unit = UnitId::new(unit)?;
            if kind == "down" {
                return Ok(Topic::Downlink { unit });
            }
            let kind = UplinkKind::parse(kind).ok_or_else(|| TopicError::UnknownKind {
                topic: topic.to_owned(),
                kind: kind.to_owned(),
            })?;
            return Ok(Topic::Uplink { unit, kind });
        }
        if let Some(rest) = strip_level_prefix(topic, &self.owntracks) {
            let (user, device) = rest.split_once('/').ok_or_else(unknown)?;
            let user = UnitId::new(user)?;
            if !is_valid_unit_id(device) {
                return Err(unknown());
            }
            return Ok(Topic::OwnTracks {
                user,
                device: device.to_owned(),
            });
        }
        Err(unknown())
    }
}

/// `topic` without `prefix/`, when `topic` starts with whole levels equal to `prefix`.
fn strip_level_prefix<'a>(topic: &'a str, prefix: &str) -> Option<&'a str> {
    topic.strip_prefix(prefix)?.strip_prefix('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(s: &str) -> UnitId {
        UnitId::new(s).expect("valid id")
    }

    #[test]
    fn builds_and_parses_every_uplink_kind() {
        let t = Topics::default();
        for kind in UplinkKind::ALL {
            let s = t.uplink(&unit("patrol-07"), kind);
            assert_eq!(s, format!("fl/v1/u/patrol-07/{kind}"));
            assert_eq!(
                t.parse(&s),
                Ok(Topic::Uplink {
                    unit: unit("patrol-07"),
                    kind
                })
            );
        }
        assert_eq!(
            t.parse("fl/v1/u/patrol-07/down"),
            Ok(Topic::Downlink {
                unit: unit("patrol-07")
            })
        );
    }

    #[test]
    fn parses_owntracks_under_its_prefix() {
        let t = Topics::default();
        assert_eq!(
            t.parse("owntracks/alice/phone"),
            Ok(Topic::OwnTracks {
                user: unit("alice"),
                device: "phone".into()
            })
        );
        assert!(t.parse("owntracks/alice").is_err());
        assert!(t.parse("owntracks/alice/phone/event").is_err());
    }

    #[test]
    fn a_custom_root_isolates_tenants() {
        let t = Topics::new("test-42/fl/v1", "test-42/owntracks").expect("valid");
        assert_eq!(
            t.uplink_filters(),
            ["test-42/fl/v1/u/+/+", "test-42/owntracks/+/+"]
        );
        assert!(t.parse("fl/v1/u/a/gps").is_err());
        assert!(t.parse("test-42/fl/v1/u/a/gps").is_ok());
        // a root that merely starts with the same characters is another root
        assert!(t.parse("test-42/fl/v10/u/a/gps").is_err());
    }

    #[test]
    fn refuses_unsafe_unit_ids() {
        for bad in [
            "", "a+b", "a#", "a/b", "a b", "-lead", ".hidden", "tab\t", "ünit",
        ] {
            assert!(UnitId::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(UnitId::new("x".repeat(64)).is_ok());
        assert!(UnitId::new("x".repeat(65)).is_err());
        for control in ["a\0b", "nl\n", "del\u{7f}", "c1\u{85}", "esc\u{1b}[0m"] {
            assert!(UnitId::new(control).is_err(), "{control:?} must be refused");
        }
        let t = Topics::default();
        assert_eq!(
            t.parse("fl/v1/u/a+b/gps"),
            Err(TopicError::BadUnitId("a+b".into()))
        );
    }

    #[test]
    fn mqtt_identities_with_wildcards_separators_or_controls_are_unsafe() {
        for bad in [
            "",
            "a+b",
            "#",
            "u/1",
            "+",
            "a\0",
            "tab\t",
            "nl\n",
            "del\u{7f}",
            "c1\u{9b}",
        ] {
            assert!(!is_safe_mqtt_identity(bad), "{bad:?} must be unsafe");
        }
        for good in [
            "u000",
            "patrol-7",
            "fieldlink",
            "ünit",
            "a b",
            "x".repeat(64).as_str(),
        ] {
            assert!(is_safe_mqtt_identity(good), "{good:?} is fine");
        }
        // Every valid unit id is a safe identity.
        assert!(is_safe_mqtt_identity(
            UnitId::new("u.0_a-b").expect("id").as_str()
        ));
    }

    #[test]
    fn unknown_kinds_and_shapes_are_named() {
        let t = Topics::default();
        assert!(matches!(
            t.parse("fl/v1/u/a/teleport"),
            Err(TopicError::UnknownKind { .. })
        ));
        assert!(matches!(
            t.parse("fl/v1/x/a/gps"),
            Err(TopicError::Unknown(_))
        ));
        assert!(matches!(t.parse("other/a/b"), Err(TopicError::Unknown(_))));
    }

    #[test]
    fn refuses_wildcards_in_roots() {
        assert!(Topics::new("fl/+", "owntracks").is_err());
        assert!(Topics::new("fl//v1", "owntracks").is_err());
        assert!(Topics::new("", "owntracks").is_err());
        assert!(Topics::new("fl/v1", "own#").is_err());
    }
}

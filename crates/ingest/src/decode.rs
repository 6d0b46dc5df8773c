//! Decoding and *structural* validation of one uplink message.
//!
//! [`Decoder::decode`] turns `(topic, payload)` into an [`Envelope`] or a [`Rejection`] that says
//! why not, in words and as a metric label ([`Rejection::reason`]). It does no I/O and reads no
//! clock, so it is tested and benchmarked without a broker.
//!
//! Structural means: the topic is ours and names a unit, the payload is small enough and
//! decodes, the unit in the payload (if any) is the topic's, the unit is known and active, and
//! every number is finite and in its range. Plausibility (zero fix, future, too old, duplicate,
//! jump) is the location crate's business, which keeps filtered fixes in history.
//!
//! Checks run cheapest first (topic, size, unit directory, seal, then decoding), so a flood from
//! an unknown unit costs no cryptography and no protobuf work.
//!
//! Sealed payloads (`crates/seal`, docs/security.md): under [`Sealing::Required`] (the embedded
//! broker, which has no topic ACL) a payload must open with the key of the unit its topic names,
//! for the topic's kind, or it is refused (`unsealed`, `forged`); under [`Sealing::Optional`] (an
//! external broker, whose ACL binds topics to logins) sealed payloads are opened and checked the
//! same way and plain ones pass. The counter a sealed payload carries is returned in
//! [`Envelope::freshness`]; the replay check against the last one accepted needs state, so it is
//! the pipeline's ([`crate::ReplayMarks`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use fieldlink_proto::owntracks;
use fieldlink_proto::v1;
use fieldlink_proto::{Topic, Topics, UnitId, UplinkKind};
use fieldlink_seal::{SealError, SealKey};
use prost::Message;
use serde::Deserialize;

mod rejection;
mod validate;

pub use rejection::Rejection;
pub(crate) use rejection::clip;

/// Which units may speak (known to fieldlink and not disabled), and with which seal key.
pub trait UnitDirectory {
    /// True when `unit` is provisioned and enabled.
    fn is_active(&self, unit: &UnitId) -> bool;

    /// The key `unit`'s payloads are sealed with; `None` when it has none (a unit registered
    /// before sealing existed, until its secret is rotated) or is unknown.
    fn seal_key(&self, unit: &UnitId) -> Option<SealKey>;
}

/// A set of active units without seal keys (tests, benches, the fuzzers).
impl<S: BuildHasher> UnitDirectory for HashSet<UnitId, S> {
    fn is_active(&self, unit: &UnitId) -> bool {
        self.contains(unit)
    }

    fn seal_key(&self, _unit: &UnitId) -> Option<SealKey> {
        None
    }
}

/// Active units and their seal keys.
impl<S: BuildHasher> UnitDirectory for HashMap<UnitId, SealKey, S> {
    fn is_active(&self, unit: &UnitId) -> bool {
        self.contains_key(unit)
    }

    fn seal_key(&self, unit: &UnitId) -> Option<SealKey> {
        self.get(unit).cloned()
    }
}

/// Whether uplinks must be sealed (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Every payload must be sealed with its unit's key: the embedded broker, where a logged-in
    /// handset could publish on any topic.
    Required,
    /// Sealed payloads are opened and checked, plain ones accepted: an external broker whose
    /// ACL already binds each topic to its unit's login.
    Optional,
}

/// The freshness claim of a sealed message, for the pipeline's replay check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A fieldlink seal's counter (microseconds since the epoch, strictly increasing per sender).
    Counter(u64),
    /// The counter of a sealed offline notice (`StatusHeartbeat { online: false }`), usually
    /// the handset's last will: sealed when it connected, delivered by the broker when the
    /// connection drops, after the unit's later messages. Checked against the unit's last
    /// offline notice only.
    Offline(u64),
    /// A sealed OwnTracks location's `tst` (seconds since the epoch).
    OwnTracksTst(u64),
}

/// Size limits applied before and after decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest payload accepted, bytes. A 1,000-fix batch is about 40 KiB.
    pub max_payload_bytes: usize,
    /// Most fixes in one `GpsReport` (a handset's buffer after a long tunnel).
    pub max_batch_fixes: usize,
    /// Messages one unit may send (the pipeline drops the excess before decoding).
    pub throttle: crate::throttle::ThrottleConfig,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 64 * 1024,
            max_batch_fixes: 1000,
            throttle: crate::throttle::ThrottleConfig::default(),
        }
    }
}

/// A decoded, structurally valid uplink and the unit it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The unit named by the topic (for OwnTracks: the topic's user).
    pub unit: UnitId,
    /// The message.
    pub message: Uplink,
    /// When it came sealed, the counter to check against replays (`None`: plain, or a sealed
    /// OwnTracks last will, which carries no counter).
    pub freshness: Option<Freshness>,
}

/// One uplink message, by topic kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Uplink {
    /// `gps`: one fix or a batch (at least one fix, at most [`Limits::max_batch_fixes`]).
    Gps(v1::GpsReport),
    /// `status`: heartbeat, or the last will (`online = false`).
    Status(v1::StatusHeartbeat),
    /// `ptt`: floor request, release or talk-burst report.
    Ptt(v1::PttMessage),
    /// `video`: stream started, stopped or keepalive.
    Video(v1::VideoMessage),
    /// `sos`: the emergency button.
    Sos(v1::Sos),
    /// `ack`: work-order or command receipt.
    Ack(v1::Ack),
    /// `report`: field report or duty status.
    Report(v1::Report),
    /// OwnTracks `_type: location`.
    OwnTracksLocation {
        /// The OwnTracks device (last topic level).
        device: String,
        /// The fix as the app sent it (units as the OwnTracks booklet defines them).
        location: owntracks::Location,
    },
    /// OwnTracks `_type: lwt`: the app's connection went away.
    OwnTracksLwt {
        /// The OwnTracks device (last topic level).
        device: String,
    },
}

impl Uplink {
    /// Every [`Uplink::kind`] label, for metrics.
    pub const KINDS: [&'static str; 8] = [
        "gps",
        "status",
        "ptt",
        "video",
        "sos",
        "ack",
        "report",
        "owntracks",
    ];

    /// The metric label of this message: the topic kind, or `owntracks`.
    pub fn kind(&self) -> &'static str {
        match self {
            Uplink::Gps(_) => "gps",
            Uplink::Status(_) => "status",
            Uplink::Ptt(_) => "ptt",
            Uplink::Video(_) => "video",
            Uplink::Sos(_) => "sos",
            Uplink::Ack(_) => "ack",
            Uplink::Report(_) => "report",
            Uplink::OwnTracksLocation { .. } | Uplink::OwnTracksLwt { .. } => "owntracks",
        }
    }
}

impl Freshness {
    /// The number itself.
    pub fn counter(self) -> u64 {
        match self {
            Freshness::Counter(c) | Freshness::Offline(c) | Freshness::OwnTracksTst(c) => c,
        }
    }
}

/// Decodes and validates uplinks under one topic grammar and one set of limits.
#[derive(Debug, Clone)]
pub struct Decoder {
    topics: Topics,
    limits: Limits,
    sealing: Sealing,
}

impl Decoder {
    /// A decoder for topics under `topics`, sealing [`Sealing::Optional`].
    pub fn new(topics: Topics, limits: Limits) -> Self {
        Decoder {
            topics,
            limits,
            sealing: Sealing::Optional,
        }
    }

    /// The same decoder with `sealing`.
    pub fn with_sealing(mut self, sealing: Sealing) -> Self {
        self.sealing = sealing;
        self
    }

    /// Whether payloads must be sealed.
    pub fn sealing(&self) -> Sealing {
        self.sealing
    }

    /// The topic grammar.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether `topic` is one of fieldlink's downlink topics (see [`Topics::is_downlink`]).
    pub fn is_downlink(&self, topic: &str) -> bool {
        self.topics.is_downlink(topic)
    }

    /// The unit a topic names (uplink or OwnTracks), without looking at the payload.
    pub fn unit_of(&self, topic: &str) -> Option<UnitId> {
        match self.topics.parse(topic) {
            Ok(Topic::Uplink { unit, .. }) => Some(unit),
            Ok(Topic::OwnTracks { user, .. }) => Some(user),
            _ => None,
        }
    }

    /// Decodes one message received on `topic`; `units` says which units may speak.
    pub fn decode(
        &self,
        topic: &str,
        payload: &[u8],
        units: &dyn UnitDirectory,
    ) -> Result<Envelope, Rejection> {
        let (unit, body) = match self.topics.parse(topic) {
            Ok(Topic::Uplink { unit, kind }) => (unit, Body::Protobuf(kind)),
            Ok(Topic::OwnTracks { user, device }) => (user, Body::OwnTracks(device)),
            Ok(Topic::Downlink { .. }) => {
                return Err(Rejection::BadTopic {
                    topic: rejection::clip(topic),
                    detail: "it is a downlink topic: fieldlink sends there, handsets only read it"
                        .to_owned(),
                });
            }
            Err(error) => return Err(Rejection::bad_topic(topic, &error)),
        };
        if payload.len() > self.limits.max_payload_bytes {
            return Err(Rejection::TooLarge {
                size: payload.len(),
                max: self.limits.max_payload_bytes,
            });
        }
        if !units.is_active(&unit) {
            return Err(Rejection::UnknownUnit { unit });
        }
        let (message, freshness) = match body {
            Body::Protobuf(kind) => {
                let (payload, counter) = self.unseal(&unit, kind, payload, units)?;
                let message = self.decode_protobuf(&unit, kind, &payload)?;
                let freshness = counter.map(|c| match &message {
                    Uplink::Status(s) if !s.online => Freshness::Offline(c),
                    _ => Freshness::Counter(c),
                });
                (message, freshness)
            }
            Body::OwnTracks(device) => {
                let (json, sealed) = self.unseal_owntracks(&unit, payload, units)?;
                let message = decode_owntracks(device, &json)?;
                let freshness = match &message {
                    Uplink::OwnTracksLocation { location, .. } if sealed => {
                        // A time before 1970 counts as 0, which no replay check accepts.
                        Some(Freshness::OwnTracksTst(
                            u64::try_from(location.tst).unwrap_or(0),
                        ))
                    }
                    _ => None,
                };
                (message, freshness)
            }
        };
        Ok(Envelope {
            unit,
            message,
            freshness,
        })
    }

    /// The plaintext of a fieldlink payload on `unit`'s `kind` topic, and its counter when it
    /// came sealed.
    fn unseal<'p>(
        &self,
        unit: &UnitId,
        kind: UplinkKind,
        payload: &'p [u8],
        units: &dyn UnitDirectory,
    ) -> Result<(Cow<'p, [u8]>, Option<u64>), Rejection> {
        if !fieldlink_seal::is_sealed(payload) {
            return match self.sealing {
                Sealing::Required => Err(Rejection::Unsealed { unit: unit.clone() }),
                Sealing::Optional => Ok((Cow::Borrowed(payload), None)),
            };
        }
        let key = key_of(unit, units)?;
        let opened = fieldlink_seal::open(&key, kind.as_str(), payload)
            .map_err(|e| Rejection::forged(unit, &e))?;
        Ok((Cow::Owned(opened.payload), Some(opened.counter)))
    }

    /// The JSON of an OwnTracks payload of `unit`, and whether it came sealed (the app's
    /// `{"_type":"encrypted"}` envelope with the unit's key).
    fn unseal_owntracks<'p>(
        &self,
        unit: &UnitId,
        payload: &'p [u8],
        units: &dyn UnitDirectory,
    ) -> Result<(Cow<'p, [u8]>, bool), Rejection> {
        if !owntracks::is_encrypted(payload) {
            return match self.sealing {
                Sealing::Required => Err(Rejection::Unsealed { unit: unit.clone() }),
                Sealing::Optional => Ok((Cow::Borrowed(payload), false)),
            };
        }
        let key = key_of(unit, units)?;
        let json = fieldlink_seal::open_owntracks(&key, payload)
            .map_err(|e| Rejection::forged(unit, &e))?;
        Ok((Cow::Owned(json), true))
    }

    fn decode_protobuf(
        &self,
        unit: &UnitId,
        kind: UplinkKind,
        payload: &[u8],
    ) -> Result<Uplink, Rejection> {
        use validate::{check_ack, check_gps, check_report, check_sos, check_status, check_unit};
        Ok(match kind {
            UplinkKind::Gps => {
                let m: v1::GpsReport = decode_pb(payload, "GpsReport")?;
                check_unit(&m.unit, unit)?;
                check_gps(&m, self.limits.max_batch_fixes)?;
                Uplink::Gps(m)
            }
            UplinkKind::Status => {
                let m: v1::StatusHeartbeat = decode_pb(payload, "StatusHeartbeat")?;
                check_unit(&m.unit, unit)?;
                check_status(&m)?;
                Uplink::Status(m)
            }
            UplinkKind::Ptt => {
                let m: v1::PttMessage = decode_pb(payload, "PttMessage")?;
                check_unit(&m.unit, unit)?;
                Uplink::Ptt(m)
            }
            UplinkKind::Video => {
                let m: v1::VideoMessage = decode_pb(payload, "VideoMessage")?;
                check_unit(&m.unit, unit)?;
                Uplink::Video(m)
            }
            UplinkKind::Sos => {
                let m: v1::Sos = decode_pb(payload, "Sos")?;
                check_unit(&m.unit, unit)?;
                check_sos(&m)?;
                Uplink::Sos(m)
            }
            UplinkKind::Ack => {
                let m: v1::Ack = decode_pb(payload, "Ack")?;
                check_unit(&m.unit, unit)?;
                check_ack(&m)?;
                Uplink::Ack(m)
            }
            UplinkKind::Report => {
                let m: v1::Report = decode_pb(payload, "Report")?;
                check_unit(&m.unit, unit)?;
                check_report(&m)?;
                Uplink::Report(m)
            }
        })
    }
}

/// What the topic says the payload is.
enum Body {
    Protobuf(UplinkKind),
    OwnTracks(String),
}

fn decode_pb<M: Message + Default>(payload: &[u8], what: &'static str) -> Result<M, Rejection> {
    M::decode(payload).map_err(|e| Rejection::Malformed {
        what,
        detail: e.to_string(),
    })
}

/// The seal key of `unit`, or why a sealed payload from it cannot be opened.
fn key_of(unit: &UnitId, units: &dyn UnitDirectory) -> Result<SealKey, Rejection> {
    units.seal_key(unit).ok_or_else(|| Rejection::Forged {
        unit: unit.clone(),
        detail: "the unit has no seal key yet (rotate its secret to make one)".to_owned(),
    })
}

impl Rejection {
    fn forged(unit: &UnitId, error: &SealError) -> Rejection {
        Rejection::Forged {
            unit: unit.clone(),
            detail: error.to_string(),
        }
    }
}

fn decode_owntracks(device: String, payload: &[u8]) -> Result<Uplink, Rejection> {
    match owntracks::decode(payload) {
        Ok(owntracks::Message::Location(location)) => {
            validate::check_owntracks(&location)?;
            Ok(Uplink::OwnTracksLocation { device, location })
        }
        Ok(owntracks::Message::Lwt(_)) => Ok(Uplink::OwnTracksLwt { device }),
        Ok(owntracks::Message::Encrypted(_)) => Err(Rejection::Malformed {
            what: "OwnTracks JSON",
            detail: "an encrypted message inside an encrypted message".to_owned(),
        }),
        Ok(owntracks::Message::Other(kind)) => Err(Rejection::IgnoredType {
            kind: rejection::clip(&kind),
        }),
        Err(e) => Err(Rejection::Malformed {
            what: "OwnTracks JSON",
            detail: e.to_string(),
        }),
    }
}

/// The unit [`decode_framed`]'s directory knows (and the topics it picks name).
pub const FRAMED_UNIT: &str = "u1";

/// Decodes one framed input with [`Decoder::decode`] under the default topics and limits, unit
/// [`FRAMED_UNIT`] active: the entry point fuzzers and the corpus test use.
///
/// The frame: the first byte `k` picks the topic by `k % 10`: 0 to 6 are unit `u1`'s uplink
/// topics in [`UplinkKind::ALL`] order (`gps`, `status`, `ptt`, `video`, `sos`, `ack`,
/// `report`), 7 its downlink, 8 `owntracks/u1/phone`, 9 a topic taken from the input (the next
/// byte is its length `n`, then `n` bytes read as lossy UTF-8). The rest is the payload. An empty
/// input is an empty payload on `gps`.
pub fn decode_framed(input: &[u8]) -> Result<Envelope, Rejection> {
    use std::sync::OnceLock;
    static DECODER: OnceLock<(Decoder, HashSet<UnitId>)> = OnceLock::new();
    let (decoder, units) = DECODER.get_or_init(|| {
        let unit = UnitId::new(FRAMED_UNIT).expect("a valid unit id");
        (
            Decoder::new(Topics::default(), Limits::default()),
            HashSet::from([unit]),
        )
    });
    let unit = UnitId::new(FRAMED_UNIT).expect("a valid unit id");
    let topics = decoder.topics();
    let (k, rest) = input.split_first().map_or((0, input), |(k, r)| (*k, r));
    let (topic, payload) = match k % 10 {
        i @ 0..=6 => (topics.uplink(&unit, UplinkKind::ALL[usize::from(i)]), rest),
        7 => (topics.downlink(&unit), rest),
        8 => (format!("{}/{unit}/phone", topics.owntracks_prefix()), rest),
        _ => {
            let (n, rest) = rest.split_first().map_or((0, rest), |(n, r)| (*n, r));
            let n = usize::from(n).min(rest.len());
            (String::from_utf8_lossy(&rest[..n]).into_owned(), &rest[n..])
        }
    };
    decoder.decode(&topic, payload, units)
}

#[cfg(test)]
mod tests;

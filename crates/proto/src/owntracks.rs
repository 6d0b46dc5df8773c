//! OwnTracks JSON payloads, so the stock OwnTracks app can be a responder.
//!
//! Field names and units follow the OwnTracks booklet ("JSON" chapter). Only `_type: location`
//! and `_type: lwt` carry anything fieldlink uses; every other `_type` (transition, waypoint,
//! card, status, ...) is recognised and reported as [`Message::Other`] so the caller can count it
//! rather than call it malformed. Unknown fields are ignored, as the booklet asks of readers.

use serde::Deserialize;
use thiserror::Error;

/// Why an OwnTracks payload could not be read.
#[derive(Debug, Error)]
pub enum OwnTracksError {
    /// Not JSON, or a required field is missing or of the wrong type.
    #[error("not a valid OwnTracks JSON message: {0}")]
    Json(#[from] serde_json::Error),
}

/// A decoded OwnTracks message.
// A message is decoded and consumed at once, never stored in bulk, so the size difference
// between variants costs nothing, while boxing `Location` would allocate once per fix.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `_type: location`
    Location(Location),
    /// `_type: lwt` (the app's MQTT last will: the device went away)
    Lwt(Lwt),
    /// `_type: encrypted` (payload encryption; the `data` field is the sealed message)
    Encrypted(Encrypted),
    /// Any other `_type`, by name.
    Other(String),
}

/// `_type: location`. Units as the booklet defines them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Location {
    /// Latitude, degrees (WGS-84). Required.
    pub lat: f64,
    /// Longitude, degrees (WGS-84). Required.
    pub lon: f64,
    /// Fix time, seconds since the Unix epoch. Required.
    pub tst: i64,
    /// Horizontal accuracy, metres.
    #[serde(default)]
    pub acc: Option<f64>,
    /// Altitude above sea level, metres.
    #[serde(default)]
    pub alt: Option<f64>,
    /// Vertical accuracy, metres.
    #[serde(default)]
    pub vac: Option<f64>,
    /// Velocity, **km/h**.
    #[serde(default)]
    pub vel: Option<f64>,
    /// Course over ground, degrees.
    #[serde(default)]
    pub cog: Option<f64>,
    /// Battery level, percent.
    #[serde(default)]
    pub batt: Option<f64>,
    /// Battery status: 0 unknown, 1 unplugged, 2 charging, 3 full.
    #[serde(default)]
    pub bs: Option<u8>,
    /// Tracker id (two characters shown on the map).
    #[serde(default)]
    pub tid: Option<String>,
    /// Trigger: `p` ping, `c` region, `r` reportLocation, `u` manual, `t` timer, `v` frequent.
    #[serde(default)]
    pub t: Option<String>,
    /// Connectivity: `w` Wi-Fi, `o` offline, `m` mobile data.
    #[serde(default)]
    pub conn: Option<String>,
    /// When the message was constructed, seconds since the epoch (differs from `tst` when the
    /// app buffered the fix while offline).
    #[serde(default)]
    pub created_at: Option<i64>,
    /// The topic the app thinks it publishes on (sent when configured; informative only).
    #[serde(default)]
    pub topic: Option<String>,
}

impl Location {
    /// Speed in metres per second (`vel` is km/h).
    pub fn speed_mps(&self) -> Option<f64> {
        self.vel.map(|kmh| kmh / 3.6)
    }

    /// True when the battery is charging or full (`bs` 2 or 3).
    pub fn charging(&self) -> bool {
        matches!(self.bs, Some(2 | 3))
    }
}

/// `_type: lwt`: the broker published the app's last will.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Lwt {
    /// When the app connected (the will was set), seconds since the epoch.
    #[serde(default)]
    pub tst: Option<i64>,
}

/// `_type: encrypted`: an OwnTracks message sealed with the user's key (libsodium secretbox).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Encrypted {
    /// Base64 of nonce (24 bytes) followed by the secretbox ciphertext.
    pub data: String,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "_type")]
    kind: String,
}

/// True when `payload` is an OwnTracks `_type: encrypted` message (without decoding the rest).
pub fn is_encrypted(payload: &[u8]) -> bool {
    serde_json::from_slice::<TypeOnly>(payload).is_ok_and(|t| t.kind == "encrypted")
}

/// Decodes an OwnTracks JSON payload.
pub fn decode(payload: &[u8]) -> Result<Message, OwnTracksError> {
    let TypeOnly { kind } = serde_json::from_slice(payload)?;
    Ok(match kind.as_str() {
        "location" => Message::Location(serde_json::from_slice(payload)?),
        "lwt" => Message::Lwt(serde_json::from_slice(payload)?),
        "encrypted" => Message::Encrypted(serde_json::from_slice(payload)?),
        _ => Message::Other(kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_booklet_location_example() {
        // The example in the OwnTracks booklet's JSON chapter, trimmed of iOS-only fields.
        let json = br#"{"_type":"location","acc":13,"alt":6,"batt":40,"bs":2,"conn":"w",
            "lat":30.2596,"lon":120.1772,"t":"u","tid":"ce","tst":1700000000,"vac":2,"vel":18,
            "cog":270,"BSSID":"b0:f2:8:45:94:33"}"#;
        let Message::Location(loc) = decode(json).expect("decodes") else {
            panic!("a location")
        };
        assert_eq!(loc.lat, 30.2596);
        assert_eq!(loc.tst, 1_700_000_000);
        assert_eq!(loc.acc, Some(13.0));
        assert_eq!(loc.speed_mps(), Some(5.0));
        assert!(loc.charging());
        assert_eq!(loc.tid.as_deref(), Some("ce"));
    }

    #[test]
    fn decodes_lwt_and_names_other_types() {
        assert_eq!(
            decode(br#"{"_type":"lwt","tst":1700000000}"#).expect("lwt"),
            Message::Lwt(Lwt {
                tst: Some(1_700_000_000)
            })
        );
        assert_eq!(
            decode(br#"{"_type":"transition","event":"enter"}"#).expect("other"),
            Message::Other("transition".into())
        );
    }

    #[test]
    fn refuses_a_location_without_coordinates_or_time() {
        assert!(decode(br#"{"_type":"location","lat":30.2}"#).is_err());
        assert!(decode(br#"{"_type":"location","lat":"x","lon":1,"tst":1}"#).is_err());
        assert!(decode(b"not json").is_err());
        assert!(decode(br#"{"lat":1,"lon":2,"tst":3}"#).is_err());
    }
}

//! One position report as the location core sees it, whatever uplink it came by.
//!
//! Owns the shape of a fix only. Decoding (protobuf or OwnTracks JSON) is ingest's; deciding
//! whether a fix is believable is the filters'.

use serde::{Deserialize, Serialize};

use fieldlink_clock::Timestamp;

/// Where a fix came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixSource {
    /// A fieldlink handset over its own protobuf topic.
    #[default]
    Native,
    /// The stock OwnTracks app over its JSON topic.
    OwnTracks,
}

/// One position report, WGS-84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// When the receiver took the fix (the handset's clock).
    pub fix_time: Timestamp,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Altitude above the ellipsoid in metres.
    pub alt_m: Option<f64>,
    /// Horizontal accuracy radius in metres.
    pub accuracy_m: Option<f32>,
    /// Ground speed in metres per second.
    pub speed_mps: Option<f32>,
    /// Course over ground in degrees clockwise from true north.
    pub heading_deg: Option<f32>,
    /// Handset battery, 0 to 100.
    pub battery_pct: Option<f32>,
    /// Satellites used (0 when unknown or a network fix).
    pub satellites: u32,
    /// Which uplink it came by.
    pub source: FixSource,
    /// The handset's message sequence number.
    pub seq: u64,
}

impl Fix {
    /// A native fix with only time and position; set the other fields as known.
    pub fn new(fix_time: Timestamp, lat: f64, lon: f64) -> Self {
        Fix {
            fix_time,
            lat,
            lon,
            alt_m: None,
            accuracy_m: None,
            speed_mps: None,
            heading_deg: None,
            battery_pct: None,
            satellites: 0,
            source: FixSource::Native,
            seq: 0,
        }
    }
}

//! The records the registry keeps: ids, play URLs, GB/T 28181 ids, handsets' streams and fixed
//! cameras.
//!
//! Plain data, serde-serializable (`snake_case`, as the HTTP API prints it), with the validation
//! a camera needs whether it came from a file or the API. Positions are WGS-84 degrees.

use std::fmt;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A responder's unit id (the handset's identity, as in the MQTT topic).
    UnitId
);
id_type!(
    /// A handset stream's id, chosen by the handset (`VideoMessage.stream_id`).
    StreamId
);
id_type!(
    /// A fixed camera's (checkpoint's) id, from its import file or the API.
    CameraId
);
id_type!(
    /// A start/stop request's id, chosen by the caller and echoed by the handset.
    RequestId
);

/// How a stream can be played. GB/T 28181 has no URL: see [`Gb28181Id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayProtocol {
    /// `rtsp://`
    Rtsp,
    /// `rtmp://`
    Rtmp,
    /// An HLS playlist (`https://…/index.m3u8`).
    Hls,
    /// A WHEP or signalling URL.
    Webrtc,
}

impl PlayProtocol {
    /// The lowercase name, as in files and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            PlayProtocol::Rtsp => "rtsp",
            PlayProtocol::Rtmp => "rtmp",
            PlayProtocol::Hls => "hls",
            PlayProtocol::Webrtc => "webrtc",
        }
    }

    /// From the lowercase name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rtsp" => Some(PlayProtocol::Rtsp),
            "rtmp" => Some(PlayProtocol::Rtmp),
            "hls" => Some(PlayProtocol::Hls),
            "webrtc" => Some(PlayProtocol::Webrtc),
            _ => None,
        }
    }
}

/// One way to play a stream.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlayUrl {
    /// The protocol.
    pub protocol: PlayProtocol,
    /// Where.
    pub url: String,
}

impl PlayUrl {
    /// A play URL.
    pub fn new(protocol: PlayProtocol, url: &str) -> Self {
        PlayUrl {
            protocol,
            url: url.to_owned(),
        }
    }
}

/// A GB/T 28181 address: the device (20-digit code) and its video channel (20-digit code).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Gb28181Id {
    /// The device id.
    pub device_id: String,
    /// The channel id.
    pub channel_id: String,
}

/// True when `id` is a GB/T 28181 code: exactly 20 ASCII digits.
pub fn is_gb28181_code(id: &str) -> bool {
    id.len() == 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// What a handset says about its stream (`StreamInfo` on the wire).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// `h264`, `h265`, ...
    pub codec: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f32,
    /// Kilobits per second.
    pub bitrate_kbps: u32,
    /// Where to play it.
    pub play_urls: Vec<PlayUrl>,
    /// Its GB/T 28181 address, when it is registered there.
    pub gb28181: Option<Gb28181Id>,
}

/// Whether a handset's stream is heard from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// A start or keepalive arrived within the configured silence.
    Live,
    /// Silent for the configured `stale_after_s`; a keepalive makes it live again.
    Stale,
}

/// A handset's live (or stale) stream. Stopped streams leave the registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// The stream.
    pub id: StreamId,
    /// The handset.
    pub unit: UnitId,
    /// Codec, resolution, rates, play URLs.
    pub info: StreamInfo,
    /// The request it answered, if any.
    pub request_id: Option<RequestId>,
    /// Live or stale.
    pub state: StreamState,
    /// When it started (as received).
    pub started_at: Timestamp,
    /// The last start or keepalive.
    pub last_seen: Timestamp,
}

/// A fixed camera (a checkpoint): a position, a name, and how to play it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// Its id.
    pub id: CameraId,
    /// Its name, as the command room shows it.
    pub name: String,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
    /// Where to play it.
    #[serde(default)]
    pub play_urls: Vec<PlayUrl>,
    /// Its GB/T 28181 address.
    #[serde(default)]
    pub gb28181: Option<Gb28181Id>,
}

impl Camera {
    /// Every problem with this camera, as `(field, message)`; empty when it is fine.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.id.0.trim().is_empty() {
            p.push(("id", "is empty".to_owned()));
        }
        if self.name.trim().is_empty() {
            p.push(("name", "is empty".to_owned()));
        }
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            p.push(("lat", format!("{} is not a latitude", self.lat)));
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            p.push(("lon", format!("{} is not a longitude", self.lon)));
        }
        for u in &self.play_urls {
            if u.url.trim().is_empty() {
                p.push(("play_urls", format!("empty {} url", u.protocol.as_str())));
            }
        }
        if let Some(g) = &self.gb28181 {
            for (field, code) in [
                ("gb28181_device_id", &g.device_id),
                ("gb28181_channel_id", &g.channel_id),
            ] {
                if !is_gb28181_code(code) {
                    p.push((field, format!("{code:?} is not 20 digits")));
                }
            }
        }
        if self.play_urls.is_empty() && self.gb28181.is_none() {
            p.push(("play_urls", "no play url and no gb28181 id".to_owned()));
        }
        p
    }
}

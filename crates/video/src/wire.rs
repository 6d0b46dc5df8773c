//! The mapping to and from the wire (`fieldlink-proto`): a handset's `VideoMessage` into a
//! [`VideoReport`] that [`Registry::apply`] takes, and an [`Effect::SendVideoRequest`] into the
//! `VideoRequest` the downlink carries. Kept here, beside the types it maps, so the ingest
//! adapter stays a one-liner and the mapping exists once.
//!
//! [`Effect::SendVideoRequest`]: crate::Effect::SendVideoRequest

use fieldlink_clock::Timestamp;
use fieldlink_proto::v1;
use thiserror::Error;

use crate::error::VideoError;
use crate::event::{Outcome, RequestAction};
use crate::model::{Gb28181Id, PlayProtocol, PlayUrl, RequestId, StreamId, StreamInfo, UnitId};
use crate::registry::Registry;

/// A handset's stream report, decoded from its `VideoMessage`.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoReport {
    /// The unit, as bound to the MQTT topic.
    pub unit: UnitId,
    /// The stream.
    pub stream: StreamId,
    /// What happened.
    pub body: ReportBody,
}

/// What a handset reported about a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportBody {
    /// Started (or re-announced).
    Started {
        /// The stream's metadata.
        info: StreamInfo,
        /// The request it answers, if any.
        request: Option<RequestId>,
    },
    /// Stopped, with the handset's free-text reason.
    Stopped {
        /// "user", "battery", "requested", ...
        reason: String,
    },
    /// Still streaming, with the current rates when the handset sends them.
    Keepalive {
        /// Kilobits per second.
        bitrate_kbps: Option<u32>,
        /// Frames per second.
        fps: Option<f32>,
    },
}

/// Why a `VideoMessage` was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    /// `stream_id` is empty.
    #[error("video message without stream_id")]
    NoStreamId,
    /// No `started`, `stopped` or `keepalive`.
    #[error("video message without an event")]
    NoEvent,
    /// `started` without `info`.
    #[error("video started without stream info")]
    NoInfo,
    /// The message names another unit than its topic.
    #[error("video message names unit {named} on the topic of {topic}")]
    UnitMismatch {
        /// The topic's unit.
        topic: UnitId,
        /// The message's `unit` field.
        named: String,
    },
}

impl VideoReport {
    /// Decodes `msg`, received on the topic of `unit` (the topic is the identity; the message's
    /// own `unit` field may be empty, and must match when it is not).
    pub fn from_wire(unit: &UnitId, msg: &v1::VideoMessage) -> Result<Self, WireError> {
        if !msg.unit.is_empty() && msg.unit != unit.0 {
            let (topic, named) = (unit.clone(), msg.unit.clone());
            return Err(WireError::UnitMismatch { topic, named });
        }
        if msg.stream_id.is_empty() {
            return Err(WireError::NoStreamId);
        }
        use v1::video_message::Event;
        let body = match msg.event.as_ref().ok_or(WireError::NoEvent)? {
            Event::Started(s) => ReportBody::Started {
                info: info(s.info.as_ref().ok_or(WireError::NoInfo)?),
                request: (!s.request_id.is_empty()).then(|| RequestId(s.request_id.clone())),
            },
            Event::Stopped(s) => ReportBody::Stopped {
                reason: s.reason.clone(),
            },
            Event::Keepalive(k) => ReportBody::Keepalive {
                bitrate_kbps: k.bitrate_kbps,
                fps: k.fps.filter(|f| f.is_finite()),
            },
        };
        let stream = StreamId(msg.stream_id.clone());
        Ok(VideoReport {
            unit: unit.clone(),
            stream,
            body,
        })
    }
}

/// The wire's `StreamInfo`. Play URLs of unknown protocol or empty URL are dropped (GB/T
/// 28181 is carried by its two ids); the ids count only when both are given.
fn info(i: &v1::StreamInfo) -> StreamInfo {
    let play_urls = (i.play_urls.iter())
        .filter(|u| !u.url.is_empty())
        .filter_map(|u| {
            let protocol = match v1::PlayProtocol::try_from(u.protocol).ok()? {
                v1::PlayProtocol::Rtsp => PlayProtocol::Rtsp,
                v1::PlayProtocol::Rtmp => PlayProtocol::Rtmp,
                v1::PlayProtocol::Hls => PlayProtocol::Hls,
                v1::PlayProtocol::Webrtc => PlayProtocol::Webrtc,
                v1::PlayProtocol::Unspecified | v1::PlayProtocol::Gb28181 => return None,
            };
            Some(PlayUrl::new(protocol, &u.url))
        })
        .collect();
    let gb28181 =
        (!i.gb28181_device_id.is_empty() && !i.gb28181_channel_id.is_empty()).then(|| Gb28181Id {
            device_id: i.gb28181_device_id.clone(),
            channel_id: i.gb28181_channel_id.clone(),
        });
    StreamInfo {
        codec: i.codec.clone(),
        width: i.width,
        height: i.height,
        fps: if i.fps.is_finite() { i.fps } else { 0.0 },
        bitrate_kbps: i.bitrate_kbps,
        play_urls,
        gb28181,
    }
}

/// The downlink `VideoRequest` for a request the registry sent.
pub fn video_request(request: &RequestId, action: &RequestAction) -> v1::VideoRequest {
    use v1::video_request::Action;
    let action = match action {
        RequestAction::Start(o) => Action::Start(v1::VideoStart {
            max_width: o.max_width,
            max_height: o.max_height,
            max_bitrate_kbps: o.max_bitrate_kbps,
            reason: o.reason.clone(),
        }),
        RequestAction::Stop { stream, reason } => Action::Stop(v1::VideoStop {
            stream_id: stream.0.clone(),
            reason: reason.clone(),
        }),
    };
    v1::VideoRequest {
        request_id: request.0.clone(),
        action: Some(action),
    }
}

impl Registry {
    /// Applies a handset's report (see [`VideoReport::from_wire`]).
    pub fn apply(&mut self, report: VideoReport, now: Timestamp) -> Result<Outcome, VideoError> {
        let (unit, stream) = (&report.unit, &report.stream);
        match report.body {
            ReportBody::Started { info, request } => {
                self.stream_started(unit, stream, info, request, now)
            }
            ReportBody::Stopped { reason } => self.stream_stopped(unit, stream, &reason, now),
            ReportBody::Keepalive { bitrate_kbps, fps } => {
                self.keepalive(unit, stream, bitrate_kbps, fps, now)
            }
        }
    }
}

//! What a command produces: journal events (every lifecycle change of a stream, request or
//! camera) and effects (downlink requests for the adapters to send), bundled in an [`Outcome`].
//!
//! Keepalives are not journalled (one every few seconds per stream): they only move
//! `last_seen` and the rates. A stream's going stale and live again is.

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{Camera, CameraId, RequestId, Stream, StreamId, UnitId};

/// Why a stream left the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopReason {
    /// The handset said it stopped (`VideoStopped.reason`: "user", "battery", "requested", ...).
    Handset {
        /// The handset's free text.
        reason: String,
    },
    /// The unit went offline (last will or presence timeout).
    UnitOffline,
    /// Nothing heard for `expire_after_s`.
    Silent,
}

/// What the handset should do for a start request (`VideoStart` on the wire; 0 means no limit).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartOptions {
    /// Pixels; 0: the handset's choice.
    pub max_width: u32,
    /// Pixels; 0: the handset's choice.
    pub max_height: u32,
    /// Kilobits per second; 0: the handset's choice.
    pub max_bitrate_kbps: u32,
    /// Shown to the responder ("incident inc-7").
    pub reason: String,
}

/// What a request asks of the handset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RequestAction {
    /// Start the camera.
    Start(StartOptions),
    /// Stop one stream.
    Stop {
        /// The stream.
        stream: StreamId,
        /// Shown to the responder.
        reason: String,
    },
}

/// A request sent and not yet answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// Its id (echoed in `VideoStarted.request_id`).
    pub id: RequestId,
    /// The handset asked.
    pub unit: UnitId,
    /// Start or stop.
    #[serde(flatten)]
    pub action: RequestAction,
    /// When it was sent.
    pub sent_at: Timestamp,
    /// When it times out.
    pub deadline: Timestamp,
}

/// What changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VideoChange {
    /// A handset started a stream (its full record).
    StreamStarted {
        /// The stream.
        stream: Box<Stream>,
    },
    /// A handset re-announced a stream with different metadata (its new record).
    StreamUpdated {
        /// The stream.
        stream: Box<Stream>,
    },
    /// A stream fell silent for `stale_after_s`.
    StreamStale {
        /// The stream.
        stream: StreamId,
        /// Its unit.
        unit: UnitId,
        /// The last start or keepalive.
        last_seen: Timestamp,
    },
    /// A stale stream was heard from again.
    StreamResumed {
        /// The stream.
        stream: StreamId,
        /// Its unit.
        unit: UnitId,
    },
    /// A stream left the registry.
    StreamStopped {
        /// The stream.
        stream: StreamId,
        /// Its unit.
        unit: UnitId,
        /// When it started.
        started_at: Timestamp,
        /// Why.
        reason: StopReason,
    },
    /// A start or stop request was sent (its full record).
    RequestSent {
        /// The request.
        request: Box<PendingRequest>,
    },
    /// A request was answered: the stream appeared (start) or stopped (stop).
    RequestFulfilled {
        /// The request.
        request: RequestId,
        /// Its unit.
        unit: UnitId,
        /// The stream that answered it.
        stream: StreamId,
    },
    /// A request was not answered within `request_timeout_s`.
    RequestTimedOut {
        /// The request.
        request: RequestId,
        /// Its unit.
        unit: UnitId,
        /// What it asked.
        #[serde(flatten)]
        action: RequestAction,
    },
    /// A fixed camera was added through the API (its full record).
    CameraAdded {
        /// The camera.
        camera: Box<Camera>,
    },
    /// A fixed camera was removed through the API.
    CameraRemoved {
        /// The camera.
        camera: CameraId,
    },
    /// A camera file was imported (one event, not one per checkpoint).
    CamerasImported {
        /// Where from (a file name).
        source: String,
        /// New cameras.
        added: usize,
        /// Cameras whose record changed.
        updated: usize,
        /// Cameras already as in the file.
        unchanged: usize,
    },
}

/// One journal entry. The store adds the sequence number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoEvent {
    /// When.
    pub at: Timestamp,
    /// What.
    #[serde(flatten)]
    pub change: VideoChange,
}

/// A message for an adapter to deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Send a `VideoRequest` on the unit's downlink (QoS 1); see `wire::video_request`.
    SendVideoRequest {
        /// The unit.
        unit: UnitId,
        /// The request's id.
        request: RequestId,
        /// Start or stop.
        #[serde(flatten)]
        action: RequestAction,
    },
}

/// What one command produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Journal events, in order.
    pub events: Vec<VideoEvent>,
    /// Messages to send, in order.
    pub effects: Vec<Effect>,
}

impl Outcome {
    /// Nothing happened (a retry, or nothing due).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.effects.is_empty()
    }

    pub(crate) fn event(&mut self, at: Timestamp, change: VideoChange) {
        self.events.push(VideoEvent { at, change });
    }
}

//! [`VideoError`]: why the registry refused a command. A refused command changes nothing.

use thiserror::Error;

use crate::model::{CameraId, RequestId, StreamId, UnitId};

/// Why the video core refused a command. Each variant carries what the caller needs to answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum VideoError {
    /// A keepalive or stop request for a stream the registry does not know.
    #[error("unknown stream {0}")]
    UnknownStream(StreamId),
    /// A unit spoke about a stream that belongs to another unit.
    #[error("stream {stream} belongs to unit {owner}, not {unit}")]
    WrongUnit {
        /// The stream.
        stream: StreamId,
        /// Its unit.
        owner: UnitId,
        /// The unit that spoke.
        unit: UnitId,
    },
    /// A request id already used for another request.
    #[error("request id {0} is already in use")]
    DuplicateRequest(RequestId),
    /// The unit already has a start request waiting.
    #[error("unit {unit} already has start request {request} pending")]
    RequestPending {
        /// The unit.
        unit: UnitId,
        /// The pending request.
        request: RequestId,
    },
    /// The unit is already streaming live (the caller can show that stream instead).
    #[error("unit {unit} is already streaming {stream}")]
    AlreadyStreaming {
        /// The unit.
        unit: UnitId,
        /// Its live stream.
        stream: StreamId,
    },
    /// No such camera.
    #[error("unknown camera {0}")]
    UnknownCamera(CameraId),
    /// A camera with this id exists.
    #[error("camera {0} already exists")]
    CameraExists(CameraId),
    /// The camera failed validation.
    #[error("camera {id}: {}", problems.iter().map(|(f, m)| format!("{f} {m}")).collect::<Vec<_>>().join("; "))]
    InvalidCamera {
        /// The camera.
        id: CameraId,
        /// `(field, message)` per problem.
        problems: Vec<(&'static str, String)>,
    },
}

impl VideoError {
    /// A stable, machine-readable code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            VideoError::UnknownStream(_) => "unknown_stream",
            VideoError::WrongUnit { .. } => "wrong_unit",
            VideoError::DuplicateRequest(_) => "duplicate_request",
            VideoError::RequestPending { .. } => "request_pending",
            VideoError::AlreadyStreaming { .. } => "already_streaming",
            VideoError::UnknownCamera(_) => "unknown_camera",
            VideoError::CameraExists(_) => "camera_exists",
            VideoError::InvalidCamera { .. } => "invalid_camera",
        }
    }
}

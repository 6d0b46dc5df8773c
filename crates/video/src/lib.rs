//! The live video registry: handsets' streams, the street's fixed cameras (checkpoints), and
//! remote start/stop requests. A core with no I/O.
//!
//! A state machine in the style of rumqttc's `state.rs` and the dispatch core: every command
//! takes the receive time `now` from the caller and returns an [`Outcome`] (journal
//! [`VideoEvent`]s, and [`Effect`]s for the adapters to deliver) or a [`VideoError`] that
//! changed nothing; [`Registry::tick`] fires what is due (stale streams, silent streams,
//! requests timed out) and [`Registry::next_deadline`] says when. It owns the stream and camera
//! records and the pending requests. It does not own the media (the handsets' own paths do), the
//! units' positions (the caller passes them to [`Registry::near`] from the location core),
//! presence (the caller reports [`Registry::unit_offline`]), nor persistence or the wire
//! adapters (though [`wire`] maps the protobuf messages, once).
//!
//! Layout:
//! - `model`: ids, [`PlayUrl`], [`Gb28181Id`], [`StreamInfo`], [`Stream`], [`Camera`].
//! - `config`: [`VideoConfig`] (15 s stale, 120 s silent, 30 s request timeout).
//! - `event`: [`VideoChange`], [`VideoEvent`], [`Effect`], [`Outcome`], requests' records.
//! - `registry`: [`Registry`], the stream lifecycle and [`Registry::tick`].
//! - `requests`: remote start/stop, fulfilment and time-outs.
//! - `cameras`: fixed cameras: add, remove, import.
//! - `import`: camera files, GeoJSON and CSV, with errors that name the line or feature and field.
//! - `near`: streams and cameras near a point, nearest first.
//! - [`wire`]: `VideoMessage` → [`VideoReport`], [`Effect`] → `VideoRequest`.

mod cameras;
mod config;
mod error;
mod event;
mod import;
mod model;
mod near;
mod registry;
mod requests;
pub mod wire;

#[cfg(test)]
mod tests;

pub use config::VideoConfig;
pub use error::VideoError;
pub use event::{
    Effect, Outcome, PendingRequest, RequestAction, StartOptions, StopReason, VideoChange,
    VideoEvent,
};
pub use import::{
    CSV_HEADER, ImportAt, ImportError, ImportErrors, cameras_from_csv, cameras_from_geojson,
};
pub use model::{
    Camera, CameraId, Gb28181Id, PlayProtocol, PlayUrl, RequestId, Stream, StreamId, StreamInfo,
    StreamState, UnitId, is_gb28181_code,
};
pub use near::{Nearby, NearbySource};
pub use registry::{Registry, RegistryState};
pub use wire::{ReportBody, VideoReport, WireError};

pub use fieldlink_clock::Timestamp;
pub use fieldlink_location::CoordSystem;

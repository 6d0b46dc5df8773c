//! The fieldlink wire, in one place.
//!
//! - [`v1`]: the protobuf messages generated from `proto/fieldlink/v1/*.proto` (see the comments
//!   there for every field). Handsets speak these over MQTT; the WebSocket speaks them too.
//! - [`topic`]: the MQTT topic grammar (`fl/v1/u/{unit}/{kind}`, `owntracks/{user}/{device}`) and
//!   the unit-id alphabet.
//! - [`owntracks`]: the OwnTracks JSON payloads, so a stock phone app can be a responder.
//!
//! This crate does no I/O and knows nothing of validation rules beyond the shape of the wire.

pub mod owntracks;
pub mod topic;

/// Messages of the `fieldlink.v1` protobuf package.
#[allow(missing_debug_implementations, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/fieldlink.v1.rs"));
}

pub use topic::{Topic, TopicError, Topics, UnitId, UplinkKind};

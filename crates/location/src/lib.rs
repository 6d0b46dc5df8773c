//! Where every responder is, was, and who is nearest.
//!
//! A core with no I/O: every method takes the current time from the caller ([`Timestamp`]), so
//! the server drives it from its clock and tests drive it from a manual one. It owns the latest
//! position per unit, the fix filters, presence, and the spatial queries over latest positions.
//! It does not own persistence (the store appends the [`FixOutcome::track`] records), nor the
//! wire decoding (ingest), nor who is "available" (dispatch passes that in as a predicate).
//!
//! Layout:
//! - `config`: [`LocationConfig`] and its TOML shape.
//! - `fix`: [`Fix`], one position report.
//! - `filter`: the fix filters and their reasons.
//! - `coords`: WGS-84 / GCJ-02 / BD-09 conversions.
//! - `presence`: online, stale, offline and the rules between them.
//! - `geofence`: geofences and grids, GeoJSON, enter/exit with hysteresis.
//! - `index`: the spatial index over latest positions.
//! - `track`: track history: ordering, simplification, GeoJSON and GPX.
//! - `tracker`: [`Tracker`], which ties the above together per unit.

mod config;
mod coords;
mod filter;
mod fix;
mod geofence;
pub mod index;
mod presence;
mod track;
mod tracker;

#[cfg(test)]
mod test_rng;

pub use config::{FilterConfig, LocationConfig, UnitProfile};
pub use coords::{
    CoordSystem, UnknownCoordSystem, bd09_to_gcj02, bd09_to_wgs84, gcj02_to_bd09, gcj02_to_wgs84,
    out_of_china, wgs84_to_bd09, wgs84_to_gcj02,
};
pub use filter::{FilterCounts, FilterReason};
pub use fix::{Fix, FixSource};
pub use geofence::{GeofenceError, Shape, Zone, ZoneEvent, ZoneKind, Zones};
pub use index::{EARTH_RADIUS_M, haversine_m};
pub use presence::{Presence, PresenceEvent};
pub use track::{Track, TrackPoint};
pub use tracker::{FixOutcome, Neighbour, Tracker, UnitState};

pub use fieldlink_clock::Timestamp;

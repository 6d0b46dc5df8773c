//! "Streams near a point": the handsets' streams and the fixed cameras within a radius,
//! nearest first, with their distance (`GET /api/v1/streams?near=lat,lon&radius_m=`).
//!
//! Handsets move, and this crate does not track them: the caller passes their latest positions
//! (from the location core) as a function. A unit with no known position is left out. Stale
//! streams are included, marked by their `state`, so the command room can grey them. A linear
//! scan: 1,562 cameras cost well under a millisecond, so no spatial index is kept here.

use fieldlink_location::haversine_m;
use serde::{Deserialize, Serialize};

use crate::model::{Camera, Stream, UnitId};
use crate::registry::Registry;

/// What was found near the point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NearbySource {
    /// A handset's stream.
    Handset {
        /// The stream.
        stream: Stream,
    },
    /// A fixed camera.
    Camera {
        /// The camera.
        camera: Camera,
    },
}

/// One result of [`Registry::near`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nearby {
    /// Great-circle distance from the point, metres.
    pub distance_m: f64,
    /// Where it is (WGS-84): the camera's site, or the unit's latest position.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// The stream or camera.
    #[serde(flatten)]
    pub source: NearbySource,
}

impl Nearby {
    /// The stream or camera id, for ordering ties and display.
    pub fn id(&self) -> &str {
        match &self.source {
            NearbySource::Handset { stream } => stream.id.as_str(),
            NearbySource::Camera { camera } => camera.id.as_str(),
        }
    }
}

impl Registry {
    /// Handsets' streams and fixed cameras within `radius_m` (inclusive) of (`lat`, `lon`),
    /// nearest first (ties by id). `position` gives a unit's latest WGS-84 (lat, lon).
    pub fn near(
        &self,
        lat: f64,
        lon: f64,
        radius_m: f64,
        position: impl Fn(&UnitId) -> Option<(f64, f64)>,
    ) -> Vec<Nearby> {
        let mut found = Vec::new();
        let mut keep = |plat: f64, plon: f64, source: &dyn Fn() -> NearbySource| {
            let distance_m = haversine_m(lat, lon, plat, plon);
            if distance_m <= radius_m {
                let (lat, lon, source) = (plat, plon, source());
                found.push(Nearby {
                    distance_m,
                    lat,
                    lon,
                    source,
                });
            }
        };
        for s in self.streams() {
            if let Some((plat, plon)) = position(&s.unit) {
                keep(plat, plon, &|| NearbySource::Handset { stream: s.clone() });
            }
        }
        for c in self.cameras() {
            keep(c.lat, c.lon, &|| NearbySource::Camera { camera: c.clone() });
        }
        found.sort_by(|a, b| {
            (a.distance_m.total_cmp(&b.distance_m)).then_with(|| a.id().cmp(b.id()))
        });
        found
    }
}

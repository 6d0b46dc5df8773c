//! Coordinate systems of Chinese map SDKs: WGS-84 ↔ GCJ-02 ↔ BD-09, both directions.
//!
//! Owns the conversions only. Positions are stored and indexed in WGS-84; a request that asks
//! for `?coords=gcj02` (AMap, Tencent) or `bd09` (Baidu) is converted on the way out, and a
//! geofence drawn on such a map is converted on the way in.
//!
//! The forward formulas are the published ones every converter shares (eviltransform,
//! coordtransform). Neither has a closed-form inverse, so the inverses here iterate the forward
//! formula until it lands within a micrometre of the input: the round trip is exact to well
//! under the 1 m the one-step inverses of those libraries miss by.
//!
//! Outside China GCJ-02 is the identity, with eviltransform's `outOfChina` box (a rectangle,
//! so it is the identity also over some neighbours' territory, as in every converter). BD-09's
//! offset applies everywhere, as Baidu and the converters apply it.

use std::f64::consts::PI;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Krasovsky 1940 semi-major axis and eccentricity², as GCJ-02 defines them.
const KRASOVSKY_A: f64 = 6_378_245.0;
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943;
const X_PI: f64 = PI * 3000.0 / 180.0;
/// Iterations stop once a step moves less than this many degrees (about 0.1 mm).
const CONVERGED_DEG: f64 = 1e-9;
const MAX_ITERATIONS: usize = 20;

/// A coordinate system a caller can ask positions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoordSystem {
    /// GPS, OpenStreetMap, the store.
    #[default]
    Wgs84,
    /// China's "Mars" coordinates: AMap, Tencent, Apple Maps in China.
    Gcj02,
    /// Baidu's, an offset on top of GCJ-02.
    Bd09,
}

impl CoordSystem {
    /// The lowercase name, as in `?coords=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CoordSystem::Wgs84 => "wgs84",
            CoordSystem::Gcj02 => "gcj02",
            CoordSystem::Bd09 => "bd09",
        }
    }

    /// A WGS-84 `(lat, lon)` in this system.
    pub fn from_wgs84(self, lat: f64, lon: f64) -> (f64, f64) {
        match self {
            CoordSystem::Wgs84 => (lat, lon),
            CoordSystem::Gcj02 => wgs84_to_gcj02(lat, lon),
            CoordSystem::Bd09 => wgs84_to_bd09(lat, lon),
        }
    }

    /// A `(lat, lon)` in this system, back in WGS-84.
    pub fn to_wgs84(self, lat: f64, lon: f64) -> (f64, f64) {
        match self {
            CoordSystem::Wgs84 => (lat, lon),
            CoordSystem::Gcj02 => gcj02_to_wgs84(lat, lon),
            CoordSystem::Bd09 => bd09_to_wgs84(lat, lon),
        }
    }
}

/// The `?coords=` value was not one of `wgs84`, `gcj02`, `bd09`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown coordinate system {0:?}: expected wgs84, gcj02 or bd09")]
pub struct UnknownCoordSystem(pub String);

impl FromStr for CoordSystem {
    type Err = UnknownCoordSystem;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "wgs84" | "wgs-84" => Ok(CoordSystem::Wgs84),
            "gcj02" | "gcj-02" => Ok(CoordSystem::Gcj02),
            "bd09" | "bd-09" => Ok(CoordSystem::Bd09),
            _ => Err(UnknownCoordSystem(s.to_owned())),
        }
    }
}

/// True outside the rectangle where GCJ-02 applies (eviltransform's `outOfChina`).
pub fn out_of_china(lat: f64, lon: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

/// The GCJ-02 offset `(dlat, dlon)` in degrees at a WGS-84 point.
fn gcj_delta(lat: f64, lon: f64) -> (f64, f64) {
    let (x, y) = (lon - 105.0, lat - 35.0);
    let (x_pi, y_pi) = (x * PI, y * PI);
    let common = 20.0 * (6.0 * x_pi).sin() + 20.0 * (2.0 * x_pi).sin();
    let mut dlat = common + 20.0 * y_pi.sin() + 40.0 * (y_pi / 3.0).sin();
    dlat += 160.0 * (y_pi / 12.0).sin() + 320.0 * (y_pi / 30.0).sin();
    let mut dlon = common + 20.0 * x_pi.sin() + 40.0 * (x_pi / 3.0).sin();
    dlon += 150.0 * (x_pi / 12.0).sin() + 300.0 * (x_pi / 30.0).sin();
    dlat = dlat * 2.0 / 3.0 - 100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y;
    dlat += 0.2 * x.abs().sqrt();
    dlon = dlon * 2.0 / 3.0 + 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y;
    dlon += 0.1 * x.abs().sqrt();

    let rad_lat = lat.to_radians();
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let dlat = dlat * 180.0 / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let dlon = dlon * 180.0 / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    (dlat, dlon)
}

/// WGS-84 to GCJ-02.
pub fn wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if out_of_china(lat, lon) {
        return (lat, lon);
    }
    let (dlat, dlon) = gcj_delta(lat, lon);
    (lat + dlat, lon + dlon)
}

/// GCJ-02 to WGS-84, by fixed-point iteration `w = g - delta(w)`: the offset changes by a few
/// millimetres per hundred metres, so it converges in three or four steps.
pub fn gcj02_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    if out_of_china(lat, lon) {
        return (lat, lon);
    }
    invert(lat, lon, |la, lo| {
        let (dlat, dlon) = gcj_delta(la, lo);
        (la + dlat, lo + dlon)
    })
}

/// GCJ-02 to BD-09.
pub fn gcj02_to_bd09(lat: f64, lon: f64) -> (f64, f64) {
    let z = (lon * lon + lat * lat).sqrt() + 0.00002 * (lat * X_PI).sin();
    let theta = lat.atan2(lon) + 0.000003 * (lon * X_PI).cos();
    (z * theta.sin() + 0.006, z * theta.cos() + 0.0065)
}

/// BD-09 to GCJ-02, iterating from the usual one-step inverse.
pub fn bd09_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    invert(lat, lon, gcj02_to_bd09)
}

/// WGS-84 to BD-09 (through GCJ-02).
pub fn wgs84_to_bd09(lat: f64, lon: f64) -> (f64, f64) {
    let (la, lo) = wgs84_to_gcj02(lat, lon);
    gcj02_to_bd09(la, lo)
}

/// BD-09 to WGS-84 (through GCJ-02).
pub fn bd09_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    let (la, lo) = bd09_to_gcj02(lat, lon);
    gcj02_to_wgs84(la, lo)
}

/// Solves `forward(x) = target` for an offset-like `forward` (one whose Jacobian is close to
/// the identity) by stepping `x += target - forward(x)` until the step is negligible.
fn invert(lat: f64, lon: f64, forward: impl Fn(f64, f64) -> (f64, f64)) -> (f64, f64) {
    let (mut x_lat, mut x_lon) = (lat, lon);
    for _ in 0..MAX_ITERATIONS {
        let (f_lat, f_lon) = forward(x_lat, x_lon);
        let (step_lat, step_lon) = (lat - f_lat, lon - f_lon);
        x_lat += step_lat;
        x_lon += step_lon;
        if step_lat.abs() < CONVERGED_DEG && step_lon.abs() < CONVERGED_DEG {
            break;
        }
    }
    (x_lat, x_lon)
}

#[cfg(test)]
mod tests;

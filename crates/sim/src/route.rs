//! Simple seeded routes: a unit walks a street-like grid inside a bounding box.
//!
//! The grid has a block of [`BLOCK_M`] metres (shrunk for a small box) inset half a block from
//! the edges. A route is a random walk of [`LEGS`] straight legs along grid lines (no U-turns),
//! travelled at the unit's speed, and then back again, so it never ends and never jumps:
//! [`Route::position_at`] is defined for every instant. Same seed, same route, on every machine
//! and rand version (the generator is the SplitMix64 below, not rand's `StdRng`, whose stream
//! may change between releases).
//!
//! Realism beyond this (stops at lights, one-way streets, the real street map) is not here.

use crate::SimError;

/// Street spacing of the grid, metres.
pub const BLOCK_M: f64 = 150.0;
/// Legs in a route before it turns back.
pub const LEGS: usize = 48;
/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m).
pub(crate) const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// A latitude/longitude box, WGS-84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    min_lat: f64,
    min_lon: f64,
    max_lat: f64,
    max_lon: f64,
}

impl Bbox {
    /// Shangcheng district, Hangzhou (roughly), the default area.
    pub const SHANGCHENG: Bbox = Bbox {
        min_lat: 30.22,
        min_lon: 120.15,
        max_lat: 30.30,
        max_lon: 120.21,
    };

    /// A box from its south-west and north-east corners; refused when empty or out of range.
    pub fn new(min_lat: f64, min_lon: f64, max_lat: f64, max_lon: f64) -> Result<Bbox, SimError> {
        let ok = min_lat < max_lat
            && min_lon < max_lon
            && (-85.0..=85.0).contains(&min_lat)
            && (-85.0..=85.0).contains(&max_lat)
            && (-180.0..=180.0).contains(&min_lon)
            && (-180.0..=180.0).contains(&max_lon);
        if !ok {
            return Err(SimError::Config(vec![format!(
                "bbox ({min_lat}, {min_lon})..({max_lat}, {max_lon}) must have min < max, latitudes within ±85 and longitudes within ±180"
            )]));
        }
        Ok(Bbox {
            min_lat,
            min_lon,
            max_lat,
            max_lon,
        })
    }

    /// True when the point is inside (edges included).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }

    /// The south-west and north-east corners: `(min_lat, min_lon, max_lat, max_lon)`.
    pub fn corners(&self) -> (f64, f64, f64, f64) {
        (self.min_lat, self.min_lon, self.max_lat, self.max_lon)
    }

    /// The point at fractions `fy` of the height (from the south) and `fx` of the width (from
    /// the west), each clamped to 0..=1: `(lat, lon)`.
    pub fn point_at(&self, fy: f64, fx: f64) -> (f64, f64) {
        (
            self.min_lat + (self.max_lat - self.min_lat) * fy.clamp(0.0, 1.0),
            self.min_lon + (self.max_lon - self.min_lon) * fx.clamp(0.0, 1.0),
        )
    }

    /// Metres per degree of longitude at the box's middle latitude.
    fn m_per_deg_lon(&self) -> f64 {
        M_PER_DEG * ((self.min_lat + self.max_lat) / 2.0).to_radians().cos()
    }
}

impl Default for Bbox {
    fn default() -> Self {
        Bbox::SHANGCHENG
    }
}

/// How a responder moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitKind {
    /// On foot, 1.4 m/s.
    OnFoot,
    /// E-bike, 5 m/s.
    EBike,
    /// Patrol car, 10 m/s (36 km/h in town).
    Car,
}

impl UnitKind {
    /// The unit type the server knows it by (`type` in `POST /api/v1/units`, `--type` of
    /// `fieldlink units add`).
    pub fn api_type(self) -> &'static str {
        match self {
            UnitKind::OnFoot => "on_foot",
            UnitKind::EBike => "e_bike",
            UnitKind::Car => "car",
        }
    }

    /// Travel speed, metres per second.
    pub fn speed_mps(self) -> f64 {
        match self {
            UnitKind::OnFoot => 1.4,
            UnitKind::EBike => 5.0,
            UnitKind::Car => 10.0,
        }
    }
}

/// Where a unit is at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoutePoint {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Direction of travel, degrees clockwise from north, 0..360.
    pub heading_deg: f64,
    /// Speed, metres per second.
    pub speed_mps: f64,
}

/// A deterministic route. See the module docs.
#[derive(Debug, Clone)]
pub struct Route {
    bbox: Bbox,
    speed_mps: f64,
    /// Waypoints, metres east and north of the box's south-west corner.
    points: Vec<(f64, f64)>,
    /// Distance from the start to each waypoint, metres.
    cumulative: Vec<f64>,
}

impl Route {
    /// A route for `seed` inside `bbox` at `speed_mps`.
    pub fn new(seed: u64, bbox: Bbox, speed_mps: f64) -> Route {
        Route::build(seed, bbox, speed_mps, None)
    }

    /// A route for `seed` that starts exactly at `(lat, lon)`: a short first leg to the nearest
    /// grid node, then the seeded walk from there. A responder back on patrol after a job uses
    /// it, so its track does not jump.
    pub fn starting_at(seed: u64, bbox: Bbox, speed_mps: f64, lat: f64, lon: f64) -> Route {
        Route::build(seed, bbox, speed_mps, Some((lat, lon)))
    }

    fn build(seed: u64, bbox: Bbox, speed_mps: f64, start: Option<(f64, f64)>) -> Route {
        let width = (bbox.max_lon - bbox.min_lon) * bbox.m_per_deg_lon();
        let height = (bbox.max_lat - bbox.min_lat) * M_PER_DEG;
        // At least a 2 x 2 grid, however small the box.
        let block = BLOCK_M.min(width / 2.0).min(height / 2.0);
        let nx = ((width - block) / block).floor() as i64 + 1;
        let ny = ((height - block) / block).floor() as i64 + 1;
        let origin = (
            (width - (nx - 1) as f64 * block) / 2.0,
            (height - (ny - 1) as f64 * block) / 2.0,
        );
        let mut rng = SplitMix64(seed);
        let mut at = (rng.below(nx as u64) as i64, rng.below(ny as u64) as i64);
        // The exact start, metres east and north of the south-west corner, and its nearest node.
        let start_m = start.map(|(lat, lon)| {
            (
                (lon - bbox.min_lon) * bbox.m_per_deg_lon(),
                (lat - bbox.min_lat) * M_PER_DEG,
            )
        });
        if let Some((east, north)) = start_m {
            let node = |v: f64, origin: f64, n: i64| {
                (((v - origin) / block).round() as i64).clamp(0, n - 1)
            };
            at = (node(east, origin.0, nx), node(north, origin.1, ny));
        }
        let mut nodes = vec![at];
        let mut last_dir: Option<(i64, i64)> = None;
        while nodes.len() <= LEGS {
            let dirs: Vec<(i64, i64)> = [(1, 0), (-1, 0), (0, 1), (0, -1)]
                .into_iter()
                .filter(|d| last_dir != Some((-d.0, -d.1)))
                .filter(|d| inside(at.0 + d.0, at.1 + d.1, nx, ny))
                .collect();
            let dir = dirs[rng.below(dirs.len() as u64) as usize];
            let mut blocks = 1 + rng.below(6) as i64;
            while !inside(at.0 + dir.0 * blocks, at.1 + dir.1 * blocks, nx, ny) {
                blocks -= 1;
            }
            at = (at.0 + dir.0 * blocks, at.1 + dir.1 * blocks);
            nodes.push(at);
            last_dir = Some(dir);
        }
        let points: Vec<(f64, f64)> = start_m
            .into_iter()
            .chain(
                nodes
                    .iter()
                    .map(|&(x, y)| (origin.0 + x as f64 * block, origin.1 + y as f64 * block)),
            )
            .collect();
        let mut cumulative = vec![0.0];
        for w in points.windows(2) {
            let leg = (w[1].0 - w[0].0).abs() + (w[1].1 - w[0].1).abs();
            cumulative.push(cumulative.last().copied().unwrap_or(0.0) + leg);
        }
        Route {
            bbox,
            speed_mps: speed_mps.max(0.0),
            points,
            cumulative,
        }
    }

    /// A route for `seed` inside `bbox` at the speed of `kind`.
    pub fn for_kind(seed: u64, bbox: Bbox, kind: UnitKind) -> Route {
        Route::new(seed, bbox, kind.speed_mps())
    }

    /// Length one way, metres.
    pub fn length_m(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    /// The configured speed, metres per second.
    pub fn speed_mps(&self) -> f64 {
        self.speed_mps
    }

    /// Where the unit is `t` after the route's start.
    pub fn position_at(&self, t: std::time::Duration) -> RoutePoint {
        let len = self.length_m();
        let travelled = (self.speed_mps * t.as_secs_f64()) % (2.0 * len);
        let (d, back) = if travelled > len {
            (2.0 * len - travelled, true)
        } else {
            (travelled, false)
        };
        // The leg that holds distance `d`.
        let i = self
            .cumulative
            .partition_point(|&c| c <= d)
            .clamp(1, self.points.len() - 1)
            - 1;
        let (a, b) = (self.points[i], self.points[i + 1]);
        let leg = self.cumulative[i + 1] - self.cumulative[i];
        let f = if leg > 0.0 {
            ((d - self.cumulative[i]) / leg).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (east, north) = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
        let mut heading = (b.0 - a.0).atan2(b.1 - a.1).to_degrees();
        if back {
            heading += 180.0;
        }
        RoutePoint {
            lat: self.bbox.min_lat + north / M_PER_DEG,
            lon: self.bbox.min_lon + east / self.bbox.m_per_deg_lon(),
            heading_deg: heading.rem_euclid(360.0),
            speed_mps: self.speed_mps,
        }
    }
}

fn inside(x: i64, y: i64, nx: i64, ny: i64) -> bool {
    (0..nx).contains(&x) && (0..ny).contains(&y)
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and its stream is fixed forever. Public so
/// that drivers (the demo's incident generator) draw from the same kind of seeded stream.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`; the modulo bias is irrelevant at these sizes).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
#[path = "route/tests.rs"]
mod tests;

//! Spatial indexes over the latest position of each unit, keyed by a dense slot number.
//!
//! Owns the geometry every index shares (haversine, unit vectors on the sphere, the top-k
//! selection) and the [`SpatialIndex`] trait, so the chosen index and the ones it was measured
//! against answer identically and sit side by side in `benches/index.rs`. Does not own unit ids
//! or state: the tracker maps ids to slots and passes predicates down as `FnMut(slot) -> bool`.
//!
//! Distances are ranked by the chord between unit vectors, which orders points exactly as the
//! great-circle distance does but costs three multiplications instead of four trig calls; the
//! distances returned are haversine metres, the same figure [`haversine_m`] gives.

mod grid;
mod rtree;
mod scan;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

pub use grid::GridIndex;
pub use rtree::RTreeIndex;
pub use scan::ScanIndex;

/// Mean Earth radius in metres (IUGG), the one geo's `Haversine` uses.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres between two WGS-84 points, on a sphere.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// True when [`haversine_m`] between the points is certainly below `limit_m`, found without a
/// trig call; false when the bound cannot tell (ask `haversine_m` then). The jump filter's fast
/// path: nearly every fix is far within reach of the unit's previous one.
///
/// Bounds haversine's `h = sin²(dφ/2) + cos φ1 cos φ2 sin²(dλ/2)` from above, term by term, on
/// the very same `dφ` and `dλ`: `sin² x ≤ x²`, and `0 ≤ cos x ≤ 1 − x²/2 + x⁴/24` for
/// `|x| ≤ π/2`; then `asin y ≤ y / √(1 − y²) < 1.0001 y` for `h ≤ 1e-4` (up to ~127 km).
/// Rounding in either formula is some 1e-15 relative, far inside the 1e-4 relative and 1 mm
/// margins, so a `true` here means `haversine_m(..) < limit_m` as computed, not just in theory.
pub(crate) fn surely_within_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64, limit_m: f64) -> bool {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let cos_above = |x: f64| {
        let x2 = x * x;
        1.0 - x2 / 2.0 + x2 * x2 / 24.0
    };
    let (hp, hl) = (dp / 2.0, dl / 2.0);
    let h = hp * hp + cos_above(p1) * cos_above(p2) * (hl * hl);
    // Every comparison is false on NaN, which falls back to haversine as it should.
    let on_sphere =
        p1.abs() <= std::f64::consts::FRAC_PI_2 && p2.abs() <= std::f64::consts::FRAC_PI_2;
    on_sphere && h <= 1e-4 && 2.0 * EARTH_RADIUS_M * h.sqrt() * 1.0001 + 1e-3 < limit_m
}

/// A unit found by a query: its slot and its distance from the query point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The slot the tracker gave the unit.
    pub slot: u32,
    /// Great-circle distance in metres.
    pub distance_m: f64,
}

/// What the tracker needs from a spatial index. Every implementation returns the same answers;
/// they differ only in cost.
pub trait SpatialIndex: std::fmt::Debug {
    /// Puts `slot` at a position, moving it if it is already indexed.
    fn upsert(&mut self, slot: u32, lat: f64, lon: f64);
    /// Takes `slot` out of the index (no-op if absent).
    fn remove(&mut self, slot: u32);
    /// Up to `k` slots accepted by `filter`, nearest first. The search widens until it has `k`
    /// accepted slots or has seen every slot, so a selective filter costs time, not answers.
    fn nearest(
        &self,
        lat: f64,
        lon: f64,
        k: usize,
        filter: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<Hit>;
    /// Every slot within `radius_m` of the point, nearest first.
    fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<Hit>;
    /// Every slot in the box, in no particular order (the candidates of a polygon query).
    fn within_bbox(&self, min_lat: f64, min_lon: f64, max_lat: f64, max_lon: f64) -> Vec<u32>;
    /// The position of `slot`, as last upserted.
    fn position(&self, slot: u32) -> Option<(f64, f64)>;
    /// Slots indexed.
    fn len(&self) -> usize;
    /// True when nothing is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes the index holds on the heap (capacity, not length), for memory-per-unit figures.
    fn heap_bytes(&self) -> usize;
}

/// A point on the unit sphere; Euclidean distance between two is the chord.
pub(crate) type Xyz = [f64; 3];

pub(crate) fn xyz(lat: f64, lon: f64) -> Xyz {
    let (sp, cp) = lat.to_radians().sin_cos();
    let (sl, cl) = lon.to_radians().sin_cos();
    [cp * cl, cp * sl, sp]
}

pub(crate) fn chord2(a: &Xyz, b: &Xyz) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// The squared chord of a great-circle distance (radius queries compare against it).
pub(crate) fn chord2_of_m(distance_m: f64) -> f64 {
    let half_angle = (distance_m / EARTH_RADIUS_M / 2.0).min(std::f64::consts::FRAC_PI_2);
    (2.0 * half_angle.sin()).powi(2)
}

/// The `k` smallest by squared chord, kept in a max-heap so the worst is evicted first.
#[derive(Debug)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Ranked>,
}

#[derive(Debug, Clone, Copy)]
struct Ranked(f64, u32);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    // Ties broken by slot so that every index returns the same order.
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1024) + 1),
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    /// The squared chord a candidate must beat to enter (infinite until full).
    pub(crate) fn bound(&self) -> f64 {
        match self.heap.peek() {
            Some(worst) if self.is_full() => worst.0,
            _ => f64::INFINITY,
        }
    }

    pub(crate) fn offer(&mut self, chord2: f64, slot: u32) {
        if self.k == 0 {
            return;
        }
        let candidate = Ranked(chord2, slot);
        if !self.is_full() {
            self.heap.push(candidate);
        } else if self.heap.peek().is_some_and(|worst| candidate < *worst) {
            self.heap.pop();
            self.heap.push(candidate);
        }
    }

    /// Slots nearest first, with haversine distances from `position`.
    pub(crate) fn into_hits(
        self,
        lat: f64,
        lon: f64,
        position: impl Fn(u32) -> (f64, f64),
    ) -> Vec<Hit> {
        hits_sorted(self.heap.into_sorted_vec(), lat, lon, position)
    }
}

/// Sorts `(chord2, slot)` candidates nearest first and turns them into hits.
pub(crate) fn sort_hits(
    mut found: Vec<(f64, u32)>,
    lat: f64,
    lon: f64,
    position: impl Fn(u32) -> (f64, f64),
) -> Vec<Hit> {
    found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let ranked = found.into_iter().map(|(c, s)| Ranked(c, s)).collect();
    hits_sorted(ranked, lat, lon, position)
}

fn hits_sorted(
    ranked: Vec<Ranked>,
    lat: f64,
    lon: f64,
    position: impl Fn(u32) -> (f64, f64),
) -> Vec<Hit> {
    ranked
        .into_iter()
        .map(|Ranked(_, slot)| {
            let (plat, plon) = position(slot);
            Hit {
                slot,
                distance_m: haversine_m(lat, lon, plat, plon),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

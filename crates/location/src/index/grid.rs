//! The chosen index: a uniform grid of lat/lon cells in a hash map, each cell a dense array.
//!
//! Owns the cells and where each slot sits in them. Chosen over the R-tree by measurement
//! (`benches/index.rs`): a unit that moves within its cell, as almost every fix does, costs a
//! hash lookup and a store; one that crosses a cell edge, a swap-remove and a push. The R-tree
//! rebalances on every remove and insert. Queries walk rings of cells outwards and stop once the
//! nearest unvisited cell is farther than the k-th best so far, so a selective predicate widens
//! the search instead of losing answers; when the rings would cost more than the occupied cells,
//! it visits the remaining occupied cells nearest first instead.
//!
//! Cells are square in degrees, so they narrow in metres away from the equator (the bounds
//! account for that). The grid does not wrap at ±180° longitude: a district never straddles it.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use bounds::{CellHasher, pack, ring, unpack};

use super::{EARTH_RADIUS_M, Hit, SpatialIndex, TopK, Xyz, chord2, chord2_of_m, sort_hits, xyz};

mod bounds;

/// Metres per degree of latitude on the mean sphere.
const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
const ABSENT: u64 = u64::MAX;

/// A grid of cells `cell_m` metres tall (and as wide at the equator).
#[derive(Debug)]
pub struct GridIndex {
    cell_deg: f64,
    cells: HashMap<u64, Vec<Entry>, BuildHasherDefault<CellHasher>>,
    slots: Vec<Place>,
    len: usize,
    /// Cell coordinates ever occupied, `(min_x, min_y, max_x, max_y)`: rings beyond it are empty.
    extent: (i32, i32, i32, i32),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    point: Xyz,
    slot: u32,
}

#[derive(Debug, Clone, Copy)]
struct Place {
    lat: f64,
    lon: f64,
    cell: u64,
    at: u32,
}

impl GridIndex {
    /// A grid with cells `cell_m` metres tall. About ten units per cell at the densest point is
    /// the sweet spot; the default of 250 m fits a district of 100k responders.
    pub fn new(cell_m: f64) -> Self {
        GridIndex {
            cell_deg: (cell_m / M_PER_DEG).clamp(1e-5, 10.0),
            cells: HashMap::default(),
            slots: Vec::new(),
            len: 0,
            extent: (i32::MAX, i32::MAX, i32::MIN, i32::MIN),
        }
    }

    fn cell_of(&self, lat: f64, lon: f64) -> (i32, i32) {
        (
            floor_i32(lon / self.cell_deg),
            floor_i32(lat / self.cell_deg),
        )
    }

    fn take_out(&mut self, place: Place) {
        let Some(cell) = self.cells.get_mut(&place.cell) else {
            return;
        };
        cell.swap_remove(place.at as usize);
        if let Some(moved) = cell.get(place.at as usize) {
            self.slots[moved.slot as usize].at = place.at;
        }
    }

    fn visit(&self, key: u64, q: &Xyz, top: &mut TopK, filter: &mut dyn FnMut(u32) -> bool) {
        for e in self.cells.get(&key).map_or(&[][..], Vec::as_slice) {
            let c = chord2(q, &e.point);
            if c <= top.bound() && filter(e.slot) {
                top.offer(c, e.slot);
            }
        }
    }

    /// Visits the occupied cells not yet visited (outside ring `r - 1`), nearest first.
    fn visit_rest(
        &self,
        lat: f64,
        lon: f64,
        r: i32,
        q: &Xyz,
        top: &mut TopK,
        filter: &mut dyn FnMut(u32) -> bool,
    ) {
        let (cx, cy) = self.cell_of(lat, lon);
        let mut rest: Vec<(f64, u64)> = self
            .cells
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(&key, _)| (key, unpack(key)))
            .filter(|(_, (x, y))| (x - cx).abs().max((y - cy).abs()) >= r)
            .map(|(key, (x, y))| (chord2_of_m(self.cell_gap_m(lat, lon, x, y)), key))
            .collect();
        rest.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for (gap, key) in rest {
            if gap > top.bound() {
                break;
            }
            self.visit(key, q, top, filter);
        }
    }
}

/// `v.floor() as i32`, bit for bit (saturating, NaN to 0), without a call: on the baseline
/// x86-64 target `floor` is a libm call, ~25 instructions, twice per update.
fn floor_i32(v: f64) -> i32 {
    let t = v as i32; // truncates toward zero, saturating
    if f64::from(t) > v {
        t.saturating_sub(1)
    } else {
        t
    }
}

impl SpatialIndex for GridIndex {
    fn upsert(&mut self, slot: u32, lat: f64, lon: f64) {
        let (x, y) = self.cell_of(lat, lon);
        let key = pack(x, y);
        let point = xyz(lat, lon);
        let i = slot as usize;
        if i >= self.slots.len() {
            let absent = Place {
                lat: f64::NAN,
                lon: f64::NAN,
                cell: ABSENT,
                at: 0,
            };
            self.slots.resize(i + 1, absent);
        }
        let place = self.slots[i];
        if place.cell == key {
            // The common case: a small move inside the cell.
            if let Some(cell) = self.cells.get_mut(&key) {
                cell[place.at as usize].point = point;
            }
            self.slots[i].lat = lat;
            self.slots[i].lon = lon;
            return;
        }
        if place.cell == ABSENT {
            self.len += 1;
        } else {
            self.take_out(place);
        }
        let cell = self.cells.entry(key).or_default();
        let at = cell.len() as u32;
        cell.push(Entry { point, slot });
        self.slots[i] = Place {
            lat,
            lon,
            cell: key,
            at,
        };
        let e = &mut self.extent;
        *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y));
    }

    fn remove(&mut self, slot: u32) {
        let Some(&place) = self.slots.get(slot as usize) else {
            return;
        };
        if place.cell != ABSENT {
            self.take_out(place);
            self.slots[slot as usize].cell = ABSENT;
            self.len -= 1;
        }
    }

    fn nearest(
        &self,
        lat: f64,
        lon: f64,
        k: usize,
        filter: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<Hit> {
        let mut top = TopK::new(k);
        if k == 0 || self.len == 0 {
            return Vec::new();
        }
        let q = xyz(lat, lon);
        let (cx, cy) = self.cell_of(lat, lon);
        let (min_x, min_y, max_x, max_y) = self.extent;
        let d = self.cell_deg;
        for r in 0..i32::MAX {
            if r > 0 {
                let covered = cx - (r - 1) <= min_x
                    && cx + (r - 1) >= max_x
                    && cy - (r - 1) <= min_y
                    && cy + (r - 1) >= max_y;
                if covered {
                    break;
                }
                let lat_band = (f64::from(cy - r + 1) * d, f64::from(cy + r) * d);
                let lon_band = (f64::from(cx - r + 1) * d, f64::from(cx + r) * d);
                let gap = Self::gap_m(lat, lon, lat_band, lon_band);
                if chord2_of_m(gap) > top.bound() {
                    break;
                }
                let side = 2 * i64::from(r) + 1;
                if (side * side) as usize > 2 * self.cells.len() {
                    self.visit_rest(lat, lon, r, &q, &mut top, filter);
                    break;
                }
            }
            for (x, y) in ring(cx, cy, r) {
                if (min_x..=max_x).contains(&x) && (min_y..=max_y).contains(&y) {
                    self.visit(pack(x, y), &q, &mut top, filter);
                }
            }
        }
        top.into_hits(lat, lon, |s| {
            let p = self.slots[s as usize];
            (p.lat, p.lon)
        })
    }

    fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<Hit> {
        let (q, limit) = (xyz(lat, lon), chord2_of_m(radius_m));
        let alpha = radius_m / EARTH_RADIUS_M;
        let dlat = alpha.to_degrees();
        let reaches_pole = lat.abs() + dlat >= 90.0;
        let sin_ratio = alpha.sin() / lat.to_radians().cos();
        let dlon = if reaches_pole || sin_ratio >= 1.0 || alpha >= std::f64::consts::FRAC_PI_2 {
            360.0
        } else {
            sin_ratio.asin().to_degrees()
        };
        let mut found = Vec::new();
        self.for_each_in_box(lat - dlat, lon - dlon, lat + dlat, lon + dlon, |e| {
            let c = chord2(&q, &e.point);
            if c <= limit {
                found.push((c, e.slot));
            }
        });
        sort_hits(found, lat, lon, |s| {
            let p = self.slots[s as usize];
            (p.lat, p.lon)
        })
    }

    fn within_bbox(&self, min_lat: f64, min_lon: f64, max_lat: f64, max_lon: f64) -> Vec<u32> {
        let mut found = Vec::new();
        self.for_each_in_box(min_lat, min_lon, max_lat, max_lon, |e| {
            let p = self.slots[e.slot as usize];
            if (min_lat..=max_lat).contains(&p.lat) && (min_lon..=max_lon).contains(&p.lon) {
                found.push(e.slot);
            }
        });
        found
    }

    fn position(&self, slot: u32) -> Option<(f64, f64)> {
        let p = self.slots.get(slot as usize)?;
        (p.cell != ABSENT).then_some((p.lat, p.lon))
    }

    fn len(&self) -> usize {
        self.len
    }

    fn heap_bytes(&self) -> usize {
        let entries: usize = self.cells.values().map(|c| c.capacity()).sum();
        self.slots.capacity() * size_of::<Place>()
            + entries * size_of::<Entry>()
            + self.cells.capacity() * (size_of::<(u64, Vec<Entry>)>() + 1)
    }
}

impl GridIndex {
    /// Calls `f` on every entry of the cells the box touches (a superset of the box's points).
    fn for_each_in_box(
        &self,
        lat0: f64,
        lon0: f64,
        lat1: f64,
        lon1: f64,
        mut f: impl FnMut(&Entry),
    ) {
        let (min_x, min_y, max_x, max_y) = self.extent;
        let (x0, y0) = self.cell_of(lat0.max(-90.0), lon0.max(-180.0));
        let (x1, y1) = self.cell_of(lat1.min(90.0), lon1.min(180.0));
        let (x0, y0, x1, y1) = (x0.max(min_x), y0.max(min_y), x1.min(max_x), y1.min(max_y));
        if x0 > x1 || y0 > y1 {
            return;
        }
        let rectangle = (i64::from(x1 - x0) + 1) * (i64::from(y1 - y0) + 1);
        if rectangle as usize > self.cells.len() {
            // Cheaper to look at every occupied cell than at every cell of a huge box.
            for (&key, cell) in &self.cells {
                let (x, y) = unpack(key);
                if (x0..=x1).contains(&x) && (y0..=y1).contains(&y) {
                    cell.iter().for_each(&mut f);
                }
            }
            return;
        }
        for y in y0..=y1 {
            for x in x0..=x1 {
                if let Some(cell) = self.cells.get(&pack(x, y)) {
                    cell.iter().for_each(&mut f);
                }
            }
        }
    }
}

#[cfg(test)]
mod floor_tests {
    #[test]
    fn floor_i32_is_floor_as_i32() {
        let edges = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            -1.0 - f64::EPSILON,
            2_147_483_647.5,
            -2_147_483_648.5,
            -2_147_483_648.0,
            3e9,
            -3e9,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
        ];
        let mut v = 0.123_456_789f64;
        let steps = (0..10_000).map(|i| {
            v = -v * 1.37 + f64::from(i);
            v
        });
        let quarters = (-4000..4000).map(|i| f64::from(i) / 4.0);
        for v in edges.into_iter().chain(steps).chain(quarters) {
            assert_eq!(super::floor_i32(v), v.floor() as i32, "{v}");
        }
    }
}

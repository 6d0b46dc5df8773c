//! The brute-force index: a dense array scanned in full for every query.
//!
//! Owns nothing clever on purpose. It is the reference the other indexes are tested against
//! and the baseline the benchmark prints beside them; updates are as cheap as they can be.

use super::{Hit, SpatialIndex, TopK, Xyz, chord2, chord2_of_m, sort_hits, xyz};

const ABSENT: f64 = f64::NAN;

/// Positions in a dense array indexed by slot; every query looks at every slot.
#[derive(Debug, Default)]
pub struct ScanIndex {
    /// `(lat, lon)` per slot; NaN marks an empty slot.
    positions: Vec<(f64, f64)>,
    points: Vec<Xyz>,
    len: usize,
}

impl ScanIndex {
    /// An empty index.
    pub fn new() -> Self {
        ScanIndex::default()
    }

    fn occupied(&self) -> impl Iterator<Item = (u32, &Xyz)> {
        self.positions
            .iter()
            .zip(&self.points)
            .enumerate()
            .filter(|(_, (p, _))| !p.0.is_nan())
            .map(|(i, (_, x))| (i as u32, x))
    }

    fn at(&self, slot: u32) -> (f64, f64) {
        self.positions[slot as usize]
    }
}

impl SpatialIndex for ScanIndex {
    fn upsert(&mut self, slot: u32, lat: f64, lon: f64) {
        let i = slot as usize;
        if i >= self.positions.len() {
            self.positions.resize(i + 1, (ABSENT, ABSENT));
            self.points.resize(i + 1, [0.0; 3]);
        }
        if self.positions[i].0.is_nan() {
            self.len += 1;
        }
        self.positions[i] = (lat, lon);
        self.points[i] = xyz(lat, lon);
    }

    fn remove(&mut self, slot: u32) {
        if let Some(p) = self.positions.get_mut(slot as usize)
            && !p.0.is_nan()
        {
            *p = (ABSENT, ABSENT);
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
        let q = xyz(lat, lon);
        let mut top = TopK::new(k);
        for (slot, p) in self.occupied() {
            let c = chord2(&q, p);
            if c <= top.bound() && filter(slot) {
                top.offer(c, slot);
            }
        }
        top.into_hits(lat, lon, |s| self.at(s))
    }

    fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<Hit> {
        let (q, limit) = (xyz(lat, lon), chord2_of_m(radius_m));
        let found = self
            .occupied()
            .map(|(slot, p)| (chord2(&q, p), slot))
            .filter(|(c, _)| *c <= limit)
            .collect();
        sort_hits(found, lat, lon, |s| self.at(s))
    }

    fn within_bbox(&self, min_lat: f64, min_lon: f64, max_lat: f64, max_lon: f64) -> Vec<u32> {
        self.occupied()
            .map(|(slot, _)| slot)
            .filter(|&s| {
                let (la, lo) = self.at(s);
                (min_lat..=max_lat).contains(&la) && (min_lon..=max_lon).contains(&lo)
            })
            .collect()
    }

    fn position(&self, slot: u32) -> Option<(f64, f64)> {
        self.positions
            .get(slot as usize)
            .copied()
            .filter(|p| !p.0.is_nan())
    }

    fn len(&self) -> usize {
        self.len
    }

    fn heap_bytes(&self) -> usize {
        self.positions.capacity() * size_of::<(f64, f64)>()
            + self.points.capacity() * size_of::<Xyz>()
    }
}

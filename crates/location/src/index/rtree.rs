//! The index measured against the grid and rejected: an rstar R-tree with remove and insert.
//!
//! Owns an R-tree of unit vectors on the sphere (3-D, so that its Euclidean nearest-neighbour
//! search ranks by true great-circle distance) and the last point of each slot, which `remove`
//! needs to find the entry. Kept in the crate so the benchmark and the cross-check tests run the
//! same code the decision was made on; the tracker does not use it.

use rstar::RTree;
use rstar::primitives::GeomWithData;

use super::{Hit, SpatialIndex, Xyz, chord2_of_m, sort_hits, xyz};

type Item = GeomWithData<Xyz, u32>;

/// An R-tree over unit vectors; every move is a remove and an insert.
#[derive(Debug, Default)]
pub struct RTreeIndex {
    tree: RTree<Item>,
    slots: Vec<Option<(f64, f64, Xyz)>>,
}

impl RTreeIndex {
    /// An empty index.
    pub fn new() -> Self {
        RTreeIndex::default()
    }

    /// Builds the tree in one go (the R-tree's fast path for a restart from a snapshot).
    pub fn bulk_load(positions: impl IntoIterator<Item = (u32, f64, f64)>) -> Self {
        let mut slots = Vec::new();
        let mut items = Vec::new();
        for (slot, lat, lon) in positions {
            let p = xyz(lat, lon);
            if slot as usize >= slots.len() {
                slots.resize(slot as usize + 1, None);
            }
            slots[slot as usize] = Some((lat, lon, p));
            items.push(Item::new(p, slot));
        }
        RTreeIndex {
            tree: RTree::bulk_load(items),
            slots,
        }
    }

    fn at(&self, slot: u32) -> (f64, f64) {
        let (lat, lon, _) = self.slots[slot as usize].expect("indexed slot");
        (lat, lon)
    }
}

impl SpatialIndex for RTreeIndex {
    fn upsert(&mut self, slot: u32, lat: f64, lon: f64) {
        let i = slot as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, None);
        }
        if let Some((_, _, old)) = self.slots[i] {
            self.tree.remove(&Item::new(old, slot));
        }
        let p = xyz(lat, lon);
        self.tree.insert(Item::new(p, slot));
        self.slots[i] = Some((lat, lon, p));
    }

    fn remove(&mut self, slot: u32) {
        if let Some((_, _, old)) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            self.tree.remove(&Item::new(old, slot));
        }
    }

    fn nearest(
        &self,
        lat: f64,
        lon: f64,
        k: usize,
        filter: &mut dyn FnMut(u32) -> bool,
    ) -> Vec<Hit> {
        let found = self
            .tree
            .nearest_neighbor_iter_with_distance_2(xyz(lat, lon))
            .filter(|(item, _)| filter(item.data))
            .take(k)
            .map(|(item, c)| (c, item.data))
            .collect();
        sort_hits(found, lat, lon, |s| self.at(s))
    }

    fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<Hit> {
        let found = self
            .tree
            .locate_within_distance(xyz(lat, lon), chord2_of_m(radius_m))
            .map(|item| (super::chord2(&xyz(lat, lon), item.geom()), item.data))
            .collect();
        sort_hits(found, lat, lon, |s| self.at(s))
    }

    fn within_bbox(&self, min_lat: f64, min_lon: f64, max_lat: f64, max_lon: f64) -> Vec<u32> {
        // Not tuned: the circle around the box, then the box. The benchmark does not time it.
        let (clat, clon) = ((min_lat + max_lat) / 2.0, (min_lon + max_lon) / 2.0);
        let radius = super::haversine_m(clat, clon, min_lat, min_lon)
            .max(super::haversine_m(clat, clon, max_lat, min_lon));
        self.within_radius(clat, clon, radius + 1.0)
            .into_iter()
            .map(|h| h.slot)
            .filter(|&s| {
                let (la, lo) = self.at(s);
                (min_lat..=max_lat).contains(&la) && (min_lon..=max_lon).contains(&lo)
            })
            .collect()
    }

    fn position(&self, slot: u32) -> Option<(f64, f64)> {
        let (lat, lon, _) = (*self.slots.get(slot as usize)?)?;
        Some((lat, lon))
    }

    fn len(&self) -> usize {
        self.tree.size()
    }

    fn heap_bytes(&self) -> usize {
        // rstar does not expose its node sizes: estimate leaves plus ~1/5 for inner nodes
        // (default max 6 children per node). The benchmark's counting allocator measures it.
        let leaves = self.tree.size() * size_of::<Item>();
        self.slots.capacity() * size_of::<Option<(f64, f64, Xyz)>>() + leaves + leaves / 5
    }
}

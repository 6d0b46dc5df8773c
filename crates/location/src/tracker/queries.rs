//! The tracker's read side: spatial queries over latest positions and the areas units are in.
//!
//! Owns the mapping from index slots back to units. Does not own the geometry (the index and
//! `geofence` do) nor what "available" means (the caller's predicate).

use std::sync::Arc;

use geo::{BoundingRect, Contains, MultiPolygon, Point};
use serde::Serialize;

use super::{Tracker, UnitState};
use crate::geofence::{GeofenceError, Zone, ZoneKind, Zones};
use crate::index::{Hit, SpatialIndex};

/// A unit found by a spatial query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    /// The unit id.
    pub unit: Arc<str>,
    /// Great-circle distance in metres from the query point.
    pub distance_m: f64,
}

impl Tracker {
    /// Up to `k` units accepted by `filter` (e.g. online and available), nearest first. The
    /// search widens past rejected units, so a selective filter still finds `k` if they exist.
    pub fn nearest(
        &self,
        lat: f64,
        lon: f64,
        k: usize,
        filter: impl Fn(&UnitState) -> bool,
    ) -> Vec<Neighbour> {
        let mut accept = |slot: u32| filter(self.state_at(slot));
        let hits = self.index.nearest(lat, lon, k, &mut accept);
        self.neighbours(hits)
    }

    /// Every unit within `radius_m` metres, nearest first.
    pub fn within_radius(&self, lat: f64, lon: f64, radius_m: f64) -> Vec<Neighbour> {
        let hits = self.index.within_radius(lat, lon, radius_m);
        self.neighbours(hits)
    }

    fn neighbours(&self, hits: Vec<Hit>) -> Vec<Neighbour> {
        hits.into_iter()
            .map(|h| Neighbour {
                unit: Arc::clone(&self.state_at(h.slot).unit),
                distance_m: h.distance_m,
            })
            .collect()
    }

    /// Every unit whose latest position is in the box, in no particular order.
    pub fn within_bbox(
        &self,
        min_lat: f64,
        min_lon: f64,
        max_lat: f64,
        max_lon: f64,
    ) -> Vec<&UnitState> {
        let slots = self.index.within_bbox(min_lat, min_lon, max_lat, max_lon);
        slots.into_iter().map(|s| self.state_at(s)).collect()
    }

    /// Every unit whose latest position is inside the polygons (`x` = lon, `y` = lat).
    pub fn within_polygon(&self, area: &MultiPolygon<f64>) -> Vec<&UnitState> {
        let Some(rect) = area.bounding_rect() else {
            return Vec::new();
        };
        let (min, max) = (rect.min(), rect.max());
        let slots = self.index.within_bbox(min.y, min.x, max.y, max.x);
        slots
            .into_iter()
            .map(|s| self.state_at(s))
            .filter(|u| area.contains(&Point::new(u.fix.lon, u.fix.lat)))
            .collect()
    }

    /// Every unit whose latest position is inside an area (geometry only, no hysteresis).
    pub fn within_zone(&self, id: &str) -> Vec<&UnitState> {
        let Some(zone) = self.zones.get(id) else {
            return Vec::new();
        };
        let (min_lat, min_lon, max_lat, max_lon) = zone.bbox(0.0);
        let slots = self.index.within_bbox(min_lat, min_lon, max_lat, max_lon);
        slots
            .into_iter()
            .map(|s| self.state_at(s))
            .filter(|u| zone.contains(u.fix.lat, u.fix.lon))
            .collect()
    }

    /// The geofences and grids.
    pub fn zones(&self) -> &Zones {
        &self.zones
    }

    /// Adds or replaces an area. Units' membership follows with their next fix.
    pub fn upsert_zone(&mut self, zone: Zone) {
        self.zones.upsert(zone);
    }

    /// Removes an area. Units in it get an exit event with their next fix.
    pub fn remove_zone(&mut self, id: &str) -> Option<Zone> {
        self.zones.remove(id)
    }

    /// Loads areas from a GeoJSON document (a file in `config/`), returning how many.
    pub fn load_zones(&mut self, geojson: &str, kind: ZoneKind) -> Result<usize, GeofenceError> {
        self.zones.load_geojson(geojson, kind)
    }

    /// The grid a point is in.
    pub fn grid_of(&self, lat: f64, lon: f64) -> Option<&Zone> {
        self.zones.grid_of(lat, lon)
    }
}

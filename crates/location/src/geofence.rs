//! Geofences and grids: named areas, and which of them each unit is in.
//!
//! Owns the shapes (polygons and circles, WGS-84), the lookup of the areas containing a point
//! (an R-tree over their bounding boxes, rebuilt on every change since areas change rarely and
//! are few), and the enter/exit rule with hysteresis. A grid (网格) is a named polygon of the
//! street's division of labour; a geofence is any other area (a venue, an incident's scene).
//! Which responders are *assigned* to a grid is a roster, owned by dispatch, not geometry.
//! GeoJSON parsing and printing live in `geofence/geojson.rs`.

mod geojson;

use std::sync::Arc;

use geo::{Contains, MultiPolygon, Point};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};
use serde::{Deserialize, Serialize};

use crate::index::{EARTH_RADIUS_M, haversine_m};
use fieldlink_clock::Timestamp;

pub use geojson::GeofenceError;

const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Whether an area is a grid of the street's division or any other geofence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    /// A venue, a checkpoint, an incident's scene.
    Geofence,
    /// A grid (网格): the street's areas of responsibility; they should not overlap.
    Grid,
}

/// The outline of an area, WGS-84.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Polygons with holes, `x` = longitude, `y` = latitude.
    Polygon(MultiPolygon<f64>),
    /// A circle on the ground.
    Circle {
        /// Centre latitude.
        lat: f64,
        /// Centre longitude.
        lon: f64,
        /// Radius in metres.
        radius_m: f64,
    },
}

/// A named area.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Unique across geofences and grids.
    pub id: Arc<str>,
    /// What the command room calls it.
    pub name: String,
    /// Grid or geofence.
    pub kind: ZoneKind,
    /// Its outline.
    pub shape: Shape,
}

impl Zone {
    /// True when the point is inside (on the boundary counts as outside for polygons, as geo
    /// defines it; hysteresis makes the difference moot).
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        match &self.shape {
            Shape::Polygon(p) => p.contains(&Point::new(lon, lat)),
            Shape::Circle {
                lat: clat,
                lon: clon,
                radius_m,
            } => haversine_m(*clat, *clon, lat, lon) <= *radius_m,
        }
    }

    /// How far outside the area the point is, in metres (zero inside). Polygon edges are
    /// measured on a plane in metres centred on the point, exact enough within a few km.
    pub fn distance_outside_m(&self, lat: f64, lon: f64) -> f64 {
        if self.contains(lat, lon) {
            return 0.0;
        }
        match &self.shape {
            Shape::Circle {
                lat: clat,
                lon: clon,
                radius_m,
            } => (haversine_m(*clat, *clon, lat, lon) - radius_m).max(0.0),
            Shape::Polygon(polygons) => {
                let cos = lat.to_radians().cos();
                let to_plane =
                    |c: &geo::Coord<f64>| ((c.x - lon) * cos * M_PER_DEG, (c.y - lat) * M_PER_DEG);
                polygons
                    .iter()
                    .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                    .flat_map(|ring| ring.lines())
                    .map(|l| origin_to_segment(to_plane(&l.start), to_plane(&l.end)))
                    .fold(f64::INFINITY, f64::min)
            }
        }
    }

    /// `(min_lat, min_lon, max_lat, max_lon)`, grown by `margin_m` metres on every side.
    pub fn bbox(&self, margin_m: f64) -> (f64, f64, f64, f64) {
        let (min_lat, min_lon, max_lat, max_lon) = match &self.shape {
            Shape::Circle { lat, lon, radius_m } => {
                let dlat = radius_m / M_PER_DEG;
                let dlon = dlat / (lat.abs() + dlat).min(89.0).to_radians().cos();
                (lat - dlat, lon - dlon, lat + dlat, lon + dlon)
            }
            Shape::Polygon(p) => {
                let coords = p.iter().flat_map(|p| p.exterior().coords());
                coords.fold(
                    (
                        f64::INFINITY,
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        f64::NEG_INFINITY,
                    ),
                    |b, c| (b.0.min(c.y), b.1.min(c.x), b.2.max(c.y), b.3.max(c.x)),
                )
            }
        };
        let dlat = margin_m / M_PER_DEG;
        let widest = min_lat.abs().max(max_lat.abs()) + dlat;
        let dlon = dlat / widest.min(89.0).to_radians().cos();
        (
            min_lat - dlat,
            min_lon - dlon,
            max_lat + dlat,
            max_lon + dlon,
        )
    }
}

/// Distance from the origin to the segment `a`–`b` on a plane.
fn origin_to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (-(a.0 * dx + a.1 * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a.0 + t * dx).hypot(a.1 + t * dy)
}

/// A unit entered or left an area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneEvent {
    /// The unit.
    pub unit: Arc<str>,
    /// The area's id.
    pub zone: Arc<str>,
    /// Grid or geofence.
    pub kind: ZoneKind,
    /// Entered (true) or left (false).
    pub entered: bool,
    /// The time of the fix that decided it.
    pub at: Timestamp,
}

/// Every area, with a bounding-box index for point lookups.
#[derive(Debug)]
pub struct Zones {
    zones: Vec<Zone>,
    /// Boxes grown by the hysteresis, so a unit just outside an area it is in is still found.
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
    hysteresis_m: f64,
}

impl Zones {
    /// No areas; a unit leaves an area once `hysteresis_m` metres outside it.
    pub fn new(hysteresis_m: f64) -> Self {
        Zones {
            zones: Vec::new(),
            tree: RTree::new(),
            hysteresis_m: hysteresis_m.max(0.0),
        }
    }

    /// Adds an area or replaces the one with its id.
    pub fn upsert(&mut self, zone: Zone) {
        match self.zones.iter_mut().find(|z| z.id == zone.id) {
            Some(existing) => *existing = zone,
            None => self.zones.push(zone),
        }
        self.rebuild();
    }

    /// Removes an area; units in it get their exit event with their next fix.
    pub fn remove(&mut self, id: &str) -> Option<Zone> {
        let at = self.zones.iter().position(|z| &*z.id == id)?;
        let zone = self.zones.remove(at);
        self.rebuild();
        Some(zone)
    }

    /// Adds or replaces every area of a GeoJSON document; see [`Zones::parse_geojson`].
    pub fn load_geojson(&mut self, text: &str, kind: ZoneKind) -> Result<usize, GeofenceError> {
        let zones = Self::parse_geojson(text, kind)?;
        let n = zones.len();
        for zone in zones {
            match self.zones.iter_mut().find(|z| z.id == zone.id) {
                Some(existing) => *existing = zone,
                None => self.zones.push(zone),
            }
        }
        self.rebuild();
        Ok(n)
    }

    fn rebuild(&mut self) {
        let boxes = self.zones.iter().enumerate().map(|(i, z)| {
            let (a, b, c, d) = z.bbox(self.hysteresis_m);
            GeomWithData::new(Rectangle::from_corners([b, a], [d, c]), i as u32)
        });
        self.tree = RTree::bulk_load(boxes.collect());
    }

    /// An area by id.
    pub fn get(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| &*z.id == id)
    }

    /// Every area.
    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter()
    }

    /// Areas held.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// True when there are no areas.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The areas containing the point.
    pub fn containing(&self, lat: f64, lon: f64) -> impl Iterator<Item = &Zone> {
        self.near(lat, lon).filter(move |z| z.contains(lat, lon))
    }

    /// The grid the point is in (the first one, should grids overlap).
    pub fn grid_of(&self, lat: f64, lon: f64) -> Option<&Zone> {
        self.containing(lat, lon).find(|z| z.kind == ZoneKind::Grid)
    }

    /// Areas whose grown box holds the point: those it may be in or within hysteresis of.
    fn near(&self, lat: f64, lon: f64) -> impl Iterator<Item = &Zone> {
        self.tree
            .locate_all_at_point([lon, lat])
            .map(|item| &self.zones[item.data as usize])
    }

    /// Updates the areas a unit is `inside` after a fix, returning the enter and exit events.
    /// Entering counts at once (an arrival on scene must not wait); leaving only once the unit
    /// is more than the hysteresis outside, so noise at a boundary cannot flap.
    #[inline]
    pub fn update(
        &self,
        unit: &Arc<str>,
        inside: &mut Vec<Arc<str>>,
        lat: f64,
        lon: f64,
        at: Timestamp,
    ) -> Vec<ZoneEvent> {
        // Inline, so that a tracker with no areas (most fixes meet none) does not pay the call.
        if self.zones.is_empty() && inside.is_empty() {
            return Vec::new();
        }
        self.update_near(unit, inside, lat, lon, at)
    }

    fn update_near(
        &self,
        unit: &Arc<str>,
        inside: &mut Vec<Arc<str>>,
        lat: f64,
        lon: f64,
        at: Timestamp,
    ) -> Vec<ZoneEvent> {
        let mut events = Vec::new();
        let event = |zone: &Arc<str>, kind, entered| ZoneEvent {
            unit: Arc::clone(unit),
            zone: Arc::clone(zone),
            kind,
            entered,
            at,
        };
        let mut near_ids: Vec<&Arc<str>> = Vec::new();
        for zone in self.near(lat, lon) {
            near_ids.push(&zone.id);
            let was_inside = inside.contains(&zone.id);
            if !was_inside && zone.contains(lat, lon) {
                inside.push(Arc::clone(&zone.id));
                events.push(event(&zone.id, zone.kind, true));
            } else if was_inside && zone.distance_outside_m(lat, lon) > self.hysteresis_m {
                inside.retain(|id| id != &zone.id);
                events.push(event(&zone.id, zone.kind, false));
            }
        }
        // Outside every grown box (or the area is gone): certainly left.
        inside.retain(|id| {
            if near_ids.contains(&id) {
                return true;
            }
            let kind = self.get(id).map_or(ZoneKind::Geofence, |z| z.kind);
            events.push(event(id, kind, false));
            false
        });
        events
    }
}

#[cfg(test)]
mod tests;

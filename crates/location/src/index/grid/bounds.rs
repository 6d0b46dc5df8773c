//! The grid's arithmetic: cell keys, rings of cells, and lower bounds on the distance to
//! cells not yet visited (what lets a nearest search stop early without missing anything).

use std::hash::Hasher;

use super::{EARTH_RADIUS_M, GridIndex, M_PER_DEG};

impl GridIndex {
    /// A lower bound in metres on the distance from `(lat, lon)` to any point outside the
    /// latitude band `[lat0, lat1]` or the longitude band `[lon0, lon1]` (whichever it leaves).
    /// Along a meridian the distance is the latitude gap; across meridians it is at least the
    /// longitude gap shrunk by the cosines of both latitudes, which stay inside the band.
    pub(super) fn gap_m(lat: f64, lon: f64, lat_band: (f64, f64), lon_band: (f64, f64)) -> f64 {
        let lat_gap = (lat - lat_band.0).min(lat_band.1 - lat).max(0.0) * M_PER_DEG;
        let lon_gap = (lon - lon_band.0)
            .min(lon_band.1 - lon)
            .max(0.0)
            .to_radians();
        let c_min = lat_band
            .0
            .to_radians()
            .cos()
            .min(lat_band.1.to_radians().cos());
        let scale = (lat.to_radians().cos() * c_min.max(0.0)).sqrt();
        let lon_m = 2.0 * EARTH_RADIUS_M * (scale * (lon_gap / 2.0).sin()).min(1.0).asin();
        lat_gap.min(lon_m)
    }

    /// The smallest distance in metres from the query to anything in cell `(x, y)`.
    pub(super) fn cell_gap_m(&self, lat: f64, lon: f64, x: i32, y: i32) -> f64 {
        let d = self.cell_deg;
        let (lat0, lon0) = (f64::from(y) * d, f64::from(x) * d);
        let lat_gap = (lat0 - lat).max(lat - (lat0 + d)).max(0.0) * M_PER_DEG;
        let lon_gap = (lon0 - lon).max(lon - (lon0 + d)).max(0.0).to_radians();
        let c_min = lat0.to_radians().cos().min((lat0 + d).to_radians().cos());
        let scale = (lat.to_radians().cos() * c_min.max(0.0)).sqrt();
        let lon_m = 2.0 * EARTH_RADIUS_M * (scale * (lon_gap / 2.0).sin()).min(1.0).asin();
        lat_gap.max(lon_m)
    }
}

pub(super) fn pack(x: i32, y: i32) -> u64 {
    (u64::from(y as u32) << 32) | u64::from(x as u32)
}

pub(super) fn unpack(key: u64) -> (i32, i32) {
    (key as u32 as i32, (key >> 32) as u32 as i32)
}

/// Cell keys are already well spread; a multiply-fold hash is all they need (SipHash would
/// cost more than the rest of an update).
#[derive(Debug, Default)]
pub(super) struct CellHasher(u64);

impl Hasher for CellHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, key: u64) {
        let h = (self.0 ^ key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

/// The cells at Chebyshev distance exactly `r` from `(cx, cy)`.
pub(super) fn ring(cx: i32, cy: i32, r: i32) -> impl Iterator<Item = (i32, i32)> {
    let rows = (-r..=r).flat_map(move |dx| {
        let bottom = (cx + dx, cy - r);
        let top = (r > 0).then_some((cx + dx, cy + r));
        std::iter::once(bottom).chain(top)
    });
    let sides = (1 - r..r).flat_map(move |dy| [(cx - r, cy + dy), (cx + r, cy + dy)]);
    rows.chain(sides)
}

//! Channels and the per-session filter.

use serde::{Deserialize, Serialize};

/// A stream a command-room session may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Coalesced positions: not journalled, a snapshot plus the `positions` batches.
    Positions,
    /// Online, stale, offline.
    Presence,
    /// Incidents.
    Incidents,
    /// Work orders.
    Orders,
    /// Alarms (missed 1/3/5 targets, SOS).
    Alarms,
    /// Floor control.
    Ptt,
    /// Live streams.
    Video,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 7] = [
        Channel::Positions,
        Channel::Presence,
        Channel::Incidents,
        Channel::Orders,
        Channel::Alarms,
        Channel::Ptt,
        Channel::Video,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Positions => "positions",
            Channel::Presence => "presence",
            Channel::Incidents => "incidents",
            Channel::Orders => "orders",
            Channel::Alarms => "alarms",
            Channel::Ptt => "ptt",
            Channel::Video => "video",
        }
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// True when the channel is carried by the journal (replayed on resume); positions are not.
    pub fn journalled(self) -> bool {
        self != Channel::Positions
    }
}

/// The coordinate system a session wants its coordinates in. The hub's data is WGS-84.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coords {
    /// As measured (GPS).
    #[default]
    Wgs84,
    /// The Chinese map datum (AMap, Tencent).
    Gcj02,
}

impl Coords {
    /// `(lat, lon)` in WGS-84 to this system.
    pub fn convert(self, lat: f64, lon: f64) -> (f64, f64) {
        match self {
            Coords::Wgs84 => (lat, lon),
            Coords::Gcj02 => fieldlink_location::wgs84_to_gcj02(lat, lon),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Coords::Wgs84 => "wgs84",
            Coords::Gcj02 => "gcj02",
        }
    }
}

/// What part of the stream a session wants.
///
/// Each criterion narrows only what it can judge: an event without a location passes the
/// bounding box, one without a grid passes the grid, one without a unit passes the unit list.
/// A command room watching a district must still see, say, an alarm raised on an incident that
/// carries no coordinates; over-delivering such an event is cheap, missing it is not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// `[min_lon, min_lat, max_lon, max_lat]` in WGS-84 (GeoJSON order), whatever `coords` says.
    pub bbox: Option<[f64; 4]>,
    /// Only this grid (a zone id of the location crate).
    pub grid: Option<String>,
    /// Only these units.
    pub units: Option<Vec<String>>,
    /// The coordinate system of coordinates sent to this session (positions and events). The
    /// backend converts the snapshot's items itself (they are opaque to the hub).
    pub coords: Coords,
}

impl Filter {
    /// True when an item with these attributes belongs to the session's view.
    pub fn matches(
        &self,
        unit: Option<&str>,
        lat_lon: Option<(f64, f64)>,
        grid: Option<&str>,
    ) -> bool {
        if let (Some(bbox), Some((lat, lon))) = (self.bbox, lat_lon) {
            let [min_lon, min_lat, max_lon, max_lat] = bbox;
            if !(lon >= min_lon && lon <= max_lon && lat >= min_lat && lat <= max_lat) {
                return false;
            }
        }
        if let (Some(want), Some(grid)) = (&self.grid, grid)
            && want != grid
        {
            return false;
        }
        if let (Some(units), Some(unit)) = (&self.units, unit)
            && !units.iter().any(|u| u == unit)
        {
            return false;
        }
        true
    }

    /// Checks the values a client sent: a bbox must be finite and ordered.
    pub fn validate(&self) -> Result<(), String> {
        if let Some([min_lon, min_lat, max_lon, max_lat]) = self.bbox {
            let finite = [min_lon, min_lat, max_lon, max_lat]
                .iter()
                .all(|v| v.is_finite());
            if !finite || min_lon > max_lon || min_lat > max_lat {
                return Err("bbox must be [min_lon, min_lat, max_lon, max_lat]".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_and_missing_attributes() {
        let f = Filter {
            bbox: Some([116.0, 39.0, 117.0, 40.0]),
            ..Filter::default()
        };
        assert!(f.matches(Some("u1"), Some((39.5, 116.5)), None));
        assert!(!f.matches(Some("u1"), Some((39.5, 118.0)), None));
        assert!(f.matches(Some("u1"), None, None));
    }

    #[test]
    fn units_and_grid() {
        let f = Filter {
            units: Some(vec!["u1".into()]),
            grid: Some("g1".into()),
            ..Filter::default()
        };
        assert!(f.matches(Some("u1"), None, Some("g1")));
        assert!(!f.matches(Some("u2"), None, Some("g1")));
        assert!(!f.matches(Some("u1"), None, Some("g2")));
        assert!(f.matches(None, None, None));
    }

    #[test]
    fn channel_names() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }
}

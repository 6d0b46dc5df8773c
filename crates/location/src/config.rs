//! Tunables of the location core, as they sit under `[location]` in the server's TOML.
//!
//! Owns the defaults and the TOML shape of durations ("30s", "500ms", "5m" or a number of
//! seconds). Does not validate against other sections of the server's config.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the location core can be tuned by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocationConfig {
    /// The fix filters.
    pub filters: FilterConfig,
    /// No message from a unit for this long makes it stale (its dot is no longer live).
    #[serde(with = "duration_serde")]
    pub stale_after: Duration,
    /// No message for this long makes it offline (as its MQTT last will would).
    #[serde(with = "duration_serde")]
    pub offline_after: Duration,
    /// A unit inside a geofence or grid leaves it only once it is this far outside, so GPS noise
    /// at a boundary does not flap enter/exit.
    pub hysteresis_m: f64,
    /// The profile of a unit nobody gave a profile to.
    pub default_profile: UnitProfile,
    /// Named profiles per unit type (`on_foot`, `e_bike`, `motorcycle`, `car`, `other`: the store's
    /// unit types); see [`LocationConfig::profile`].
    pub unit_types: BTreeMap<String, UnitProfile>,
    /// Cell size of the spatial grid in metres: about ten units per cell where they are
    /// densest is best (see `benches/index.rs`).
    pub index_cell_m: f64,
    /// Track history older than this may be deleted by the store.
    #[serde(with = "duration_serde")]
    pub track_retention: Duration,
}

impl Default for LocationConfig {
    fn default() -> Self {
        let unit_types = [
            ("on_foot", 12.0),
            ("e_bike", 20.0),
            ("motorcycle", 45.0),
            ("car", 60.0),
            ("other", 60.0),
        ]
        .into_iter()
        .map(|(name, max_speed_mps)| (name.to_owned(), UnitProfile { max_speed_mps }))
        .collect();
        LocationConfig {
            filters: FilterConfig::default(),
            // Handsets report every 5 s and heartbeat every 30 s: two missed heartbeats is stale.
            stale_after: Duration::from_secs(60),
            // Ten minutes of silence is as good as a last will we never received.
            offline_after: Duration::from_secs(600),
            hysteresis_m: 15.0,
            default_profile: UnitProfile::default(),
            unit_types,
            index_cell_m: 250.0,
            track_retention: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

impl LocationConfig {
    /// The profile of a unit type by name, or the default profile when the type is unknown.
    pub fn profile(&self, unit_type: &str) -> UnitProfile {
        self.unit_types
            .get(unit_type)
            .copied()
            .unwrap_or(self.default_profile)
    }
}

/// The fix filters (anchored on Traccar's). A zero threshold disables the filter it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Reject fixes at exactly (0, 0): a receiver with no solution often reports that.
    pub zero: bool,
    /// Reject fixes dated later than `now + future_skew` (handset clock ahead).
    #[serde(with = "duration_serde")]
    pub future_skew: Duration,
    /// Reject fixes dated earlier than `now - max_age`; zero disables. Generous by default:
    /// a batch buffered through a long tunnel or a dead cell must still reach history.
    #[serde(with = "duration_serde")]
    pub max_age: Duration,
    /// Reject a fix with the same fix time as the unit's latest one.
    pub duplicate: bool,
    /// Reject fixes whose reported accuracy radius is worse than this; zero disables.
    pub max_accuracy_m: f32,
    /// Reject fixes with fewer satellites than this (as poor accuracy); zero disables.
    /// Phones often report 0 satellites for network fixes, hence off by default.
    pub min_satellites: u32,
    /// Reject fixes implying a speed above the unit's profile maximum.
    pub jump: bool,
    /// Distance always allowed between two fixes on top of `max_speed * dt`, so that GPS noise
    /// on fixes a second apart is not taken for a jump.
    pub jump_tolerance_m: f64,
    /// After this many jump rejections in a row the next fix is accepted as a new anchor: if the
    /// latest accepted fix was itself the outlier, every true fix after it would otherwise be
    /// rejected forever. Zero never re-anchors.
    pub jump_reanchor_after: u32,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            zero: true,
            future_skew: Duration::from_secs(60),
            max_age: Duration::from_secs(24 * 3600),
            duplicate: true,
            max_accuracy_m: 100.0,
            min_satellites: 0,
            jump: true,
            jump_tolerance_m: 50.0,
            jump_reanchor_after: 3,
        }
    }
}

/// What the jump filter needs to know about a kind of unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnitProfile {
    /// The fastest this kind of unit plausibly moves, in metres per second.
    pub max_speed_mps: f32,
}

impl Default for UnitProfile {
    fn default() -> Self {
        // A responder of unknown type may be in a car: 60 m/s (216 km/h) rejects only the absurd.
        UnitProfile {
            max_speed_mps: 60.0,
        }
    }
}

/// Durations in TOML as "30s", "500ms", "5m", "2h", or a plain number of seconds.
mod duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = d.as_millis();
        if ms.is_multiple_of(1000) {
            s.serialize_str(&format!("{}s", ms / 1000))
        } else {
            s.serialize_str(&format!("{ms}ms"))
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Float(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Int(secs) => Ok(Duration::from_secs(secs)),
            Raw::Float(secs) => Duration::try_from_secs_f64(secs).map_err(D::Error::custom),
            Raw::Text(text) => parse(&text).ok_or_else(|| {
                D::Error::custom(format!(
                    "invalid duration {text:?}: expected e.g. \"500ms\", \"30s\", \"5m\", \"2h\""
                ))
            }),
        }
    }

    pub(super) fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().ok()?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        Duration::try_from_secs_f64(number * scale).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_default_fills_the_rest() {
        let json =
            r#"{"stale_after": "90s", "offline_after": 300, "filters": {"future_skew": "500ms"}}"#;
        let config: LocationConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.stale_after, Duration::from_secs(90));
        assert_eq!(config.offline_after, Duration::from_secs(300));
        assert_eq!(config.filters.future_skew, Duration::from_millis(500));
        assert_eq!(config.filters.max_accuracy_m, 100.0);
        assert_eq!(duration_serde::parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(duration_serde::parse("5 parsecs"), None);
    }

    #[test]
    fn unknown_keys_are_rejected_and_round_trip_holds() {
        assert!(serde_json::from_str::<LocationConfig>(r#"{"stale_afterr": 1}"#).is_err());
        let config = LocationConfig::default();
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<LocationConfig>(&text).unwrap(),
            config
        );
        assert_eq!(config.profile("on_foot").max_speed_mps, 12.0);
        assert_eq!(config.profile("hovercraft"), config.default_profile);
    }
}

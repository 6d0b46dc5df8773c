//! The fix filters: which fixes may become a unit's latest position.
//!
//! Owns the rules and their reasons (anchored on Traccar's filters) and the per-reason counts
//! the server exports as metrics. Does not decide what happens to a rejected fix: the tracker
//! keeps it in history, flagged, and never shows it as the latest position.

use serde::{Deserialize, Serialize};

use crate::config::FilterConfig;
use crate::index::haversine_m;
use crate::tracker::Fix;
use fieldlink_clock::Timestamp;

/// Why a fix was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterReason {
    /// Coordinates out of range or not finite, or a negative or not-finite measurement.
    Invalid,
    /// Exactly (0, 0), what a receiver with no solution often sends.
    Zero,
    /// Dated later than now plus the allowed clock skew.
    Future,
    /// Dated earlier than the maximum age.
    TooOld,
    /// Same fix time as the unit's latest fix.
    Duplicate,
    /// Accuracy radius worse than the threshold, or too few satellites.
    PoorAccuracy,
    /// The speed implied by distance and time from the latest fix exceeds the unit's maximum.
    Jump,
}

impl FilterReason {
    /// Every reason, in declaration order (for metrics families that list all labels).
    pub const ALL: [FilterReason; 7] = [
        FilterReason::Invalid,
        FilterReason::Zero,
        FilterReason::Future,
        FilterReason::TooOld,
        FilterReason::Duplicate,
        FilterReason::PoorAccuracy,
        FilterReason::Jump,
    ];

    /// The snake_case name, as a metrics label and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            FilterReason::Invalid => "invalid",
            FilterReason::Zero => "zero",
            FilterReason::Future => "future",
            FilterReason::TooOld => "too_old",
            FilterReason::Duplicate => "duplicate",
            FilterReason::PoorAccuracy => "poor_accuracy",
            FilterReason::Jump => "jump",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// How many fixes each filter rejected since the tracker started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterCounts {
    counts: [u64; FilterReason::ALL.len()],
}

impl FilterCounts {
    /// Rejections for one reason.
    pub const fn get(&self, reason: FilterReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Every reason with its count, for a metrics scrape.
    pub fn iter(&self) -> impl Iterator<Item = (FilterReason, u64)> + '_ {
        FilterReason::ALL.iter().map(|&r| (r, self.get(r)))
    }

    pub(crate) fn add(&mut self, reason: FilterReason) {
        self.counts[reason.index()] += 1;
    }
}

/// What the filters compare a new fix against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Previous<'a> {
    /// The unit's latest accepted fix.
    pub latest: &'a Fix,
    /// Jump rejections in a row since that fix.
    pub jumps_in_row: u32,
    /// The unit's maximum plausible speed.
    pub max_speed_mps: f32,
}

/// Runs the filters in a fixed order (cheapest and most certain first) and returns the first
/// reason that rejects the fix.
pub(crate) fn check(
    config: &FilterConfig,
    fix: &Fix,
    previous: Option<Previous<'_>>,
    now: Timestamp,
) -> Result<(), FilterReason> {
    if !is_valid(fix) {
        return Err(FilterReason::Invalid);
    }
    if config.zero && fix.lat == 0.0 && fix.lon == 0.0 {
        return Err(FilterReason::Zero);
    }
    if fix.fix_time > now.plus(config.future_skew) {
        return Err(FilterReason::Future);
    }
    if !config.max_age.is_zero() && fix.fix_time < now.minus(config.max_age) {
        return Err(FilterReason::TooOld);
    }
    let poor_accuracy =
        config.max_accuracy_m > 0.0 && fix.accuracy_m.is_some_and(|a| a > config.max_accuracy_m);
    if poor_accuracy || fix.satellites < config.min_satellites {
        return Err(FilterReason::PoorAccuracy);
    }
    let Some(previous) = previous else {
        return Ok(());
    };
    if config.duplicate && fix.fix_time == previous.latest.fix_time {
        return Err(FilterReason::Duplicate);
    }
    if config.jump && is_jump(config, fix, &previous) {
        return Err(FilterReason::Jump);
    }
    Ok(())
}

fn is_valid(fix: &Fix) -> bool {
    let finite_non_negative = |v: Option<f32>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
    fix.lat.is_finite()
        && fix.lon.is_finite()
        && (-90.0..=90.0).contains(&fix.lat)
        && (-180.0..=180.0).contains(&fix.lon)
        && fix.alt_m.is_none_or(f64::is_finite)
        && finite_non_negative(fix.accuracy_m)
        && finite_non_negative(fix.speed_mps)
        && fix.heading_deg.is_none_or(f32::is_finite)
        && fix
            .battery_pct
            .is_none_or(|b| b.is_finite() && (0.0..=100.0).contains(&b))
}

/// Distance against time from the latest fix, either side of it in time (an out-of-order fix
/// is checked against the same anchor), with a fixed tolerance for GPS noise.
fn is_jump(config: &FilterConfig, fix: &Fix, previous: &Previous<'_>) -> bool {
    if config.jump_reanchor_after > 0 && previous.jumps_in_row >= config.jump_reanchor_after {
        return false;
    }
    let latest = previous.latest;
    let dt_s = fix.fix_time.millis_since(latest.fix_time).unsigned_abs() as f64 / 1000.0;
    let distance = haversine_m(latest.lat, latest.lon, fix.lat, fix.lon);
    distance > f64::from(previous.max_speed_mps) * dt_s + config.jump_tolerance_m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::FixSource;

    const NOW: Timestamp = Timestamp::from_millis(1_764_446_400_000);

    fn fix(ms_before_now: i64, lat: f64, lon: f64) -> Fix {
        Fix::new(
            Timestamp::from_millis(NOW.as_millis() - ms_before_now),
            lat,
            lon,
        )
    }

    fn run(f: &Fix, previous: Option<Previous<'_>>) -> Result<(), FilterReason> {
        check(&FilterConfig::default(), f, previous, NOW)
    }

    fn after<'a>(latest: &'a Fix, jumps_in_row: u32) -> Option<Previous<'a>> {
        Some(Previous {
            latest,
            jumps_in_row,
            max_speed_mps: 12.0,
        })
    }

    #[test]
    fn names_are_snake_case_and_all_is_complete() {
        let names: Vec<_> = FilterReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "invalid",
                "zero",
                "future",
                "too_old",
                "duplicate",
                "poor_accuracy",
                "jump"
            ]
        );
        for reason in FilterReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }

    #[test]
    fn invalid_rejects_out_of_range_and_non_finite() {
        assert_eq!(run(&fix(0, 91.0, 0.1), None), Err(FilterReason::Invalid));
        assert_eq!(
            run(&fix(0, 31.0, f64::NAN), None),
            Err(FilterReason::Invalid)
        );
        let mut f = fix(0, 31.0, 121.0);
        f.accuracy_m = Some(-1.0);
        assert_eq!(run(&f, None), Err(FilterReason::Invalid));
        f.accuracy_m = Some(5.0);
        f.battery_pct = Some(140.0);
        assert_eq!(run(&f, None), Err(FilterReason::Invalid));
        f.battery_pct = Some(40.0);
        assert_eq!(run(&f, None), Ok(()));
    }

    #[test]
    fn zero_rejects_null_island_only() {
        assert_eq!(run(&fix(0, 0.0, 0.0), None), Err(FilterReason::Zero));
        assert_eq!(run(&fix(0, 0.0, 0.5), None), Ok(()));
    }

    #[test]
    fn future_allows_the_skew_and_no_more() {
        assert_eq!(run(&fix(-60_000, 31.0, 121.0), None), Ok(()));
        assert_eq!(
            run(&fix(-60_001, 31.0, 121.0), None),
            Err(FilterReason::Future)
        );
    }

    #[test]
    fn too_old_allows_a_tunnel_batch_but_not_yesterday() {
        assert_eq!(run(&fix(30 * 60_000, 31.0, 121.0), None), Ok(()));
        assert_eq!(
            run(&fix(25 * 3_600_000, 31.0, 121.0), None),
            Err(FilterReason::TooOld)
        );
    }

    #[test]
    fn duplicate_is_the_same_fix_time_as_latest() {
        let latest = fix(5_000, 31.0, 121.0);
        assert_eq!(
            run(&fix(5_000, 31.0, 121.0), after(&latest, 0)),
            Err(FilterReason::Duplicate)
        );
        assert_eq!(run(&fix(4_000, 31.0, 121.0), after(&latest, 0)), Ok(()));
    }

    #[test]
    fn poor_accuracy_and_too_few_satellites() {
        let mut f = fix(0, 31.0, 121.0);
        f.accuracy_m = Some(150.0);
        assert_eq!(run(&f, None), Err(FilterReason::PoorAccuracy));
        f.accuracy_m = Some(20.0);
        f.satellites = 2;
        let strict = FilterConfig {
            min_satellites: 4,
            ..FilterConfig::default()
        };
        assert_eq!(
            check(&strict, &f, None, NOW),
            Err(FilterReason::PoorAccuracy)
        );
        assert_eq!(run(&f, None), Ok(()));
    }

    #[test]
    fn jump_uses_the_profile_speed_plus_tolerance() {
        let latest = fix(10_000, 31.0, 121.0);
        // 10 s at 12 m/s plus 50 m of tolerance is 170 m; 0.001° of latitude is about 111 m.
        assert_eq!(run(&fix(0, 31.001, 121.0), after(&latest, 0)), Ok(()));
        assert_eq!(
            run(&fix(0, 31.002, 121.0), after(&latest, 0)),
            Err(FilterReason::Jump)
        );
        // An out-of-order fix 10 s before the latest is held to the same bound.
        assert_eq!(
            run(&fix(20_000, 31.002, 121.0), after(&latest, 0)),
            Err(FilterReason::Jump)
        );
        // After three rejections in a row the next fix is the new anchor.
        assert_eq!(run(&fix(0, 31.002, 121.0), after(&latest, 3)), Ok(()));
    }

    #[test]
    fn disabled_filters_let_everything_through() {
        let off = FilterConfig {
            zero: false,
            max_age: std::time::Duration::ZERO,
            duplicate: false,
            max_accuracy_m: 0.0,
            jump: false,
            ..FilterConfig::default()
        };
        let latest = fix(1_000, 31.0, 121.0);
        let mut f = fix(1_000, 0.0, 0.0);
        f.accuracy_m = Some(5_000.0);
        f.source = FixSource::OwnTracks;
        let previous = after(&latest, 0);
        assert_eq!(check(&off, &f, previous, NOW), Ok(()));
        assert_eq!(
            check(&off, &fix(40 * 3_600_000, 31.0, 121.0), None, NOW),
            Ok(())
        );
    }
}

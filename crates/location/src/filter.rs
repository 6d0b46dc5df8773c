//! The fix filters: which fixes may become a unit's latest position.
//!
//! Owns the rules and their reasons (anchored on Traccar's filters) and the per-reason counts
//! the server exports as metrics. Does not decide what happens to a rejected fix: the tracker
//! keeps it in history, flagged, and never shows it as the latest position.

use serde::{Deserialize, Serialize};

use crate::config::FilterConfig;
use crate::fix::Fix;
use crate::index::{haversine_m, surely_within_m};
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
    let limit_m = f64::from(previous.max_speed_mps) * dt_s + config.jump_tolerance_m;
    // Nearly every fix is well within reach: skip the five trig calls of haversine then (they
    // were a fifth of the whole fix path). The bound never answers differently from haversine.
    if surely_within_m(latest.lat, latest.lon, fix.lat, fix.lon, limit_m) {
        return false;
    }
    let distance = haversine_m(latest.lat, latest.lon, fix.lat, fix.lon);
    distance > limit_m
}

#[cfg(test)]
mod tests;

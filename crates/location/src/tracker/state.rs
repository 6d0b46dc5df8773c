//! What the tracker shows of a unit and tells of a fix: [`UnitState`] and [`FixOutcome`].
//!
//! Owns these two shapes only; the tracker fills them in.

use std::sync::Arc;

use serde::Serialize;

use crate::filter::FilterReason;
use crate::fix::Fix;
use crate::geofence::ZoneEvent;
use crate::presence::{Presence, PresenceEvent};
use crate::track::TrackPoint;
use fieldlink_clock::Timestamp;

/// What the command room sees of one unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UnitState {
    /// The unit id.
    pub unit: Arc<str>,
    /// The latest accepted fix (never a filtered one, never older than a previous latest).
    pub fix: Fix,
    /// When that fix reached us (compare with `fix.fix_time` for the delivery lag).
    pub received_at: Timestamp,
    /// Online, stale or offline.
    pub presence: Presence,
    /// When `presence` last changed.
    pub presence_since: Timestamp,
    /// When any message from the unit last reached us.
    pub last_seen: Timestamp,
    /// Ids of the geofences and grids the unit is in (with hysteresis), as of its latest fix.
    pub zones: Vec<Arc<str>>,
}

/// What became of one fix.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FixOutcome {
    /// The fix passed every filter (it goes to history unflagged).
    pub accepted: bool,
    /// The filter that rejected it (it goes to history flagged with this reason).
    pub rejected: Option<FilterReason>,
    /// It became the unit's latest position (false for rejected and out-of-order fixes).
    pub latest_updated: bool,
    /// The unit's presence changed on hearing from it.
    pub presence: Option<PresenceEvent>,
    /// Geofences and grids entered or left (only when the latest position moved).
    pub zone_events: Vec<ZoneEvent>,
    /// The record for history: every fix goes there, a rejected one flagged with its reason.
    pub track: TrackPoint,
}

impl FixOutcome {
    pub(super) fn new(
        fix: Fix,
        now: Timestamp,
        verdict: Result<(), FilterReason>,
        latest_updated: bool,
        presence: Option<PresenceEvent>,
        zone_events: Vec<ZoneEvent>,
    ) -> Self {
        FixOutcome {
            accepted: verdict.is_ok(),
            rejected: verdict.err(),
            latest_updated,
            presence,
            zone_events,
            track: TrackPoint {
                fix,
                received_at: now,
                filtered: verdict.err(),
            },
        }
    }
}

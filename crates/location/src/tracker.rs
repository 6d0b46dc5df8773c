//! The tracker: one entry per unit, tying filters, presence and the spatial index together.
//!
//! Owns the latest state of every unit and the slot each unit holds in the index. Does not own
//! history (it hands every fix back as a record for the store), nor availability (dispatch
//! passes it in as a predicate), nor the clock (every call takes `now`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{LocationConfig, UnitProfile};
use crate::filter::{self, FilterCounts, FilterReason, Previous};
use crate::index::{ScanIndex, SpatialIndex};
use crate::presence::{self, Presence, PresenceEvent};
use fieldlink_clock::Timestamp;

/// Where a fix came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixSource {
    /// A fieldlink handset over its own protobuf topic.
    #[default]
    Native,
    /// The stock OwnTracks app over its JSON topic.
    OwnTracks,
}

/// One position report, WGS-84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// When the receiver took the fix (the handset's clock).
    pub fix_time: Timestamp,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Altitude above the ellipsoid in metres.
    pub alt_m: Option<f64>,
    /// Horizontal accuracy radius in metres.
    pub accuracy_m: Option<f32>,
    /// Ground speed in metres per second.
    pub speed_mps: Option<f32>,
    /// Course over ground in degrees clockwise from true north.
    pub heading_deg: Option<f32>,
    /// Handset battery, 0 to 100.
    pub battery_pct: Option<f32>,
    /// Satellites used (0 when unknown or a network fix).
    pub satellites: u32,
    /// Which uplink it came by.
    pub source: FixSource,
    /// The handset's message sequence number.
    pub seq: u64,
}

impl Fix {
    /// A native fix with only time and position; set the other fields as known.
    pub fn new(fix_time: Timestamp, lat: f64, lon: f64) -> Self {
        Fix {
            fix_time,
            lat,
            lon,
            alt_m: None,
            accuracy_m: None,
            speed_mps: None,
            heading_deg: None,
            battery_pct: None,
            satellites: 0,
            source: FixSource::Native,
            seq: 0,
        }
    }
}

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
}

/// A unit found by a spatial query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighbour {
    /// The unit id.
    pub unit: Arc<str>,
    /// Great-circle distance in metres from the query point.
    pub distance_m: f64,
}

#[derive(Debug)]
struct Entry {
    state: UnitState,
    /// Jump rejections since the latest accepted fix (see `FilterConfig::jump_reanchor_after`).
    jumps_in_row: u32,
}

/// Latest state of every unit, with presence and spatial queries. See the crate docs.
#[derive(Debug)]
pub struct Tracker {
    config: LocationConfig,
    slots_by_unit: HashMap<Arc<str>, u32>,
    entries: Vec<Option<Entry>>,
    free_slots: Vec<u32>,
    index: ScanIndex,
    profiles: HashMap<Arc<str>, UnitProfile>,
    counts: FilterCounts,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: LocationConfig) -> Self {
        Tracker {
            config,
            slots_by_unit: HashMap::new(),
            entries: Vec::new(),
            free_slots: Vec::new(),
            index: ScanIndex::new(),
            profiles: HashMap::new(),
            counts: FilterCounts::default(),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &LocationConfig {
        &self.config
    }

    /// Sets the profile (maximum speed) of a unit, seen or not yet seen. Units without one use
    /// `config.default_profile`; see [`LocationConfig::profile`] for profiles by unit type.
    pub fn set_profile(&mut self, unit: &str, profile: UnitProfile) {
        self.profiles.insert(Arc::from(unit), profile);
    }

    /// Filters a fix with the unit's registered profile and applies it. See
    /// [`Tracker::apply_fix_with_profile`].
    pub fn apply_fix(&mut self, unit: &str, fix: Fix, now: Timestamp) -> FixOutcome {
        let profile = self
            .profiles
            .get(unit)
            .copied()
            .unwrap_or(self.config.default_profile);
        self.apply_fix_with_profile(unit, fix, &profile, now)
    }

    /// Filters a fix against the unit's latest one, with `profile` for the jump filter, and
    /// applies it: an accepted fix newer than the latest becomes the latest and moves the unit
    /// in the index; an accepted older one (a buffered batch) is history only. Any fix, even a
    /// rejected one, is a message from the unit and so keeps it online.
    pub fn apply_fix_with_profile(
        &mut self,
        unit: &str,
        fix: Fix,
        profile: &UnitProfile,
        now: Timestamp,
    ) -> FixOutcome {
        let Some(&slot) = self.slots_by_unit.get(unit) else {
            return self.first_fix(unit, fix, now);
        };
        let config = &self.config;
        let entry = self.entries[slot as usize]
            .as_mut()
            .expect("slot of a known unit");
        let previous = Previous {
            latest: &entry.state.fix,
            jumps_in_row: entry.jumps_in_row,
            max_speed_mps: profile.max_speed_mps,
        };
        let verdict = filter::check(&config.filters, &fix, Some(previous), now);
        let presence = heard_from(&mut entry.state, now);
        let mut outcome = FixOutcome {
            accepted: verdict.is_ok(),
            rejected: verdict.err(),
            latest_updated: false,
            presence,
        };
        match verdict {
            Err(reason) => {
                self.counts.add(reason);
                if reason == FilterReason::Jump {
                    entry.jumps_in_row += 1;
                }
            }
            Ok(()) if fix.fix_time > entry.state.fix.fix_time => {
                entry.state.fix = fix;
                entry.state.received_at = now;
                entry.jumps_in_row = 0;
                self.index.upsert(slot, fix.lat, fix.lon);
                outcome.latest_updated = true;
            }
            // Out of order: history only, the newer latest stays.
            Ok(()) => {}
        }
        outcome
    }

    fn first_fix(&mut self, unit: &str, fix: Fix, now: Timestamp) -> FixOutcome {
        if let Err(reason) = filter::check(&self.config.filters, &fix, None, now) {
            self.counts.add(reason);
            return FixOutcome {
                accepted: false,
                rejected: Some(reason),
                latest_updated: false,
                presence: None,
            };
        }
        let unit: Arc<str> = Arc::from(unit);
        // A unit never heard from counts as offline, so its first fix is a presence event.
        let event = PresenceEvent {
            unit: Arc::clone(&unit),
            from: Presence::Offline,
            to: Presence::Online,
            at: now,
        };
        self.insert(unit, fix, now, Presence::Online, now);
        FixOutcome {
            accepted: true,
            rejected: None,
            latest_updated: true,
            presence: Some(event),
        }
    }

    fn insert(
        &mut self,
        unit: Arc<str>,
        fix: Fix,
        received_at: Timestamp,
        presence: Presence,
        now: Timestamp,
    ) {
        let state = UnitState {
            unit: Arc::clone(&unit),
            fix,
            received_at,
            presence,
            presence_since: now,
            last_seen: received_at,
        };
        let entry = Some(Entry {
            state,
            jumps_in_row: 0,
        });
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.slots_by_unit.insert(unit, slot);
        self.index.upsert(slot, fix.lat, fix.lon);
    }

    fn entry_mut(&mut self, unit: &str) -> Option<&mut Entry> {
        let slot = *self.slots_by_unit.get(unit)?;
        self.entries[slot as usize].as_mut()
    }

    fn state_at(&self, slot: u32) -> &UnitState {
        &self.entries[slot as usize]
            .as_ref()
            .expect("indexed slot")
            .state
    }

    /// The latest state of a unit.
    pub fn get(&self, unit: &str) -> Option<&UnitState> {
        let slot = *self.slots_by_unit.get(unit)?;
        self.entries[slot as usize].as_ref().map(|e| &e.state)
    }

    /// Every unit, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &UnitState> {
        self.entries.iter().flatten().map(|e| &e.state)
    }

    /// Units tracked.
    pub fn len(&self) -> usize {
        self.slots_by_unit.len()
    }

    /// True when no unit is tracked.
    pub fn is_empty(&self) -> bool {
        self.slots_by_unit.is_empty()
    }

    /// Rejections per filter since start.
    pub fn filter_counts(&self) -> &FilterCounts {
        &self.counts
    }

    /// A message other than a fix (heartbeat, status, ack) arrived from the unit: it is alive.
    /// `None` when nothing changed or the unit has no position yet.
    pub fn seen(&mut self, unit: &str, now: Timestamp) -> Option<PresenceEvent> {
        heard_from(&mut self.entry_mut(unit)?.state, now)
    }

    /// The unit's MQTT last will fired, or it said goodbye: offline at once.
    pub fn mark_offline(&mut self, unit: &str, now: Timestamp) -> Option<PresenceEvent> {
        let state = &mut self.entry_mut(unit)?.state;
        presence::transition(
            &state.unit,
            &mut state.presence,
            &mut state.presence_since,
            Presence::Offline,
            now,
        )
    }

    /// Applies the timeouts: online→stale→offline. Call it every second or so; the events carry
    /// the time each timeout expired, whatever the tick rate. O(units): about a millisecond at
    /// 100k units, cheaper than keeping a deadline queue up to date at 2M fixes per second.
    pub fn tick(&mut self, now: Timestamp) -> Vec<PresenceEvent> {
        let mut events = Vec::new();
        for entry in self.entries.iter_mut().flatten() {
            let s = &mut entry.state;
            presence::on_tick(
                &s.unit,
                &mut s.presence,
                &mut s.presence_since,
                s.last_seen,
                now,
                &self.config,
                &mut events,
            );
        }
        events
    }

    /// Rebuilds a unit from the store's snapshot at startup, unfiltered (it was filtered when
    /// it arrived). Presence follows from the snapshot's age; a newer fix already held wins.
    pub fn restore(&mut self, unit: &str, fix: Fix, received_at: Timestamp, now: Timestamp) {
        let presence = Presence::from_age(received_at, now, &self.config);
        if let Some(entry) = self.entry_mut(unit) {
            if entry.state.fix.fix_time >= fix.fix_time {
                return;
            }
            let slot = self.slots_by_unit[unit];
            self.remove_slot(slot);
        }
        self.insert(Arc::from(unit), fix, received_at, presence, now);
    }

    /// Forgets a unit (decommissioned handset), returning its last state.
    pub fn remove(&mut self, unit: &str) -> Option<UnitState> {
        let slot = *self.slots_by_unit.get(unit)?;
        self.remove_slot(slot)
    }

    fn remove_slot(&mut self, slot: u32) -> Option<UnitState> {
        let entry = self.entries[slot as usize].take()?;
        self.slots_by_unit.remove(&entry.state.unit);
        self.index.remove(slot);
        self.free_slots.push(slot);
        Some(entry.state)
    }

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

    fn neighbours(&self, hits: Vec<crate::index::Hit>) -> Vec<Neighbour> {
        hits.into_iter()
            .map(|h| Neighbour {
                unit: Arc::clone(&self.state_at(h.slot).unit),
                distance_m: h.distance_m,
            })
            .collect()
    }
}

/// Any message from the unit: note the time and bring it online.
fn heard_from(state: &mut UnitState, now: Timestamp) -> Option<PresenceEvent> {
    state.last_seen = state.last_seen.max(now);
    presence::transition(
        &state.unit,
        &mut state.presence,
        &mut state.presence_since,
        Presence::Online,
        now,
    )
}

#[cfg(test)]
mod tests;

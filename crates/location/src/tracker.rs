//! The tracker: one entry per unit, tying filters, presence and the spatial index together.
//!
//! Owns the latest state of every unit and the slot each unit holds in the index. Does not own
//! history (it hands every fix back as a record for the store), nor availability (dispatch
//! passes it in as a predicate), nor the clock (every call takes `now`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{LocationConfig, UnitProfile};
use crate::filter::{self, FilterCounts, FilterReason, Previous};
use crate::fix::Fix;
use crate::geofence::Zones;
use crate::index::{GridIndex, SpatialIndex};
use crate::presence::{Presence, PresenceEvent};
use fieldlink_clock::Timestamp;
use id_hash::{IdHashState, UnitKey};

pub use queries::Neighbour;
pub use state::{FixOutcome, UnitState};

mod id_hash;
mod liveness;
mod queries;
mod state;

#[derive(Debug)]
struct Entry {
    state: UnitState,
    /// Jump rejections since the latest accepted fix (see `FilterConfig::jump_reanchor_after`).
    jumps_in_row: u32,
    /// The unit's entry in `Tracker::profiles`, mirrored here so that a fix costs one id
    /// lookup, not two (the server registers a profile for every unit).
    profile: Option<UnitProfile>,
}

/// Latest state of every unit, with presence and spatial queries. See the crate docs.
#[derive(Debug)]
pub struct Tracker {
    config: LocationConfig,
    slots_by_unit: HashMap<UnitKey, u32, IdHashState>,
    entries: Vec<Option<Entry>>,
    free_slots: Vec<u32>,
    index: GridIndex,
    profiles: HashMap<Arc<str>, UnitProfile, IdHashState>,
    counts: FilterCounts,
    zones: Zones,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: LocationConfig) -> Self {
        Tracker {
            index: GridIndex::new(config.index_cell_m),
            zones: Zones::new(config.hysteresis_m),
            config,
            slots_by_unit: HashMap::default(),
            entries: Vec::new(),
            free_slots: Vec::new(),
            profiles: HashMap::default(),
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
        if let Some(entry) = self.entry_mut(unit) {
            entry.profile = Some(profile);
        }
        self.profiles.insert(Arc::from(unit), profile);
    }

    /// Filters a fix with the unit's registered profile and applies it. See
    /// [`Tracker::apply_fix_with_profile`].
    pub fn apply_fix(&mut self, unit: &str, fix: Fix, now: Timestamp) -> FixOutcome {
        self.apply(unit, fix, None, now)
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
        self.apply(unit, fix, Some(profile), now)
    }

    /// Both of the above: `profile`, else the unit's registered one, else the default.
    #[inline] // into both, which otherwise copy the fix (88 bytes) once more per call
    fn apply(
        &mut self,
        unit: &str,
        fix: Fix,
        profile: Option<&UnitProfile>,
        now: Timestamp,
    ) -> FixOutcome {
        let Some(&slot) = self.slots_by_unit.get(unit.as_bytes()) else {
            return self.first_fix(unit, fix, now);
        };
        let config = &self.config;
        let entry = self.entries[slot as usize]
            .as_mut()
            .expect("slot of a known unit");
        let profile = profile
            .or(entry.profile.as_ref())
            .unwrap_or(&config.default_profile);
        let previous = Previous {
            latest: &entry.state.fix,
            jumps_in_row: entry.jumps_in_row,
            max_speed_mps: profile.max_speed_mps,
        };
        let verdict = filter::check(&config.filters, &fix, Some(previous), now);
        let presence = liveness::heard_from(&mut entry.state, now);
        let mut latest_updated = false;
        let mut zone_events = Vec::new();
        match verdict {
            Err(reason) => {
                self.counts.add(reason);
                if reason == FilterReason::Jump {
                    entry.jumps_in_row += 1;
                }
            }
            Ok(()) if fix.fix_time > entry.state.fix.fix_time => {
                let state = &mut entry.state;
                state.fix = fix;
                state.received_at = now;
                entry.jumps_in_row = 0;
                self.index.upsert(slot, fix.lat, fix.lon);
                latest_updated = true;
                zone_events =
                    self.zones
                        .update(&state.unit, &mut state.zones, fix.lat, fix.lon, now);
            }
            // Out of order: history only, the newer latest stays.
            Ok(()) => {}
        }
        // Built last, straight into the caller's slot: an outcome built first and filled in
        // was copied out whole (168 bytes through memcpy) on every fix.
        FixOutcome::new(fix, now, verdict, latest_updated, presence, zone_events)
    }

    fn first_fix(&mut self, unit: &str, fix: Fix, now: Timestamp) -> FixOutcome {
        let verdict = filter::check(&self.config.filters, &fix, None, now);
        if let Err(reason) = verdict {
            // No position to show, so no state: the unit appears with its first good fix.
            self.counts.add(reason);
            return FixOutcome::new(fix, now, verdict, false, None, Vec::new());
        }
        let unit: Arc<str> = Arc::from(unit);
        // A unit never heard from counts as offline, so its first fix is a presence event.
        let presence = Some(PresenceEvent {
            unit: Arc::clone(&unit),
            from: Presence::Offline,
            to: Presence::Online,
            at: now,
        });
        let slot = self.insert(unit, fix, now, Presence::Online, now);
        let state = &mut self.entries[slot as usize]
            .as_mut()
            .expect("inserted")
            .state;
        let zone_events = self
            .zones
            .update(&state.unit, &mut state.zones, fix.lat, fix.lon, now);
        FixOutcome::new(fix, now, verdict, true, presence, zone_events)
    }

    fn insert(
        &mut self,
        unit: Arc<str>,
        fix: Fix,
        received_at: Timestamp,
        presence: Presence,
        now: Timestamp,
    ) -> u32 {
        let state = UnitState {
            unit: Arc::clone(&unit),
            fix,
            received_at,
            presence,
            presence_since: now,
            last_seen: received_at,
            zones: Vec::new(),
        };
        // Most deployments register no profiles: skip the lookup then.
        let profile = match self.profiles.is_empty() {
            true => None,
            false => self.profiles.get(&*unit).copied(),
        };
        let entry = Some(Entry {
            state,
            jumps_in_row: 0,
            profile,
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
        self.slots_by_unit.insert(UnitKey::new(&unit), slot);
        self.index.upsert(slot, fix.lat, fix.lon);
        slot
    }

    fn entry_mut(&mut self, unit: &str) -> Option<&mut Entry> {
        let slot = *self.slots_by_unit.get(unit.as_bytes())?;
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
        let slot = *self.slots_by_unit.get(unit.as_bytes())?;
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

    /// Rebuilds a unit from the store's snapshot at startup, unfiltered (it was filtered when
    /// it arrived). Presence follows from the snapshot's age; a newer fix already held wins.
    /// The areas it is in are recomputed without events: it was in them before the restart.
    pub fn restore(&mut self, unit: &str, fix: Fix, received_at: Timestamp, now: Timestamp) {
        let presence = Presence::from_age(received_at, now, &self.config);
        if let Some(entry) = self.entry_mut(unit) {
            if entry.state.fix.fix_time >= fix.fix_time {
                return;
            }
            let slot = self.slots_by_unit[unit.as_bytes()];
            self.remove_slot(slot);
        }
        let slot = self.insert(Arc::from(unit), fix, received_at, presence, now);
        let state = &mut self.entries[slot as usize]
            .as_mut()
            .expect("inserted")
            .state;
        self.zones
            .update(&state.unit, &mut state.zones, fix.lat, fix.lon, now);
    }

    /// Forgets a unit (decommissioned handset), returning its last state.
    pub fn remove(&mut self, unit: &str) -> Option<UnitState> {
        let slot = *self.slots_by_unit.get(unit.as_bytes())?;
        self.remove_slot(slot)
    }

    fn remove_slot(&mut self, slot: u32) -> Option<UnitState> {
        let entry = self.entries[slot as usize].take()?;
        self.slots_by_unit.remove(entry.state.unit.as_bytes());
        self.index.remove(slot);
        self.free_slots.push(slot);
        Some(entry.state)
    }
}

#[cfg(test)]
mod tests;

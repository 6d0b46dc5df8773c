//! The tracker's presence side: heartbeats, last wills, and the timeouts applied on tick.
//!
//! Owns when presence rules are applied to the tracker's units; the rules themselves are in
//! `presence`.

use fieldlink_clock::Timestamp;

use super::{Tracker, UnitState};
use crate::presence::{self, Presence, PresenceEvent};

impl Tracker {
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
}

/// Any message from the unit: note the time and bring it online.
pub(super) fn heard_from(state: &mut UnitState, now: Timestamp) -> Option<PresenceEvent> {
    state.last_seen = state.last_seen.max(now);
    presence::transition(
        &state.unit,
        &mut state.presence,
        &mut state.presence_since,
        Presence::Online,
        now,
    )
}

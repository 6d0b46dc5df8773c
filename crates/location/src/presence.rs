//! Presence: whether a unit is online, stale or offline, and the events when that changes.
//!
//! Owns the rules only: any message from a unit (fix, rejected fix, heartbeat) makes it online;
//! silence past `stale_after` makes it stale and past `offline_after` offline; an MQTT last will
//! or goodbye makes it offline at once. Does not own the per-unit state (the tracker does) nor
//! journalling the events (the server does).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::LocationConfig;
use fieldlink_clock::Timestamp;

/// Whether the command room may treat a unit's dot as live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Heard from within `stale_after`.
    Online,
    /// Silent for `stale_after`: the last position is shown, but not as live.
    Stale,
    /// Said goodbye, its last will fired, or silent for `offline_after`.
    Offline,
}

impl Presence {
    /// The snake_case name, as a metrics label and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Stale => "stale",
            Presence::Offline => "offline",
        }
    }

    /// The presence a unit last heard from at `last_seen` has at `now`, by timeouts alone.
    pub fn from_age(last_seen: Timestamp, now: Timestamp, config: &LocationConfig) -> Presence {
        let age = now.since(last_seen);
        if age >= config.offline_after {
            Presence::Offline
        } else if age >= config.stale_after {
            Presence::Stale
        } else {
            Presence::Online
        }
    }
}

/// A unit's presence changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    /// The unit.
    pub unit: Arc<str>,
    /// Presence before.
    pub from: Presence,
    /// Presence after.
    pub to: Presence,
    /// When the change took effect: the message's arrival, or the moment the timeout expired
    /// (not the tick that noticed it), so that history does not depend on the tick rate.
    pub at: Timestamp,
}

/// Moves `presence` to `to` and returns the event, or `None` when nothing changed.
pub(crate) fn transition(
    unit: &Arc<str>,
    presence: &mut Presence,
    since: &mut Timestamp,
    to: Presence,
    at: Timestamp,
) -> Option<PresenceEvent> {
    if *presence == to {
        return None;
    }
    let from = std::mem::replace(presence, to);
    *since = at;
    Some(PresenceEvent {
        unit: Arc::clone(unit),
        from,
        to,
        at,
    })
}

/// The events a tick at `now` owes a unit last seen at `last_seen`: online→stale, stale→offline,
/// or both at once when a tick came late. Offline never decays further; only a message revives.
pub(crate) fn on_tick(
    unit: &Arc<str>,
    presence: &mut Presence,
    since: &mut Timestamp,
    last_seen: Timestamp,
    now: Timestamp,
    config: &LocationConfig,
    out: &mut Vec<PresenceEvent>,
) {
    let due = Presence::from_age(last_seen, now, config);
    if *presence == Presence::Online && due != Presence::Online {
        let at = last_seen.plus(config.stale_after);
        out.extend(transition(unit, presence, since, Presence::Stale, at));
    }
    if *presence == Presence::Stale && due == Presence::Offline {
        let at = last_seen.plus(config.offline_after);
        out.extend(transition(unit, presence, since, Presence::Offline, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(1_700_000_000 + s)
    }

    #[test]
    fn age_maps_to_presence_at_the_boundaries() {
        let config = LocationConfig::default();
        assert_eq!(Presence::from_age(t(0), t(59), &config), Presence::Online);
        assert_eq!(Presence::from_age(t(0), t(60), &config), Presence::Stale);
        assert_eq!(Presence::from_age(t(0), t(600), &config), Presence::Offline);
        // A last_seen in the future (skewed clock) is simply online.
        assert_eq!(Presence::from_age(t(10), t(0), &config), Presence::Online);
    }

    #[test]
    fn a_late_tick_emits_both_steps_at_their_due_times() {
        let config = LocationConfig {
            stale_after: Duration::from_secs(30),
            offline_after: Duration::from_secs(120),
            ..LocationConfig::default()
        };
        let unit: Arc<str> = Arc::from("u1");
        let (mut presence, mut since) = (Presence::Online, t(0));
        let mut events = Vec::new();
        on_tick(
            &unit,
            &mut presence,
            &mut since,
            t(0),
            t(29),
            &config,
            &mut events,
        );
        assert!(events.is_empty());
        on_tick(
            &unit,
            &mut presence,
            &mut since,
            t(0),
            t(500),
            &config,
            &mut events,
        );
        let steps: Vec<_> = events.iter().map(|e| (e.from, e.to, e.at)).collect();
        assert_eq!(
            steps,
            [
                (Presence::Online, Presence::Stale, t(30)),
                (Presence::Stale, Presence::Offline, t(120)),
            ]
        );
        assert_eq!(since, t(120));
        events.clear();
        on_tick(
            &unit,
            &mut presence,
            &mut since,
            t(0),
            t(9_000),
            &config,
            &mut events,
        );
        assert!(events.is_empty(), "offline does not decay further");
    }

    #[test]
    fn transition_to_the_same_state_is_silent() {
        let unit: Arc<str> = Arc::from("u1");
        let (mut presence, mut since) = (Presence::Offline, t(0));
        assert!(transition(&unit, &mut presence, &mut since, Presence::Offline, t(5)).is_none());
        assert_eq!(since, t(0));
        let event = transition(&unit, &mut presence, &mut since, Presence::Online, t(6)).unwrap();
        assert_eq!(
            (event.from, event.to, event.at),
            (Presence::Offline, Presence::Online, t(6))
        );
    }
}

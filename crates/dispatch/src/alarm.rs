//! Alarms: raised (target missed, no one available, SOS, geofence rules), re-notified until a
//! named dispatcher acknowledges them, resolved. Re-notification is a timer (`timers.rs`).
//! Rules that live outside the core (geofences) raise theirs with [`Dispatcher::raise_rule_alarm`].

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::desk::{Dispatcher, named};
use crate::error::DispatchError;
use crate::journal::{Change, Effect, Outcome};
use crate::model::{Actor, AlarmId, IncidentId, UnitId};
use crate::timers::{TimerKind, secs};

/// Why an alarm was raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlarmKind {
    /// No order accepted within the response target.
    ResponseMissed,
    /// No one on scene within the arrival target.
    ArrivalMissed,
    /// No reinforcing responder on scene within the reinforcement target.
    ReinforcementMissed {
        /// The reinforcement request.
        seq: u32,
    },
    /// The incident waits for a free, fitting responder.
    NoOneAvailable,
    /// A responder pressed SOS.
    Sos {
        /// Who.
        unit: UnitId,
    },
    /// A geofence rule fired: a unit entered or left an area marked to alarm.
    Geofence {
        /// The area's id.
        zone: String,
        /// Who crossed it.
        unit: UnitId,
        /// Entered (true) or left (false).
        entered: bool,
        /// For the console: "patrol-07 entered Hubin venue".
        message: String,
    },
}

/// Raised, acknowledged by a named dispatcher, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// Re-notified until acknowledged.
    Raised,
    /// Someone in the command room has it.
    Acknowledged,
    /// Over.
    Resolved,
}

/// An alarm on every console.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// Its id.
    pub id: AlarmId,
    /// Why.
    pub kind: AlarmKind,
    /// The incident it concerns.
    pub incident: Option<IncidentId>,
    /// Where it stands.
    pub state: AlarmState,
    /// When it was raised.
    pub raised_at: Timestamp,
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(Actor, Timestamp)>,
    /// Times it was re-notified.
    pub notifications: u32,
}

impl Dispatcher {
    /// Raises an alarm: journal, effect, re-notify timer.
    pub(crate) fn raise_alarm(
        &mut self,
        now: Timestamp,
        kind: AlarmKind,
        incident: Option<IncidentId>,
        actor: &Actor,
        out: &mut Outcome,
    ) -> AlarmId {
        let id = self.ids.alarm_id();
        let alarm = Alarm {
            id: id.clone(),
            kind,
            incident,
            state: AlarmState::Raised,
            raised_at: now,
            acknowledged: None,
            notifications: 0,
        };
        let change = Change::AlarmRaised {
            alarm: Box::new(alarm.clone()),
        };
        out.event(now, actor, change);
        out.effects.push(Effect::RaiseAlarm {
            alarm: alarm.clone(),
        });
        self.state.alarms.insert(id.clone(), alarm);
        let at = now.plus(secs(self.config.alarm_renotify_s));
        let kind = TimerKind::AlarmRenotify { alarm: id.clone() };
        self.state.timers.schedule(at, kind);
        id
    }

    /// Raises an alarm for a rule the caller evaluates (a geofence rule, ...), in the name of
    /// `actor` (`Actor::System("geofence_rule")`). Like every alarm it is re-notified until a
    /// named dispatcher acknowledges it. Only the kinds no core rule raises are accepted.
    pub fn raise_rule_alarm(
        &mut self,
        now: Timestamp,
        kind: AlarmKind,
        actor: Actor,
    ) -> Result<(AlarmId, Outcome), DispatchError> {
        named(&actor)?;
        if !matches!(kind, AlarmKind::Geofence { .. }) {
            return Err(DispatchError::NotARuleAlarm);
        }
        let mut out = Outcome::default();
        let id = self.raise_alarm(now, kind, None, &actor, &mut out);
        Ok((id, self.finish(out)))
    }

    /// A named dispatcher acknowledges an alarm: re-notification stops. Repeats are no-ops.
    pub fn acknowledge_alarm(
        &mut self,
        now: Timestamp,
        alarm: &AlarmId,
        dispatcher: &str,
    ) -> Result<Outcome, DispatchError> {
        let actor = Actor::dispatcher(dispatcher);
        named(&actor)?;
        let a = (self.state.alarms.get_mut(alarm))
            .ok_or_else(|| DispatchError::UnknownAlarm(alarm.clone()))?;
        let mut out = Outcome::default();
        if a.state == AlarmState::Raised {
            a.state = AlarmState::Acknowledged;
            a.acknowledged = Some((actor.clone(), now));
            let change = Change::AlarmAcknowledged {
                alarm: alarm.clone(),
            };
            out.event(now, &actor, change);
            self.state
                .timers
                .cancel_where(|k| matches!(k, TimerKind::AlarmRenotify { alarm: a } if a == alarm));
        }
        Ok(self.finish(out))
    }

    /// Resolves an alarm. Repeats are no-ops.
    pub fn resolve_alarm(
        &mut self,
        now: Timestamp,
        alarm: &AlarmId,
        actor: Actor,
    ) -> Result<Outcome, DispatchError> {
        named(&actor)?;
        self.alarm(alarm)?;
        let mut out = Outcome::default();
        self.resolve_alarm_by(now, alarm, &actor, &mut out);
        Ok(self.finish(out))
    }

    pub(crate) fn resolve_alarm_by(
        &mut self,
        now: Timestamp,
        alarm: &AlarmId,
        actor: &Actor,
        out: &mut Outcome,
    ) {
        let Some(a) = self.state.alarms.get_mut(alarm) else {
            return;
        };
        if a.state != AlarmState::Resolved {
            a.state = AlarmState::Resolved;
            let change = Change::AlarmResolved {
                alarm: alarm.clone(),
            };
            out.event(now, actor, change);
            self.state
                .timers
                .cancel_where(|k| matches!(k, TimerKind::AlarmRenotify { alarm: a } if a == alarm));
        }
    }
}

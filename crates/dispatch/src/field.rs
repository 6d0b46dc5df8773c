//! What handsets report besides receipts: GPS fixes (arrival detection), duty status, presence,
//! SOS and field reports.
//!
//! Positions are not kept here beyond each responder's last fix (an SOS is placed there); the
//! location crate owns tracks and filtering, and feeds accepted fixes in.

use fieldlink_clock::Timestamp;

use crate::alarm::AlarmKind;
use crate::desk::Dispatcher;
use crate::error::DispatchError;
use crate::journal::Outcome;
use crate::model::{
    Actor, IncidentId, IncidentKind, IncidentSource, LatLon, NewIncident, Priority, UnitId,
};
use crate::order::OrderState;
use crate::queue::CandidateSource;
use crate::status::{Candidate, DutyStatus, Responder, ResponderStatus};

impl Dispatcher {
    /// A GPS fix of a unit. An accepted or en-route responder inside the arrival radius for the
    /// configured number of consecutive fixes is on scene (actor `system:gps_arrival`); one fix
    /// outside resets the count.
    pub fn gps_fix(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        position: LatLon,
    ) -> Result<Outcome, DispatchError> {
        self.responder_mut(unit).last_fix = Some((position, now));
        let mut out = Outcome::default();
        if !self.arrival_pending(unit) {
            return Ok(self.finish(out));
        }
        let Some(order) = (self.state.responders.get(unit)).and_then(|r| r.order.clone()) else {
            return Ok(self.finish(out));
        };
        let o = self.order(&order)?;
        let Some(site) = self.incident(&o.incident)?.spec.location else {
            return Ok(self.finish(out));
        };
        let inside = position.distance_m(site) <= self.config.arrival_radius_m;
        let needed = self.config.arrival_fixes;
        let Some(o) = self.state.orders.get_mut(&order) else {
            return Ok(self.finish(out));
        };
        o.inside_fixes = if inside { o.inside_fixes + 1 } else { 0 };
        if o.inside_fixes >= needed {
            let actor = Actor::system("gps_arrival");
            self.transition(now, &order, OrderState::OnScene, &actor, &mut out)?;
        }
        Ok(self.finish(out))
    }

    /// Whether a fix of `unit` can matter beyond its last fix: it holds an accepted or en-route
    /// order, so the fix may be an arrival. Most fixes do not; the caller may then use
    /// [`note_last_fix`](Self::note_last_fix) and skip the command machinery.
    pub fn arrival_pending(&self, unit: &UnitId) -> bool {
        (self.state.responders.get(unit))
            .and_then(|r| r.order.as_ref())
            .and_then(|o| self.state.orders.get(o))
            .is_some_and(|o| matches!(o.state, OrderState::Accepted | OrderState::EnRoute))
    }

    /// Keeps a unit's last fix (where an SOS without a position is placed), and nothing else:
    /// nothing to journal or persist.
    pub fn note_last_fix(&mut self, now: Timestamp, unit: &UnitId, position: LatLon) {
        (self.state.responders.entry(unit.clone()))
            .or_insert_with(|| Responder::new(unit.clone()))
            .last_fix = Some((position, now));
    }

    /// The duty status a handset reports. A responder who becomes available is offered queued
    /// incidents at once.
    pub fn responder_duty(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        duty: DutyStatus,
        src: &dyn CandidateSource,
    ) -> Result<Outcome, DispatchError> {
        self.update_responder(now, unit, &Actor::Unit(unit.clone()), src, |r| {
            r.duty = duty
        })
    }

    /// Presence (handset connected or not), from the location/presence tracker.
    pub fn responder_presence(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        online: bool,
        src: &dyn CandidateSource,
    ) -> Result<Outcome, DispatchError> {
        let actor = Actor::system("presence");
        self.update_responder(now, unit, &actor, src, |r| r.online = online)
    }

    fn update_responder(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        actor: &Actor,
        src: &dyn CandidateSource,
        change: impl FnOnce(&mut Responder),
    ) -> Result<Outcome, DispatchError> {
        let before = self.responder_status(unit);
        change(self.responder_mut(unit));
        let mut out = Outcome::default();
        self.note_status(now, unit, before, actor, &mut out);
        // Only a responder who just became available can change what the queue can do.
        let freed = self.responder_status(unit) == ResponderStatus::Available;
        if freed && before != ResponderStatus::Available {
            self.drain_queue(now, src, &mut out)?;
        }
        Ok(self.finish(out))
    }

    /// SOS from a handset: a critical incident at `position` (or the unit's last fix), an SOS
    /// alarm on every console, and the nearest fitting others dispatched at once
    /// (`sos_responders` of them; any missing are queued). Idempotent by `request_id`.
    pub fn sos(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        request_id: Option<String>,
        position: Option<LatLon>,
        candidates: &[Candidate],
    ) -> Result<(IncidentId, Outcome), DispatchError> {
        let last = (self.state.responders.get(unit)).and_then(|r| r.last_fix.map(|(p, _)| p));
        let location = position
            .or(last)
            .ok_or_else(|| DispatchError::NoPosition(unit.clone()))?;
        let actor = Actor::Unit(unit.clone());
        let spec = NewIncident {
            request_id,
            kind: IncidentKind::Other,
            priority: Priority::Critical,
            location: Some(location),
            grid: None,
            description: format!("SOS from {unit}"),
            source: IncidentSource::Sos(unit.clone()),
        };
        let (id, mut out) = self.create_incident(now, spec, actor.clone())?;
        if out.is_empty() {
            return Ok((id, self.finish(out)));
        }
        let kind = AlarmKind::Sos { unit: unit.clone() };
        self.raise_alarm(now, kind, Some(id.clone()), &actor, &mut out);
        let others: Vec<Candidate> = (candidates.iter())
            .filter(|c| &c.unit != unit)
            .cloned()
            .collect();
        let count = self.config.sos_responders;
        let rule = Actor::system("sos");
        self.send_best(now, &id, None, count, &rule, &others, &mut out)?;
        Ok((id, self.finish(out)))
    }

    /// A field report from a handset: an incident with the unit as its source, for the command
    /// room to dispatch or close. Idempotent by `spec.request_id`.
    pub fn field_report(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        mut spec: NewIncident,
    ) -> Result<(IncidentId, Outcome), DispatchError> {
        spec.source = IncidentSource::FieldReport(unit.clone());
        self.create_incident(now, spec, Actor::Unit(unit.clone()))
    }
}

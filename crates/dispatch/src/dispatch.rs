//! Sending responders: one click, manual choice, recommendation, reinforcement, and the ranking
//! they share (available, skilled, not yet tried; the incident's grid first, then wider).
//!
//! Candidates are ranked by the caller (nearest first, from the location tracker); this module
//! only filters and groups them, keeping the caller's order within each group.

use fieldlink_clock::Timestamp;

use crate::desk::{Dispatcher, named};
use crate::error::DispatchError;
use crate::journal::{Change, Effect, Outcome};
use crate::model::{Actor, Incident, IncidentId, OrderId, Reinforcement, UnitId};
use crate::order::{Order, OrderMessage, OrderState};
use crate::status::{Candidate, Recommendation, ResponderStatus};
use crate::timers::{TimerKind, secs};

impl Dispatcher {
    /// One click: sends the first fitting candidate (available, skilled, same grid first). With
    /// no one fitting, the incident is queued with a "no one available" alarm and is dispatched
    /// when someone frees.
    pub fn dispatch(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        actor: Actor,
        candidates: &[Candidate],
    ) -> Result<Outcome, DispatchError> {
        named(&actor)?;
        let mut out = Outcome::default();
        self.send_best(now, incident, None, 1, &actor, candidates, &mut out)?;
        Ok(self.finish(out))
    }

    /// Dispatch of units a dispatcher chose. Each must be available; skills are not checked
    /// (the dispatcher knows better). All or nothing.
    pub fn dispatch_units(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        dispatcher: &str,
        units: &[UnitId],
    ) -> Result<Outcome, DispatchError> {
        let actor = Actor::dispatcher(dispatcher);
        named(&actor)?;
        self.open_incident(incident)?;
        for unit in units {
            let status = self.responder_status(unit);
            if status != ResponderStatus::Available
                || units.iter().filter(|u| *u == unit).count() > 1
            {
                let unit = unit.clone();
                return Err(DispatchError::UnitUnavailable { unit, status });
            }
        }
        let mut out = Outcome::default();
        for unit in units {
            self.send_order(now, incident, unit, &actor, None, &mut out)?;
        }
        self.served(now, incident, None, units.len(), &actor, &mut out);
        Ok(self.finish(out))
    }

    /// The fitting candidates in dispatch order, with ETAs. Changes nothing.
    pub fn recommend(
        &self,
        incident: &IncidentId,
        candidates: &[Candidate],
    ) -> Result<Vec<Recommendation>, DispatchError> {
        let i = self.incident(incident)?;
        Ok((self.rank(i, candidates).into_iter())
            .map(|c| Recommendation {
                eta_s: self.config.eta_s(c.distance_m, &c.unit_type),
                same_grid: i.spec.grid.is_some() && c.grid == i.spec.grid,
                candidate: c.clone(),
            })
            .collect())
    }

    /// Requests `count` reinforcing responders: starts the reinforcement clock and sends the
    /// best candidates; any still missing are queued.
    pub fn reinforce(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        actor: Actor,
        count: usize,
        candidates: &[Candidate],
    ) -> Result<Outcome, DispatchError> {
        named(&actor)?;
        let i = self.open_incident(incident)?;
        let seq = i.reinforcements.len() as u32 + 1;
        let target = self.config.targets_for(i.spec.priority).reinforcement_s;
        let mut out = Outcome::default();
        if let Some(i) = self.state.incidents.get_mut(incident) {
            i.reinforcements.push(Reinforcement {
                seq,
                requested_at: now,
                by: actor.clone(),
                on_scene_at: None,
            });
        }
        let change = Change::ReinforcementRequested {
            incident: incident.clone(),
            seq,
        };
        out.event(now, &actor, change);
        let kind = TimerKind::ReinforcementTarget {
            incident: incident.clone(),
            seq,
        };
        self.state.timers.schedule(now.plus(secs(target)), kind);
        self.send_best(
            now,
            incident,
            Some(seq),
            count,
            &actor,
            candidates,
            &mut out,
        )?;
        Ok(self.finish(out))
    }

    pub(crate) fn open_incident(&self, id: &IncidentId) -> Result<&Incident, DispatchError> {
        let i = self.incident(id)?;
        if i.is_open() {
            Ok(i)
        } else {
            Err(DispatchError::IncidentClosed(id.clone()))
        }
    }

    /// Fitting candidates in dispatch order: available, skilled, not already tried on this
    /// incident; the incident's grid first, then the rest, each in the caller's order.
    pub(crate) fn rank<'c>(
        &self,
        incident: &Incident,
        candidates: &'c [Candidate],
    ) -> Vec<&'c Candidate> {
        let needed = self.config.skills_for(incident.spec.kind);
        let tried = |u: &UnitId| {
            (incident.orders.iter()).any(|o| self.state.orders.get(o).is_some_and(|o| &o.unit == u))
        };
        let mut fit: Vec<&Candidate> = (candidates.iter())
            .filter(|c| self.responder_status(&c.unit) == ResponderStatus::Available)
            .filter(|c| needed.iter().all(|s| c.skills.contains(s)))
            .filter(|c| !tried(&c.unit))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        fit.retain(|c| seen.insert(&c.unit));
        // Stable: the caller's ranking holds within each group.
        let grid = &incident.spec.grid;
        fit.sort_by_key(|c| !(grid.is_some() && &c.grid == grid));
        fit
    }

    /// Creates an order for `unit`, sends it, and arms its acceptance timeout and re-send.
    pub(crate) fn send_order(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        unit: &UnitId,
        actor: &Actor,
        reinforcement: Option<u32>,
        out: &mut Outcome,
    ) -> Result<OrderId, DispatchError> {
        let before = self.responder_status(unit);
        let id = self.ids.order_id();
        let order = Order {
            id: id.clone(),
            incident: incident.clone(),
            unit: unit.clone(),
            state: OrderState::Created,
            dispatched_by: actor.clone(),
            created_at: now,
            reinforcement,
            accepted_at: None,
            on_scene_at: None,
            ended_at: None,
            reassigned_to: None,
            resends: 0,
            inside_fixes: 0,
            receipts: Default::default(),
        };
        let change = Change::OrderCreated {
            order: Box::new(order.clone()),
        };
        out.event(now, actor, change);
        self.state.orders.insert(id.clone(), order);
        if let Some(i) = self.state.incidents.get_mut(incident) {
            i.orders.push(id.clone());
        }
        self.responder_mut(unit).order = Some(id.clone());
        self.transition(now, &id, OrderState::Dispatched, actor, out)?;
        self.note_status(now, unit, before, actor, out);
        let order = self.order_message(&id)?;
        out.effects.push(Effect::SendOrder {
            unit: unit.clone(),
            order,
            attempt: 0,
        });
        let timers = &mut self.state.timers;
        let timeout = now.plus(self.config.accept_timeout());
        timers.schedule(timeout, TimerKind::AcceptTimeout { order: id.clone() });
        let resend = now.plus(self.config.resend_gap(1));
        let kind = TimerKind::Resend {
            order: id.clone(),
            attempt: 1,
        };
        timers.schedule(resend, kind);
        Ok(id)
    }

    /// What the handset is sent for `order`.
    pub fn order_message(&self, order: &OrderId) -> Result<OrderMessage, DispatchError> {
        let o = self.order(order)?;
        let i = self.incident(&o.incident)?;
        Ok(OrderMessage {
            order_id: o.id.clone(),
            incident_id: i.id.clone(),
            kind: i.spec.kind,
            priority: i.spec.priority,
            location: i.spec.location,
            description: i.spec.description.clone(),
            reinforcement: o.reinforcement.is_some(),
            state: o.state,
        })
    }
}

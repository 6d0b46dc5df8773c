//! Finding another responder: the queue of incidents no one could take, automatic dispatch when
//! someone frees, and reassignment after an acceptance timeout or a rejection.
//!
//! Candidates come from the caller's [`CandidateSource`], asked at the moment they are needed
//! (positions change while an incident waits).

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::alarm::AlarmKind;
use crate::desk::Dispatcher;
use crate::error::DispatchError;
use crate::journal::{Change, Effect, Outcome};
use crate::model::{Actor, AlarmId, Incident, IncidentId, OrderId, UnitId};
use crate::order::OrderState;
use crate::status::Candidate;
use crate::timers::TimerKind;

/// Ranked candidates for an incident, when the core must find a responder by itself.
///
/// Any `Fn(&Incident) -> Vec<Candidate>` is one, so the server passes a closure over its location
/// tracker and tests pass a closure over a fixed list.
pub trait CandidateSource {
    /// Responders near `incident`, nearest first (availability and skills are filtered by the
    /// core).
    fn candidates(&self, incident: &Incident) -> Vec<Candidate>;
}

impl<F: Fn(&Incident) -> Vec<Candidate>> CandidateSource for F {
    fn candidates(&self, incident: &Incident) -> Vec<Candidate> {
        self(incident)
    }
}

/// An incident waiting for free, fitting responders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The incident.
    pub incident: IncidentId,
    /// The reinforcement request it is for, or `None` for the first response.
    pub reinforcement: Option<u32>,
    /// Responders still missing.
    pub missing: usize,
    /// The "no one available" alarm, resolved when the entry is served.
    pub alarm: AlarmId,
}

impl Dispatcher {
    /// The incidents waiting for a responder, oldest first.
    pub fn queue(&self) -> &[Queued] {
        &self.state.queue
    }

    /// Queues `missing` more responders for the incident (raising "no one available" once).
    pub(crate) fn enqueue(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        reinforcement: Option<u32>,
        missing: usize,
        out: &mut Outcome,
    ) {
        let queue = &mut self.state.queue;
        if let Some(q) =
            (queue.iter_mut()).find(|q| &q.incident == incident && q.reinforcement == reinforcement)
        {
            q.missing = q.missing.max(missing);
            return;
        }
        let actor = Actor::system("no_one_available");
        let kind = AlarmKind::NoOneAvailable;
        let alarm = self.raise_alarm(now, kind, Some(incident.clone()), &actor, out);
        self.state.queue.push(Queued {
            incident: incident.clone(),
            reinforcement,
            missing,
            alarm,
        });
        let change = Change::IncidentQueued {
            incident: incident.clone(),
        };
        out.event(now, &actor, change);
    }

    /// `sent` responders went to the incident: shrinks its queue entry, and when it is served,
    /// dequeues it and resolves its alarm.
    pub(crate) fn served(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        reinforcement: Option<u32>,
        sent: usize,
        actor: &Actor,
        out: &mut Outcome,
    ) {
        let queue = &mut self.state.queue;
        let Some(pos) = (queue.iter())
            .position(|q| &q.incident == incident && q.reinforcement == reinforcement)
        else {
            return;
        };
        queue[pos].missing = queue[pos].missing.saturating_sub(sent);
        if queue[pos].missing == 0 {
            let q = queue.remove(pos);
            self.dequeued(now, q, actor, out);
        }
    }

    /// Journals a dequeue and resolves the entry's alarm.
    pub(crate) fn dequeued(&mut self, now: Timestamp, q: Queued, actor: &Actor, out: &mut Outcome) {
        let change = Change::IncidentDequeued {
            incident: q.incident,
        };
        out.event(now, actor, change);
        self.resolve_alarm_by(now, &q.alarm, actor, out);
    }

    /// Offers every queued incident, oldest first, to the responders now available.
    pub(crate) fn drain_queue(
        &mut self,
        now: Timestamp,
        src: &dyn CandidateSource,
        out: &mut Outcome,
    ) -> Result<(), DispatchError> {
        if self.state.queue.is_empty() {
            return Ok(());
        }
        let actor = Actor::system("queue");
        for q in self.state.queue.clone() {
            let Ok(i) = self.open_incident(&q.incident) else {
                continue;
            };
            let candidates = src.candidates(i);
            let i = &q.incident;
            let missing = q.missing;
            self.send_ranked(now, i, q.reinforcement, missing, &actor, &candidates, out)?;
        }
        Ok(())
    }

    /// Sends up to `count` of the best candidates and updates the queue; returns how many went.
    #[allow(clippy::too_many_arguments)]
    fn send_ranked(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        reinforcement: Option<u32>,
        count: usize,
        actor: &Actor,
        candidates: &[Candidate],
        out: &mut Outcome,
    ) -> Result<usize, DispatchError> {
        let i = self.open_incident(incident)?;
        let picks: Vec<UnitId> = (self.rank(i, candidates).into_iter())
            .take(count)
            .map(|c| c.unit.clone())
            .collect();
        for unit in &picks {
            self.send_order(now, incident, unit, actor, reinforcement, out)?;
        }
        self.served(now, incident, reinforcement, picks.len(), actor, out);
        Ok(picks.len())
    }

    /// Sends up to `count` of the best candidates; queues what is missing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_best(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        reinforcement: Option<u32>,
        count: usize,
        actor: &Actor,
        candidates: &[Candidate],
        out: &mut Outcome,
    ) -> Result<usize, DispatchError> {
        let sent = self.send_ranked(now, incident, reinforcement, count, actor, candidates, out)?;
        if sent < count {
            self.enqueue(now, incident, reinforcement, count - sent, out);
        }
        Ok(sent)
    }

    /// Acceptance timeout: the order goes to the next fitting candidate; the old handset is told
    /// whom it went to. With no one else fitting, the order stays with its unit (late is better
    /// than nobody) and the response target's alarm speaks for it.
    pub(crate) fn reassign(
        &mut self,
        now: Timestamp,
        order: &OrderId,
        src: &dyn CandidateSource,
        out: &mut Outcome,
    ) -> Result<(), DispatchError> {
        let o = self.order(order)?;
        let (old, reinforcement) = (o.unit.clone(), o.reinforcement);
        // A closed incident has no live orders, so this is only a guard against a stale timer.
        let Ok(incident) = self.open_incident(&o.incident) else {
            return Ok(());
        };
        let candidates = src.candidates(incident);
        let Some(next) = (self.rank(incident, &candidates).first()).map(|c| c.unit.clone()) else {
            // Nobody else is free: the order stays offered to its unit (a late accept still
            // counts), and the core looks again one acceptance period later, so a silent unit
            // does not hold the incident once someone frees up (the flash-flood story).
            let again = now.plus(self.config.accept_timeout());
            (self.state.timers).schedule(
                again,
                TimerKind::AcceptTimeout {
                    order: order.clone(),
                },
            );
            return Ok(());
        };
        let incident = incident.id.clone();
        let actor = Actor::system("accept_timeout");
        self.transition(now, order, OrderState::Reassigned, &actor, out)?;
        if let Some(o) = self.state.orders.get_mut(order) {
            o.reassigned_to = Some(next.clone());
        }
        out.effects.push(Effect::SendReassigned {
            unit: old,
            order_id: order.clone(),
            to_unit: next.clone(),
        });
        self.send_order(now, &incident, &next, &actor, reinforcement, out)?;
        Ok(())
    }

    /// After a rejection: the next fitting candidate, or the queue.
    pub(crate) fn replace(
        &mut self,
        now: Timestamp,
        order: &OrderId,
        src: &dyn CandidateSource,
        out: &mut Outcome,
    ) -> Result<(), DispatchError> {
        let o = self.order(order)?;
        let reinforcement = o.reinforcement;
        let Ok(incident) = self.open_incident(&o.incident) else {
            return Ok(());
        };
        let candidates = src.candidates(incident);
        let incident = incident.id.clone();
        let actor = Actor::system("rejected");
        self.send_best(now, &incident, reinforcement, 1, &actor, &candidates, out)?;
        Ok(())
    }
}

//! What happens to orders after dispatch: handset receipts, cancel, and closing the incident.
//!
//! Every order state change goes through `Dispatcher::transition` (here), which checks the table in
//! `order.rs`, records the timestamps the 1/3/5 rules are measured on, frees the responder when
//! the order ends, and journals the change with its actor.

use fieldlink_clock::Timestamp;

use crate::desk::{Dispatcher, named};
use crate::error::DispatchError;
use crate::journal::{Change, Effect, Outcome};
use crate::model::{Actor, IncidentId, IncidentState, OrderId, UnitId};
use crate::order::OrderState;
use crate::queue::CandidateSource;
use crate::timers::TimerKind;

impl Dispatcher {
    /// A handset's receipt for its order. Idempotent: a receipt for a state the order is in or
    /// has already passed through is a no-op, and so is a late `delivered` after the order moved
    /// on. A rejection sends the next fitting candidate (or queues the incident).
    pub fn receipt(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        order: &OrderId,
        state: OrderState,
        src: &dyn CandidateSource,
    ) -> Result<Outcome, DispatchError> {
        if !OrderState::RECEIPTS.contains(&state) {
            return Err(DispatchError::NotAReceipt(state));
        }
        let o = self.order(order)?;
        if &o.unit != unit {
            let (order, unit) = (order.clone(), unit.clone());
            return Err(DispatchError::WrongUnit { order, unit });
        }
        let late_delivery = state == OrderState::Delivered && o.state != OrderState::Dispatched;
        if o.state == state || o.receipts.contains(&state) || late_delivery {
            return Ok(Outcome::default());
        }
        let mut out = Outcome::default();
        self.transition(now, order, state, &Actor::Unit(unit.clone()), &mut out)?;
        if let Some(o) = self.state.orders.get_mut(order) {
            o.receipts.insert(state);
        }
        if state == OrderState::Rejected {
            self.replace(now, order, src, &mut out)?;
        }
        self.drain_queue(now, src, &mut out)?;
        Ok(self.finish(out))
    }

    /// Withdraws an order; its handset is told why.
    pub fn cancel_order(
        &mut self,
        now: Timestamp,
        order: &OrderId,
        dispatcher: &str,
        reason: &str,
        src: &dyn CandidateSource,
    ) -> Result<Outcome, DispatchError> {
        let actor = Actor::dispatcher(dispatcher);
        named(&actor)?;
        let mut out = Outcome::default();
        self.transition(now, order, OrderState::Cancelled, &actor, &mut out)?;
        out.effects.push(Effect::SendCancel {
            unit: self.order(order)?.unit.clone(),
            order_id: order.clone(),
            reason: reason.to_owned(),
        });
        self.drain_queue(now, src, &mut out)?;
        Ok(self.finish(out))
    }

    /// Closes an incident whose orders have all ended; by a named dispatcher. Leaves the queue and
    /// stops its timers.
    pub fn close_incident(
        &mut self,
        now: Timestamp,
        incident: &IncidentId,
        dispatcher: &str,
    ) -> Result<Outcome, DispatchError> {
        let actor = Actor::dispatcher(dispatcher);
        named(&actor)?;
        let i = self.open_incident(incident)?;
        let open: Vec<OrderId> = (i.orders.iter())
            .filter(|o| {
                self.state
                    .orders
                    .get(*o)
                    .is_some_and(|o| !o.state.is_terminal())
            })
            .cloned()
            .collect();
        if !open.is_empty() {
            let incident = incident.clone();
            return Err(DispatchError::OrdersOpen { incident, open });
        }
        let mut out = Outcome::default();
        if let Some(i) = self.state.incidents.get_mut(incident) {
            i.state = IncidentState::Closed {
                by: actor.clone(),
                at: now,
            };
        }
        let change = Change::IncidentClosed {
            incident: incident.clone(),
        };
        out.event(now, &actor, change);
        let (gone, kept) = (self.state.queue.drain(..)).partition(|q| &q.incident == incident);
        self.state.queue = kept;
        for q in gone {
            self.dequeued(now, q, &actor, &mut out);
        }
        self.state.timers.cancel_where(|k| match k {
            TimerKind::ResponseTarget { incident: i }
            | TimerKind::ArrivalTarget { incident: i }
            | TimerKind::ReinforcementTarget { incident: i, .. } => i == incident,
            _ => false,
        });
        Ok(self.finish(out))
    }

    /// Applies one order state change: checks it, stamps the times the 1/3/5 rules measure,
    /// frees the responder when the order ends, journals it.
    pub(crate) fn transition(
        &mut self,
        now: Timestamp,
        order: &OrderId,
        to: OrderState,
        actor: &Actor,
        out: &mut Outcome,
    ) -> Result<(), DispatchError> {
        let o = self.order(order)?;
        let from = o.state;
        if !from.can_become(to) {
            let order = order.clone();
            return Err(DispatchError::IllegalTransition { order, from, to });
        }
        let unit = o.unit.clone();
        let before = self.responder_status(&unit);
        let Some(o) = self.state.orders.get_mut(order) else {
            return Err(DispatchError::UnknownOrder(order.clone()));
        };
        o.state = to;
        match to {
            OrderState::Accepted => o.accepted_at = Some(now),
            OrderState::OnScene => o.on_scene_at = Some(now),
            _ => {}
        }
        if to.is_terminal() {
            o.ended_at = Some(now);
        }
        let (incident, reinforcement) = (o.incident.clone(), o.reinforcement);
        if let Some(i) = self.state.incidents.get_mut(&incident) {
            match to {
                OrderState::Accepted => {
                    i.first_accepted_at.get_or_insert(now);
                }
                OrderState::OnScene => {
                    i.first_on_scene_at.get_or_insert(now);
                    let reinforcing =
                        (i.reinforcements.iter_mut()).find(|r| Some(r.seq) == reinforcement);
                    if let Some(r) = reinforcing {
                        r.on_scene_at.get_or_insert(now);
                    }
                }
                _ => {}
            }
        }
        if to.is_terminal()
            && let Some(r) = self.existing_responder_mut(&unit)
            && r.order.as_ref() == Some(order)
        {
            r.order = None;
        }
        // Timers that can no longer matter are dropped now, so the store's timer table stays
        // small (a timer that fires anyway re-checks and does nothing).
        let met = |k: &TimerKind| match k {
            TimerKind::AcceptTimeout { order: o } => o == order && !to.awaits_acceptance(),
            TimerKind::Resend { order: o, .. } => o == order && to != OrderState::Dispatched,
            TimerKind::ResponseTarget { incident: i } => {
                i == &incident && to == OrderState::Accepted
            }
            TimerKind::ArrivalTarget { incident: i } => i == &incident && to == OrderState::OnScene,
            TimerKind::ReinforcementTarget { incident: i, seq } => {
                i == &incident && to == OrderState::OnScene && Some(*seq) == reinforcement
            }
            TimerKind::AlarmRenotify { .. } => false,
        };
        self.state.timers.cancel_where(met);
        let change = Change::OrderState {
            order: order.clone(),
            incident: incident.clone(),
            unit: unit.clone(),
            from,
            to,
        };
        out.event(now, actor, change);
        self.note_status(now, &unit, before, actor, out);
        Ok(())
    }
}

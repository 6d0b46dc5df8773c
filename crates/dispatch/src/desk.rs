//! [`Dispatcher`]: the dispatch state machine, its serializable [`DeskState`], its accessors,
//! and incident creation (with the response and arrival clocks).
//!
//! In the style of rumqttc's `state.rs`: methods just modify the state and return what should
//! happen ([`Outcome`]: journal events and effects) without doing any I/O. Time comes in as `now`,
//! ids from the caller's [`IdGen`], candidates from the caller's location tracker (as a ranked list,
//! or through a [`CandidateSource`](crate::CandidateSource) where the core itself must find the next responder: acceptance
//! timeouts, rejections, and queued incidents when someone frees). A refused command changes
//! nothing. The other commands live beside the concept they serve: `dispatch`, `queue`,
//! `lifecycle`, `field`, `alarm`, `timers`.

use std::collections::BTreeMap;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::alarm::Alarm;
use crate::config::DispatchConfig;
use crate::error::DispatchError;
use crate::ids::IdGen;
use crate::journal::{Change, Outcome};
use crate::model::{
    Actor, AlarmId, Incident, IncidentId, IncidentState, NewIncident, OrderId, UnitId,
};
use crate::order::Order;
use crate::queue::Queued;
use crate::status::{Responder, ResponderStatus};
use crate::timers::{TimerKind, Timers, secs};

/// Everything the dispatcher knows: serialize it to survive a restart ([`Dispatcher::restore`]).
/// Timers are absolute deadlines, so they resume at their original instants.
///
/// The responders are not serialized with the rest: there can be 100k of them and a command
/// changes a few, so the caller persists them one record each (the units
/// [`Dispatcher::keep`] returns) and puts them back in `responders` before restoring.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeskState {
    /// Incidents by id.
    pub incidents: BTreeMap<IncidentId, Incident>,
    /// Work orders by id.
    pub orders: BTreeMap<OrderId, Order>,
    /// Alarms by id.
    pub alarms: BTreeMap<AlarmId, Alarm>,
    /// Responders by unit (not serialized: see above).
    #[serde(skip)]
    pub responders: BTreeMap<UnitId, Responder>,
    /// Client request id → the incident it created (idempotent create).
    pub requests: BTreeMap<String, IncidentId>,
    /// Incidents waiting for a responder, in arrival order.
    pub queue: Vec<Queued>,
    /// Pending timers.
    pub timers: Timers,
}

/// The dispatch core.
#[derive(Debug)]
pub struct Dispatcher {
    pub(crate) config: DispatchConfig,
    pub(crate) state: DeskState,
    pub(crate) ids: Box<dyn IdGen>,
    /// While a [`checkpoint`](Self::checkpoint) is open: each responder the command touched,
    /// as it was before (`None`: it did not exist).
    pub(crate) undo: Option<BTreeMap<UnitId, Option<Responder>>>,
}

impl Dispatcher {
    /// An empty dispatcher.
    pub fn new(config: DispatchConfig, ids: Box<dyn IdGen>) -> Self {
        Self::restore(config, DeskState::default(), ids)
    }

    /// A dispatcher resumed from a snapshot; its timers keep their deadlines.
    pub fn restore(config: DispatchConfig, state: DeskState, ids: Box<dyn IdGen>) -> Self {
        Dispatcher {
            config,
            state,
            ids,
            undo: None,
        }
    }

    /// The state, to persist.
    pub fn state(&self) -> &DeskState {
        &self.state
    }

    /// The config.
    pub fn config(&self) -> &DispatchConfig {
        &self.config
    }

    /// The earliest pending timer: call [`tick`](Self::tick) then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.state.timers.next_deadline()
    }

    /// An incident.
    pub fn incident(&self, id: &IncidentId) -> Result<&Incident, DispatchError> {
        (self.state.incidents.get(id)).ok_or_else(|| DispatchError::UnknownIncident(id.clone()))
    }

    /// An order.
    pub fn order(&self, id: &OrderId) -> Result<&Order, DispatchError> {
        (self.state.orders.get(id)).ok_or_else(|| DispatchError::UnknownOrder(id.clone()))
    }

    /// An alarm.
    pub fn alarm(&self, id: &AlarmId) -> Result<&Alarm, DispatchError> {
        (self.state.alarms.get(id)).ok_or_else(|| DispatchError::UnknownAlarm(id.clone()))
    }

    /// A responder's status; a unit never heard of is offline.
    pub fn responder_status(&self, unit: &UnitId) -> ResponderStatus {
        let Some(r) = self.state.responders.get(unit) else {
            return ResponderStatus::Offline;
        };
        let order_state = (r.order.as_ref())
            .and_then(|o| self.state.orders.get(o))
            .map(|o| o.state);
        r.status(order_state)
    }

    /// Creates an incident and starts its response and arrival clocks. Idempotent by
    /// `spec.request_id`: a replay returns the first incident's id and an empty outcome.
    pub fn create_incident(
        &mut self,
        now: Timestamp,
        spec: NewIncident,
        actor: Actor,
    ) -> Result<(IncidentId, Outcome), DispatchError> {
        named(&actor)?;
        if let Some(id) = spec
            .request_id
            .as_ref()
            .and_then(|r| self.state.requests.get(r))
        {
            return Ok((id.clone(), Outcome::default()));
        }
        let id = self.ids.incident_id();
        if let Some(r) = &spec.request_id {
            self.state.requests.insert(r.clone(), id.clone());
        }
        let targets = self.config.targets_for(spec.priority);
        let incident = Incident {
            id: id.clone(),
            spec,
            created_at: now,
            created_by: actor.clone(),
            state: IncidentState::Open,
            orders: Vec::new(),
            first_accepted_at: None,
            first_on_scene_at: None,
            reinforcements: Vec::new(),
        };
        let mut out = Outcome::default();
        let change = Change::IncidentCreated {
            incident: Box::new(incident.clone()),
        };
        out.event(now, &actor, change);
        self.state.incidents.insert(id.clone(), incident);
        let timers = &mut self.state.timers;
        let incident = id.clone();
        timers.schedule(
            now.plus(secs(targets.response_s)),
            TimerKind::ResponseTarget { incident },
        );
        let incident = id.clone();
        timers.schedule(
            now.plus(secs(targets.arrival_s)),
            TimerKind::ArrivalTarget { incident },
        );
        Ok((id, self.finish(out)))
    }

    /// Journals a responder's status change, if there was one.
    pub(crate) fn note_status(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        before: ResponderStatus,
        actor: &Actor,
        out: &mut Outcome,
    ) {
        let after = self.responder_status(unit);
        if after != before {
            let unit = unit.clone();
            let change = Change::ResponderStatus {
                unit,
                from: before,
                to: after,
            };
            out.event(now, actor, change);
        }
    }
}

/// A dispatcher must be named (supervision reports say who did what).
pub(crate) fn named(actor: &Actor) -> Result<(), DispatchError> {
    match actor {
        Actor::Dispatcher(n) if n.trim().is_empty() => Err(DispatchError::NoDispatcherName),
        _ => Ok(()),
    }
}

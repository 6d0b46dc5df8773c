//! Pending timers with absolute deadlines, and [`Dispatcher::tick`], which fires the due ones.
//!
//! A timer is a `(deadline, kind)` pair stored in the serializable state, so a restart resumes
//! every countdown at its ORIGINAL instant; follow-ups (re-sends, re-notifications) are scheduled
//! from the deadline that fired, not from the tick's `now`. Timers that stop mattering (an order
//! accepted, a target met, an incident closed, an alarm acknowledged) are dropped at once, and a
//! timer re-checks its condition when it fires anyway. Each command's [`Outcome`] lists the timers
//! it armed and cleared, by a stable id, so the store can keep a timer table instead of a blob.

use std::collections::BTreeSet;
use std::time::Duration;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::alarm::{AlarmKind, AlarmState};
use crate::desk::Dispatcher;
use crate::error::DispatchError;
use crate::journal::{Effect, Outcome};
use crate::model::{Actor, AlarmId, IncidentId, OrderId};
use crate::order::OrderState;
use crate::queue::CandidateSource;

/// What a timer does when it fires.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TimerKind {
    /// Reassign the order if it is still not accepted.
    AcceptTimeout {
        /// The order.
        order: OrderId,
    },
    /// Re-send the order if there is still no receipt.
    Resend {
        /// The order.
        order: OrderId,
        /// The re-send this will be (1-based).
        attempt: u32,
    },
    /// Alarm if no order of the incident is accepted.
    ResponseTarget {
        /// The incident.
        incident: IncidentId,
    },
    /// Alarm if no one is on scene.
    ArrivalTarget {
        /// The incident.
        incident: IncidentId,
    },
    /// Alarm if no reinforcing responder is on scene.
    ReinforcementTarget {
        /// The incident.
        incident: IncidentId,
        /// The request.
        seq: u32,
    },
    /// Re-notify the alarm if it is still unacknowledged.
    AlarmRenotify {
        /// The alarm.
        alarm: AlarmId,
    },
}

/// A pending timer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timer {
    /// The absolute deadline.
    pub at: Timestamp,
    /// What to do.
    pub kind: TimerKind,
}

impl TimerKind {
    /// A stable id: one live timer per id (`accept_timeout:ORDER`, `resend:ORDER`,
    /// `response:INCIDENT`, `arrival:INCIDENT`, `reinforcement:INCIDENT:SEQ`, `renotify:ALARM`).
    /// A re-send re-arms its order's `resend` id, as the store's timer table expects.
    pub fn id(&self) -> String {
        match self {
            TimerKind::AcceptTimeout { order } => format!("accept_timeout:{order}"),
            TimerKind::Resend { order, .. } => format!("resend:{order}"),
            TimerKind::ResponseTarget { incident } => format!("response:{incident}"),
            TimerKind::ArrivalTarget { incident } => format!("arrival:{incident}"),
            TimerKind::ReinforcementTarget { incident, seq } => {
                format!("reinforcement:{incident}:{seq}")
            }
            TimerKind::AlarmRenotify { alarm } => format!("renotify:{alarm}"),
        }
    }
}

/// All pending timers, earliest first, and the changes since the last command's end (which the
/// dispatcher moves into that command's [`Outcome`] for the store's timer table).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timers {
    pending: BTreeSet<Timer>,
    #[serde(skip)]
    set: Vec<Timer>,
    #[serde(skip)]
    cleared: Vec<String>,
}

impl PartialEq for Timers {
    /// Equal when the same timers are pending (the change log is transient).
    fn eq(&self, other: &Self) -> bool {
        self.pending == other.pending
    }
}

impl Timers {
    /// Adds a timer at `at`.
    pub fn schedule(&mut self, at: Timestamp, kind: TimerKind) {
        let timer = Timer { at, kind };
        self.set.push(timer.clone());
        self.pending.insert(timer);
    }

    /// The earliest deadline: the adapter sleeps until then (or the next command).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.pending.first().map(|t| t.at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<Timer> {
        if self.pending.first()?.at > now {
            return None;
        }
        let timer = self.pending.pop_first()?;
        self.cleared.push(timer.kind.id());
        Some(timer)
    }

    /// Drops the timers `drop` selects.
    pub fn cancel_where(&mut self, drop: impl Fn(&TimerKind) -> bool) {
        let cleared = &mut self.cleared;
        self.pending.retain(|t| {
            let gone = drop(&t.kind);
            if gone {
                cleared.push(t.kind.id());
            }
            !gone
        });
    }

    /// Every pending timer, earliest first.
    pub fn iter(&self) -> impl Iterator<Item = &Timer> {
        self.pending.iter()
    }

    /// Takes the change log: (timers armed, ids cleared). An id both cleared and re-armed
    /// appears in both; apply the clears first.
    fn take_changes(&mut self) -> (Vec<Timer>, Vec<String>) {
        let set = std::mem::take(&mut self.set);
        let mut cleared = std::mem::take(&mut self.cleared);
        // A timer armed and cleared within the same command never reaches the store.
        let live: BTreeSet<String> = self.pending.iter().map(|t| t.kind.id()).collect();
        let set: Vec<Timer> = set
            .into_iter()
            .filter(|t| self.pending.contains(t))
            .collect();
        cleared.sort();
        cleared.dedup();
        cleared.retain(|id| !live.contains(id) || set.iter().any(|t| &t.kind.id() == id));
        (set, cleared)
    }
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl Dispatcher {
    /// Ends a command: moves the timer changes into its outcome.
    pub(crate) fn finish(&mut self, mut out: Outcome) -> Outcome {
        let (set, cleared) = self.state.timers.take_changes();
        out.timers_set = set;
        out.timers_cleared = cleared;
        out
    }

    /// Fires every timer due at `now`, in deadline order (timers they schedule at or before `now`
    /// fire too): acceptance timeouts reassign to the next candidate from `src`; orders without a
    /// receipt are re-sent with backoff; missed targets raise alarms; unacknowledged alarms are
    /// re-notified. Then queued incidents are offered to freed responders.
    ///
    /// Call it at [`next_deadline`](Self::next_deadline). Timers naming a record that no longer
    /// exists are dropped; an error means the state is inconsistent.
    pub fn tick(
        &mut self,
        now: Timestamp,
        src: &dyn CandidateSource,
    ) -> Result<Outcome, DispatchError> {
        let mut out = Outcome::default();
        while let Some(timer) = self.state.timers.pop_due(now) {
            match self.fire(now, timer, src, &mut out) {
                // A stale timer (its record is gone, e.g. not reloaded after a restart) is dropped.
                Err(
                    DispatchError::UnknownOrder(_)
                    | DispatchError::UnknownIncident(_)
                    | DispatchError::UnknownAlarm(_),
                ) => {}
                other => other?,
            }
        }
        self.drain_queue(now, src, &mut out)?;
        Ok(self.finish(out))
    }

    fn fire(
        &mut self,
        now: Timestamp,
        timer: Timer,
        src: &dyn CandidateSource,
        out: &mut Outcome,
    ) -> Result<(), DispatchError> {
        // Follow-up timers are scheduled from the deadline, not from `now`, so a late tick or a
        // restart does not shift the cadence.
        let due = timer.at;
        match timer.kind {
            TimerKind::AcceptTimeout { order } => {
                if self.order(&order)?.state.awaits_acceptance() {
                    self.reassign(now, &order, src, out)?;
                }
            }
            TimerKind::Resend { order, attempt } => {
                let o = self.order(&order)?;
                if o.state == OrderState::Dispatched {
                    let unit = o.unit.clone();
                    let msg = self.order_message(&order)?;
                    if let Some(o) = self.state.orders.get_mut(&order) {
                        o.resends = attempt;
                    }
                    out.effects.push(Effect::SendOrder {
                        unit,
                        order: msg,
                        attempt,
                    });
                    let next = due.plus(self.config.resend_gap(attempt + 1));
                    let kind = TimerKind::Resend {
                        order,
                        attempt: attempt + 1,
                    };
                    self.state.timers.schedule(next, kind);
                }
            }
            TimerKind::ResponseTarget { incident } => {
                let i = self.incident(&incident)?;
                if i.is_open() && i.first_accepted_at.is_none() {
                    let actor = Actor::system("response_target");
                    let kind = AlarmKind::ResponseMissed;
                    self.raise_alarm(now, kind, Some(incident), &actor, out);
                }
            }
            TimerKind::ArrivalTarget { incident } => {
                let i = self.incident(&incident)?;
                if i.is_open() && i.first_on_scene_at.is_none() {
                    let actor = Actor::system("arrival_target");
                    let kind = AlarmKind::ArrivalMissed;
                    self.raise_alarm(now, kind, Some(incident), &actor, out);
                }
            }
            TimerKind::ReinforcementTarget { incident, seq } => {
                let i = self.incident(&incident)?;
                let met = i
                    .reinforcements
                    .iter()
                    .any(|r| r.seq == seq && r.on_scene_at.is_some());
                if i.is_open() && !met {
                    let kind = AlarmKind::ReinforcementMissed { seq };
                    let actor = Actor::system("reinforcement_target");
                    self.raise_alarm(now, kind, Some(incident), &actor, out);
                }
            }
            TimerKind::AlarmRenotify { alarm } => {
                let gap = secs(self.config.alarm_renotify_s);
                let Some(a) = self.state.alarms.get_mut(&alarm) else {
                    return Ok(());
                };
                if a.state == AlarmState::Raised {
                    a.notifications += 1;
                    out.effects.push(Effect::NotifyAlarm { alarm: a.clone() });
                    let kind = TimerKind::AlarmRenotify { alarm };
                    self.state.timers.schedule(due.plus(gap), kind);
                }
            }
        }
        Ok(())
    }
}

//! What handsets tell dispatch, and the task that applies it.
//!
//! The uplink path (`crate::uplink`) is synchronous and must never wait for a store commit, so it
//! queues an [`Input`] on a bounded channel ([`super::DispatchService::input`]); one task applies
//! the inputs in arrival order and, every [`TICK`], fires the core's due timers on the server's
//! clock (acceptance timeouts, re-sends, 1/3/5 targets) and offers queued incidents to freed
//! responders.

use std::time::Duration;

use fieldlink_dispatch::{
    Actor, AlarmKind, DutyStatus, LatLon, NewIncident, OrderId, OrderState, UnitId,
};
use fieldlink_location::{Presence, PresenceEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::CommandError;
use crate::state::AppState;

/// How often due timers are fired.
pub const TICK: Duration = Duration::from_millis(500);

/// One thing a handset said that dispatch must know.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A work-order receipt (`Ack.order`).
    Receipt {
        /// Who sent it.
        unit: UnitId,
        /// The order.
        order: OrderId,
        /// The state it reports.
        state: OrderState,
    },
    /// An accepted fix that became the unit's latest position.
    Fix {
        /// The unit.
        unit: UnitId,
        /// Where it is.
        at: LatLon,
    },
    /// The unit came online or went offline.
    Presence {
        /// The unit.
        unit: UnitId,
        /// Online (or stale) rather than offline.
        online: bool,
    },
    /// The responder's duty status (`Report.duty`).
    Duty {
        /// The unit.
        unit: UnitId,
        /// The status.
        duty: DutyStatus,
    },
    /// The emergency button (`Sos`, not a cancel): a critical incident at `position` (or the
    /// unit's last fix), an SOS alarm, the nearest others dispatched at once.
    Sos {
        /// Who pressed it.
        unit: UnitId,
        /// `sos:{unit}:{message id}`, so a re-sent SOS creates nothing twice.
        request_id: Option<String>,
        /// Where the handset says it is, if it says.
        position: Option<LatLon>,
    },
    /// A unit crossed a geofence whose `alarm_on` matches (`crate::zones`): a `geofence` alarm
    /// raised by the system rule `geofence_rule`.
    GeofenceAlarm {
        /// Who crossed.
        unit: UnitId,
        /// The geofence's id.
        zone: String,
        /// Entered (true) or left (false).
        entered: bool,
        /// "patrol-07 entered Hubin venue".
        message: String,
    },
    /// A field report (`Report.field_report`): an incident with the unit as its source, for the
    /// command room to dispatch or close.
    FieldReport {
        /// Who reported.
        unit: UnitId,
        /// The incident (its `request_id` is `report:{unit}:{message id}`).
        spec: NewIncident,
    },
}

/// What the input is, in words, for the log: "receipt accepted for wo_1 from p7".
impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Receipt { unit, order, state } => {
                write!(f, "receipt {} for {order} from {unit}", state.as_str())
            }
            Input::Fix { unit, at } => write!(f, "fix of {unit} at {:.5}, {:.5}", at.lat, at.lon),
            Input::Presence { unit, online } => {
                let now = if *online { "online" } else { "offline" };
                write!(f, "{unit} is {now}")
            }
            Input::Duty { unit, duty } => write!(f, "{unit} reports {}", duty.as_str()),
            Input::Sos { unit, .. } => write!(f, "SOS from {unit}"),
            Input::GeofenceAlarm { message, .. } => write!(f, "geofence rule: {message}"),
            Input::FieldReport { unit, .. } => write!(f, "field report from {unit}"),
        }
    }
}

/// Queues a presence change for dispatch when it crosses the offline line (stale still counts as
/// reachable: its handset is connected, only quiet).
pub fn presence_changed(state: &AppState, event: &PresenceEvent) {
    let online = |p: Presence| p != Presence::Offline;
    if online(event.from) != online(event.to) {
        if !online(event.to) {
            // An offline talker loses the floor and leaves every queue.
            (state.intercom).input(crate::intercom::PttInput::Offline(event.unit.to_string()));
            (state.video).input(crate::video::VideoInput::Offline(event.unit.to_string()));
        }
        state.dispatch.input(Input::Presence {
            unit: UnitId(event.unit.to_string()),
            online: online(event.to),
        });
    }
}

/// Applies inputs and ticks the timers until `shutdown`.
pub async fn run(state: AppState, inputs: mpsc::Receiver<Input>, shutdown: CancellationToken) {
    super::redeliver(&state).await;
    reconcile_presence(&state).await;
    crate::service_loop::inputs_and_ticks(
        inputs,
        TICK,
        shutdown,
        |input| apply(&state, input),
        || tick(&state),
    )
    .await;
}

/// After a restart the core's presence flags are those of its last snapshot, while the tracker
/// judged each unit's presence afresh from its last fix's age (without events): bring the core in
/// line with the tracker.
async fn reconcile_presence(state: &AppState) {
    let flags: Vec<(UnitId, bool)> = {
        let core = state.dispatch.read().await;
        (core.state().responders.values())
            .map(|r| (r.unit.clone(), r.online))
            .collect()
    };
    for (unit, was_online) in flags {
        let online =
            (state.tracker().get(unit.as_str())).is_some_and(|s| s.presence != Presence::Offline);
        if online != was_online {
            apply(state, Input::Presence { unit, online }).await;
        }
    }
}

async fn tick(state: &AppState) {
    let now = state.clock.now();
    let idle = {
        let core = state.dispatch.read().await;
        core.queue().is_empty() && core.next_deadline().is_none_or(|t| t > now)
    };
    if idle {
        return;
    }
    let result = (state.dispatch)
        .execute(state, None, |d, now, src| Ok(((), d.tick(now, src)?)))
        .await;
    report(result, "timers");
}

async fn apply(state: &AppState, input: Input) {
    let svc = &state.dispatch;
    let result = match input.clone() {
        Input::Receipt {
            unit,
            order,
            state: s,
        } => {
            svc.execute(state, None, |d, now, src| {
                Ok(((), d.receipt(now, &unit, &order, s, src)?))
            })
            .await
        }
        Input::Fix { unit, at } => {
            {
                // Most fixes only move the last fix: no checkpoint, no commit.
                let mut core = svc.read().await;
                if !core.arrival_pending(&unit) {
                    core.note_last_fix(state.clock.now(), &unit, at);
                    return;
                }
            }
            svc.execute(state, None, |d, now, _| {
                Ok(((), d.gps_fix(now, &unit, at)?))
            })
            .await
        }
        Input::Presence { unit, online } => {
            svc.execute(state, None, |d, now, src| {
                Ok(((), d.responder_presence(now, &unit, online, src)?))
            })
            .await
        }
        Input::Duty { unit, duty } => {
            svc.execute(state, None, |d, now, src| {
                Ok(((), d.responder_duty(now, &unit, duty, src)?))
            })
            .await
        }
        Input::Sos {
            unit,
            request_id,
            position,
        } => sos(state, unit, request_id, position).await,
        Input::GeofenceAlarm {
            unit,
            zone,
            entered,
            message,
        } => {
            let kind = AlarmKind::Geofence {
                zone,
                unit,
                entered,
                message,
            };
            svc.execute(state, None, |d, now, _| {
                let (id, out) = d.raise_rule_alarm(now, kind, Actor::system("geofence_rule"))?;
                tracing::warn!(alarm = %id, "geofence rule raised an alarm");
                Ok(((), out))
            })
            .await
        }
        Input::FieldReport { unit, spec } => {
            let request = spec.request_id.clone();
            svc.execute(state, request, |d, now, _| {
                let (id, out) = d.field_report(now, &unit, spec)?;
                if !out.is_empty() {
                    tracing::info!(%unit, incident = %id, "field report became an incident");
                }
                Ok((id.to_string(), out))
            })
            .await
            .map(drop)
        }
    };
    report(result, &input.to_string());
}

/// An SOS: placed at the position the handset sent, else at the unit's last fix dispatch knows;
/// the responders nearest that point are the candidates (the core leaves the caller out).
async fn sos(
    state: &AppState,
    unit: UnitId,
    request_id: Option<String>,
    position: Option<LatLon>,
) -> Result<(), CommandError> {
    let at = match position {
        Some(p) => Some(p),
        None => {
            let core = state.dispatch.read().await;
            (core.state().responders.get(&unit)).and_then(|r| r.last_fix.map(|(p, _)| p))
        }
    };
    let candidates = at.map(|p| super::near(state, p)).unwrap_or_default();
    let request = request_id.clone();
    (state.dispatch)
        .execute(state, request, |d, now, _| {
            let (id, out) = d.sos(now, &unit, request_id, position, &candidates)?;
            if !out.is_empty() {
                tracing::warn!(%unit, incident = %id, "SOS: critical incident created");
            }
            Ok((id.to_string(), out))
        })
        .await
        .map(drop)
}

fn report(result: Result<(), CommandError>, what: &str) {
    match result {
        Ok(()) => {}
        Err(CommandError::Refused(e)) => {
            tracing::info!(code = e.code(), error = %e, input = what, "handset input refused by dispatch");
        }
        Err(CommandError::Store(e)) => {
            // Counted, logged (rate-limited) and shown by `/readyz` where the commit failed
            // (`DispatchService::execute`); here only which input it was.
            tracing::debug!(error = %e, input = what, "dispatch could not commit; nothing changed");
        }
    }
}

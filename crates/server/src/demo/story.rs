//! The demo's command room: it creates the seeded incidents, follows the dispatch core twice a
//! second and tells, in words and by the demo's number for each incident, what changed.
//!
//! Each look at the core ([`Story::watch`]) reads it under its lock and collects what to tell and
//! what the command room does next (dispatch a field report, ask for reinforcement, acknowledge
//! an alarm, close a resolved incident); those commands then run without the lock, through the
//! same functions the HTTP API and the WebSocket commands call (`http::commands::run`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fieldlink_clock::{Clock, SystemClock, Timestamp};
use fieldlink_dispatch::{
    Actor, AlarmId, AlarmState, DeskState, DispatchConfig, GroupBy, Incident, IncidentId,
    IncidentSource, LatLon, OrderId, OrderState, Priority, supervision_report,
};
use fieldlink_sim::{Bbox, CrewStatsHandle, SplitMix64};
use serde_json::{Value, json};

use super::narrate::{alarm_line, incident_label, seconds, unit_kind, why_sent};
use super::summary;
use crate::state::AppState;

/// The name the demo's dispatcher acts under (in the journal: `dispatcher:demo`).
const DISPATCHER: &str = "demo";

/// What the demo's incidents are, with a line of description each.
const INCIDENTS: [(&str, &str, &str); 7] = [
    (
        "lost_person",
        "high",
        "a child separated from her parents near a school",
    ),
    ("flooding", "normal", "water over the kerb after the storm"),
    (
        "dispute",
        "normal",
        "two neighbours shouting in a stairwell",
    ),
    ("fire", "high", "smoke from a restaurant kitchen"),
    ("traffic", "normal", "two scooters collided at a crossing"),
    (
        "medical",
        "high",
        "an elderly man collapsed on the pavement",
    ),
    ("other", "low", "a fallen tree blocks a lane"),
];

/// What the watcher has already told about one order.
#[derive(Debug, Default)]
struct Told {
    accepted: bool,
    on_scene: bool,
    ended: bool,
}

/// An order seen for the first time: told once the core's lock is released (distances and
/// unit types come from the tracker and the credential cache).
struct NewOrder {
    number: usize,
    unit: String,
    by: Actor,
    reinforcement: bool,
    at: Option<LatLon>,
}

/// What one look at the dispatch core found: lines to tell and commands to run.
#[derive(Default)]
struct Look {
    /// New incidents, told first.
    head: Vec<String>,
    /// What happened to orders and alarms.
    lines: Vec<String>,
    new_orders: Vec<NewOrder>,
    /// Field reports to dispatch with one click, as the demo's own incidents are.
    to_dispatch: Vec<(usize, IncidentId)>,
    /// Urgent incidents whose first responder is on scene: one more responder is asked for.
    to_reinforce: Vec<IncidentId>,
    /// Alarms just told: the command room has them.
    to_acknowledge: Vec<AlarmId>,
    /// Incidents resolved, with their alarms still open.
    to_close: Vec<(usize, IncidentId, Vec<AlarmId>)>,
}

/// The terminal's story of the demo.
pub(super) struct Story {
    state: AppState,
    start: Timestamp,
    stats: CrewStatsHandle,
    numbers: HashMap<IncidentId, usize>,
    orders: BTreeMap<OrderId, Told>,
    alarms: BTreeSet<AlarmId>,
    reinforced: BTreeSet<IncidentId>,
}

impl Story {
    pub(super) fn new(state: AppState, start: Timestamp, stats: CrewStatsHandle) -> Story {
        Story {
            state,
            start,
            stats,
            numbers: HashMap::new(),
            orders: BTreeMap::new(),
            alarms: BTreeSet::new(),
            reinforced: BTreeSet::new(),
        }
    }

    /// Prints `line` after the time since the start, `[mm:ss]`.
    pub(super) fn say(&self, line: String) {
        let s = SystemClock.now().since(self.start).as_secs();
        println!("[{:02}:{:02}] {line}", s / 60, s % 60);
    }

    fn number(&mut self, id: &IncidentId) -> usize {
        let next = self.numbers.len() + 1;
        *self.numbers.entry(id.clone()).or_insert(next)
    }

    /// Creates a seeded incident in Shangcheng and dispatches it with one click.
    pub(super) async fn new_incident(&mut self, rng: &mut SplitMix64) {
        let (kind, priority, text) = INCIDENTS[rng.below(INCIDENTS.len() as u64) as usize];
        // Inside the area, away from its very edge.
        let (lat, lon) =
            Bbox::SHANGCHENG.point_at(0.05 + 0.9 * rng.unit(), 0.05 + 0.9 * rng.unit());
        let body = json!({
            "kind": kind, "priority": priority, "lat": lat, "lon": lon, "description": text,
        });
        let created = match self.command("create_incident", body).await {
            Ok(v) => v,
            Err(e) => return self.say(format!("Could not create an incident: {e}")),
        };
        let Some(id) = created["incident"]["id"].as_str().map(str::to_owned) else {
            return;
        };
        let id = IncidentId(id);
        let n = self.number(&id);
        self.say(format!(
            "Incident #{n}: {} at {lat:.4}, {lon:.4}, {priority} priority: {text}.",
            kind.replace('_', " ")
        ));
        self.dispatch(n, &id).await;
        // The order it created is told right away.
        self.watch().await;
    }

    /// One click: the nearest free, fitting responder gets the incident (when none is free, the
    /// "no one available" alarm tells it).
    async fn dispatch(&self, n: usize, id: &IncidentId) {
        if let Err(e) = self.command("dispatch", json!({ "incident": id.0 })).await {
            self.say(format!("Incident #{n} could not be dispatched: {e}"));
        }
    }

    async fn command(&self, op: &str, args: Value) -> Result<Value, String> {
        crate::http::commands::run(&self.state, DISPATCHER, op, args)
            .await
            .map_err(|e| e.message)
    }

    /// Tells what changed in the dispatch core since the last look, and does what the command
    /// room does about it.
    pub(super) async fn watch(&mut self) {
        let look = {
            let state = self.state.clone();
            let core = state.dispatch.read().await;
            self.look(core.state(), core.config())
        };
        let mut lines = look.lines;
        for o in look.new_orders {
            lines.push(self.order_sent(o));
        }
        for line in look.head.into_iter().chain(lines) {
            self.say(line);
        }
        for id in look.to_acknowledge {
            if let Err(e) = self.command("ack_alarm", json!({ "alarm": id.0 })).await {
                tracing::debug!(alarm = %id, error = %e, "alarm not acknowledged");
            }
        }
        for (n, id) in look.to_dispatch {
            self.dispatch(n, &id).await;
        }
        for id in look.to_reinforce {
            let args = json!({ "incident": id.0, "count": 1 });
            if let Err(e) = self.command("reinforce", args).await {
                tracing::debug!(incident = %id, error = %e, "no reinforcement");
            }
        }
        for (n, id, alarms) in look.to_close {
            match self.command("close", json!({ "incident": id.0 })).await {
                Ok(_) => self.say(format!("Incident #{n} closed.")),
                Err(e) => {
                    tracing::debug!(incident = %id, error = %e, "not closed");
                    continue;
                }
            }
            for alarm in alarms {
                let args = json!({ "alarm": alarm.0, "note": "incident closed" });
                if let Err(e) = self.command("resolve_alarm", args).await {
                    tracing::debug!(%alarm, error = %e, "alarm not resolved");
                }
            }
        }
    }

    /// Reads the core (under its lock: no awaits here).
    fn look(&mut self, st: &DeskState, config: &DispatchConfig) -> Look {
        let mut look = Look::default();
        let mut fresh: Vec<&Incident> = (st.incidents.values())
            .filter(|i| !self.numbers.contains_key(&i.id))
            .collect();
        fresh.sort_by_key(|i| i.created_at);
        for i in fresh {
            let n = self.number(&i.id);
            look.head.push(arrived(n, i));
            if matches!(i.spec.source, IncidentSource::FieldReport(_)) && i.orders.is_empty() {
                look.to_dispatch.push((n, i.id.clone()));
            }
        }
        for (id, o) in &st.orders {
            let Some(incident) = st.incidents.get(&o.incident) else {
                continue;
            };
            let n = self.numbers.get(&o.incident).copied().unwrap_or(0);
            let told = self.orders.entry(id.clone()).or_insert_with(|| {
                look.new_orders.push(NewOrder {
                    number: n,
                    unit: o.unit.to_string(),
                    by: o.dispatched_by.clone(),
                    reinforcement: o.reinforcement.is_some(),
                    at: incident.spec.location,
                });
                Told::default()
            });
            let unit = &o.unit;
            if !told.accepted
                && let Some(at) = o.accepted_at
            {
                told.accepted = true;
                look.lines.push(format!(
                    "{unit} accepted incident #{n} after {}.",
                    seconds(at.since(o.created_at))
                ));
            }
            if !told.on_scene
                && let Some(at) = o.on_scene_at
            {
                told.on_scene = true;
                let asked = (o.reinforcement)
                    .and_then(|seq| incident.reinforcements.iter().find(|r| r.seq == seq));
                look.lines.push(match asked {
                        Some(r) => format!(
                            "{unit} is on scene at incident #{n} as reinforcement, {} after it was asked for.",
                            seconds(at.since(r.requested_at))
                        ),
                        None => format!(
                            "{unit} is on scene at incident #{n}, {} after it was reported.",
                            seconds(at.since(incident.created_at))
                        ),
                    });
                if o.reinforcement.is_none()
                    && needs_reinforcement(incident)
                    && self.reinforced.insert(incident.id.clone())
                {
                    look.lines.push(format!(
                        "{unit} asks for one more responder at incident #{n}."
                    ));
                    look.to_reinforce.push(incident.id.clone());
                }
            }
            if !told.ended && o.state.is_terminal() {
                told.ended = true;
                look.lines.push(order_ended(n, o, incident));
                let orders: Vec<_> = (incident.orders.iter())
                    .filter_map(|o| st.orders.get(o))
                    .collect();
                let all_ended = orders.iter().all(|o| o.state.is_terminal());
                let resolved = orders.iter().any(|o| o.state == OrderState::Resolved);
                if incident.is_open() && all_ended && resolved {
                    let open_alarms = (st.alarms.values())
                        .filter(|a| a.incident.as_ref() == Some(&incident.id))
                        .filter(|a| a.state != AlarmState::Resolved)
                        .map(|a| a.id.clone())
                        .collect();
                    look.to_close.push((n, incident.id.clone(), open_alarms));
                }
            }
        }
        for a in st.alarms.values() {
            if !self.alarms.insert(a.id.clone()) {
                continue;
            }
            let incident = (a.incident.as_ref()).and_then(|i| st.incidents.get(i));
            let label = incident.map(|i| incident_label(self.number(&i.id), i));
            let priority = incident.map_or(Priority::Normal, |i| i.spec.priority);
            look.lines.push(alarm_line(
                a,
                label.as_deref(),
                config.targets_for(priority),
            ));
            if a.state == AlarmState::Raised {
                look.to_acknowledge.push(a.id.clone());
            }
        }
        look
    }

    /// `Incident #4 dispatched to sim012 (e-bike, 420 m away).`
    fn order_sent(&self, o: NewOrder) -> String {
        let kind = (self.state.credentials.unit(&o.unit))
            .map(|u| unit_kind(u.unit_type.as_str()))
            .unwrap_or_default();
        let here = (self.state.tracker().get(&o.unit)).map(|s| (s.fix.lat, s.fix.lon));
        let away = match (here, o.at) {
            (Some(here), Some(at)) => format!(
                ", {:.0} m away",
                fieldlink_sim::responder::distance_m(here, (at.lat, at.lon))
            ),
            _ => String::new(),
        };
        let n = o.number;
        let to = format!("{} ({kind}{away})", o.unit);
        match (o.reinforcement, why_sent(&o.by)) {
            (true, Some(why)) => format!("Incident #{n}: reinforcement sent to {to}: {why}."),
            (true, None) => format!("Incident #{n}: reinforcement sent to {to}."),
            (false, Some(why)) => format!("Incident #{n} sent on to {to}: {why}."),
            (false, None) => format!("Incident #{n} dispatched to {to}."),
        }
    }

    /// The live SLA figures over the incidents since the start.
    pub(super) async fn sla(&self) {
        let now = self.state.clock.now();
        let core = self.state.dispatch.read().await;
        let report = supervision_report(
            core.state(),
            core.config(),
            self.start,
            now.plus(std::time::Duration::from_millis(1)),
            GroupBy::Grid,
        );
        let targets = core.config().default_targets;
        drop(core);
        let s = self.stats.snapshot();
        self.say(format!(
            "{} Responders: {}/{} connected, {} out of coverage.",
            summary::sla_line(&report, targets),
            s.connected,
            s.units,
            s.offline,
        ));
    }

    /// The closing summary: the 1/3/5 targets over every incident since the start, and a row
    /// per responder who had an order, from the supervision report.
    pub(super) async fn summary(&self) {
        let now = self.state.clock.now();
        let to = now.plus(std::time::Duration::from_millis(1));
        let core = self.state.dispatch.read().await;
        let report = |by| supervision_report(core.state(), core.config(), self.start, to, by);
        let (by_kind, by_unit) = (report(GroupBy::Kind), report(GroupBy::Unit));
        let targets = core.config().default_targets;
        drop(core);
        let lines = summary::render(now.since(self.start), &by_kind, &by_unit, targets);
        for line in lines {
            println!("{line}");
        }
    }
}

/// The first line about an incident the demo did not create itself:
/// `Incident #7: traffic at 30.2512, 120.1634, normal priority, reported from the field by
/// sim003: car blocking a bus lane.`
fn arrived(n: usize, i: &Incident) -> String {
    let kind = i.spec.kind.as_str().replace('_', " ");
    let at = (i.spec.location).map_or(String::new(), |at| {
        format!(" at {:.4}, {:.4}", at.lat, at.lon)
    });
    let priority = serde_json::to_value(i.spec.priority).unwrap_or_default();
    let priority = priority.as_str().unwrap_or("normal").to_owned();
    let text = i.spec.description.lines().next().unwrap_or_default();
    let text = if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    };
    let from = match &i.spec.source {
        IncidentSource::FieldReport(u) => format!("reported from the field by {u}"),
        IncidentSource::Sos(u) => format!("SOS from {u}"),
        IncidentSource::CommandRoom => "entered in the command room".to_owned(),
    };
    format!("Incident #{n}: {kind}{at}, {priority} priority, {from}{text}.")
}

/// Urgent incidents (high or critical, not an SOS: that one already sends several) get one
/// reinforcement once their first responder is on scene.
fn needs_reinforcement(i: &Incident) -> bool {
    i.spec.priority >= Priority::High
        && i.reinforcements.is_empty()
        && !matches!(i.spec.source, IncidentSource::Sos(_))
}

/// How an order ended, in words.
fn order_ended(n: usize, o: &fieldlink_dispatch::Order, incident: &Incident) -> String {
    let unit = &o.unit;
    match o.state {
        OrderState::Resolved => {
            let ended = o.ended_at.unwrap_or(incident.created_at);
            format!(
                "{unit} resolved incident #{n}, {} after it was reported.",
                seconds(ended.since(incident.created_at))
            )
        }
        OrderState::Rejected => format!("{unit} declined incident #{n}."),
        OrderState::Reassigned => match &o.reassigned_to {
            Some(to) => {
                format!("{unit} did not accept incident #{n} in time: reassigned to {to}.")
            }
            None => format!(
                "{unit} did not accept incident #{n} in time: no one else is free, it waits in the queue."
            ),
        },
        OrderState::Cancelled => format!("The order to {unit} for incident #{n} was cancelled."),
        other => format!(
            "The order to {unit} for incident #{n} ended: {}.",
            other.as_str().replace('_', " ")
        ),
    }
}

//! `fieldlink demo`: the whole loop in one process, told on the terminal.
//!
//! It starts a fieldlink on the built-in defaults (embedded broker, SQLite; the config file is
//! not read) with a data directory of its own: a fresh temporary directory, removed at the end,
//! unless `--data` names one. HTTP listens on 127.0.0.1:8080 and MQTT on 127.0.0.1:1883 when
//! those ports are free, else on free ports (said at start); `--http` and `--mqtt` choose. It
//! registers the simulated responders in-process (`sim000` ...; the type of their simulated kind,
//! a third with `first_aid`), connects them as a [`Crew`] over MQTT, and every
//! `--incident-every` (drawn between 2/3 and 4/3 of it) creates a seeded incident somewhere in
//! Shangcheng and dispatches it with one click, through the same functions the HTTP API and the
//! WebSocket commands call (`http::commands::run`). A watcher reads the dispatch core twice a
//! second and prints, in words, each order sent, accepted, declined, reassigned, on scene and
//! resolved; resolved incidents are closed. Every `--sla-every` it prints the supervision report
//! (`GET /api/v1/reports/sla`) over the incidents since the start. Ctrl-C or `--duration` stops.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use fieldlink_clock::{Clock, SystemClock, Timestamp};
use fieldlink_dispatch::{Actor, GroupBy, IncidentId, IncidentSource, OrderId, supervision_report};
use fieldlink_sim::{Bbox, Behaviour, Crew, CrewConfig, CrewStatsHandle, SplitMix64, kind_for};
use fieldlink_store::Role;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cli::{DemoArgs, GlobalArgs};
use crate::provision::{self, UnitSpec};
use crate::sim::{has_first_aid, seconds, unit_ids};
use crate::state::AppState;
use crate::{Config, Server};

/// The name the demo's dispatcher acts under (in the journal: `dispatcher:demo`).
const DISPATCHER: &str = "demo";
/// The talkgroup every simulated responder is in (their push-to-talk bursts go there).
const TALKGROUP: &str = "all";

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

/// Runs the demo until `stop` is cancelled or `--duration` has passed.
pub async fn run(
    base: Config,
    global: &GlobalArgs,
    args: DemoArgs,
    stop: CancellationToken,
) -> Result<()> {
    let mut config = Config {
        log: base.log,
        ..Config::default()
    };
    let (data_dir, temporary) = match &global.data {
        Some(dir) => (dir.clone(), false),
        None => (temp_data_dir(), true),
    };
    config.data_dir = data_dir.clone();
    let (http, http_note) = pick(global.http, "127.0.0.1:8080", "HTTP")?;
    let (mqtt, mqtt_note) = pick(global.mqtt, "127.0.0.1:1883", "MQTT (another broker?)")?;
    config.http.listen = http;
    config.mqtt.listen = mqtt;
    let ids = unit_ids("sim", args.units)?;
    config.talkgroups.push(fieldlink_intercom::Talkgroup {
        id: fieldlink_intercom::TalkgroupId(TALKGROUP.to_owned()),
        name: "All simulated responders".to_owned(),
        mode: fieldlink_intercom::Mode::default(),
        busy: None,
        max_talk_s: None,
        units: ids
            .iter()
            .map(|u| fieldlink_intercom::UnitId(u.to_string()))
            .collect(),
        consoles: Default::default(),
    });
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("the demo's configuration is not valid: {e}"))?;
    let topics = config.mqtt.topics()?;
    let clock = Arc::new(SystemClock);
    let server = crate::start(config, clock.clone())
        .await
        .context("the demo's fieldlink could not start")?;
    let result = drive(
        &server, &topics, &args, &ids, http_note, mqtt_note, &data_dir, temporary, stop,
    )
    .await;
    server.shutdown(Duration::from_secs(5)).await;
    if temporary {
        if let Err(e) = std::fs::remove_dir_all(&data_dir) {
            tracing::warn!(dir = %data_dir.display(), error = %e, "could not remove the demo's data directory");
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    server: &Server,
    topics: &fieldlink_proto::Topics,
    args: &DemoArgs,
    ids: &[fieldlink_proto::UnitId],
    http_note: Option<String>,
    mqtt_note: Option<String>,
    data_dir: &std::path::Path,
    temporary: bool,
    stop: CancellationToken,
) -> Result<()> {
    let state = server.state().clone();
    let now = state.clock.now();
    let mut units = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let kind = kind_for(args.seed, i);
        let issued = match state.store.get_unit(id.as_str()).await? {
            Some(_) => provision::rotate_unit_secret(&state.store, id.as_str(), now).await?,
            None => {
                let spec = UnitSpec {
                    id: id.clone(),
                    name: format!("Simulated {id}"),
                    unit_type: kind.api_type().parse().unwrap_or_default(),
                    skills: if has_first_aid(i) {
                        vec!["first_aid".to_owned()]
                    } else {
                        vec![]
                    },
                };
                provision::add_unit(&state.store, spec, now).await?
            }
        };
        units.push((id.clone(), issued.secret));
    }
    let token = provision::add_token(&state.store, "demo", Role::Admin, now)
        .await?
        .secret;
    state.credentials.reload().await?;

    let http = server.http_addr();
    let mqtt = server
        .mqtt_addr()
        .context("the demo runs the embedded broker")?;
    let broker = format!("127.0.0.1:{}", mqtt.port());
    println!("fieldlink demo");
    for note in [http_note, mqtt_note].into_iter().flatten() {
        println!("  note: {note}");
    }
    println!("  API:        http://{http}   admin token: {token}");
    println!(
        "    open incidents: curl -H 'Authorization: Bearer {token}' 'http://{http}/api/v1/incidents?status=open'"
    );
    println!(
        "    units:          curl -H 'Authorization: Bearer {token}' http://{http}/api/v1/units"
    );
    println!(
        "    SLA report:     curl -H 'Authorization: Bearer {token}' http://{http}/api/v1/reports/sla"
    );
    println!("  live state: websocat -H 'Authorization: Bearer {token}' ws://{http}/ws");
    println!(
        "    then send:  {{\"type\":\"subscribe\",\"channels\":[\"incidents\",\"orders\",\"alarms\"]}}"
    );
    println!("  MQTT:       {broker} (embedded broker)");
    if temporary {
        println!("  data:       {} (removed at the end)", data_dir.display());
    } else {
        println!("  data:       {}", data_dir.display());
    }
    println!(
        "Connecting {} simulated responders ... (Ctrl-C stops the demo)",
        units.len()
    );

    let mut cfg = CrewConfig::new(broker, topics.clone(), units);
    cfg.seed = args.seed;
    cfg.behaviour = Behaviour {
        accept_delay: args.accept_delay,
        ..Behaviour::default()
    };
    let crew = Crew::connect(cfg).await?;
    let stats = crew.stats_handle();
    let crew_stop = stop.child_token();
    let crew_task = tokio::spawn(crew.run(Duration::from_secs(1), crew_stop.clone()));
    let start = state.clock.now();
    let mut story = Story::new(state.clone(), start, stats);
    story.say(format!(
        "{} responders on patrol in Shangcheng. A new incident about every {}.",
        ids.len(),
        seconds(args.incident_every)
    ));

    let mut rng = SplitMix64(args.seed ^ 0x1DC1_DE47);
    let gap = |rng: &mut SplitMix64| {
        let every = args.incident_every;
        rng.between((every.mul_f64(2.0 / 3.0), every.mul_f64(4.0 / 3.0)))
    };
    let mut next_incident = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut watch = tokio::time::interval(Duration::from_millis(500));
    let mut sla = tokio::time::interval_at(
        tokio::time::Instant::now() + args.sla_every,
        args.sla_every.max(Duration::from_secs(1)),
    );
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut last_sla = tokio::time::Instant::now();
    loop {
        let until_end = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = until_end => break,
            _ = tokio::time::sleep_until(next_incident) => {
                story.new_incident(&mut rng).await;
                next_incident = tokio::time::Instant::now() + gap(&mut rng);
            }
            _ = watch.tick() => story.watch().await,
            _ = sla.tick() => {
                story.sla().await;
                last_sla = tokio::time::Instant::now();
            }
        }
    }
    story.watch().await;
    // The figures once more at the end, unless they were just printed.
    if last_sla.elapsed() > Duration::from_secs(1) {
        story.sla().await;
    }
    story.say("Stopping the demo ...".to_owned());
    crew_stop.cancel();
    match crew_task.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the simulated crew stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "the simulated crew's task failed"),
    }
    Ok(())
}

/// What the watcher has already told about one order.
#[derive(Debug, Default)]
struct Told {
    accepted: bool,
    on_scene: bool,
    ended: bool,
}

/// The terminal's story of the demo.
struct Story {
    state: AppState,
    start: Timestamp,
    stats: CrewStatsHandle,
    numbers: HashMap<IncidentId, usize>,
    orders: BTreeMap<OrderId, Told>,
}

impl Story {
    fn new(state: AppState, start: Timestamp, stats: CrewStatsHandle) -> Story {
        Story {
            state,
            start,
            stats,
            numbers: HashMap::new(),
            orders: BTreeMap::new(),
        }
    }

    fn say(&self, line: String) {
        let s = SystemClock.now().since(self.start).as_secs();
        println!("[{:02}:{:02}] {line}", s / 60, s % 60);
    }

    fn number(&mut self, id: &IncidentId) -> usize {
        let next = self.numbers.len() + 1;
        *self.numbers.entry(id.clone()).or_insert(next)
    }

    /// Creates a seeded incident in Shangcheng and dispatches it with one click.
    async fn new_incident(&mut self, rng: &mut SplitMix64) {
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
        let n = self.number(&IncidentId(id.clone()));
        self.say(format!(
            "Incident #{n}: {} at {lat:.4}, {lon:.4}, {priority} priority: {text}.",
            kind.replace('_', " ")
        ));
        match self.command("dispatch", json!({ "incident": id })).await {
            Ok(v)
                if v["queued"] == json!(true)
                    && v["orders"].as_array().is_none_or(Vec::is_empty) =>
            {
                self.say(format!(
                    "Incident #{n}: no responder free nearby; it waits in the queue."
                ));
            }
            Ok(_) => {}
            Err(e) => self.say(format!("Incident #{n} could not be dispatched: {e}")),
        }
        // The order it created is told right away.
        self.watch().await;
    }

    async fn command(&self, op: &str, args: Value) -> Result<Value, String> {
        crate::http::commands::run(&self.state, DISPATCHER, op, args)
            .await
            .map_err(|e| e.message)
    }

    /// Tells what changed in the dispatch core since the last look.
    async fn watch(&mut self) {
        // New incidents first, then what happened to orders, then the orders just sent.
        let mut head = Vec::new();
        let mut lines = Vec::new();
        let mut to_close = Vec::new();
        let mut new_orders = Vec::new();
        {
            let state = self.state.clone();
            let core = state.dispatch.read().await;
            let st = core.state();
            let mut fresh: Vec<_> = (st.incidents.values())
                .filter(|i| !self.numbers.contains_key(&i.id))
                .collect();
            fresh.sort_by_key(|i| i.created_at);
            for i in fresh {
                let n = self.number(&i.id);
                let kind = serde_json::to_value(i.spec.kind).unwrap_or_default();
                let kind = kind.as_str().unwrap_or("incident").replace('_', " ");
                match &i.spec.source {
                    IncidentSource::FieldReport(u) => head.push(format!(
                        "Incident #{n}: {kind} reported from the field by {u}."
                    )),
                    IncidentSource::Sos(u) => head.push(format!("Incident #{n}: SOS from {u}.")),
                    IncidentSource::CommandRoom => head.push(format!(
                        "Incident #{n}: {kind} entered in the command room."
                    )),
                }
            }
            for (id, o) in &st.orders {
                let Some(incident) = st.incidents.get(&o.incident) else {
                    continue;
                };
                let n = self.numbers.get(&o.incident).copied().unwrap_or(0);
                let told = self.orders.entry(id.clone()).or_insert_with(|| {
                    new_orders.push((
                        n,
                        o.unit.to_string(),
                        o.dispatched_by.clone(),
                        incident.spec.location,
                    ));
                    Told::default()
                });
                let unit = &o.unit;
                if !told.accepted {
                    if let Some(at) = o.accepted_at {
                        told.accepted = true;
                        lines.push(format!(
                            "{unit} accepted incident #{n} after {}.",
                            seconds(at.since(o.created_at))
                        ));
                    }
                }
                if !told.on_scene {
                    if let Some(at) = o.on_scene_at {
                        told.on_scene = true;
                        lines.push(format!(
                            "{unit} is on scene at incident #{n}, {} after it was reported.",
                            seconds(at.since(incident.created_at))
                        ));
                    }
                }
                if !told.ended && o.state.is_terminal() {
                    told.ended = true;
                    use fieldlink_dispatch::OrderState as S;
                    let line = match o.state {
                        S::Resolved => {
                            let ended = o.ended_at.unwrap_or(incident.created_at);
                            format!(
                                "{unit} resolved incident #{n}, {} after it was reported.",
                                seconds(ended.since(incident.created_at))
                            )
                        }
                        S::Rejected => format!("{unit} declined incident #{n}."),
                        S::Reassigned => match &o.reassigned_to {
                            Some(to) => format!(
                                "{unit} did not accept incident #{n} in time: reassigned to {to}."
                            ),
                            None => format!(
                                "{unit} did not accept incident #{n} in time: no one else is free, it waits in the queue."
                            ),
                        },
                        S::Cancelled => {
                            format!("The order to {unit} for incident #{n} was cancelled.")
                        }
                        other => format!("The order to {unit} for incident #{n} ended: {other:?}."),
                    };
                    lines.push(line);
                    let all_ended = (incident.orders.iter())
                        .filter_map(|o| st.orders.get(o))
                        .all(|o| o.state.is_terminal());
                    let resolved = (incident.orders.iter())
                        .filter_map(|o| st.orders.get(o))
                        .any(|o| o.state == S::Resolved);
                    if incident.is_open() && all_ended && resolved {
                        to_close.push((n, incident.id.clone()));
                    }
                }
            }
        }
        // Distances and kinds after the core's lock is released.
        for (n, unit, by, at) in new_orders {
            let kind = (self.state.credentials.unit(&unit))
                .map(|u| match u.unit_type.as_str() {
                    "on_foot" => "on foot".to_owned(),
                    "e_bike" => "e-bike".to_owned(),
                    "car" => "patrol car".to_owned(),
                    other => other.replace('_', " "),
                })
                .unwrap_or_default();
            let here = (self.state.tracker().get(&unit)).map(|s| (s.fix.lat, s.fix.lon));
            let away = match (here, at) {
                (Some(here), Some(at)) => format!(
                    ", {:.0} m away",
                    fieldlink_sim::responder::distance_m(here, (at.lat, at.lon))
                ),
                _ => String::new(),
            };
            let line = match by {
                Actor::System(rule) => {
                    let why = match rule.as_str() {
                        "rejected" => "the one before declined".to_owned(),
                        "accept_timeout" => "the one before did not accept in time".to_owned(),
                        "queue" => "a responder became free".to_owned(),
                        other => other.replace('_', " "),
                    };
                    format!("Incident #{n} sent on to {unit} ({kind}{away}): {why}.")
                }
                _ => format!("Incident #{n} dispatched to {unit} ({kind}{away})."),
            };
            lines.push(line);
        }
        for line in head.into_iter().chain(lines) {
            self.say(line);
        }
        for (n, id) in to_close {
            match self.command("close", json!({ "incident": id.0 })).await {
                Ok(_) => self.say(format!("Incident #{n} closed.")),
                Err(e) => tracing::debug!(incident = %id, error = %e, "not closed"),
            }
        }
    }

    /// The live SLA figures over the incidents since the start.
    async fn sla(&self) {
        let now = self.state.clock.now();
        let (report, targets) = {
            let core = self.state.dispatch.read().await;
            let report = supervision_report(
                core.state(),
                core.config(),
                self.start,
                now.plus(Duration::from_millis(1)),
                GroupBy::Grid,
            );
            (report, core.config().default_targets)
        };
        let rows = &report.rows;
        let sum =
            |f: fn(&fieldlink_dispatch::ReportRow) -> usize| rows.iter().map(f).sum::<usize>();
        let (incidents, accepted, on_scene) = (
            sum(|r| r.incidents),
            sum(|r| r.accepted),
            sum(|r| r.on_scene),
        );
        let share = |f: fn(&fieldlink_dispatch::ReportRow) -> Option<f64>,
                     w: fn(&fieldlink_dispatch::ReportRow) -> usize| {
            let total: usize = rows.iter().filter(|r| f(r).is_some()).map(w).sum();
            (total > 0).then(|| {
                rows.iter()
                    .filter_map(|r| f(r).map(|s| s * w(r) as f64))
                    .sum::<f64>()
                    / total as f64
            })
        };
        let percent = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{:.0} %", s * 100.0));
        let median = |m: Option<f64>| {
            m.filter(|_| rows.len() == 1).map_or(String::new(), |m| {
                format!(", median {}", seconds(Duration::from_secs_f64(m)))
            })
        };
        let first = rows.first();
        let s = self.stats.snapshot();
        self.say(format!(
            "SLA so far: {incidents} incidents; {accepted} accepted, {} within {} s{}; {on_scene} on scene, {} within {} s{}; {} reassigned, {} declined. Responders: {}/{} connected, {} out of coverage.",
            percent(share(|r| r.within_response, |r| r.accepted)),
            targets.response_s,
            median(first.and_then(|r| r.accept_median_s)),
            percent(share(|r| r.within_arrival, |r| r.on_scene)),
            targets.arrival_s,
            median(first.and_then(|r| r.on_scene_median_s)),
            sum(|r| r.reassignments),
            sum(|r| r.rejections),
            s.connected,
            s.units,
            s.offline,
        ));
    }
}

/// `flag` when given; else `default` when it is free, else a free port on 127.0.0.1 (with a
/// note saying so).
fn pick(
    flag: Option<SocketAddr>,
    default: &str,
    what: &str,
) -> Result<(SocketAddr, Option<String>)> {
    if let Some(addr) = flag {
        return Ok((addr, None));
    }
    let default: SocketAddr = default.parse()?;
    if TcpListener::bind(default).is_ok() {
        return Ok((default, None));
    }
    let free = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("no free port on 127.0.0.1")?;
    let note = format!(
        "port {} is busy ({what}): the demo uses {free} instead",
        default.port()
    );
    Ok((free, Some(note)))
}

/// A fresh directory under the system's temporary directory.
fn temp_data_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("fieldlink-demo-{}-{nanos:08x}", std::process::id()))
}

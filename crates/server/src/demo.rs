//! `fieldlink demo`: the whole loop in one process, told on the terminal.
//!
//! It starts a fieldlink on the built-in defaults (embedded broker, SQLite; the config file is
//! not read) with a data directory of its own: a fresh temporary directory, removed at the end,
//! unless `--data` names one. HTTP listens on 127.0.0.1:8080 and MQTT on 127.0.0.1:1883 when
//! those ports are free, else on free ports (said at start); `--http` and `--mqtt` choose. It
//! registers the simulated responders in-process (`sim000` ...; the type of their simulated kind,
//! a third with `first_aid`), connects them as a [`Crew`] over MQTT, and every
//! `--incident-every` (drawn between 2/3 and 4/3 of it) creates a seeded incident somewhere in
//! Shangcheng and dispatches it with one click. The responders also report incidents they see
//! (field reports, about one for every `INCIDENTS_PER_FIELD_REPORT` seeded incidents), which
//! the demo dispatches the same way. What the demo's command room sees and does is in
//! `demo/story.rs`: each order, alarm and arrival told by incident number, reinforcement for
//! urgent incidents, resolved incidents closed. Every `--sla-every` it prints the supervision
//! report (`GET /api/v1/reports/sla`) over the incidents since the start; Ctrl-C or `--duration`
//! stops it with the closing summary (`demo/summary.rs`).

mod narrate;
mod story;
mod summary;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use fieldlink_clock::SystemClock;
use fieldlink_sim::{Behaviour, Crew, CrewConfig, SplitMix64, kind_for};
use fieldlink_store::Role;
use tokio_util::sync::CancellationToken;

use crate::cli::{DemoArgs, GlobalArgs};
use crate::provision::{self, UnitSpec};
use crate::sim::{has_first_aid, seconds, unit_ids};
use crate::{Config, Server};
use story::Story;

/// Seeded incidents per field report from the crew, on average (the rate of field reports
/// follows `--incident-every`, so a short run with frequent incidents has some too).
const INCIDENTS_PER_FIELD_REPORT: f64 = 4.0;

/// The talkgroup every simulated responder is in (their push-to-talk bursts go there).
const TALKGROUP: &str = "all";

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
    if temporary && let Err(e) = std::fs::remove_dir_all(&data_dir) {
        tracing::warn!(dir = %data_dir.display(), error = %e, "could not remove the demo's data directory");
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
        field_reports_per_hour: field_reports_per_hour(args.incident_every, ids.len()),
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
            _ = sla.tick() => story.sla().await,
        }
    }
    story.say("Stopping the demo ...".to_owned());
    crew_stop.cancel();
    match crew_task.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the simulated crew stopped with an error"),
        Err(e) => tracing::warn!(error = %e, "the simulated crew's task failed"),
    }
    // The last of the story, then (the crew silent) the summary over everything told: a second
    // look tells the orders the first one's commands sent.
    story.watch().await;
    story.watch().await;
    story.summary().await;
    Ok(())
}

/// Field reports per hour and responder: one for every `INCIDENTS_PER_FIELD_REPORT` seeded
/// incidents over the whole crew.
fn field_reports_per_hour(incident_every: Duration, units: usize) -> f64 {
    let incidents_per_hour = 3600.0 / incident_every.as_secs_f64().max(0.001);
    incidents_per_hour / INCIDENTS_PER_FIELD_REPORT / units.max(1) as f64
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

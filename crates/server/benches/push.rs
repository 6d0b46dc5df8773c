//! Issue 6's benchmark: the WebSocket hub under a moving fleet. 10k units of the fleet
//! generator publish one fix per second over real MQTT; 100 command-room clients subscribe to all
//! positions and 1,000 to a district-sized bbox. Prints what it measured: fixes accepted per
//! second, position updates delivered per second per group, latency from fix publish to client
//! receipt (p50 / p99 / max), the server's CPU per delivered update and its memory per client.
//!
//! Run: `cargo bench -p fieldlink-server --bench push`. Knobs (environment):
//! `FIELDLINK_BENCH_UNITS` (default 10000), `FIELDLINK_BENCH_ALL_CLIENTS` (clients subscribed to
//! all positions, default 100), `FIELDLINK_BENCH_BBOX_CLIENTS` (clients subscribed to the bbox,
//! default 1000), `FIELDLINK_BENCH_SECONDS` (measurement window, default 30),
//! `FIELDLINK_BENCH_BBOX_KM` (side of the square bbox, default 2), `FIELDLINK_BENCH_FLOOR_ROUNDS`
//! (issue 5's figure, below; default 200, 0 skips it).
//!
//! **Floor control under the same load** (issue 5): after the window, with the fleet and the
//! clients still running, two extra handsets (real rumqttc clients in the server process) share
//! an arbitrated talkgroup; `FIELDLINK_BENCH_FLOOR_ROUNDS` times, one publishes a floor request
//! (QoS 1) and waits for its `FloorAnswer` on its downlink, then releases. It prints p50 / p99 /
//! max of request publish → grant received. A floor request takes the same uplink path as the
//! fleet's fixes, so a server that lags on fixes lags here too.
//!
//! Three processes (one process would need ~22k sockets, over the 20k descriptors a process may
//! hold here), all this binary, the role chosen by `FIELDLINK_PUSH_BENCH_ROLE`:
//!
//! - **server** (the parent, no role set): fieldlink in-process (`fieldlink_server::start`) with
//!   its embedded MQTT broker and SQLite in a temp data dir, HTTP and MQTT on free 127.0.0.1
//!   ports, every background task running. The units are registered in one bulk `INSERT` with
//!   real salted secret hashes, then `credentials.reload()`; one viewer token. Unit secrets and
//!   the token reach the children through files in the temp dir, not argv.
//! - **clients** (child): the WebSocket clients (tokio-tungstenite, `Authorization: Bearer`,
//!   JSON protocol), connected 32 at a time, each `subscribe`d to `positions` (the bbox group
//!   with `filter.bbox`, a square centred on Shangcheng district) and waiting for its `snapshot`.
//!   For every unit entry of every `positions` batch received inside the window it records
//!   `receive wall ms - unit.at_ms` (the fix time the handset stamped when it published) in a
//!   per-group histogram at 1 ms resolution, and also `batch.at_ms - unit.at_ms` (the part spent
//!   before the server sent the batch). Positions are coalesced per unit and sent once per
//!   `position_tick_ms` (250 ms), so up to 250 ms of the latency is by design.
//! - **fleet** (child): `fieldlink_sim::Fleet` with the N units, one fix per second each (QoS 0),
//!   routes seeded over Shangcheng; it connects 64 handsets at a time and runs until killed.
//!
//! Sequence: the clients connect first, to an idle server (RSS before and after: **memory per
//! client** = RSS delta / clients, idle sessions with their buffers, no position backlog); then
//! the fleet connects (RSS per MQTT unit likewise); then a warm-up until fixes are accepted at
//! ≥ 95% of the nominal rate for 2 s in a row (at most 60 s) plus 3 s; then the window. Over the
//! window the parent reads the CPU time (utime + stime of `/proc/<pid>/stat`, in USER_HZ ticks,
//! taken as 100 Hz, 10 ms resolution) of itself and of both children: **server CPU µs per
//! delivered update** = server CPU time in the window / unit entries the clients received in it.
//! The children's CPU is not in the server's figure; all three share the machine's cores, so a
//! saturated machine inflates latency for reasons outside the server (the client process's own
//! backlog counts in "publish → receipt").

mod common;

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use fieldlink_clock::{SharedClock, SystemClock};
use fieldlink_proto::{Topics, UnitId, UplinkKind};
use fieldlink_server::Config;
use fieldlink_server::provision::add_token;
use fieldlink_server::state::AppState;
use fieldlink_sim::{Fleet, FleetConfig};
use fieldlink_store::{Role, UnitType};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use common::{
    accepted, cpu_secs, env_string, env_usize, free_port, loadavg, mib, rss_bytes, wall_ms,
};

const ROLE_ENV: &str = "FIELDLINK_PUSH_BENCH_ROLE";
const HTTP_ENV: &str = "FIELDLINK_PUSH_BENCH_HTTP";
const BROKER_ENV: &str = "FIELDLINK_PUSH_BENCH_BROKER";
const TOPIC_ROOT_ENV: &str = "FIELDLINK_PUSH_BENCH_TOPIC_ROOT";
const OWNTRACKS_ENV: &str = "FIELDLINK_PUSH_BENCH_OWNTRACKS";
const UNITS_FILE_ENV: &str = "FIELDLINK_PUSH_BENCH_UNITS_FILE";
const TOKEN_FILE_ENV: &str = "FIELDLINK_PUSH_BENCH_TOKEN_FILE";

/// Shangcheng district, Hangzhou, as the fleet generator bounds it (`Bbox::SHANGCHENG`).
const SC_MIN_LAT: f64 = 30.22;
const SC_MAX_LAT: f64 = 30.30;
const SC_MIN_LON: f64 = 120.15;
const SC_MAX_LON: f64 = 120.21;
/// Metres per degree of latitude (mean Earth radius).
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;
/// WebSocket connects in progress at once.
const WS_CONNECT_CONCURRENCY: usize = 32;
/// Latency histogram range, ms (1 ms buckets; the last one holds everything above).
const HIST_MS: usize = 120_000;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn unit_id(i: usize) -> String {
    format!("bench-{i:06}")
}

/// The clients' bbox: a `km` × `km` square centred on the district, `[min_lon, min_lat,
/// max_lon, max_lat]` (GeoJSON order, as the protocol wants it).
fn district_bbox(km: f64) -> [f64; 4] {
    let (lat, lon) = (
        (SC_MIN_LAT + SC_MAX_LAT) / 2.0,
        (SC_MIN_LON + SC_MAX_LON) / 2.0,
    );
    let half_lat = km * 500.0 / M_PER_DEG;
    let half_lon = km * 500.0 / (M_PER_DEG * lat.to_radians().cos());
    [
        lon - half_lon,
        lat - half_lat,
        lon + half_lon,
        lat + half_lat,
    ]
}

fn in_bbox(b: &[f64; 4], lat: f64, lon: f64) -> bool {
    (b[0]..=b[2]).contains(&lon) && (b[1]..=b[3]).contains(&lat)
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("fleet") => rt.block_on(fleet_role()),
        Ok("clients") => rt.block_on(clients_role()),
        _ => rt.block_on(server_role()),
    }
}

// ---------------------------------------------------------------------------------------------
// server role (the parent)
// ---------------------------------------------------------------------------------------------

/// Makes `units` ids and secrets and registers them in bulk; returns (id, secret).
async fn register_fleet_units(
    state: &AppState,
    url: &str,
    units: usize,
) -> Result<Vec<(String, String)>> {
    let tag = rand::random::<u64>();
    let creds: Vec<(String, String)> = (0..units)
        .map(|i| (unit_id(i), format!("secret-{i:06}-{tag:016x}")))
        .collect();
    common::register_units(state, url, &creds).await?;
    Ok(creds)
}

fn spawn_role(role: &str, envs: &[(&str, String)]) -> Result<Child> {
    let exe = std::env::current_exe().context("this binary's path")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.env(ROLE_ENV, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn()
        .with_context(|| format!("spawning the {role} process"))
}

/// A child process with its stdin (commands; EOF tells it to exit) and stdout (one-line answers).
struct Worker {
    name: &'static str,
    child: Child,
    pid: String,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn new(name: &'static str, mut child: Child) -> Result<Worker> {
        let pid = child
            .id()
            .map(|p| p.to_string())
            .ok_or_else(|| anyhow!("{name} exited at once"))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        Ok(Worker {
            name,
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// The next stdout line starting with `prefix` (other lines are skipped), within `wait`.
    async fn line(&mut self, prefix: &str, wait: Duration) -> Result<String> {
        let name = self.name;
        tokio::time::timeout(wait, async {
            loop {
                match self.stdout.next_line().await? {
                    Some(l) if l.starts_with(prefix) => return Ok(l),
                    Some(l) if l.starts_with("failed") => bail!("{name}: {l}"),
                    Some(_) => continue,
                    None => bail!("{name} exited before saying {prefix:?}"),
                }
            }
        })
        .await
        .map_err(|_| anyhow!("{name} said no {prefix:?} within {wait:?}"))?
    }

    async fn send(&mut self, cmd: &str) -> Result<()> {
        self.stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    fn cpu(&self) -> f64 {
        cpu_secs(&self.pid).unwrap_or(f64::NAN)
    }

    fn rss(&self) -> u64 {
        rss_bytes(&self.pid).unwrap_or(0)
    }

    async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// What the parent sampled at one instant.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    server_cpu: f64,
    fleet_cpu: f64,
    clients_cpu: f64,
    accepted: u64,
    batches_sent: u64,
    messages_sent: u64,
}

fn sample(state: &AppState, fleet: &Worker, clients: &Worker) -> Sample {
    let push = state.push.stats();
    Sample {
        at: Instant::now(),
        server_cpu: cpu_secs("self").unwrap_or(f64::NAN),
        fleet_cpu: fleet.cpu(),
        clients_cpu: clients.cpu(),
        accepted: accepted(state),
        batches_sent: push.batches_sent,
        messages_sent: push.messages_sent,
    }
}

struct Knobs {
    units: usize,
    all: usize,
    bbox: usize,
    seconds: u64,
    bbox_km: f64,
}

async fn server_role() -> Result<()> {
    let k = Knobs {
        units: env_usize("FIELDLINK_BENCH_UNITS", 10_000),
        all: env_usize("FIELDLINK_BENCH_ALL_CLIENTS", 100),
        bbox: env_usize("FIELDLINK_BENCH_BBOX_CLIENTS", 1000),
        seconds: env_usize("FIELDLINK_BENCH_SECONDS", 30) as u64,
        bbox_km: env_f64("FIELDLINK_BENCH_BBOX_KM", 2.0),
    };
    let bbox = district_bbox(k.bbox_km);
    let load_before = loadavg();
    println!(
        "fieldlink push bench: {} units at 1 fix/s; {} clients on all positions, {} on a {} km × {} km bbox {:?} (lon/lat); window {} s; cpus {}; loadavg before: {}",
        k.units,
        k.all,
        k.bbox,
        k.bbox_km,
        k.bbox_km,
        bbox.map(|v| (v * 1e5).round() / 1e5),
        k.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before
    );
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse()?;
    let mqtt_port = free_port();
    config.mqtt.listen = format!("127.0.0.1:{mqtt_port}").parse()?;
    config.mqtt.max_connections = config.mqtt.max_connections.max(k.units + 100);
    config.push.max_connections = config.push.max_connections.max(k.all + k.bbox + 100);
    // Snapshots come in parts under the write buffer's bound, so the default holds; the knob is
    // kept to compare.
    if let Ok(v) = std::env::var("FIELDLINK_BENCH_WS_MAX_WRITE_BUFFER") {
        config.push.max_write_buffer_bytes = v
            .trim()
            .parse()
            .context("FIELDLINK_BENCH_WS_MAX_WRITE_BUFFER")?;
    }
    let tick_ms = config.push.position_tick_ms;
    println!(
        "server config: mqtt.max_connections {}, push.max_connections {}, push.max_write_buffer_bytes {} (FIELDLINK_BENCH_WS_MAX_WRITE_BUFFER), push.position_tick_ms {tick_ms}, SQLite in a temp dir",
        config.mqtt.max_connections,
        config.push.max_connections,
        config.push.max_write_buffer_bytes
    );
    let url = config.store.effective_url(&config.data_dir);
    let topic_root = config.mqtt.topic_root.clone();
    let owntracks = config.mqtt.owntracks_prefix.clone();
    let clock: SharedClock = Arc::new(SystemClock);
    let server = fieldlink_server::start(config, clock)
        .await
        .context("starting the server")?;
    let state = server.state().clone();
    let result = run(&k, tick_ms, &state, &server, dir.path(), &url, {
        (format!("127.0.0.1:{mqtt_port}"), topic_root, owntracks)
    })
    .await;
    server.shutdown(Duration::from_secs(10)).await;
    println!("\nloadavg before: {load_before}; after: {}", loadavg());
    result
}

#[allow(clippy::too_many_arguments)]
async fn run(
    k: &Knobs,
    tick_ms: u64,
    state: &AppState,
    server: &fieldlink_server::Server,
    dir: &Path,
    url: &str,
    (broker, topic_root, owntracks): (String, String, String),
) -> Result<()> {
    let broker_addr = broker.clone();
    let topics = Topics::new(&topic_root, &owntracks)?;
    println!("\n## setup");
    let t = Instant::now();
    let creds = register_fleet_units(state, url, k.units).await?;
    println!(
        "  {} units registered (bulk INSERT with salted SHA-256 secrets) + credentials.reload(): {:.2} s",
        k.units,
        t.elapsed().as_secs_f64()
    );
    // The floor handsets are registered now: under the fleet's load an SQLite write from outside
    // the hot paths can fail with "database is locked" (seen in a run; noted for the store).
    let rounds = env_usize("FIELDLINK_BENCH_FLOOR_ROUNDS", 200);
    let floor_units = if rounds > 0 {
        Some(floor_units(state).await?)
    } else {
        None
    };
    let token = add_token(&state.store, "push bench", Role::Viewer, state.clock.now())
        .await?
        .secret;
    state.credentials.reload().await?;
    let units_file = dir.join("units.txt");
    let token_file = dir.join("token.txt");
    let mut text = String::with_capacity(creds.len() * 48);
    for (id, secret) in &creds {
        text.push_str(&format!("{id} {secret}\n"));
    }
    std::fs::write(&units_file, text)?;
    std::fs::write(&token_file, &token)?;
    let http = server.http_addr().to_string();

    // Clients first, on an idle server: their memory alone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_clients = rss_bytes("self").unwrap_or(0);
    let t = Instant::now();
    let mut clients = Worker::new(
        "clients",
        spawn_role(
            "clients",
            &[
                (HTTP_ENV, http.clone()),
                (TOKEN_FILE_ENV, token_file.display().to_string()),
            ],
        )?,
    )?;
    let ready = clients.line("ready", Duration::from_secs(600)).await?;
    let mut it = ready.split_whitespace().skip(1);
    let ok: usize = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let failed: usize = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    println!(
        "  WebSocket clients subscribed: {ok} ({failed} failed) in {:.1} s; hub sessions open: {}",
        t.elapsed().as_secs_f64(),
        state.push.stats().connections
    );
    if ok == 0 {
        bail!("no WebSocket client could subscribe");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after_clients = rss_bytes("self").unwrap_or(0);

    // Then the fleet.
    let t = Instant::now();
    let mut fleet = Worker::new(
        "fleet",
        spawn_role(
            "fleet",
            &[
                (BROKER_ENV, broker),
                (TOPIC_ROOT_ENV, topic_root),
                (OWNTRACKS_ENV, owntracks),
                (UNITS_FILE_ENV, units_file.display().to_string()),
            ],
        )?,
    )?;
    let connected = {
        let wait = fleet.line("connected", Duration::from_secs(900));
        tokio::pin!(wait);
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tokio::select! {
                line = &mut wait => break line?,
                _ = tick.tick() => eprintln!(
                    "  … fleet connecting: {:.0} s, fixes accepted so far: {}",
                    t.elapsed().as_secs_f64(),
                    accepted(state)
                ),
            }
        }
    };
    println!(
        "  fleet: {connected:?} (seen by the server after {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let rss_after_fleet = rss_bytes("self").unwrap_or(0);

    // Warm-up: the fleet at full rate.
    let t = Instant::now();
    let mut last = accepted(state);
    let mut good = 0;
    let mut rate = 0.0;
    while good < 2 && t.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = accepted(state);
        rate = (now - last) as f64;
        last = now;
        good = if rate >= 0.95 * k.units as f64 {
            good + 1
        } else {
            0
        };
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "  warm-up: {:.1} s, last 1 s: {rate:.0} fixes accepted{}",
        t.elapsed().as_secs_f64(),
        if good < 2 {
            " (never reached 95% of nominal within 60 s; measuring anyway)"
        } else {
            ""
        }
    );

    // The window.
    let s0 = sample(state, &fleet, &clients);
    clients.send("start").await?;
    tokio::time::sleep(Duration::from_secs(k.seconds)).await;
    clients.send("stop").await?;
    let s1 = sample(state, &fleet, &clients);
    let rss_server = rss_bytes("self").unwrap_or(0);
    let (rss_fleet, rss_clients) = (fleet.rss(), clients.rss());
    let report = clients.line("{", Duration::from_secs(60)).await?;
    let report: Value = serde_json::from_str(&report).context("the clients' report")?;
    let push = state.push.stats();
    let floor = match floor_units {
        Some(units) => Some(floor_rounds(state, &broker_addr, &topics, units, rounds).await),
        None => None,
    };
    fleet.kill().await;
    clients.kill().await;

    print_results(
        k,
        tick_ms,
        &s0,
        &s1,
        &report,
        Mem {
            before_clients: rss_before_clients,
            after_clients: rss_after_clients,
            after_fleet: rss_after_fleet,
            server: rss_server,
            fleet: rss_fleet,
            clients: rss_clients,
            clients_ok: ok,
        },
        &push,
    );
    match floor {
        Some(Ok(ms)) => print_floor(&ms),
        Some(Err(e)) => println!("\n## floor control: FAILED: {e:#}"),
        None => {}
    }
    Ok(())
}

/// The two floor handsets' ids and secrets, registered through `provision::add_unit`.
async fn floor_units(state: &AppState) -> Result<Vec<(UnitId, String)>> {
    use fieldlink_server::provision::{UnitSpec, add_unit};
    let mut handsets = Vec::new();
    for name in ["floor-a", "floor-b"] {
        let spec = UnitSpec {
            id: UnitId::new(name)?,
            name: String::new(),
            unit_type: UnitType::OnFoot,
            skills: Vec::new(),
        };
        let issued = add_unit(&state.store, spec, state.clock.now()).await?;
        handsets.push((UnitId::new(name)?, issued.secret));
    }
    state.credentials.reload().await?;
    Ok(handsets)
}

/// Floor request → grant at the requesting handset's MQTT client, `rounds` times, in ms.
async fn floor_rounds(
    state: &AppState,
    broker: &str,
    topics: &Topics,
    mut handsets: Vec<(UnitId, String)>,
    rounds: usize,
) -> Result<Vec<f64>> {
    use fieldlink_intercom::{Actor, Mode, Talkgroup, TalkgroupId};
    use fieldlink_proto::v1;
    use fieldlink_sim::{Handset, HandsetConfig, QoS};
    let group = Talkgroup {
        id: TalkgroupId::from("bench"),
        name: "bench".to_owned(),
        mode: Mode::Arbitrated,
        busy: None,
        max_talk_s: None,
        units: handsets.iter().map(|(u, _)| u.as_str().into()).collect(),
        consoles: Default::default(),
    };
    (state.intercom)
        .execute(state, |c, now| {
            Ok(((), c.save_group(now, group, Actor::system("bench"))?))
        })
        .await
        .map_err(|e| anyhow!("talkgroup: {e:?}"))?;
    let (unit, secret) = handsets.swap_remove(0);
    let mut h = Handset::connect(HandsetConfig::new(
        broker,
        unit.clone(),
        secret,
        topics.clone(),
    ))
    .await
    .map_err(|e| anyhow!("the floor handset cannot connect: {e}"))?;
    let mut ms = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let message = |id: String, action| v1::PttMessage {
            id,
            time_ms: wall_ms(),
            unit: unit.to_string(),
            talkgroup: "bench".to_owned(),
            action: Some(action),
        };
        let id = format!("req-{i}");
        let request = v1::ptt_message::Action::Request(v1::FloorRequest { priority: 0 });
        let t = Instant::now();
        h.publish_uplink(
            UplinkKind::Ptt,
            &message(id.clone(), request),
            QoS::AtLeastOnce,
        )
        .await
        .map_err(|e| anyhow!("floor request: {e}"))?;
        loop {
            let d = (h.next_downlink(Duration::from_secs(120)).await)
                .ok_or_else(|| anyhow!("no floor answer to {id} within 120 s"))?;
            if let Some(v1::downlink::Body::Floor(f)) = &d.body
                && f.request_id == id
            {
                if !matches!(f.answer, Some(v1::floor_answer::Answer::Granted(_))) {
                    bail!("{id} was not granted: {:?}", f.answer);
                }
                break;
            }
        }
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        let release = v1::ptt_message::Action::Release(v1::FloorRelease {});
        h.publish_uplink(
            UplinkKind::Ptt,
            &message(format!("rel-{i}"), release),
            QoS::AtLeastOnce,
        )
        .await
        .map_err(|e| anyhow!("floor release: {e}"))?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ms)
}

fn print_floor(ms: &[f64]) {
    let mut sorted = ms.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "\n## floor control under the same load\n\n{} rounds, floor request publish → grant received at the handset's MQTT client: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sorted.len(),
        at(0.5),
        at(0.99),
        sorted.last().copied().unwrap_or(0.0)
    );
}

struct Mem {
    before_clients: u64,
    after_clients: u64,
    after_fleet: u64,
    server: u64,
    fleet: u64,
    clients: u64,
    clients_ok: usize,
}

fn print_results(
    k: &Knobs,
    tick_ms: u64,
    s0: &Sample,
    s1: &Sample,
    report: &Value,
    mem: Mem,
    push: &fieldlink_push::PushStats,
) {
    let secs = (s1.at - s0.at).as_secs_f64();
    let fixes = s1.accepted - s0.accepted;
    let groups = report["groups"].as_array().cloned().unwrap_or_default();
    let delivered: u64 = groups.iter().filter_map(|g| g["updates"].as_u64()).sum();
    let server_cpu = s1.server_cpu - s0.server_cpu;
    println!(
        "\n## results: window {secs:.1} s; positions coalesced per unit, one batch per client every {tick_ms} ms\n"
    );
    println!(
        "fixes accepted by the server: {fixes} = {:.0}/s (nominal {} /s)",
        fixes as f64 / secs,
        k.units
    );
    let probe_units = report["probe_units"].as_u64().unwrap_or(0);
    let probe_in = report["probe_in_bbox"].as_u64().unwrap_or(0);
    println!(
        "bbox holds {probe_in} of the {probe_units} units an all-positions client last saw ({:.1}%)\n",
        100.0 * probe_in as f64 / probe_units.max(1) as f64
    );
    println!(
        "| group         | clients | closed | updates delivered | updates/s | per client/s | batches/s/client | MB/s recv | p50 ms | p99 ms | max ms | server part p50 / p99 ms |"
    );
    println!(
        "|---------------|---------|--------|-------------------|-----------|--------------|------------------|-----------|--------|--------|--------|--------------------------|"
    );
    for g in &groups {
        let n = |key: &str| g[key].as_u64().unwrap_or(0);
        let clients = n("clients").max(1) as f64;
        println!(
            "| {:<13} | {:>7} | {:>6} | {:>17} | {:>9.0} | {:>12.0} | {:>16.2} | {:>9.1} | {:>6} | {:>6} | {:>6} | {:>11} / {:<10} |",
            g["name"].as_str().unwrap_or("?"),
            n("clients"),
            n("closed"),
            n("updates"),
            n("updates") as f64 / secs,
            n("updates") as f64 / secs / clients,
            n("batches") as f64 / secs / clients,
            n("bytes") as f64 / secs / 1e6,
            n("p50"),
            n("p99"),
            n("max"),
            n("server_p50"),
            n("server_p99"),
        );
    }
    let per_update_us = server_cpu * 1e6 / delivered.max(1) as f64;
    println!(
        "\n| process                 | CPU s in window | CPU % (100 = one core) | RSS MiB at end |"
    );
    println!(
        "|-------------------------|-----------------|------------------------|----------------|"
    );
    for (name, cpu, rss) in [
        ("server (fieldlink)", server_cpu, mem.server),
        (
            "fleet (MQTT handsets)",
            s1.fleet_cpu - s0.fleet_cpu,
            mem.fleet,
        ),
        (
            "clients (WebSocket)",
            s1.clients_cpu - s0.clients_cpu,
            mem.clients,
        ),
    ] {
        println!(
            "| {name:<23} | {cpu:>15.2} | {:>22.1} | {:>14.1} |",
            100.0 * cpu / secs,
            mib(rss)
        );
    }
    let per_client = mem.after_clients as f64 - mem.before_clients as f64;
    let per_unit = mem.after_fleet as f64 - mem.after_clients as f64;
    println!("\n| figure                                        | value |");
    println!("|-----------------------------------------------|-------|");
    println!(
        "| server CPU per delivered update               | {per_update_us:.2} µs ({delivered} updates, {server_cpu:.2} CPU s) |"
    );
    println!(
        "| server CPU per accepted fix (everything / fix) | {:.1} µs |",
        server_cpu * 1e6 / fixes.max(1) as f64
    );
    println!(
        "| server RSS: before clients / after / fleet on / window end | {:.1} / {:.1} / {:.1} / {:.1} MiB |",
        mib(mem.before_clients),
        mib(mem.after_clients),
        mib(mem.after_fleet),
        mib(mem.server)
    );
    println!(
        "| memory per WS client (idle, RSS delta / {} clients) | {:.1} KiB |",
        mem.clients_ok,
        per_client / mem.clients_ok.max(1) as f64 / 1024.0
    );
    println!(
        "| memory per MQTT unit (RSS delta / {} units)   | {:.1} KiB |",
        k.units,
        per_unit / k.units.max(1) as f64 / 1024.0
    );
    println!(
        "| hub in window: batches sent / messages sent   | {} / {} |",
        s1.batches_sent - s0.batches_sent,
        s1.messages_sent - s0.messages_sent
    );
    println!(
        "| hub sessions closed (by reason), whole run    | {:?} |",
        push.closed
    );
    if let Some(errors) = report["errors"].as_array().filter(|e| !e.is_empty()) {
        println!("\nclient-side errors (first few): {errors:?}");
    }
    println!(
        "\nNotes: latency = client receive wall time − the fix time the handset stamped at publish (same host, same clock); up to {tick_ms} ms of it is the coalescing tick. \"server part\" = the batch's at_ms − fix time. CPU from /proc/<pid>/stat at USER_HZ = 100. The clients' and the fleet's CPU are in other processes and not in the server's figures, but they share the same cores."
    );
}

// ---------------------------------------------------------------------------------------------
// fleet role
// ---------------------------------------------------------------------------------------------

async fn fleet_role() -> Result<()> {
    let broker = env_string(BROKER_ENV)?;
    let topics = Topics::new(&env_string(TOPIC_ROOT_ENV)?, &env_string(OWNTRACKS_ENV)?)?;
    let text = std::fs::read_to_string(env_string(UNITS_FILE_ENV)?)?;
    let mut units = Vec::new();
    for line in text.lines() {
        let (id, secret) = line.split_once(' ').context("a units file line")?;
        units.push((UnitId::new(id.to_owned())?, secret.to_owned()));
    }
    let n = units.len();
    let mut cfg = FleetConfig::new(broker, topics, units);
    cfg.fix_interval = Duration::from_secs(1);
    eprintln!(
        "  fleet: connecting {n} handsets, {} at a time",
        cfg.connect_concurrency
    );
    let t = Instant::now();
    let fleet = match Fleet::start(cfg).await {
        Ok(f) => f,
        Err(e) => {
            println!("failed after {:.1} s: {e}", t.elapsed().as_secs_f64());
            std::process::exit(1);
        }
    };
    println!(
        "connected {} handsets in {:.1} s",
        fleet.stats().connected,
        t.elapsed().as_secs_f64()
    );
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                if !matches!(line, Ok(Some(_))) {
                    break; // the parent is gone
                }
            }
            _ = tick.tick() => {
                let s = fleet.stats();
                eprintln!(
                    "  fleet: connected {}, fixes sent {}, errors {}, reconnects {}",
                    s.connected, s.fixes_sent, s.errors, s.reconnects
                );
            }
        }
    }
    std::process::exit(0)
}

// ---------------------------------------------------------------------------------------------
// clients role
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default)]
    at_ms: i64,
    #[serde(default, borrow)]
    units: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    unit: Cow<'a, str>,
    lat: f64,
    lon: f64,
    at_ms: i64,
}

struct Group {
    name: &'static str,
    clients: usize,
    /// publish → client receipt, 1 ms buckets.
    hist: Vec<AtomicU64>,
    /// publish → the server's batch time, 1 ms buckets.
    server_hist: Vec<AtomicU64>,
    updates: AtomicU64,
    batches: AtomicU64,
    bytes: AtomicU64,
    closed: AtomicU64,
}

impl Group {
    fn new(name: &'static str, clients: usize) -> Group {
        Group {
            name,
            clients,
            hist: (0..=HIST_MS).map(|_| AtomicU64::new(0)).collect(),
            server_hist: (0..=HIST_MS).map(|_| AtomicU64::new(0)).collect(),
            updates: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }

    fn record(hist: &[AtomicU64], ms: i64) {
        hist[ms.clamp(0, HIST_MS as i64) as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// (p50, p99, max) in ms.
    fn percentiles(hist: &[AtomicU64]) -> (u64, u64, u64) {
        let counts: Vec<u64> = hist.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return (0, 0, 0);
        }
        let at = |p: f64| {
            let rank = ((total as f64 * p).ceil() as u64).max(1);
            let mut seen = 0;
            for (ms, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return ms as u64;
                }
            }
            HIST_MS as u64
        };
        let max = counts.iter().rposition(|&c| c > 0).unwrap_or(0) as u64;
        (at(0.5), at(0.99), max)
    }

    fn report(&self) -> Value {
        let (p50, p99, max) = Self::percentiles(&self.hist);
        let (sp50, sp99, _) = Self::percentiles(&self.server_hist);
        json!({
            "name": self.name,
            "clients": self.clients,
            "closed": self.closed.load(Ordering::Relaxed),
            "updates": self.updates.load(Ordering::Relaxed),
            "batches": self.batches.load(Ordering::Relaxed),
            "bytes": self.bytes.load(Ordering::Relaxed),
            "p50": p50, "p99": p99, "max": max,
            "server_p50": sp50, "server_p99": sp99,
        })
    }
}

struct Shared {
    recording: AtomicBool,
    groups: [Group; 2],
    /// The last position of each unit as all-positions client 0 saw it.
    probe: Mutex<HashMap<String, (f64, f64)>>,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn on_text(&self, group: usize, probe: bool, text: &str) {
        let now = wall_ms();
        let Ok(msg) = serde_json::from_str::<Msg>(text) else {
            return;
        };
        if msg.ty != "positions" {
            return;
        }
        if probe {
            let mut map = self.probe.lock().unwrap_or_else(|e| e.into_inner());
            for u in &msg.units {
                map.insert(u.unit.to_string(), (u.lat, u.lon));
            }
        }
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let g = &self.groups[group];
        for u in &msg.units {
            Group::record(&g.hist, now - u.at_ms);
            Group::record(&g.server_hist, msg.at_ms - u.at_ms);
        }
        g.updates
            .fetch_add(msg.units.len() as u64, Ordering::Relaxed);
        g.batches.fetch_add(1, Ordering::Relaxed);
        g.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
    }

    fn error(&self, e: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < 10 {
            errors.push(e);
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message within `wait` whose `type` is `kind`.
async fn next_of(ws: &mut Ws, kind: &str, wait: Duration) -> Result<Value> {
    tokio::time::timeout(wait, async {
        while let Some(msg) = ws.next().await {
            if let Message::Text(t) = msg? {
                let v: Value = serde_json::from_str(t.as_str())?;
                if v["type"] == kind {
                    return Ok(v);
                }
                if v["type"] == "error" {
                    bail!("server error: {v}");
                }
            }
        }
        bail!("closed before {kind}")
    })
    .await
    .map_err(|_| anyhow!("no {kind} within {wait:?}"))?
}

async fn open(http: &str, token: &str, bbox: Option<[f64; 4]>) -> Result<Ws> {
    let mut req = format!("ws://{http}/ws").into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    next_of(&mut ws, "hello", Duration::from_secs(30)).await?;
    let mut sub = json!({"type": "subscribe", "channels": ["positions"]});
    if let Some(b) = bbox {
        sub["filter"] = json!({ "bbox": b });
    }
    ws.send(Message::text(sub.to_string())).await?;
    next_of(&mut ws, "snapshot", Duration::from_secs(60)).await?;
    Ok(ws)
}

#[allow(clippy::too_many_arguments)]
async fn client_task(
    i: usize,
    group: usize,
    http: Arc<str>,
    token: Arc<str>,
    bbox: Option<[f64; 4]>,
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let ws = {
        let _permit = permits.acquire().await;
        open(&http, &token, bbox).await
    };
    let mut ws = match ws {
        Ok(ws) => {
            let _ = ready.send(Ok(())).await;
            ws
        }
        Err(e) => {
            let _ = ready.send(Err(format!("client {i}: {e:#}"))).await;
            return;
        }
    };
    drop(ready);
    let probe = i == 0;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(t)) => shared.on_text(group, probe, t.as_str()),
            Ok(Message::Close(frame)) => {
                shared.groups[group].closed.fetch_add(1, Ordering::Relaxed);
                shared.error(format!("client {i} closed by the server: {frame:?}"));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.groups[group].closed.fetch_add(1, Ordering::Relaxed);
                shared.error(format!("client {i}: {e}"));
                return;
            }
        }
    }
}

async fn clients_role() -> Result<()> {
    let http: Arc<str> = env_string(HTTP_ENV)?.into();
    let token: Arc<str> = std::fs::read_to_string(env_string(TOKEN_FILE_ENV)?)?
        .trim()
        .into();
    let all = env_usize("FIELDLINK_BENCH_ALL_CLIENTS", 100);
    let bbox_clients = env_usize("FIELDLINK_BENCH_BBOX_CLIENTS", 1000);
    let bbox = district_bbox(env_f64("FIELDLINK_BENCH_BBOX_KM", 2.0));
    let shared = Arc::new(Shared {
        recording: AtomicBool::new(false),
        groups: [
            Group::new("all positions", all),
            Group::new("bbox", bbox_clients),
        ],
        probe: Mutex::new(HashMap::new()),
        errors: Mutex::new(Vec::new()),
    });
    let permits = Arc::new(Semaphore::new(WS_CONNECT_CONCURRENCY));
    let total = all + bbox_clients;
    let (tx, mut rx) = mpsc::channel(total.max(1));
    for i in 0..total {
        let (group, filter) = if i < all { (0, None) } else { (1, Some(bbox)) };
        tokio::spawn(client_task(
            i,
            group,
            http.clone(),
            token.clone(),
            filter,
            shared.clone(),
            permits.clone(),
            tx.clone(),
        ));
    }
    drop(tx);
    let (mut ok, mut failed) = (0, 0);
    while let Some(r) = rx.recv().await {
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                if failed == 0 {
                    eprintln!("  clients: {e}");
                }
                failed += 1;
                shared.error(e);
            }
        }
    }
    println!("ready {ok} {failed}");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = stdin.next_line().await? {
        match line.trim() {
            "start" => shared.recording.store(true, Ordering::SeqCst),
            "stop" => {
                shared.recording.store(false, Ordering::SeqCst);
                let (units, inside) = {
                    let map = shared.probe.lock().unwrap_or_else(|e| e.into_inner());
                    let inside = map
                        .values()
                        .filter(|(lat, lon)| in_bbox(&bbox, *lat, *lon))
                        .count();
                    (map.len(), inside)
                };
                let errors = shared
                    .errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let report = json!({
                    "groups": [shared.groups[0].report(), shared.groups[1].report()],
                    "probe_units": units,
                    "probe_in_bbox": inside,
                    "errors": errors,
                });
                println!("{report}");
            }
            _ => {}
        }
    }
    // stdin closed: the parent is gone.
    std::process::exit(0)
}

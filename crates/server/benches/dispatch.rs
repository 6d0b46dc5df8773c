//! Issue 4's benchmark: one-click dispatch among 100k live units, persisted in SQLite and in
//! PostgreSQL. Prints a table: orders per second and p50 / p99 / max latency, overall and for
//! the first and last 10% of the run (every command checkpoints and snapshots the incidents,
//! orders and alarms, though not the responders, so latency may grow with the number of
//! incidents).
//!
//! Run: `cargo bench -p fieldlink-server --bench dispatch`. Knobs (environment):
//! `FIELDLINK_BENCH_UNITS` (default 100000), `FIELDLINK_BENCH_OPS` (sequential operations,
//! default 2000), `FIELDLINK_BENCH_CONCURRENCY` (callers of the concurrent variant, default 8;
//! 0 skips it), `FIELDLINK_BENCH_STORES` (`sqlite,postgres`), `FIELDLINK_TEST_PG_URL`.
//!
//! What one operation is: the two HTTP handlers' bodies, `POST /api/v1/incidents` then
//! `POST /api/v1/incidents/{id}/dispatch` with no body, without HTTP, JSON bodies or token
//! checks: the grid lookup, `DispatchService::execute` with `create_incident` (checkpoint → core
//! → change set with the snapshot and the changed responder rows → `Store::commit`), then the candidate ranking (`near`, from
//! the tracker and the credential cache) and `execute` with `dispatch` (core → commit → downlink
//! publish on the embedded broker → the outbox-done commit). The server runs in-process
//! (`fieldlink_server::start`), with all its background tasks.
//!
//! Setup (timed and printed, not part of the figures): 100k units registered — a few hundred
//! through `provision::add_unit` (what the admin API and the CLI do, one transaction each) to
//! measure that path, the rest in one bulk `INSERT` transaction, then `credentials.reload()`;
//! one live position each in the tracker (`apply_fix`, spread over Shangcheng district,
//! Hangzhou); and each unit marked online in the dispatch core in one command (what 100k
//! presence events would do one by one). Timers that would fire during the run (acceptance
//! timeout, re-sends, 1/3/5 targets) are set to an hour so that only the operations are measured.

use std::net::TcpListener;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fieldlink_clock::{SharedClock, SystemClock};
use fieldlink_dispatch::{
    Actor, Candidate, Change, Dispatcher, IncidentId, IncidentKind, IncidentSource, LatLon,
    NewIncident, Outcome, Priority, UnitId,
};
use fieldlink_location::Fix;
use fieldlink_server::Config;
use fieldlink_server::dispatch::{grid_at, near};
use fieldlink_server::provision::{UnitSpec, add_unit};
use fieldlink_server::state::AppState;
use fieldlink_store::{StoreConfig, UnitType};
use sqlx::{Connection, QueryBuilder};

/// Shangcheng district, Hangzhou: a box around it (south-west and north-east corners).
const SOUTH: f64 = 30.205;
const NORTH: f64 = 30.300;
const WEST: f64 = 120.150;
const EAST: f64 = 120.225;
/// Units registered through `provision::add_unit`, one transaction each, to time that path.
const PROVISIONED_ONE_BY_ONE: usize = 300;
/// Rows per bulk `INSERT` statement.
const INSERT_CHUNK: usize = 1000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*): positions and kinds, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn point(&mut self) -> (f64, f64) {
        let lat = SOUTH + (NORTH - SOUTH) * self.next_f64();
        let lon = WEST + (EAST - WEST) * self.next_f64();
        (lat, lon)
    }
}

fn unit_id(i: usize) -> String {
    format!("bench-{i:06}")
}

const TYPES: [UnitType; 4] = [
    UnitType::OnFoot,
    UnitType::EBike,
    UnitType::Motorcycle,
    UnitType::Car,
];

/// Half the units can take medical incidents.
fn skills(i: usize) -> Vec<String> {
    if i.is_multiple_of(2) {
        vec!["first_aid".to_owned()]
    } else {
        Vec::new()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[derive(Default)]
struct Lat {
    /// Per operation, in run order (ms).
    op: Vec<f64>,
    create: Vec<f64>,
    dispatch: Vec<f64>,
    dispatched: usize,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (
        pct(&s, 0.5),
        pct(&s, 0.99),
        s.last().copied().unwrap_or(f64::NAN),
    )
}

fn row(
    store: &str,
    variant: &str,
    slice: &str,
    v: &[f64],
    rate: Option<f64>,
    orders: Option<usize>,
) {
    let (p50, p99, max) = stats(v);
    let rate = rate.map_or(String::new(), |r| format!("{r:.1}"));
    let orders = orders.map_or(String::new(), |o| o.to_string());
    println!(
        "| {store:<8} | {variant:<12} | {slice:<15} | {n:>5} | {orders:>6} | {rate:>7} | {p50:>8.1} | {p99:>8.1} | {max:>8.1} |",
        n = v.len()
    );
}

/// One "create incident + one-click dispatch", as the two handlers do it.
async fn one_operation(state: &AppState, rng_seed: u64, lat: &mut Lat) -> Result<()> {
    let mut rng = Rng(rng_seed | 1);
    let (la, lo) = rng.point();
    let kind = if rng.next_f64() < 0.2 {
        IncidentKind::Medical
    } else {
        IncidentKind::Dispute
    };
    let t0 = Instant::now();
    // POST /api/v1/incidents
    let location = LatLon { lat: la, lon: lo };
    let spec = NewIncident {
        request_id: None,
        kind,
        priority: Priority::default(),
        location: Some(location),
        grid: grid_at(state, location),
        description: "bench".to_owned(),
        source: IncidentSource::CommandRoom,
    };
    let actor = Actor::Dispatcher("bench".to_owned());
    let id: IncidentId = (state.dispatch)
        .execute(state, None, |d, now, _| d.create_incident(now, spec, actor))
        .await
        .map_err(|e| anyhow::anyhow!("create: {e:?}"))?;
    {
        // The handler answers with the incident view, read under the core's lock.
        let core = state.dispatch.read().await;
        core.incident(&id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let t1 = Instant::now();
    // POST /api/v1/incidents/{id}/dispatch (one click)
    let at = {
        let core = state.dispatch.read().await;
        core.incident(&id)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .spec
            .location
    };
    let candidates: Vec<Candidate> = at.map(|at| near(state, at)).unwrap_or_default();
    let orders: usize = (state.dispatch)
        .execute(state, None, |d, now, _| {
            let out = d.dispatch(now, &id, Actor::Dispatcher("bench".to_owned()), &candidates)?;
            let n = out
                .events
                .iter()
                .filter(|e| matches!(e.change, Change::OrderCreated { .. }))
                .count();
            Ok((n, out))
        })
        .await
        .map_err(|e| anyhow::anyhow!("dispatch: {e:?}"))?;
    {
        let core = state.dispatch.read().await;
        let _queued = core.queue().iter().any(|q| q.incident == id);
    }
    let t2 = Instant::now();
    lat.create.push((t1 - t0).as_secs_f64() * 1e3);
    lat.dispatch.push((t2 - t1).as_secs_f64() * 1e3);
    lat.op.push((t2 - t0).as_secs_f64() * 1e3);
    lat.dispatched += orders;
    Ok(())
}

/// Registers `units` units: a few one by one through provisioning (timed), the rest in bulk.
async fn register_units(state: &AppState, cfg: &StoreConfig, units: usize) -> Result<()> {
    let now = state.clock.now();
    let one_by_one = PROVISIONED_ONE_BY_ONE.min(units);
    let t = Instant::now();
    for i in 0..one_by_one {
        let spec = UnitSpec {
            id: fieldlink_proto::UnitId::new(unit_id(i)).map_err(|e| anyhow::anyhow!("{e}"))?,
            name: String::new(),
            unit_type: TYPES[i % TYPES.len()],
            skills: skills(i),
        };
        add_unit(&state.store, spec, now).await?;
    }
    let per = t.elapsed().as_secs_f64() / one_by_one.max(1) as f64;
    println!(
        "  provisioning one by one (provision::add_unit, 1 tx each): {one_by_one} units in {:.2} s = {:.2} ms/unit → {units} units would take ~{:.0} s",
        t.elapsed().as_secs_f64(),
        per * 1e3,
        per * units as f64
    );
    let t = Instant::now();
    // Same columns and values as `Store::create_unit`; a valid-looking (unusable) secret.
    let salt = "00".repeat(16);
    let hash = "00".repeat(32);
    let now_ms = now.as_millis();
    macro_rules! bulk {
        ($conn:expr, $db:ty) => {{
            let mut tx = $conn.begin().await?;
            let ids: Vec<usize> = (one_by_one..units).collect();
            for chunk in ids.chunks(INSERT_CHUNK) {
                let mut q: QueryBuilder<$db> = QueryBuilder::new(
                    "INSERT INTO units (id, name, unit_type, skills, secret_salt, secret_hash, \
                     disabled, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, &i| {
                    b.push_bind(unit_id(i))
                        .push_bind(unit_id(i))
                        .push_bind(TYPES[i % TYPES.len()].as_str())
                        .push_bind(serde_json::to_string(&skills(i)).unwrap_or_default())
                        .push_bind(salt.clone())
                        .push_bind(hash.clone())
                        .push_bind(false)
                        .push_bind(now_ms)
                        .push_bind(now_ms);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }};
    }
    if cfg.url.starts_with("postgres") {
        let mut options = sqlx::postgres::PgConnectOptions::from_str(&cfg.url)?;
        if let Some(schema) = &cfg.pg_schema {
            options = options.options([("search_path", schema.as_str())]);
        }
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        bulk!(conn, sqlx::Postgres);
        conn.close().await?;
    } else {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&cfg.url)?;
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        bulk!(conn, sqlx::Sqlite);
        conn.close().await?;
    }
    state.credentials.reload().await?;
    println!(
        "  bulk insert of {} units (1 tx) + credentials.reload(): {:.2} s; cache holds {}",
        units - one_by_one,
        t.elapsed().as_secs_f64(),
        state.credentials.units().len()
    );
    Ok(())
}

/// One live position per unit in the tracker, and each unit online in the dispatch core.
async fn make_live(state: &AppState, units: usize) -> Result<()> {
    let t = Instant::now();
    let now = state.clock.now();
    let mut rng = Rng(0x5eed_0001);
    {
        let mut tracker = state.tracker();
        for i in 0..units {
            let (lat, lon) = rng.point();
            tracker.apply_fix(&unit_id(i), Fix::new(now, lat, lon), now);
        }
    }
    println!(
        "  tracker: {units} fixes applied in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let ids: Vec<UnitId> = (0..units).map(|i| UnitId(unit_id(i))).collect();
    (state.dispatch)
        .execute(state, None, |d: &mut Dispatcher, now, src| {
            let mut all = Outcome::default();
            for u in &ids {
                let out = d.responder_presence(now, u, true, src)?;
                all.events.extend(out.events);
                all.effects.extend(out.effects);
                all.timers_set.extend(out.timers_set);
                all.timers_cleared.extend(out.timers_cleared);
            }
            Ok(((), all))
        })
        .await
        .map_err(|e| anyhow::anyhow!("presence: {e:?}"))?;
    println!(
        "  dispatch core: {units} responders online in one command (one commit) in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Where a command's fixed cost goes: the checkpoint (a clone of everything but the responders)
/// and the snapshot (the same, as JSON).
async fn snapshot_cost(state: &AppState) {
    let core = state.dispatch.read().await;
    let t = Instant::now();
    let copy = core.state().without_responders();
    let clone_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(copy);
    let t = Instant::now();
    let value = serde_json::to_value(core.state()).unwrap_or_default();
    let value_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let text = serde_json::to_string(&value).unwrap_or_default();
    let text_ms = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "  per-command fixed cost now: checkpoint {clone_ms:.2} ms, snapshot to JSON value {value_ms:.2} ms, to text {text_ms:.2} ms, {:.3} MB ({} incidents, {} orders; {} responders kept as rows)",
        text.len() as f64 / 1e6,
        core.state().incidents.len(),
        core.state().orders.len(),
        core.state().responders.len()
    );
}

async fn bench_store(
    name: &str,
    store: StoreConfig,
    units: usize,
    ops: usize,
    conc: usize,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse()?;
    config.mqtt.listen = format!("127.0.0.1:{}", free_port()).parse()?;
    config.store.url = store.url.clone();
    config.store.pg_schema = store.pg_schema.clone().unwrap_or_default();
    let hour = 3600;
    config.dispatch.accept_timeout_s = hour;
    config.dispatch.resend_initial_s = hour;
    config.dispatch.resend_max_s = hour;
    config.dispatch.default_targets.response_s = hour;
    config.dispatch.default_targets.arrival_s = 2 * hour;
    config.dispatch.default_targets.reinforcement_s = 3 * hour;
    let store_cfg = StoreConfig {
        url: config.store.effective_url(&config.data_dir),
        pg_schema: store.pg_schema.clone(),
    };
    let clock: SharedClock = Arc::new(SystemClock);
    println!("\n## {name}: setup");
    let server = fieldlink_server::start(config, clock)
        .await
        .context("starting the server")?;
    let state = server.state().clone();
    register_units(&state, &store_cfg, units).await?;
    make_live(&state, units).await?;
    snapshot_cost(&state).await;

    let mut results: Vec<(String, Lat, f64)> = Vec::new();
    // Sequential.
    let mut lat = Lat::default();
    let t = Instant::now();
    for i in 0..ops {
        one_operation(&state, 0x1000 + i as u64, &mut lat).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    results.push(("sequential".to_owned(), lat, secs));
    snapshot_cost(&state).await;

    // Concurrent callers, as many operations in all.
    if conc > 0 {
        let per = ops.div_ceil(conc);
        let t = Instant::now();
        let mut handles = Vec::new();
        for c in 0..conc {
            let state = state.clone();
            handles.push(tokio::spawn(async move {
                let mut lat = Lat::default();
                for i in 0..per {
                    let seed = 0x10_0000 + (c * per + i) as u64;
                    one_operation(&state, seed, &mut lat).await?;
                }
                anyhow::Ok(lat)
            }));
        }
        let mut all = Lat::default();
        let mut parts = Vec::new();
        for h in handles {
            parts.push(h.await??);
        }
        let secs = t.elapsed().as_secs_f64();
        // Interleave by operation index so "first/last 10%" means early/late in the run.
        for i in 0..per {
            for p in &parts {
                if let (Some(o), Some(c), Some(d)) =
                    (p.op.get(i), p.create.get(i), p.dispatch.get(i))
                {
                    all.op.push(*o);
                    all.create.push(*c);
                    all.dispatch.push(*d);
                }
            }
        }
        all.dispatched = parts.iter().map(|p| p.dispatched).sum();
        results.push((format!("{conc} concurrent"), all, secs));
        snapshot_cost(&state).await;
    }

    println!("\n## {name}: results ({units} live units; latency in ms)\n");
    println!(
        "| store    | variant      | slice           |   ops | orders |   ops/s |  p50 ms  |  p99 ms  |  max ms  |"
    );
    println!(
        "|----------|--------------|-----------------|-------|--------|---------|----------|----------|----------|"
    );
    for (variant, lat, secs) in &results {
        let n = lat.op.len();
        let tenth = (n / 10).max(1);
        let ops_s = Some(n as f64 / secs);
        row(
            name,
            variant,
            "create+dispatch",
            &lat.op,
            ops_s,
            Some(lat.dispatched),
        );
        row(name, variant, "  create", &lat.create, None, None);
        row(name, variant, "  dispatch", &lat.dispatch, None, None);
        row(
            name,
            variant,
            "  first 10%",
            &lat.op[..tenth.min(n)],
            None,
            None,
        );
        let last = &lat.op[n.saturating_sub(tenth)..];
        row(name, variant, "  last 10%", last, None, None);
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nloadavg after {name}: {}", loadavg.trim());
    server.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let units = env_usize("FIELDLINK_BENCH_UNITS", 100_000);
    let ops = env_usize("FIELDLINK_BENCH_OPS", 2_000);
    let conc = env_usize("FIELDLINK_BENCH_CONCURRENCY", 8);
    let stores =
        std::env::var("FIELDLINK_BENCH_STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "fieldlink dispatch bench: {units} units, {ops} operations (create incident + one-click dispatch), concurrency {conc}; cpus {}; loadavg before: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg.trim()
    );
    for s in stores.split(',').map(str::trim) {
        match s {
            "sqlite" => {
                // The data dir's default store: sqlite://<dir>/fieldlink.db (WAL, synchronous=FULL).
                let cfg = StoreConfig {
                    url: String::new(),
                    pg_schema: None,
                };
                bench_store("sqlite", cfg, units, ops, conc).await?;
            }
            "postgres" => {
                let Some(cfg) =
                    fieldlink_store::testing::postgres_config_or_skip("bench_dispatch").await
                else {
                    println!(
                        "\n## postgres: SKIPPED (not reachable; see the line above on stderr)"
                    );
                    continue;
                };
                let result = bench_store("postgres", cfg.clone(), units, ops, conc).await;
                fieldlink_store::testing::drop_schema(&cfg).await;
                result?;
            }
            other => println!("unknown store {other:?} in FIELDLINK_BENCH_STORES; skipped"),
        }
    }
    Ok(())
}

//! Issue 7's load benchmark: how many simulated units at 1 Hz one machine carries, fieldlink
//! against two bare brokers under the same load, and whether memory stays flat over a soak.
//!
//! Run: `cargo bench -p fieldlink-server --bench load`. Knobs (environment):
//! `FIELDLINK_LOAD_STEPS` (units per step, default `1000,5000,10000,15000`),
//! `FIELDLINK_LOAD_SETTLE_S` (after a step's fleet has connected, default 10),
//! `FIELDLINK_LOAD_SECONDS` (measurement window per step, default 30),
//! `FIELDLINK_LOAD_CLICKS` (one-click dispatches per step, default 30),
//! `FIELDLINK_LOAD_TARGETS` (comma list, default all four:
//! `fieldlink-embedded,fieldlink-mosquitto,bare-mosquitto,bare-embedded`),
//! `FIELDLINK_LOAD_SOAK_MIN` (soak minutes on fieldlink-embedded, default 10, 0 skips; decimals
//! allowed), `FIELDLINK_LOAD_SOAK_UNITS` (default 10000), `FIELDLINK_LOAD_SOAK_SAMPLE_S` (RSS
//! sample interval, default 30), `FIELDLINK_LOAD_FLEET_MAX` (units per fleet process, default
//! 5000), `FIELDLINK_LOAD_CONNECT_S` (time a fleet process spends connecting before it leaves
//! the rest of its units out, default 180), `FIELDLINK_LOAD_PERF_DIR` (when set, `perf record` the fieldlink targets for
//! `FIELDLINK_LOAD_PERF_S` seconds, default 20, after the last step's window; the data files
//! land there), `FIELDLINK_LOAD_HEAPTRACK` (a directory: when set, every target process runs
//! under `heaptrack -o <dir>/<target>[-soak]`, for what stays allocated over a soak; the
//! orchestrator waits for heaptrack to write its file; `heaptrack_print` reads it).
//!
//! ## Processes
//!
//! All of them are this binary, the role chosen by `FIELDLINK_LOAD_BENCH_ROLE`:
//!
//! - **orchestrator** (no role): writes the units' ids and secrets to a temp dir, runs one
//!   **target** process per target, one after the other, collects what each prints and prints
//!   the tables. Each target gets a fresh process so that no thread, socket or heap of an earlier
//!   target (rumqttd has no clean stop) is in a later one's CPU or RSS.
//! - **target**: the system under test, then the ramp. Its own `/proc/self/stat` utime + stime
//!   over the window is "CPU" (100% = one core) and its VmRSS at the window's end is "RSS".
//!   - `fieldlink-embedded`: fieldlink in-process (`fieldlink_server::start`), embedded broker,
//!     SQLite in a temp dir, every background task running; the units registered in bulk with
//!     real salted secret hashes (as `benches/push.rs`), so every CONNECT is authenticated.
//!   - `fieldlink-mosquitto`: the same fieldlink with `mqtt.url` pointing at a **private
//!     Mosquitto** (`mosquitto -c` on a free port, `allow_anonymous true`, `max_connections -1`,
//!     no persistence) that this process starts; the fleet connects to Mosquitto. Mosquitto's
//!     own CPU and RSS are in their own columns.
//!   - `bare-mosquitto` (baseline a): a private Mosquitto as above and one plain rumqttc
//!     subscriber on `fl/#` (QoS 0) in the target process that only counts GPS messages and
//!     records publish → receive latency. CPU = the subscriber process plus Mosquitto.
//!   - `bare-embedded` (baseline b): fieldlink's embedded broker alone, started by
//!     `fieldlink_ingest::EmbeddedBroker::start` exactly as the server starts it (same limits,
//!     its in-process link thread and uplink queue), an authenticator that lets everyone in,
//!     and one task draining the uplink queue that only counts and records latency: no decode
//!     pipeline, no location core, no store, no dispatch.
//!
//!   Baselines authenticate nobody (the fleet sends its credentials; they are not checked).
//! - **fleet** (children of a target): `fieldlink_sim::Fleet` with at most
//!   `FIELDLINK_LOAD_FLEET_MAX` units each (a process may hold 20,000 descriptors here), one
//!   fix per second per unit at QoS 0, seeded routes over Shangcheng. A step adds fleet processes
//!   until the step's unit count is connected; the earlier ones keep running.
//!
//! ## What each step measures (window of `FIELDLINK_LOAD_SECONDS` after settling)
//!
//! - **fixes/s**: fieldlink: `fieldlink_fixes_total{outcome="accepted"}` delta / window (the fix
//!   became its unit's latest position). Baselines: GPS messages received / window. "sent/s" is
//!   what the fleet processes handed to their sockets (`FleetStats::fixes_sent`).
//! - **fix→index p50/p99**: fieldlink: from the new histogram
//!   `fieldlink_fix_index_latency_seconds` (server clock when the fix lands in the location
//!   index − the fix time the handset stamped just before publishing; same host, same clock), the
//!   window's bucket deltas, linear interpolation inside a bucket as Prometheus'
//!   `histogram_quantile` does; the buckets grow by 1.5×, so a figure is good to that bucket's
//!   width. Baselines: exact per message at 1 ms resolution (receive wall time − the fix time in
//!   the payload).
//! - **click p50/p99**: fieldlink only. Two extra real handsets (rumqttc through
//!   `fieldlink_sim::Handset`, in the target process) registered as units and placed about 20 km
//!   north-east of the fleet's district; during the window, `FIELDLINK_LOAD_CLICKS` times: an
//!   incident next to one of them (`POST /api/v1/incidents`, dispatcher token), then the clock
//!   starts, `POST /api/v1/incidents/{id}/dispatch` (one click) is sent, and it stops when that
//!   handset's MQTT client receives the `WorkOrder`; then the order is cancelled and the incident
//!   closed so the handset is free again.
//! - **CPU %** and **RSS**: see the target role above; "fleet CPU %" is all fleet processes
//!   together (they share the same two cores, which is the point: see docs/benchmarks.md).
//!
//! Then the **soak**: a fresh fieldlink-embedded target process (not the ramp's, whose top step
//! may have overloaded it), a fleet of `FIELDLINK_LOAD_SOAK_UNITS` units, settle, then RSS, fixes
//! accepted and CPU sampled every `FIELDLINK_LOAD_SOAK_SAMPLE_S`.
//!
//! Measured figures, the soak curve and the profile of the top step: `docs/benchmarks.md`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use fieldlink_clock::{SharedClock, SystemClock};
use fieldlink_ingest::{
    Authenticator, Downlink, EmbeddedBroker, EmbeddedBrokerConfig, IngestMetrics, SourceWorker,
};
use fieldlink_proto::{Topics, UnitId, v1};
use fieldlink_server::Config;
use fieldlink_server::config::MqttConfig;
use fieldlink_server::provision::add_token;
use fieldlink_server::state::AppState;
use fieldlink_sim::{Fleet, FleetConfig, Handset, HandsetConfig};
use fieldlink_store::{Role, UnitType};
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_util::sync::CancellationToken;

use common::{
    accepted, cpu_secs, env_string, env_usize, free_port, loadavg, mib, register_units, rss_bytes,
    wall_ms,
};

const ROLE_ENV: &str = "FIELDLINK_LOAD_BENCH_ROLE";
const TARGET_ENV: &str = "FIELDLINK_LOAD_BENCH_TARGET";
const DIR_ENV: &str = "FIELDLINK_LOAD_BENCH_DIR";
const BROKER_ENV: &str = "FIELDLINK_LOAD_BENCH_BROKER";
const FROM_ENV: &str = "FIELDLINK_LOAD_BENCH_FROM";
const COUNT_ENV: &str = "FIELDLINK_LOAD_BENCH_COUNT";
const SOAK_ONLY_ENV: &str = "FIELDLINK_LOAD_BENCH_SOAK_ONLY";
/// When set (a directory), each target process runs under `heaptrack` (see the module doc).
const HEAPTRACK_ENV: &str = "FIELDLINK_LOAD_HEAPTRACK";

const TARGETS: [&str; 4] = [
    "fieldlink-embedded",
    "fieldlink-mosquitto",
    "bare-mosquitto",
    "bare-embedded",
];
/// Latency histogram range of the baselines, ms (1 ms buckets; the last holds everything above).
const HIST_MS: usize = 120_000;
/// Where the click handsets stand: about 20 km north-east of Shangcheng, 5 km apart, so that
/// they are the nearest responders to an incident next to them whatever the fleet does.
const PROBES: [(f64, f64); 2] = [(30.42, 120.36), (30.42, 120.41)];
/// Longest one click round (create, dispatch, work order received, cancel, close) may take.
const CLICK_TIMEOUT: Duration = Duration::from_secs(10);
/// The histogram fieldlink's fix→index latency is read from.
const LATENCY_METRIC: &str = "fieldlink_fix_index_latency_seconds_bucket";

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn steps() -> Vec<usize> {
    std::env::var("FIELDLINK_LOAD_STEPS")
        .unwrap_or_else(|_| "1000,5000,10000,15000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect()
}

fn soak_units() -> usize {
    env_usize("FIELDLINK_LOAD_SOAK_UNITS", 10_000)
}

fn soak_minutes() -> f64 {
    env_f64("FIELDLINK_LOAD_SOAK_MIN", 10.0)
}

fn unit_id(i: usize) -> String {
    format!("load-{i:06}")
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("fleet") => rt.block_on(fleet_role()),
        Ok("target") => rt.block_on(target_role()),
        _ => rt.block_on(orchestrator()),
    }
}

// ---------------------------------------------------------------------------------------------
// child processes
// ---------------------------------------------------------------------------------------------

fn spawn_role(role: &str, envs: &[(&str, String)]) -> Result<Child> {
    let exe = std::env::current_exe().context("this binary's path")?;
    // Heap profiling of the target only (the orchestrator and fleets stay untraced): heaptrack
    // runs it as its child and writes `<dir>/<target>[-soak].zst` when it exits.
    let heaptrack = std::env::var(HEAPTRACK_ENV)
        .ok()
        .filter(|_| role == "target");
    let mut cmd = match &heaptrack {
        Some(dir) => {
            let name = envs
                .iter()
                .find(|(k, _)| *k == TARGET_ENV)
                .map_or("target", |(_, v)| v);
            let soak = envs.iter().any(|(k, _)| *k == SOAK_ONLY_ENV);
            let out = Path::new(dir).join(format!("{name}{}", if soak { "-soak" } else { "" }));
            let mut cmd = tokio::process::Command::new("heaptrack");
            cmd.arg("-o").arg(out).arg(exe);
            cmd
        }
        None => tokio::process::Command::new(exe),
    };
    cmd.env(ROLE_ENV, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn()
        .with_context(|| format!("spawning a {role} process"))
}

/// A child process with its stdin (commands; EOF tells it to exit) and stdout (one-line answers).
struct Worker {
    name: String,
    child: Child,
    pid: String,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn new(name: String, mut child: Child) -> Result<Worker> {
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
        let name = self.name.clone();
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
        cpu_secs(&self.pid).unwrap_or(0.0)
    }

    fn rss(&self) -> u64 {
        rss_bytes(&self.pid).unwrap_or(0)
    }

    async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// orchestrator
// ---------------------------------------------------------------------------------------------

async fn orchestrator() -> Result<()> {
    let steps = steps();
    let max_units = steps
        .iter()
        .copied()
        .chain([if soak_minutes() > 0.0 {
            soak_units()
        } else {
            0
        }])
        .max()
        .unwrap_or(0);
    let targets: Vec<String> = std::env::var("FIELDLINK_LOAD_TARGETS")
        .unwrap_or_else(|_| TARGETS.join(","))
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    for t in &targets {
        if !TARGETS.contains(&t.as_str()) {
            bail!("unknown target {t:?}: one of {TARGETS:?}");
        }
    }
    let load_before = loadavg();
    let started = chrono_like_now();
    println!(
        "fieldlink load bench, {started}: steps {steps:?} units at 1 fix/s (QoS 0); settle {} s, window {} s, {} one-click dispatches per step; targets {targets:?}; soak {} min at {} units; ≤ {} units per fleet process; cpus {}; loadavg before: {load_before}",
        env_usize("FIELDLINK_LOAD_SETTLE_S", 10),
        env_usize("FIELDLINK_LOAD_SECONDS", 30),
        env_usize("FIELDLINK_LOAD_CLICKS", 30),
        soak_minutes(),
        soak_units(),
        env_usize("FIELDLINK_LOAD_FLEET_MAX", 5000),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let dir = tempfile::tempdir()?;
    let tag = rand::random::<u64>();
    let mut text = String::with_capacity(max_units * 40);
    for i in 0..max_units {
        text.push_str(&format!("{} secret-{i:06}-{tag:016x}\n", unit_id(i)));
    }
    std::fs::write(dir.path().join("units.txt"), text)?;

    let mut results: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut soak: Option<Value> = None;
    let mut failures = Vec::new();
    // The soak runs last, in a fresh fieldlink-embedded process of its own: not after the
    // ramp's top step, whose overload would still be in its heap and its database.
    let mut jobs: Vec<(String, bool)> = targets.iter().map(|t| (t.clone(), false)).collect();
    if soak_minutes() > 0.0 {
        jobs.push(("fieldlink-embedded".to_owned(), true));
    }
    for (target, soak_only) in &jobs {
        eprintln!(
            "\n== target {target}{}",
            if *soak_only { " (soak)" } else { "" }
        );
        let t = Instant::now();
        let mut envs = vec![
            (TARGET_ENV, target.clone()),
            (DIR_ENV, dir.path().display().to_string()),
        ];
        if *soak_only {
            envs.push((SOAK_ONLY_ENV, "1".to_owned()));
        }
        let child = spawn_role("target", &envs)?;
        let mut w = Worker::new(format!("target {target}"), child)?;
        loop {
            match w.stdout.next_line().await {
                Ok(Some(l)) => {
                    if let Some(j) = l.strip_prefix("step ") {
                        let v: Value = serde_json::from_str(j)?;
                        eprintln!("  {target}: {v}");
                        results.entry(target.clone()).or_default().push(v);
                    } else if let Some(j) = l.strip_prefix("soak ") {
                        soak = Some(serde_json::from_str(j)?);
                    } else if let Some(e) = l.strip_prefix("failed ") {
                        eprintln!("  {target} FAILED: {e}");
                        failures.push(format!("{target}: {e}"));
                    } else if l == "done" {
                        if std::env::var_os(HEAPTRACK_ENV).is_some() {
                            // heaptrack writes its file after the target exits: let it finish.
                            let _ = tokio::time::timeout(Duration::from_secs(600), w.child.wait())
                                .await;
                        }
                        break;
                    }
                }
                Ok(None) => {
                    failures.push(format!("{target}: exited early"));
                    break;
                }
                Err(e) => {
                    failures.push(format!("{target}: {e}"));
                    break;
                }
            }
        }
        w.kill().await;
        eprintln!("== target {target}: {:.0} s", t.elapsed().as_secs_f64());
    }
    print_tables(&steps, &results, soak.as_ref());
    for f in &failures {
        println!("FAILED: {f}");
    }
    println!(
        "\nloadavg before: {load_before}; after: {}. The machine is shared: other processes' CPU is in none of these columns but competes for the same cores.",
        loadavg()
    );
    Ok(())
}

/// UTC now as `YYYY-MM-DD HH:MM` (no date crate in this package).
fn chrono_like_now() -> String {
    let secs = wall_ms() / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn step_of(results: &BTreeMap<String, Vec<Value>>, target: &str, units: usize) -> Option<Value> {
    results
        .get(target)?
        .iter()
        .find(|v| v["units"].as_u64() == Some(units as u64))
        .cloned()
}

fn opt(v: f64, prec: usize) -> String {
    if v.is_nan() {
        "–".to_owned()
    } else {
        format!("{v:.prec$}")
    }
}

fn print_tables(steps: &[usize], results: &BTreeMap<String, Vec<Value>>, soak: Option<&Value>) {
    if !results.is_empty() {
        print_load(steps, results);
    }
    if let Some(s) = soak {
        print_soak(s);
    }
}

fn print_load(steps: &[usize], results: &BTreeMap<String, Vec<Value>>) {
    println!("\n## load table\n");
    println!(
        "| target | units | connected | sent/s | fixes/s | fix→index p50 ms | p99 ms | click p50 ms | click p99 ms | clicks ok/planned | server CPU % | server RSS MiB | broker CPU % | broker RSS MiB | fleet CPU % | load1 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for target in TARGETS {
        for &n in steps {
            let Some(v) = step_of(results, target, n) else {
                continue;
            };
            let clicks = if v["clicks"].is_null() {
                "–".to_owned()
            } else {
                format!(
                    "{}/{}",
                    v["clicks"]["ok"].as_u64().unwrap_or(0),
                    v["clicks"]["planned"].as_u64().unwrap_or(0)
                )
            };
            println!(
                "| {target} | {n} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {clicks} | {:.0} | {:.0} | {} | {} | {:.0} | {} |",
                v["connected"],
                f(&v, "sent_per_s"),
                f(&v, "fixes_per_s"),
                opt(f(&v, "lat_p50_ms"), 1),
                opt(f(&v, "lat_p99_ms"), 1),
                opt(v["clicks"]["p50_ms"].as_f64().unwrap_or(f64::NAN), 1),
                opt(v["clicks"]["p99_ms"].as_f64().unwrap_or(f64::NAN), 1),
                f(&v, "cpu_pct"),
                f(&v, "rss_mib"),
                opt(f(&v, "broker_cpu_pct"), 0),
                opt(f(&v, "broker_rss_mib"), 0),
                f(&v, "fleet_cpu_pct"),
                v["loadavg"]
                    .as_str()
                    .and_then(|l| l.split_whitespace().next())
                    .unwrap_or("?"),
            );
        }
    }
    println!(
        "\n## ratios: fieldlink fixes/s ÷ baseline messages/s (and server-side CPU: fieldlink process + its Mosquitto if any ÷ baseline process + its Mosquitto if any)\n"
    );
    println!(
        "| units | embedded ÷ bare-embedded | embedded ÷ bare-mosquitto | mosquitto ÷ bare-mosquitto | mosquitto ÷ bare-embedded | CPU embedded ÷ bare-embedded | CPU mosquitto ÷ bare-mosquitto |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let total_cpu = |v: &Value| {
        f(v, "cpu_pct")
            + if f(v, "broker_cpu_pct").is_nan() {
                0.0
            } else {
                f(v, "broker_cpu_pct")
            }
    };
    for &n in steps {
        let get = |t: &str| step_of(results, t, n);
        let (fe, fm, be, bm) = (
            get("fieldlink-embedded"),
            get("fieldlink-mosquitto"),
            get("bare-embedded"),
            get("bare-mosquitto"),
        );
        let ratio = |a: &Option<Value>, b: &Option<Value>, key: &dyn Fn(&Value) -> f64| match (a, b)
        {
            (Some(a), Some(b)) => format!("{:.3}", key(a) / key(b)),
            _ => "–".to_owned(),
        };
        let rate = |v: &Value| f(v, "fixes_per_s");
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} |",
            ratio(&fe, &be, &rate),
            ratio(&fe, &bm, &rate),
            ratio(&fm, &bm, &rate),
            ratio(&fm, &be, &rate),
            ratio(&fe, &be, &total_cpu),
            ratio(&fm, &bm, &total_cpu),
        );
    }
    for target in TARGETS {
        let Some(vs) = results.get(target) else {
            continue;
        };
        let notes: Vec<String> = vs
            .iter()
            .filter_map(|v| {
                v["notes"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!("{}: {s}", v["units"]))
            })
            .collect();
        if !notes.is_empty() {
            println!("\nnotes {target}: {}", notes.join("; "));
        }
    }
}

fn print_soak(s: &Value) {
    println!(
        "\n## soak: fieldlink-embedded, {} units, {:.1} min\n",
        s["units"],
        f(s, "minutes")
    );
    println!("| minute | RSS MiB | fixes/s (since last sample) | CPU % (since last sample) |");
    println!("|---:|---:|---:|---:|");
    let samples = s["samples"].as_array().cloned().unwrap_or_default();
    for p in &samples {
        println!(
            "| {:.1} | {:.1} | {} | {} |",
            f(p, "minute"),
            f(p, "rss_mib"),
            opt(f(p, "fixes_per_s"), 0),
            opt(f(p, "cpu_pct"), 0)
        );
    }
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .map(|p| (f(p, "minute"), f(p, "rss_mib")))
        .collect();
    if rss.len() >= 2 {
        let n = rss.len() as f64;
        let (mx, my) = (
            rss.iter().map(|p| p.0).sum::<f64>() / n,
            rss.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxy: f64 = rss.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = rss.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let max = rss.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        println!(
            "\nRSS first {:.1} MiB, last {:.1} MiB, max {:.1} MiB; least-squares slope {:.2} MiB/min; fixes accepted over the soak {:.0}/s",
            rss[0].1,
            rss[rss.len() - 1].1,
            max,
            if sxx > 0.0 { sxy / sxx } else { 0.0 },
            f(s, "fixes_per_s")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// target role
// ---------------------------------------------------------------------------------------------

/// What is running for the target.
enum System {
    Fieldlink {
        server: fieldlink_server::Server,
        state: AppState,
        token: String,
        http: String,
        probes: Vec<Handset>,
    },
    Bare {
        counter: Arc<Counter>,
        _cancel: CancellationToken,
        /// The embedded broker and what its `Source` holds besides the uplink, kept alive.
        _keep: Option<(EmbeddedBroker, Downlink, SourceWorker)>,
    },
}

/// The baselines' message count and latency histogram.
struct Counter {
    gps: AtomicU64,
    hist: Vec<AtomicU64>,
}

impl Counter {
    fn new() -> Counter {
        Counter {
            gps: AtomicU64::new(0),
            hist: (0..=HIST_MS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn on_message(&self, topic: &str, payload: &[u8]) {
        if !topic.ends_with("/gps") {
            return;
        }
        let now = wall_ms();
        self.gps.fetch_add(1, Ordering::Relaxed);
        if let Ok(report) = v1::GpsReport::decode(payload)
            && let Some(fix) = report.fixes.first()
        {
            let ms = (now - fix.fix_time_ms).clamp(0, HIST_MS as i64) as usize;
            self.hist[ms].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> Vec<u64> {
        self.hist
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

/// p-quantile of a 1 ms histogram delta, ms.
fn hist_quantile(delta: &[u64], p: f64) -> f64 {
    let total: u64 = delta.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = ((total as f64 * p).ceil() as u64).max(1);
    let mut seen = 0;
    for (ms, c) in delta.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return ms as f64;
        }
    }
    HIST_MS as f64
}

/// `(upper bound s, cumulative count)` of fieldlink's fix→index histogram, from the registry.
fn fieldlink_buckets(state: &AppState) -> Vec<(f64, u64)> {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return Vec::new();
    }
    text.lines()
        .filter(|l| l.starts_with(LATENCY_METRIC))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let n: u64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, n))
        })
        .collect()
}

/// A metric's value from the registry's text form (first line starting with `name`), or 0.
fn metric(state: &AppState, name: &str) -> f64 {
    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut text, &state.registry);
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every line of the registry's text form starting with `prefix`.
fn metric_sum(state: &AppState, prefix: &str) -> f64 {
    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut text, &state.registry);
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// p-quantile, ms, of cumulative-bucket deltas, interpolated linearly inside the bucket
/// (Prometheus' `histogram_quantile`); in the `+Inf` bucket, the last finite bound.
fn bucket_quantile(before: &[(f64, u64)], after: &[(f64, u64)], p: f64) -> f64 {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|&(le, n)| {
            let b = before.iter().find(|(l, _)| *l == le).map_or(0, |(_, c)| *c);
            (le, n.saturating_sub(b))
        })
        .collect();
    let total = delta.last().map_or(0, |d| d.1);
    if total == 0 {
        return f64::NAN;
    }
    let rank = total as f64 * p;
    let mut prev = (0.0, 0u64);
    for &(le, cum) in &delta {
        if cum as f64 >= rank {
            if le.is_infinite() {
                return prev.0 * 1e3;
            }
            let inside = (cum - prev.1) as f64;
            let frac = if inside > 0.0 {
                (rank - prev.1 as f64) / inside
            } else {
                1.0
            };
            return (prev.0 + (le - prev.0) * frac) * 1e3;
        }
        prev = (le, cum);
    }
    f64::NAN
}

/// A private Mosquitto on a free port.
struct Mosquitto {
    child: Child,
    pid: String,
    port: u16,
}

impl Mosquitto {
    async fn start(dir: &Path) -> Result<Mosquitto> {
        let port = free_port();
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nconnection_messages false\n"
            ),
        )?;
        let child = tokio::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting mosquitto (is it installed?)")?;
        let pid = child
            .id()
            .map(|p| p.to_string())
            .ok_or_else(|| anyhow!("mosquitto exited at once"))?;
        let t = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if t.elapsed() > Duration::from_secs(10) {
                bail!("mosquitto did not listen on {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Mosquitto { child, pid, port })
    }
}

struct AllowAll;

/// The baselines send no downlinks, so they need no seal keys.
fn no_keys() -> Arc<dyn fieldlink_ingest::UnitDirectory + Send + Sync> {
    Arc::new(std::collections::HashSet::<fieldlink_proto::UnitId>::new())
}

impl Authenticator for AllowAll {
    fn authenticate(&self, _: &str, _: &str, _: &str) -> bool {
        true
    }
}

async fn target_role() -> Result<()> {
    let target = env_string(TARGET_ENV)?;
    let dir = PathBuf::from(env_string(DIR_ENV)?);
    match run_target(&target, &dir).await {
        Ok(()) => {}
        Err(e) => println!("failed {e:#}"),
    }
    println!("done");
    // rumqttd's threads have no clean stop: end the process.
    std::process::exit(0)
}

fn read_units(dir: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(dir.join("units.txt"))?;
    text.lines()
        .map(|l| {
            l.split_once(' ')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .context("a units file line")
        })
        .collect()
}

async fn run_target(target: &str, dir: &Path) -> Result<()> {
    let mqtt_defaults = MqttConfig::default();
    let topics = mqtt_defaults.topics()?;
    let units = read_units(dir)?;
    let work = tempfile::tempdir_in(dir)?;
    let mosquitto = if target.ends_with("mosquitto") {
        Some(Mosquitto::start(work.path()).await?)
    } else {
        None
    };
    let (system, broker) = match target {
        "fieldlink-embedded" | "fieldlink-mosquitto" => {
            let mut config = Config {
                data_dir: work.path().to_path_buf(),
                ..Config::default()
            };
            config.http.listen = "127.0.0.1:0".parse()?;
            let broker = match &mosquitto {
                Some(m) => {
                    config.mqtt.url = format!("mqtt://127.0.0.1:{}", m.port);
                    format!("127.0.0.1:{}", m.port)
                }
                None => {
                    let port = free_port();
                    config.mqtt.listen = format!("127.0.0.1:{port}").parse()?;
                    format!("127.0.0.1:{port}")
                }
            };
            config.mqtt.max_connections = config.mqtt.max_connections.max(units.len() + 100);
            let url = config.store.effective_url(&config.data_dir);
            let clock: SharedClock = Arc::new(SystemClock);
            let server = fieldlink_server::start(config, clock)
                .await
                .context("starting the server")?;
            let state = server.state().clone();
            let t = Instant::now();
            register_units(&state, &url, &units).await?;
            eprintln!(
                "  {target}: {} units registered (bulk INSERT, salted hashes) in {:.1} s",
                units.len(),
                t.elapsed().as_secs_f64()
            );
            let probes = probe_units(&state).await?;
            let token = add_token(
                &state.store,
                "load bench",
                Role::Dispatcher,
                state.clock.now(),
            )
            .await?
            .secret;
            state.credentials.reload().await?;
            if mosquitto.is_some() {
                // fieldlink's client must be subscribed before anything is published.
                let t = Instant::now();
                while !state.downlink.is_connected() && t.elapsed() < Duration::from_secs(10) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let mut handsets = Vec::new();
            for (unit, secret) in probes {
                let mut cfg = HandsetConfig::new(&broker, unit, secret, topics.clone());
                cfg.sealed = sealed_target();
                let h = Handset::connect(cfg)
                    .await
                    .map_err(|e| anyhow!("a click handset cannot connect: {e}"))?;
                handsets.push(h);
            }
            let http = server.http_addr().to_string();
            (
                System::Fieldlink {
                    server,
                    state,
                    token,
                    http,
                    probes: handsets,
                },
                broker,
            )
        }
        "bare-mosquitto" => {
            let port = mosquitto.as_ref().map(|m| m.port).context("mosquitto")?;
            let counter = Arc::new(Counter::new());
            let cancel = CancellationToken::new();
            subscribe_plain(port, counter.clone(), cancel.clone()).await?;
            (
                System::Bare {
                    counter,
                    _cancel: cancel,
                    _keep: None,
                },
                format!("127.0.0.1:{port}"),
            )
        }
        "bare-embedded" => {
            let port = free_port();
            let cfg = EmbeddedBrokerConfig {
                listen: format!("127.0.0.1:{port}").parse()?,
                max_connections: mqtt_defaults.max_connections.max(units.len() + 100),
                // As the server sets it (`app.rs`, BROKER_PAYLOAD_HEADROOM = 4).
                max_payload_bytes: mqtt_defaults.max_payload_bytes * 4,
                uplink_queue: mqtt_defaults.uplink_queue,
                ..EmbeddedBrokerConfig::default()
            };
            let mut registry = prometheus_client::registry::Registry::default();
            let metrics = IngestMetrics::register(&mut registry);
            let cancel = CancellationToken::new();
            let (broker, source) = EmbeddedBroker::start(
                &cfg,
                Arc::new(AllowAll),
                no_keys(),
                &topics,
                &metrics,
                cancel.clone(),
            )?;
            let counter = Arc::new(Counter::new());
            let mut uplink = source.uplink;
            let keep = (broker, source.downlink, source.worker);
            {
                let counter = counter.clone();
                tokio::spawn(async move {
                    while let Some(m) = uplink.recv().await {
                        counter.on_message(&m.topic, &m.payload);
                    }
                });
            }
            // rumqttd binds on its own thread a moment later.
            let t = Instant::now();
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                if t.elapsed() > Duration::from_secs(10) {
                    bail!("the embedded broker did not listen on {port}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (
                System::Bare {
                    counter,
                    _cancel: cancel,
                    _keep: Some(keep),
                },
                format!("127.0.0.1:{port}"),
            )
        }
        other => bail!("unknown target {other}"),
    };
    let mut system = system;
    let result = ramp(target, dir, &broker, &mut system, mosquitto.as_ref()).await;
    if let System::Fieldlink { server, .. } = system {
        server.shutdown(Duration::from_secs(5)).await;
    }
    if let Some(mut m) = mosquitto {
        let _ = m.child.start_kill();
    }
    result
}

/// The click handsets' ids and secrets, registered through `provision::add_unit`.
async fn probe_units(state: &AppState) -> Result<Vec<(UnitId, String)>> {
    use fieldlink_server::provision::{UnitSpec, add_unit};
    let mut handsets = Vec::new();
    for i in 0..PROBES.len() {
        let name = format!("click-{i}");
        let spec = UnitSpec {
            id: UnitId::new(name.clone())?,
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

/// One plain rumqttc subscriber on `fl/#` that counts.
async fn subscribe_plain(
    port: u16,
    counter: Arc<Counter>,
    cancel: CancellationToken,
) -> Result<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut options = MqttOptions::new("load-bench-subscriber", "127.0.0.1", port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    client.subscribe("fl/#", QoS::AtMostOnce).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let _client = client;
        loop {
            let ev = tokio::select! {
                () = cancel.cancelled() => break,
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => counter.on_message(&p.topic, &p.payload),
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("  subscriber: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .map_err(|_| anyhow!("no SUBACK from mosquitto within 10 s"))??;
    Ok(())
}

/// The fleet processes of a target.
struct Fleets {
    workers: Vec<(usize, Worker)>,
    next_unit: usize,
}

impl Fleets {
    fn units(&self) -> usize {
        self.workers.iter().map(|(n, _)| n).sum()
    }

    fn cpu(&self) -> f64 {
        self.workers.iter().map(|(_, w)| w.cpu()).sum()
    }

    /// Starts fleet processes until `target` units run; the new units are the next ids.
    async fn grow_to(&mut self, target: usize, dir: &Path, broker: &str) -> Result<()> {
        let max = env_usize("FIELDLINK_LOAD_FLEET_MAX", 5000).max(1);
        let t = Instant::now();
        let mut started = Vec::new();
        while self.units() + started.iter().map(|(n, _)| n).sum::<usize>() < target {
            let have = self.units() + started.iter().map(|(n, _)| n).sum::<usize>();
            let n = (target - have).min(max);
            let name = format!("fleet {}..{}", self.next_unit, self.next_unit + n);
            let child = spawn_role(
                "fleet",
                &[
                    (DIR_ENV, dir.display().to_string()),
                    (BROKER_ENV, broker.to_owned()),
                    (FROM_ENV, self.next_unit.to_string()),
                    (COUNT_ENV, n.to_string()),
                ],
            )?;
            self.next_unit += n;
            started.push((n, Worker::new(name, child)?));
        }
        // Connect in parallel: every process connects its units 64 at a time.
        for (n, w) in &mut started {
            let line = w.line("connected", Duration::from_secs(900)).await?;
            eprintln!("  {}: {line} ({n} units)", w.name);
        }
        if !started.is_empty() {
            eprintln!(
                "  fleet at {target} units ({:.1} s to connect the new ones)",
                t.elapsed().as_secs_f64()
            );
        }
        self.workers.extend(started);
        Ok(())
    }

    /// Fixes the fleet processes have sent so far, and handsets connected now.
    async fn sent(&mut self) -> (u64, u64) {
        let (mut sent, mut connected) = (0, 0);
        for (_, w) in &mut self.workers {
            if w.send("stats").await.is_ok()
                && let Ok(l) = w.line("stats", Duration::from_secs(10)).await
            {
                let mut it = l
                    .split_whitespace()
                    .skip(1)
                    .map(|v| v.parse::<u64>().unwrap_or(0));
                sent += it.next().unwrap_or(0);
                connected += it.next().unwrap_or(0);
            }
        }
        (sent, connected)
    }

    async fn kill_all(&mut self) {
        for (_, w) in self.workers.drain(..) {
            w.kill().await;
        }
    }
}

/// A system's counters at one instant.
struct Mark {
    at: Instant,
    cpu: f64,
    broker_cpu: f64,
    fleet_cpu: f64,
    sent: u64,
    connected: u64,
    received: u64,
    hist: Vec<u64>,
    buckets: Vec<(f64, u64)>,
    dropped: f64,
    /// Fixes the location core did not take as latest (filters, out of order).
    not_accepted: f64,
}

async fn mark(system: &System, fleets: &mut Fleets, mosquitto: Option<&Mosquitto>) -> Mark {
    let (sent, connected) = fleets.sent().await;
    let (received, hist, buckets, dropped, not_accepted) = match system {
        System::Fieldlink { state, .. } => (
            accepted(state),
            Vec::new(),
            fieldlink_buckets(state),
            metric(
                state,
                "fieldlink_inputs_dropped_total{service=\"dispatch\"}",
            ),
            metric_sum(state, "fieldlink_fixes_total{") - accepted(state) as f64,
        ),
        System::Bare { counter, .. } => (
            counter.gps.load(Ordering::Relaxed),
            counter.snapshot(),
            Vec::new(),
            0.0,
            0.0,
        ),
    };
    Mark {
        at: Instant::now(),
        cpu: cpu_secs("self").unwrap_or(0.0),
        broker_cpu: mosquitto.and_then(|m| cpu_secs(&m.pid)).unwrap_or(0.0),
        fleet_cpu: fleets.cpu(),
        sent,
        connected,
        received,
        hist,
        buckets,
        dropped,
        not_accepted,
    }
}

async fn ramp(
    target: &str,
    dir: &Path,
    broker: &str,
    system: &mut System,
    mosquitto: Option<&Mosquitto>,
) -> Result<()> {
    let settle = Duration::from_secs(env_usize("FIELDLINK_LOAD_SETTLE_S", 10) as u64);
    let window = Duration::from_secs(env_usize("FIELDLINK_LOAD_SECONDS", 30) as u64);
    let clicks = env_usize("FIELDLINK_LOAD_CLICKS", 30);
    let soak_only = std::env::var_os(SOAK_ONLY_ENV).is_some();
    let steps = if soak_only { Vec::new() } else { steps() };
    let last_step = steps.last().copied();
    let mut fleets = Fleets {
        workers: Vec::new(),
        next_unit: 0,
    };
    for n in steps {
        if let Err(e) = fleets.grow_to(n, dir, broker).await {
            // Measure no further step; the soak still runs.
            println!("failed {target}: starting the fleet for {n} units: {e:#}");
            break;
        }
        tokio::time::sleep(settle).await;
        let m0 = mark(system, &mut fleets, mosquitto).await;
        // The clicks run beside the window; the window's end is taken on time, whatever they do.
        let click_setup = match system {
            System::Fieldlink {
                token,
                http,
                probes,
                ..
            } => Some((token.clone(), http.clone(), std::mem::take(probes))),
            System::Bare { .. } => None,
        };
        let (click_result, m1) = match click_setup {
            Some((token, http, mut probes)) => {
                let (c, m1) = tokio::join!(
                    click_rounds(&http, &token, &mut probes, clicks, window),
                    async {
                        tokio::time::sleep(window).await;
                        mark(system, &mut fleets, mosquitto).await
                    }
                );
                if let System::Fieldlink { probes: p, .. } = &mut *system {
                    *p = probes;
                }
                (Some(c), m1)
            }
            None => {
                tokio::time::sleep(window).await;
                (None, mark(system, &mut fleets, mosquitto).await)
            }
        };
        let secs = (m1.at - m0.at).as_secs_f64();
        let (p50, p99) = if m1.buckets.is_empty() {
            let delta: Vec<u64> = m1
                .hist
                .iter()
                .zip(&m0.hist)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect();
            (hist_quantile(&delta, 0.5), hist_quantile(&delta, 0.99))
        } else {
            (
                bucket_quantile(&m0.buckets, &m1.buckets, 0.5),
                bucket_quantile(&m0.buckets, &m1.buckets, 0.99),
            )
        };
        let mut notes = Vec::new();
        let clicks_json = click_result.map(|r| match r {
            Ok(c) => {
                if !c.errors.is_empty() {
                    notes.push(format!("click errors: {:?}", c.errors));
                }
                c.json()
            }
            Err(e) => {
                notes.push(format!("clicks failed: {e:#}"));
                json!({"planned": clicks, "tried": 0, "ok": 0})
            }
        });
        if m1.not_accepted > m0.not_accepted {
            notes.push(format!(
                "fixes not accepted (filtered or out of order) in the window: {:.0}",
                m1.not_accepted - m0.not_accepted
            ));
        }
        if m1.dropped > m0.dropped {
            notes.push(format!(
                "dispatch inputs dropped in the window: {:.0}",
                m1.dropped - m0.dropped
            ));
        }
        let v = json!({
            "units": n,
            "connected": m1.connected,
            "window_s": secs,
            "sent_per_s": (m1.sent - m0.sent) as f64 / secs,
            "fixes_per_s": (m1.received - m0.received) as f64 / secs,
            "lat_p50_ms": p50,
            "lat_p99_ms": p99,
            "cpu_pct": 100.0 * (m1.cpu - m0.cpu) / secs,
            "rss_mib": mib(rss_bytes("self").unwrap_or(0)),
            "broker_cpu_pct": if mosquitto.is_some() { json!(100.0 * (m1.broker_cpu - m0.broker_cpu) / secs) } else { Value::Null },
            "broker_rss_mib": mosquitto.map(|m| mib(rss_bytes(&m.pid).unwrap_or(0))),
            "fleet_cpu_pct": 100.0 * (m1.fleet_cpu - m0.fleet_cpu) / secs,
            "fleet_rss_mib": mib(fleets.workers.iter().map(|(_, w)| w.rss()).sum()),
            "clicks": clicks_json,
            "loadavg": loadavg(),
            "notes": notes.join("; "),
        });
        println!("step {v}");
        if Some(n) == last_step
            && let (Ok(perf_dir), System::Fieldlink { .. }) =
                (std::env::var("FIELDLINK_LOAD_PERF_DIR"), &*system)
        {
            perf_record(&perf_dir, target, n).await;
        }
    }
    if soak_only && let System::Fieldlink { state, .. } = &*system {
        let units = soak_units();
        fleets.grow_to(units, dir, broker).await?;
        tokio::time::sleep(settle).await;
        let s = soak(state, &fleets, units).await;
        println!("soak {s}");
    }
    fleets.kill_all().await;
    Ok(())
}

/// `perf record` of this process while the load runs (software cpu-clock event: this VM has no
/// hardware counters); the report is left for a human (see docs/benchmarks.md).
async fn perf_record(dir: &str, target: &str, units: usize) {
    let secs = env_usize("FIELDLINK_LOAD_PERF_S", 20);
    let out = Path::new(dir).join(format!("{target}-{units}.perf.data"));
    let pid = std::process::id().to_string();
    eprintln!(
        "  perf record -e cpu-clock -F 499 -g -p {pid} for {secs} s → {}",
        out.display()
    );
    let status = tokio::process::Command::new("perf")
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "499",
            "-g",
            "-p",
            &pid,
            "-o",
        ])
        .arg(&out)
        .args(["--", "sleep", &secs.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    eprintln!("  perf: {status:?}");
}

async fn soak(state: &AppState, fleets: &Fleets, units: usize) -> Value {
    let minutes = soak_minutes();
    let every = Duration::from_secs(env_usize("FIELDLINK_LOAD_SOAK_SAMPLE_S", 30).max(1) as u64);
    let total = Duration::from_secs_f64(minutes * 60.0);
    eprintln!(
        "  soak: {units} units ({} in fleet processes) for {minutes} min",
        fleets.units()
    );
    let t0 = Instant::now();
    let a0 = accepted(state);
    let mut last = (t0, a0, cpu_secs("self").unwrap_or(0.0));
    let mut samples = vec![json!({
        "minute": 0.0,
        "rss_mib": mib(rss_bytes("self").unwrap_or(0)),
        "fixes_per_s": Value::Null,
        "cpu_pct": Value::Null,
    })];
    while t0.elapsed() < total {
        let left = total.saturating_sub(t0.elapsed());
        tokio::time::sleep(every.min(left)).await;
        let now = Instant::now();
        let a = accepted(state);
        let cpu = cpu_secs("self").unwrap_or(0.0);
        let secs = (now - last.0).as_secs_f64().max(1e-3);
        let s = json!({
            "minute": (now - t0).as_secs_f64() / 60.0,
            "rss_mib": mib(rss_bytes("self").unwrap_or(0)),
            "fixes_per_s": (a - last.1) as f64 / secs,
            "cpu_pct": 100.0 * (cpu - last.2) / secs,
        });
        eprintln!("  soak: {s}");
        samples.push(s);
        last = (now, a, cpu);
    }
    let secs = t0.elapsed().as_secs_f64();
    json!({
        "units": units,
        "minutes": secs / 60.0,
        "fixes_per_s": (accepted(state) - a0) as f64 / secs,
        "samples": samples,
    })
}

/// One step's one-click figures.
struct Clicks {
    planned: usize,
    tried: usize,
    ms: Vec<f64>,
    errors: Vec<String>,
}

impl Clicks {
    fn json(&self) -> Value {
        let mut s = self.ms.clone();
        s.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if s.is_empty() {
                Value::Null
            } else {
                json!(s[((s.len() as f64 - 1.0) * q).round() as usize])
            }
        };
        json!({
            "planned": self.planned,
            "tried": self.tried,
            "ok": s.len(),
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": s.last(),
        })
    }
}

/// `clicks` one-click dispatches to the probe handsets, spread over `window`.
async fn click_rounds(
    http: &str,
    token: &str,
    probes: &mut [Handset],
    clicks: usize,
    window: Duration,
) -> Result<Clicks> {
    let client = reqwest::Client::new();
    let base = format!("http://{http}");
    let started = Instant::now();
    // Every probe reports where it stands (QoS 1), so it is present and positioned.
    for (h, (lat, lon)) in probes.iter().zip(PROBES) {
        h.publish_fix_qos1(v1::GpsFix {
            fix_time_ms: wall_ms(),
            lat,
            lon,
            accuracy_m: Some(5.0),
            satellites: 9,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("a click handset's fix: {e}"))?;
    }
    let mut out = Clicks {
        planned: clicks,
        tried: 0,
        ms: Vec::new(),
        errors: Vec::new(),
    };
    let pace = window.div_f64(clicks.max(1) as f64);
    let post = |path: String, body: Value| {
        let req = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let r = req.send().await?;
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!("{path}: {status} {body}");
            }
            Ok::<Value, anyhow::Error>(body)
        }
    };
    for i in 0..clicks {
        let due = started + pace.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        if Instant::now() >= started + window {
            out.errors
                .push(format!("{} rounds not started: window over", clicks - i));
            break;
        }
        let k = i % probes.len();
        let (lat, lon) = PROBES[k];
        out.tried += 1;
        let round = async {
            let created = post(
                "/api/v1/incidents".to_owned(),
                json!({
                    "kind": "dispute", "priority": "high",
                    "lat": lat + 0.0001, "lon": lon + 0.0001,
                    "description": "load bench", "request_id": format!("load-{}-{i}", wall_ms()),
                }),
            )
            .await?;
            let id = created["incident"]["id"]
                .as_str()
                .context("incident id")?
                .to_owned();
            let h = &mut probes[k];
            let t = Instant::now();
            let dispatch = post(format!("/api/v1/incidents/{id}/dispatch"), json!({}));
            let wait = async {
                loop {
                    let d = h
                        .next_downlink(Duration::from_secs(30))
                        .await
                        .ok_or_else(|| anyhow!("no work order within 30 s"))?;
                    if let Some(v1::downlink::Body::Order(o)) = &d.body
                        && o.incident_id == id
                    {
                        return Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
            };
            let (dispatched, got) = tokio::join!(dispatch, wait);
            let dispatched = dispatched?;
            let order = dispatched["orders"][0]["id"].as_str().map(str::to_owned);
            let unit = dispatched["orders"][0]["unit"].as_str().unwrap_or("");
            let expected = format!("click-{k}");
            let res = if unit == expected {
                got
            } else {
                Err(anyhow!("dispatched to {unit:?}, not {expected}"))
            };
            if let Some(order) = order {
                post(
                    format!("/api/v1/orders/{order}/cancel"),
                    json!({"reason": "load bench"}),
                )
                .await?;
            }
            post(format!("/api/v1/incidents/{id}/close"), json!({})).await?;
            res
        };
        match tokio::time::timeout(CLICK_TIMEOUT, round).await {
            Ok(Ok(ms)) => out.ms.push(ms),
            Ok(Err(e)) => {
                if out.errors.len() < 3 {
                    out.errors.push(format!("{e:#}"));
                }
            }
            Err(_) => {
                if out.errors.len() < 3 {
                    out.errors
                        .push(format!("round {i}: not done within {CLICK_TIMEOUT:?}"));
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// fleet role
// ---------------------------------------------------------------------------------------------

/// Whether the handsets seal their payloads: on fieldlink's embedded broker they must
/// (docs/security.md); the external broker's path and the baselines carry them plain, and the
/// baselines read the fix time from the plain payload. Fleet processes inherit the target's
/// environment, so they know it too.
fn sealed_target() -> bool {
    std::env::var(TARGET_ENV).is_ok_and(|t| t == "fieldlink-embedded")
}

async fn fleet_role() -> Result<()> {
    let broker = env_string(BROKER_ENV)?;
    let topics: Topics = MqttConfig::default().topics()?;
    let dir = PathBuf::from(env_string(DIR_ENV)?);
    let from = env_usize(FROM_ENV, 0);
    let count = env_usize(COUNT_ENV, 0);
    let units: Vec<(UnitId, String)> = read_units(&dir)?
        .into_iter()
        .skip(from)
        .take(count)
        .map(|(id, secret)| Ok::<_, anyhow::Error>((UnitId::new(id)?, secret)))
        .collect::<Result<_>>()?;
    // `Fleet::start` is all or nothing: one handset the broker does not answer within 10 s
    // stops them all. A loaded broker can be that slow to admit new connections, so the units go
    // in parts of SUBFLEET, each retried a few times; a part that never connects is left out and
    // the "connected" count says so.
    const SUBFLEET: usize = 500;
    const ATTEMPTS: usize = 3;
    let t = Instant::now();
    let mut fleets = Vec::new();
    let mut refused = Vec::new();
    let budget = Duration::from_secs(env_usize("FIELDLINK_LOAD_CONNECT_S", 180) as u64);
    for (part, chunk) in units.chunks(SUBFLEET).enumerate() {
        if t.elapsed() > budget {
            refused.push(format!(
                "{} units: not tried, FIELDLINK_LOAD_CONNECT_S ({budget:?}) spent",
                chunk.len()
            ));
            continue;
        }
        for attempt in 1..=ATTEMPTS {
            let mut cfg = FleetConfig::new(broker.clone(), topics.clone(), chunk.to_vec());
            cfg.fix_interval = Duration::from_secs(1);
            cfg.seed = (from + part * SUBFLEET) as u64;
            cfg.sealed = sealed_target();
            match Fleet::start(cfg).await {
                Ok(f) => {
                    fleets.push(f);
                    break;
                }
                Err(e) => {
                    eprintln!("  fleet {from}+{part}: attempt {attempt}: {e}");
                    if attempt == ATTEMPTS {
                        refused.push(format!("{} units: {e}", chunk.len()));
                    }
                }
            }
        }
    }
    let stats = |fleets: &[Fleet]| {
        fleets.iter().map(Fleet::stats).fold((0, 0, 0, 0), |a, s| {
            (
                a.0 + s.fixes_sent,
                a.1 + s.connected,
                a.2 + s.errors,
                a.3 + s.reconnects,
            )
        })
    };
    println!(
        "connected {} handsets in {:.1} s{}",
        stats(&fleets).1,
        t.elapsed().as_secs_f64(),
        if refused.is_empty() {
            String::new()
        } else {
            format!(" (left out: {refused:?})")
        }
    );
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        if line.trim() == "stats" {
            let (sent, connected, errors, reconnects) = stats(&fleets);
            println!("stats {sent} {connected} {errors} {reconnects}");
        }
    }
    // stdin closed: the parent is gone.
    std::process::exit(0)
}

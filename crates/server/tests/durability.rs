//! Durability against a real process: `kill -9` at random moments while eight clients POST
//! incidents concurrently, restarting on the same data after each kill, on SQLite and on
//! PostgreSQL. Afterwards every request the API acknowledged is there exactly once, with the id
//! it was answered with; a request retried after a kill (same `request_id`) gets the same
//! incident when its first attempt was committed; and the response-target timers (2 s here)
//! fire for every incident, including those created just before a kill.
//!
//! `scripts/kill9.sh` runs the same scenario for 50 kills with curl.
//!
//! Known failure on PostgreSQL (found by this test, 2 runs in 12, not fixed here): a commit sent
//! by the killed process can still land after the restarted process has loaded its dispatch
//! snapshot (the dead client's backend finishes the COMMIT it had received; it holds the commit
//! advisory lock, which loading the snapshot does not take). The restarted core never learns
//! that incident, its next commit overwrites the snapshot without it, and its timers never run;
//! the incident and request rows stay in the tables, so a retry of the same `request_id` is
//! answered 404 `unknown_incident` forever. The test then fails with that 404 and keeps the
//! schema (`t_durability_kill9_*`) for inspection: `incidents` has one row more than the
//! snapshot's `incidents`.
//!
//! Environment: `FIELDLINK_DURABILITY_KILLS` (default 12), `FIELDLINK_DURABILITY_SEED` (default
//! from the clock; printed, so a failing run's kill schedule can be repeated).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Concurrent clients.
const CLIENTS: usize = 8;
/// The response target configured for the test, seconds.
const RESPONSE_S: i64 = 2;
/// How long a start may take before the test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The store under test: extra environment for the binary.
struct Store {
    name: &'static str,
    env: Vec<(&'static str, String)>,
}

/// One run of the binary on the shared data directory.
struct Server {
    child: Child,
    base: String,
}

struct Harness {
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    store: Store,
    http: reqwest::Client,
}

impl Harness {
    fn new(dir: &Path, store: Store) -> Harness {
        let config = dir.join("fieldlink.toml");
        std::fs::write(
            &config,
            format!(
                "[dispatch]\ndefault_targets = {{ response_s = {RESPONSE_S}, arrival_s = 3600, \
                 reinforcement_s = 3600 }}\n"
            ),
        )
        .expect("write config");
        Harness {
            dir: dir.to_path_buf(),
            config,
            log: dir.join("server.log"),
            store,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Starts the binary on fresh ports (a killed process's ports may linger) and waits until
    /// `/readyz` answers 200.
    async fn start(&self) -> Server {
        let http = format!("127.0.0.1:{}", free_port());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldlink"));
        cmd.env_remove("RUST_LOG")
            .env_remove("FIELDLINK_CONFIG")
            .arg("--config")
            .arg(&self.config)
            .arg("--data")
            .arg(self.data())
            .args(["--http", &http])
            .args(["--mqtt", &format!("127.0.0.1:{}", free_port())])
            .args(["--log-format", "json"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in &self.store.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("fieldlink starts");
        let base = format!("http://{http}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!(
                    "{}: fieldlink exited during start ({status}):\n{}",
                    self.store.name,
                    self.log_tail()
                );
            }
            let ready = self.http.get(format!("{base}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Server { child, base };
            }
            if Instant::now() > deadline {
                child.kill().ok();
                panic!(
                    "{}: fieldlink not ready within {START_TIMEOUT:?}:\n{}",
                    self.store.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn token(&self) -> String {
        let path = self.data().join("first-run-credentials.txt");
        let text = std::fs::read_to_string(&path).expect("first-run credentials");
        text.split_whitespace()
            .find(|w| w.starts_with("fl_tok_"))
            .expect("an admin token in the first-run credentials")
            .to_string()
    }
}

impl Drop for Server {
    /// A failing test leaves no process behind.
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `kill -9`, then reap it.
fn kill9(server: &mut Server) {
    let status = Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -9 failed");
    server.child.wait().expect("reaped");
}

/// What the clients share.
#[derive(Default)]
struct Shared {
    /// The running server's base URL; `None` while it is down.
    base: Mutex<Option<String>>,
    /// request id → incident id, for every 200/201 answer.
    acked: Mutex<BTreeMap<String, String>>,
    /// Requests whose attempt failed (connection reset, timeout, 5xx): retried with the same id.
    retry: Mutex<VecDeque<String>>,
    /// Every request id ever sent.
    sent: Mutex<BTreeSet<String>>,
    /// Problems seen by clients (a different id on replay, a 4xx, ...).
    problems: Mutex<Vec<String>>,
    /// No new requests; finish the retries.
    draining: AtomicBool,
    next: AtomicU64,
    failed_attempts: AtomicU64,
    retried_replayed: AtomicU64,
    retried_created: AtomicU64,
}

fn body(request_id: &str, n: u64) -> Value {
    let kinds = [
        "lost_person",
        "flooding",
        "dispute",
        "fire",
        "traffic",
        "medical",
        "other",
    ];
    json!({
        "kind": kinds[(n % kinds.len() as u64) as usize],
        "lat": 31.2 + (n % 100) as f64 * 0.001,
        "lon": 121.4 + (n % 37) as f64 * 0.001,
        "description": format!("durability marker {request_id}"),
        "request_id": request_id,
    })
}

async fn client(shared: Arc<Shared>, http: reqwest::Client, token: String, tag: String, c: usize) {
    loop {
        let Some(base) = shared.base.lock().expect("lock").clone() else {
            if shared.draining.load(Ordering::SeqCst)
                && shared.retry.lock().expect("lock").is_empty()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let retried = shared.retry.lock().expect("lock").pop_front();
        let is_retry = retried.is_some();
        let request_id = match retried {
            Some(r) => r,
            None if shared.draining.load(Ordering::SeqCst) => return,
            None => {
                let n = shared.next.fetch_add(1, Ordering::SeqCst);
                format!("{tag}-c{c}-{n}")
            }
        };
        shared.sent.lock().expect("lock").insert(request_id.clone());
        let n: u64 = request_id
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let sent = http
            .post(format!("{base}/api/v1/incidents"))
            .bearer_auth(&token)
            .json(&body(&request_id, n))
            .send()
            .await;
        let answer = match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.json::<Value>().await {
                    Ok(v) => Ok((status, v)),
                    Err(e) => Err(format!("body: {e}")),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok((status @ (200 | 201), v)) => {
                let Some(id) = v["incident"]["id"].as_str().map(str::to_string) else {
                    let p = format!("{request_id}: {status} without an incident id: {v}");
                    shared.problems.lock().expect("lock").push(p);
                    continue;
                };
                if is_retry {
                    let counter = if status == 200 {
                        &shared.retried_replayed
                    } else {
                        &shared.retried_created
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                } else if status == 200 {
                    let p = format!("{request_id}: first attempt answered 200 (a replay)");
                    shared.problems.lock().expect("lock").push(p);
                }
                let mut acked = shared.acked.lock().expect("lock");
                if let Some(first) = acked.get(&request_id) {
                    if first != &id {
                        let p = format!("{request_id}: acknowledged as {first}, then as {id}");
                        shared.problems.lock().expect("lock").push(p);
                    }
                } else {
                    acked.insert(request_id, id);
                }
            }
            Ok((status, v)) if status < 500 => {
                let mut p = format!("{request_id}: refused with {status}: {v}");
                if is_retry && v["error"]["code"] == "unknown_incident" {
                    // The store holds the request (its first attempt was committed), but the
                    // restarted process's core does not know the incident it names.
                    p.push_str(
                        " -- a retry after a kill: the first attempt's commit landed in the \
                         store after the restarted process had loaded its dispatch snapshot \
                         (see this file's header)",
                    );
                }
                shared.problems.lock().expect("lock").push(p);
            }
            Ok(_) | Err(_) => {
                // The process died under the request (or was going down): a client retries
                // with the same request id once the server is back.
                shared.failed_attempts.fetch_add(1, Ordering::SeqCst);
                shared.retry.lock().expect("lock").push_back(request_id);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn get(h: &Harness, base: &str, token: &str, path: &str) -> Value {
    let r = (h.http.get(format!("{base}{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().await.expect("json")
}

async fn run(store: Store) {
    let kills = env_u64("FIELDLINK_DURABILITY_KILLS").unwrap_or(12).max(10);
    let seed = env_u64("FIELDLINK_DURABILITY_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let name = store.name;
    eprintln!("{name}: {kills} kills, FIELDLINK_DURABILITY_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    // Kept when the test fails (logs and, for SQLite, the database); removed when it passes.
    let dir = tempfile::tempdir().expect("dir").keep();
    eprintln!("{name}: data and log in {}", dir.display());
    let h = Harness::new(&dir, store);
    let started = Instant::now();

    let mut server = h.start().await;
    let token = h.token();
    let shared = Arc::new(Shared::default());
    let tag = format!("{name}-{seed:x}");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(client(
                shared.clone(),
                h.http.clone(),
                token.clone(),
                tag.clone(),
                c,
            ))
        })
        .collect();

    for _ in 0..kills {
        *shared.base.lock().expect("lock") = Some(server.base.clone());
        // Somewhere between right after the start and a second in.
        let ms = rng.random_range(0..1000u64);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        kill9(&mut server);
        *shared.base.lock().expect("lock") = None;
        server = h.start().await;
    }
    // The last start stays up: clients finish their retries, then stop.
    shared.draining.store(true, Ordering::SeqCst);
    *shared.base.lock().expect("lock") = Some(server.base.clone());
    for c in clients {
        tokio::time::timeout(Duration::from_secs(60), c)
            .await
            .expect("clients finish their retries")
            .expect("client task");
    }
    let base = server.base.clone();

    let problems = shared.problems.lock().expect("lock").clone();
    let acked = shared.acked.lock().expect("lock").clone();
    let sent = shared.sent.lock().expect("lock").clone();
    let failed = shared.failed_attempts.load(Ordering::SeqCst);
    let replayed = shared.retried_replayed.load(Ordering::SeqCst);
    let created = shared.retried_created.load(Ordering::SeqCst);
    eprintln!(
        "{name}: {kills} kills; {} requests sent, {} acknowledged; {failed} failed attempts \
         retried: {replayed} answered as replays (committed before the kill), {created} created \
         on retry",
        sent.len(),
        acked.len()
    );
    assert!(problems.is_empty(), "{name}: {problems:#?}");
    assert_eq!(
        sent.len(),
        acked.len(),
        "{name}: every request ends acknowledged"
    );
    assert!(
        acked.len() >= 50,
        "{name}: too few requests to mean anything"
    );

    // A replay of every acknowledged request answers 200 with the same incident.
    for (request_id, id) in &acked {
        let n: u64 = request_id
            .rsplit('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let r = (h.http.post(format!("{base}/api/v1/incidents")))
            .bearer_auth(&token)
            .json(&body(request_id, n))
            .send()
            .await
            .expect("replay");
        assert_eq!(r.status().as_u16(), 200, "{name}: replay of {request_id}");
        let v: Value = r.json().await.expect("json");
        assert_eq!(
            v["incident"]["id"].as_str(),
            Some(id.as_str()),
            "{request_id}"
        );
    }

    // Exactly once: by request id, by description marker, and in total.
    let listed = get(&h, &base, &token, "/api/v1/incidents").await;
    let incidents = listed["incidents"].as_array().expect("incidents").clone();
    let mut by_request: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut by_marker: BTreeMap<String, usize> = BTreeMap::new();
    let mut created_at: BTreeMap<String, i64> = BTreeMap::new();
    for i in &incidents {
        let id = i["id"].as_str().expect("id").to_string();
        let r = i["request_id"].as_str().unwrap_or_default().to_string();
        by_request.entry(r).or_default().push(id.clone());
        *by_marker
            .entry(i["description"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
        created_at.insert(id, api_time_ms(&i["created_at"]));
    }
    let duplicates: Vec<_> = (by_request.iter())
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    assert!(duplicates.is_empty(), "{name}: duplicates {duplicates:?}");
    assert!(
        by_marker.values().all(|&n| n == 1),
        "{name}: duplicate descriptions"
    );
    for (request_id, id) in &acked {
        assert_eq!(
            by_request.get(request_id),
            Some(&vec![id.clone()]),
            "{name}: acknowledged {request_id} → {id} after {kills} kills"
        );
    }
    assert_eq!(incidents.len(), acked.len(), "{name}: nothing unasked-for");

    // Timers run: each incident's response target (2 s) raises exactly one alarm, not before
    // its original deadline, including the incidents created just before a kill.
    let deadline = Instant::now() + Duration::from_secs(20);
    let alarms = loop {
        let v = get(&h, &base, &token, "/api/v1/alarms").await;
        let alarms: Vec<Value> = (v["alarms"].as_array().expect("alarms").iter())
            .filter(|a| a["kind"]["type"] == "response_missed")
            .cloned()
            .collect();
        let covered: BTreeSet<&str> = alarms
            .iter()
            .filter_map(|a| a["incident"].as_str())
            .collect();
        if covered.len() >= created_at.len() || Instant::now() > deadline {
            break alarms;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut per_incident: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for a in &alarms {
        let incident = a["incident"].as_str().expect("incident").to_string();
        per_incident
            .entry(incident)
            .or_default()
            .push(api_time_ms(&a["raised_at"]));
    }
    let missing: Vec<_> = (created_at.keys())
        .filter(|id| !per_incident.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: {} of {} incidents have no response_missed alarm, e.g. {:?}",
        missing.len(),
        created_at.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = (per_incident.iter())
        .filter(|(_, raised)| raised.len() > 1)
        .collect();
    assert!(twice.is_empty(), "{name}: alarm raised twice: {twice:?}");
    for (id, raised) in &per_incident {
        let created = created_at[id];
        assert!(
            raised[0] >= created + RESPONSE_S * 1000,
            "{name}: {id} alarmed at {} before its deadline {}",
            raised[0],
            created + RESPONSE_S * 1000
        );
    }
    let late = (per_incident.iter())
        .map(|(id, raised)| raised[0] - created_at[id] - RESPONSE_S * 1000)
        .max()
        .unwrap_or(0);
    eprintln!(
        "{name}: {} incidents, 0 duplicates, {} response alarms (latest {late} ms after its \
         deadline, downtime included); {:.1} s",
        incidents.len(),
        alarms.len(),
        started.elapsed().as_secs_f64()
    );
    kill9(&mut server);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_concurrent_posts_loses_nothing_sqlite() {
    run(Store {
        name: "sqlite",
        env: Vec::new(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_concurrent_posts_loses_nothing_postgres() {
    let Some(cfg) = fieldlink_store::testing::postgres_config_or_skip("durability_kill9").await
    else {
        return;
    };
    let mut env = vec![("FIELDLINK_STORE__URL", cfg.url.clone())];
    if let Some(schema) = &cfg.pg_schema {
        env.push(("FIELDLINK_STORE__PG_SCHEMA", schema.clone()));
    }
    run(Store {
        name: "postgres",
        env,
    })
    .await;
    fieldlink_store::testing::drop_schema(&cfg).await;
}

/// Milliseconds since the epoch of an API time (RFC 3339).
fn api_time_ms(v: &Value) -> i64 {
    (v.as_str()
        .and_then(fieldlink_clock::Timestamp::parse_rfc3339))
    .unwrap_or_else(|| panic!("{v} is not an RFC 3339 time"))
    .as_millis()
}

//! Helpers shared by the end-to-end tests: a real fieldlink on free ports, tokens, HTTP calls,
//! and the checks for the shared services (Mosquitto, PostgreSQL) that fail loudly in CI.

pub mod dispatch;
pub mod ws;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use fieldlink_clock::{SharedClock, SystemClock};
use fieldlink_proto::{Topics, UnitId};
use fieldlink_server::config::ConfiguredUnit;
use fieldlink_server::{Config, Server, provision};
use fieldlink_sim::{Handset, HandsetConfig};
use fieldlink_store::Role;

/// The Mosquitto this machine runs.
pub const MOSQUITTO: &str = "127.0.0.1:1883";

/// A port nobody listens on right now (bind port 0, read it, let it go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS gives a free port")
}

/// A short random tag for topic roots and schema names, so tests can run in parallel.
pub fn tag() -> String {
    format!("t{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Is something listening at `addr`? If not: in CI (`CI=true`) this panics, so the run fails
/// loudly; elsewhere it prints why the test is skipped and returns false.
pub fn service_or_skip(name: &str, addr: &str, test: &str) -> bool {
    let reachable = addr
        .parse::<SocketAddr>()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if reachable {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {name} is not reachable at {addr}, and CI requires it");
    }
    eprintln!("SKIPPED {test}: {name} is not reachable at {addr}");
    false
}

/// A unit the test server knows, with its secret.
#[derive(Debug, Clone)]
pub struct TestUnit {
    /// Its id.
    pub id: UnitId,
    /// Its secret (MQTT password).
    pub secret: String,
}

/// A fieldlink started in-process on free ports with its own data directory and topic root.
#[derive(Debug)]
pub struct TestServer {
    /// The running server.
    pub server: Server,
    /// Its config (the test's view of ports, topics, store).
    pub config: Config,
    /// Its topic grammar.
    pub topics: Topics,
    /// Units provisioned from the config.
    pub units: Vec<TestUnit>,
    /// An admin API token.
    pub admin: String,
    /// A viewer API token.
    pub viewer: String,
    /// Where the MQTT handsets connect (`host:port`).
    pub broker: String,
    /// The HTTP base URL.
    pub base: String,
    _data: Option<tempfile::TempDir>,
}

/// How to start a [`TestServer`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Number of units to provision (`u000`, `u001`, ...).
    pub units: usize,
    /// Use this external broker (`mqtt://...`) instead of the embedded one.
    pub external_broker: Option<String>,
    /// fieldlink's own username and password on the external broker (`mqtt.username`,
    /// `mqtt.password`); none otherwise.
    pub external_credentials: Option<(String, String)>,
    /// Keep the default topic root and OwnTracks prefix (`fl/v1`, `owntracks`), as a broker ACL
    /// written for them expects, instead of a per-test tagged root. Only for a private broker.
    pub default_topics: bool,
    /// Use this store URL (and schema) instead of SQLite in a temp dir.
    pub store: Option<(String, String)>,
    /// Reuse this data directory (a restart test); a fresh temp dir otherwise.
    pub data_dir: Option<std::path::PathBuf>,
    /// Reuse this topic tag (a restart test); a fresh one otherwise.
    pub tag: Option<String>,
    /// GeoJSON files of grids to load at start (`zones.grid_files`).
    pub grid_files: Vec<std::path::PathBuf>,
    /// GeoJSON files of geofences to load at start (`zones.geofence_files`).
    pub geofence_files: Vec<std::path::PathBuf>,
    /// The WebSocket hub's config (`[push]`); the defaults otherwise.
    pub push: Option<fieldlink_push::PushConfig>,
    /// Files of fixed cameras to load at start (`video.camera_files`).
    pub camera_files: Vec<std::path::PathBuf>,
    /// Messages per second a unit may send (`mqtt.max_messages_per_s`); the default otherwise.
    pub max_messages_per_s: Option<u32>,
}

impl TestServer {
    /// Starts a server with the wall clock.
    pub async fn start(opts: Options) -> TestServer {
        Self::start_with_clock(opts, Arc::new(SystemClock)).await
    }

    /// Starts a server with the given clock.
    pub async fn start_with_clock(opts: Options, clock: SharedClock) -> TestServer {
        let tag = opts.tag.clone().unwrap_or_else(tag);
        let (data, data_dir) = match &opts.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let mut config = Config {
            data_dir,
            ..Config::default()
        };
        config.http.listen = "127.0.0.1:0".parse().expect("addr");
        if let Some(rate) = opts.max_messages_per_s {
            config.mqtt.max_messages_per_s = rate;
        }
        if !opts.default_topics {
            config.mqtt.topic_root = format!("{tag}/fl/v1");
            config.mqtt.owntracks_prefix = format!("{tag}/owntracks");
        }
        config.store.flush_interval_ms = 100;
        let broker = match &opts.external_broker {
            Some(url) => {
                config.mqtt.url = url.clone();
                config.mqtt.client_id = format!("fieldlink-{tag}");
                if let Some((username, password)) = &opts.external_credentials {
                    config.mqtt.username = username.clone();
                    config.mqtt.password = password.clone();
                }
                url.trim_start_matches("mqtt://").to_owned()
            }
            None => {
                let port = free_port();
                config.mqtt.listen = format!("127.0.0.1:{port}").parse().expect("addr");
                format!("127.0.0.1:{port}")
            }
        };
        config.zones.grid_files = opts.grid_files.clone();
        config.zones.geofence_files = opts.geofence_files.clone();
        config.video.camera_files = opts.camera_files.clone();
        if let Some(push) = &opts.push {
            config.push = push.clone();
        }
        if let Some((url, schema)) = &opts.store {
            config.store.url = url.clone();
            config.store.pg_schema = schema.clone();
        }
        let units: Vec<TestUnit> = (0..opts.units)
            .map(|i| TestUnit {
                id: UnitId::new(format!("u{i:03}")).expect("id"),
                secret: format!("secret-of-unit-{i:03}-{tag}"),
            })
            .collect();
        config.units = units
            .iter()
            .map(|u| ConfiguredUnit {
                id: u.id.to_string(),
                secret: u.secret.clone(),
                name: String::new(),
                unit_type: "on_foot".into(),
                skills: vec![],
            })
            .collect();
        config.validate().expect("test config is valid");
        let server = fieldlink_server::start(config.clone(), clock.clone())
            .await
            .expect("fieldlink starts");
        let store = &server.state().store;
        let now = clock.now();
        let admin = provision::add_token(store, "test admin", Role::Admin, now)
            .await
            .expect("admin token")
            .secret;
        let viewer = provision::add_token(store, "test viewer", Role::Viewer, now)
            .await
            .expect("viewer token")
            .secret;
        server
            .state()
            .credentials
            .reload()
            .await
            .expect("credentials reload");
        let topics = config.mqtt.topics().expect("topics");
        let base = format!("http://{}", server.http_addr());
        TestServer {
            server,
            config,
            topics,
            units,
            admin,
            viewer,
            broker,
            base,
            _data: data,
        }
    }

    /// A new API token with `role` (the server's credential cache is reloaded).
    pub async fn token(&self, role: Role) -> String {
        let state = self.server.state();
        let name = format!("test {role}");
        let token = provision::add_token(&state.store, &name, role, state.clock.now())
            .await
            .expect("token")
            .secret;
        state
            .credentials
            .reload()
            .await
            .expect("credentials reload");
        token
    }

    /// Connects unit `i` as a handset, sealing on the embedded broker.
    pub async fn handset(&self, i: usize) -> Handset {
        Handset::connect(self.handset_config(i))
            .await
            .expect("handset connects")
    }

    /// How unit `i` connects: to this server's broker, with its secret, sealed when the broker
    /// is the embedded one (which requires it; an external broker carries plain payloads).
    pub fn handset_config(&self, i: usize) -> HandsetConfig {
        let u = &self.units[i];
        let mut cfg = HandsetConfig::new(
            self.broker.clone(),
            u.id.clone(),
            u.secret.clone(),
            self.topics.clone(),
        );
        cfg.sealed = self.sealed();
        cfg
    }

    /// True when handsets must seal (the embedded broker).
    pub fn sealed(&self) -> bool {
        self.config.mqtt.embedded()
    }

    /// `GET path` with a token; returns status and JSON body (Null when not JSON).
    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// `POST path` with a JSON body and a token.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// Any method on `path`, with a token and a JSON body when given; returns status and JSON
    /// body (a string when not JSON, empty when there is no body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// The unit as `GET /api/v1/units/{id}` shows it.
    pub async fn unit(&self, id: &str) -> serde_json::Value {
        let (status, body) = self
            .get(&format!("/api/v1/units/{id}"), Some(&self.viewer))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The value of one metric line (exact name with labels), 0 when absent.
    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let (_, body) = self.get("/metrics", None).await;
        let text = body.as_str().unwrap_or_default().to_owned();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line_prefix)
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// Stops the server.
    pub async fn stop(self) -> Option<tempfile::TempDir> {
        self.server.shutdown(Duration::from_secs(5)).await;
        self._data
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Milliseconds since the epoch on the wall clock (for fix times in tests on the system clock).
pub fn now_ms() -> i64 {
    fieldlink_clock::Clock::now(&fieldlink_clock::SystemClock).as_millis()
}

/// A fix at `lat, lon` taken at `at_ms`, 8 m accurate from 9 satellites.
pub fn fix(lat: f64, lon: f64, at_ms: i64) -> fieldlink_proto::v1::GpsFix {
    fieldlink_proto::v1::GpsFix {
        fix_time_ms: at_ms,
        lat,
        lon,
        accuracy_m: Some(8.0),
        satellites: 9,
        ..Default::default()
    }
}

/// A square grid (GeoJSON Feature) of ±`half_deg` around `(lat, lon)` with these members.
pub fn square_grid(
    id: &str,
    (lat, lon): (f64, f64),
    half_deg: f64,
    members: &[&str],
) -> serde_json::Value {
    let ring = [
        (-1.0, -1.0),
        (1.0, -1.0),
        (1.0, 1.0),
        (-1.0, 1.0),
        (-1.0, -1.0),
    ]
    .map(|(x, y)| serde_json::json!([lon + x * half_deg, lat + y * half_deg]));
    serde_json::json!({
        "type": "Feature", "id": id,
        "geometry": { "type": "Polygon", "coordinates": [ring] },
        "properties": { "name": format!("Grid {id}"), "members": members },
    })
}

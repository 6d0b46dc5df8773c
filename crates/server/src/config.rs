//! The configuration tree, where it comes from, and its validation.
//!
//! Sources, later ones winning: built-in defaults, the TOML file (`--config`, default
//! `config/fieldlink.toml` when it exists), `FIELDLINK_*` environment variables (nested keys
//! joined by `__`, e.g. `FIELDLINK_MQTT__URL`), then the CLI flags people change daily. Every
//! problem is reported at once, in words, and the process exits non-zero (see [`Config::load`]).
//! `config/fieldlink.toml` in the repository documents every key with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fieldlink_location::LocationConfig;
use fieldlink_proto::{Topics, UnitId};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The default config file, used when it exists and `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "config/fieldlink.toml";

/// Everything fieldlink can be configured by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where fieldlink keeps its files (the SQLite database, first-run credentials).
    pub data_dir: PathBuf,
    /// The HTTP API.
    pub http: HttpConfig,
    /// The server's TLS certificate (HTTPS/WSS, the embedded broker's TLS listener).
    pub tls: TlsSection,
    /// The MQTT side: embedded broker or an external one.
    pub mqtt: MqttConfig,
    /// The store.
    pub store: StoreSection,
    /// Positions, presence, filters.
    pub location: LocationConfig,
    /// Geofences and grids loaded from GeoJSON files at start.
    pub zones: ZonesConfig,
    /// Dispatch: the 1/3/5 targets, acceptance timeout, arrival detection, skills, ETAs.
    pub dispatch: fieldlink_dispatch::DispatchConfig,
    /// The WebSocket hub (`/ws`, `/ws/handset`): limits, timings, allowed browser origins.
    pub push: fieldlink_push::PushConfig,
    /// Floor control: maximum talk time, SOS priority, dispatcher precedence, busy policy.
    pub intercom: fieldlink_intercom::IntercomConfig,
    /// Talkgroups defined in the config file (read-only through the API).
    pub talkgroups: Vec<fieldlink_intercom::Talkgroup>,
    /// Live video: stale and silent streams, request time-out, the fixed cameras' files.
    pub video: VideoSection,
    /// Logging.
    pub log: LogConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Units provisioned from the config file (upserted into the store at start).
    pub units: Vec<ConfiguredUnit>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            http: HttpConfig::default(),
            tls: TlsSection::default(),
            mqtt: MqttConfig::default(),
            store: StoreSection::default(),
            location: LocationConfig::default(),
            zones: ZonesConfig::default(),
            dispatch: fieldlink_dispatch::DispatchConfig::default(),
            push: fieldlink_push::PushConfig::default(),
            intercom: fieldlink_intercom::IntercomConfig::default(),
            talkgroups: Vec::new(),
            video: VideoSection::default(),
            log: LogConfig::default(),
            shutdown: ShutdownConfig::default(),
            units: Vec::new(),
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address of the HTTP API (health, metrics, queries).
    pub listen: SocketAddr,
    /// HTTPS and WSS on `listen`, with the `[tls]` certificate; plain HTTP is then off.
    pub tls: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tls: false,
        }
    }
}

/// `[tls]`: the certificate fieldlink presents (PEM files; `fieldlink certs dev` makes some).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// Certificate chain, leaf first (PEM). Empty: no TLS listener can be configured.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl TlsSection {
    /// True when a certificate and key are configured.
    pub fn configured(&self) -> bool {
        !self.cert.as_os_str().is_empty() && !self.key.as_os_str().is_empty()
    }
}

/// `[mqtt]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Empty: run the embedded broker on `listen`. `mqtt://host:port`: use that broker instead.
    pub url: String,
    /// Listen address of the embedded broker's plain-text listener (see `plain`).
    pub listen: SocketAddr,
    /// Whether the embedded broker listens in plain text on `listen`. Turn it off when
    /// `tls_listen` is set and every handset speaks TLS.
    pub plain: bool,
    /// The embedded broker's TLS listener (MQTT over TLS, usually port 8883), with the `[tls]`
    /// certificate. `None`: no TLS listener.
    pub tls_listen: Option<SocketAddr>,
    /// External broker over `mqtts://`: the CA file (PEM) its certificate must chain to.
    /// Empty: the system's trusted roots.
    pub ca_file: PathBuf,
    /// External broker: a client certificate (PEM) for brokers that ask for one. Empty: none.
    pub client_cert: PathBuf,
    /// External broker: the client certificate's key (PEM).
    pub client_key: PathBuf,
    /// Client id fieldlink uses on an external broker.
    pub client_id: String,
    /// Username on an external broker (empty: none).
    pub username: String,
    /// Password on an external broker (empty: none).
    pub password: String,
    /// Topic root of the fieldlink topics (`{root}/u/{unit}/{kind}`).
    pub topic_root: String,
    /// Topic prefix of OwnTracks messages (`{prefix}/{user}/{device}`).
    pub owntracks_prefix: String,
    /// Largest MQTT payload accepted, bytes.
    pub max_payload_bytes: usize,
    /// Most fixes in one GPS batch.
    pub max_batch_fixes: usize,
    /// Most simultaneous MQTT connections on the embedded broker.
    pub max_connections: usize,
    /// Most connections from one IP address at once on the embedded broker, plain and TLS
    /// listeners together.
    pub max_connections_per_address: usize,
    /// Addresses `max_connections_per_address` does not apply to (default this host:
    /// `127.0.0.1` and `::1`, where the simulator runs).
    pub uncapped_addresses: Vec<std::net::IpAddr>,
    /// Messages one unit may send per second, sustained; beyond it (and `message_burst`) its
    /// messages are dropped and counted as `throttled`. 0: no limit.
    pub max_messages_per_s: u32,
    /// Messages one unit may send at once above `max_messages_per_s`.
    pub message_burst: u32,
    /// Messages waiting between the broker and the decoder; when full, the broker link waits.
    pub uplink_queue: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: String::new(),
            listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
            plain: true,
            tls_listen: None,
            ca_file: PathBuf::new(),
            client_cert: PathBuf::new(),
            client_key: PathBuf::new(),
            client_id: "fieldlink".into(),
            username: String::new(),
            password: String::new(),
            topic_root: fieldlink_proto::topic::DEFAULT_ROOT.into(),
            owntracks_prefix: fieldlink_proto::topic::DEFAULT_OWNTRACKS_PREFIX.into(),
            max_payload_bytes: 64 * 1024,
            max_batch_fixes: 1000,
            max_connections: 20_000,
            max_connections_per_address: 256,
            uncapped_addresses: fieldlink_ingest::EmbeddedBrokerConfig::default()
                .uncapped_addresses,
            max_messages_per_s: 20,
            message_burst: 100,
            uplink_queue: 10_000,
        }
    }
}

impl MqttConfig {
    /// True when the embedded broker runs (no external `url`).
    pub fn embedded(&self) -> bool {
        self.url.trim().is_empty()
    }

    /// The topic grammar this config describes.
    pub fn topics(&self) -> Result<Topics, fieldlink_proto::TopicError> {
        Topics::new(&self.topic_root, &self.owntracks_prefix)
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// `sqlite://path/file.db` or `postgres://user@host:port/db`. Empty: `sqlite://{data_dir}/fieldlink.db`.
    pub url: String,
    /// PostgreSQL schema to use (created if missing). Empty: the server's default (`public`).
    pub pg_schema: String,
    /// How often buffered positions and track history are written, milliseconds.
    pub flush_interval_ms: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: String::new(),
            pg_schema: String::new(),
            flush_interval_ms: 1000,
        }
    }
}

impl StoreSection {
    /// The effective store URL.
    pub fn effective_url(&self, data_dir: &Path) -> String {
        if self.url.trim().is_empty() {
            format!("sqlite://{}", data_dir.join("fieldlink.db").display())
        } else {
            self.url.clone()
        }
    }

    /// The flush interval, at least 50 ms.
    pub fn flush_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.flush_interval_ms.max(50))
    }
}

/// `[zones]`: GeoJSON files of areas loaded into memory at start, read-only (not written to the
/// store, refused by the API's writes). Relative paths are relative to the working directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZonesConfig {
    /// FeatureCollections whose features are geofences (unless a feature says `"kind": "grid"`).
    pub geofence_files: Vec<PathBuf>,
    /// FeatureCollections whose features are grids (unless a feature says `"kind": "geofence"`).
    pub grid_files: Vec<PathBuf>,
}

/// `[video]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoSection {
    /// A stream without start or keepalive for this long is stale, seconds.
    pub stale_after_s: u64,
    /// A stream silent for this long is dropped, seconds.
    pub expire_after_s: u64,
    /// A start or stop request not answered within this has timed out, seconds.
    pub request_timeout_s: u64,
    /// Fixed cameras (checkpoints): GeoJSON FeatureCollections of Points, or CSV (`.csv`).
    pub camera_files: Vec<PathBuf>,
}

impl Default for VideoSection {
    fn default() -> Self {
        let core = fieldlink_video::VideoConfig::default();
        VideoSection {
            stale_after_s: core.stale_after_s,
            expire_after_s: core.expire_after_s,
            request_timeout_s: core.request_timeout_s,
            camera_files: Vec::new(),
        }
    }
}

impl VideoSection {
    /// The video core's part.
    pub fn core(&self) -> fieldlink_video::VideoConfig {
        fieldlink_video::VideoConfig {
            stale_after_s: self.stale_after_s,
            expire_after_s: self.expire_after_s,
            request_timeout_s: self.request_timeout_s,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,fieldlink_ingest=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info,rumqttd=warn".into(),
        }
    }
}

/// `[shutdown]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight work may take to finish after SIGINT/SIGTERM, seconds.
    pub grace_seconds: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_seconds: 10 }
    }
}

/// `[[units]]`: a unit provisioned from the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredUnit {
    /// Unit id (also its MQTT client id and username).
    pub id: String,
    /// Its secret (MQTT password). At least 16 characters.
    pub secret: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// `on_foot`, `e_bike`, `motorcycle`, `car` or `other`.
    #[serde(default, rename = "type")]
    pub unit_type: String,
    /// Skills, e.g. `["first_aid", "mediation"]`.
    #[serde(default)]
    pub skills: Vec<String>,
}

/// The flags that override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--http`
    pub http: Option<SocketAddr>,
    /// `--mqtt`
    pub mqtt: Option<SocketAddr>,
    /// `--data`
    pub data: Option<PathBuf>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("the configuration has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Loads defaults, then `file` (required when given, optional default otherwise), then the
    /// environment, then `overrides`; then validates everything.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigErrors(vec![format!(
                    "config file {} does not exist (give an existing file with --config, or leave it out to use the defaults)",
                    path.display()
                )]));
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        figment = figment.merge(Env::prefixed("FIELDLINK_").split("__"));
        if let Some(a) = overrides.http {
            figment = figment.merge(("http.listen", a.to_string()));
        }
        if let Some(a) = overrides.mqtt {
            figment = figment.merge(("mqtt.listen", a.to_string()));
        }
        if let Some(d) = &overrides.data {
            figment = figment.merge(("data_dir", d.display().to_string()));
        }
        if let Some(f) = overrides.log_format {
            figment = figment.merge(("log.format", f));
        }
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigErrors(e.into_iter().map(|e| e.to_string()).collect()))?;
        config.validate()?;
        Ok(config)
    }

    /// Problems with the TLS keys: listeners that need a certificate, files that are missing.
    fn tls_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let wants_cert = self.http.tls || (self.mqtt.embedded() && self.mqtt.tls_listen.is_some());
        if wants_cert && !self.tls.configured() {
            problems.push(
                "http.tls or mqtt.tls_listen needs a certificate: set tls.cert and tls.key (PEM files; `fieldlink certs dev` makes some for trying)".to_owned(),
            );
        }
        if self.mqtt.embedded() && !self.mqtt.plain && self.mqtt.tls_listen.is_none() {
            problems.push(
                "mqtt.plain = false leaves the embedded broker no listener: set mqtt.tls_listen too".to_owned(),
            );
        }
        if self.mqtt.client_cert.as_os_str().is_empty()
            != self.mqtt.client_key.as_os_str().is_empty()
        {
            problems.push(
                "mqtt.client_cert and mqtt.client_key go together: set both or neither".to_owned(),
            );
        }
        let files = [
            ("tls.cert", &self.tls.cert),
            ("tls.key", &self.tls.key),
            ("mqtt.ca_file", &self.mqtt.ca_file),
            ("mqtt.client_cert", &self.mqtt.client_cert),
            ("mqtt.client_key", &self.mqtt.client_key),
        ];
        for (key, file) in files {
            if !file.as_os_str().is_empty() && !file.is_file() {
                problems.push(format!(
                    "{key}: {} is not a readable file (paths are relative to the working directory)",
                    file.display()
                ));
            }
        }
        problems
    }

    /// Checks what serde cannot: every problem at once.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Vec::new();
        if let Err(e) = self.mqtt.topics() {
            problems.push(format!("mqtt: {e}"));
        }
        if !self.mqtt.embedded() {
            let url = self.mqtt.url.trim();
            if !(url.starts_with("mqtt://")
                || url.starts_with("tcp://")
                || url.starts_with("mqtts://"))
            {
                problems.push(format!(
                    "mqtt.url {url:?} must look like mqtt://host:port or mqtts://host:port (or be empty to run the embedded broker)"
                ));
            }
        }
        problems.extend(self.tls_problems());
        for (name, value) in [
            ("mqtt.max_payload_bytes", self.mqtt.max_payload_bytes),
            ("mqtt.max_batch_fixes", self.mqtt.max_batch_fixes),
            ("mqtt.max_connections", self.mqtt.max_connections),
            ("mqtt.uplink_queue", self.mqtt.uplink_queue),
        ] {
            if value == 0 {
                problems.push(format!("{name} must be greater than 0"));
            }
        }
        let url = self.store.url.trim();
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "store.url must start with sqlite:// or postgres:// (got {:?})",
                fieldlink_store::redact_url(url)
            ));
        }
        for (key, files) in [
            ("zones.geofence_files", &self.zones.geofence_files),
            ("zones.grid_files", &self.zones.grid_files),
        ] {
            for (i, file) in files.iter().enumerate() {
                if !file.is_file() {
                    problems.push(format!(
                        "{key}[{i}]: {} is not a readable file (paths are relative to the working directory)",
                        file.display()
                    ));
                }
            }
        }
        if let Err(dispatch) = self.dispatch.validate() {
            problems.extend(dispatch.into_iter().map(|p| format!("dispatch.{p}")));
        }
        problems.extend(self.intercom.validate());
        problems.extend(
            self.video
                .core()
                .validate()
                .into_iter()
                .map(|p| format!("video: {p}")),
        );
        for (i, file) in self.video.camera_files.iter().enumerate() {
            if !file.is_file() {
                problems.push(format!(
                    "video.camera_files[{i}]: {} is not a readable file (paths are relative to the working directory)",
                    file.display()
                ));
            }
        }
        let mut groups = std::collections::HashSet::new();
        for (i, g) in self.talkgroups.iter().enumerate() {
            if g.id.as_str().trim().is_empty() {
                problems.push(format!("talkgroups[{i}]: a talkgroup needs an id"));
            } else if !groups.insert(g.id.as_str()) {
                problems.push(format!(
                    "talkgroups[{i}]: talkgroup {:?} is listed twice",
                    g.id.as_str()
                ));
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir must not be empty".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, unit) in self.units.iter().enumerate() {
            if let Err(e) = UnitId::new(unit.id.as_str()) {
                problems.push(format!("units[{i}]: {e}"));
            }
            if !seen.insert(unit.id.as_str()) {
                problems.push(format!("units[{i}]: unit {:?} is listed twice", unit.id));
            }
            if unit.secret.chars().count() < 16 {
                problems.push(format!(
                    "units[{i}] ({}): the secret must be at least 16 characters (use `fieldlink units add` to generate one)",
                    unit.id
                ));
            }
            if !unit.unit_type.is_empty()
                && unit.unit_type.parse::<fieldlink_store::UnitType>().is_err()
            {
                problems.push(format!(
                    "units[{i}] ({}): type {:?} is not one of on_foot, e_bike, motorcycle, car, other",
                    unit.id, unit.unit_type
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::default();
        c.validate().expect("defaults validate");
        assert!(c.mqtt.embedded());
        assert_eq!(
            c.store.effective_url(&c.data_dir),
            "sqlite://data/fieldlink.db"
        );
    }

    #[test]
    fn the_documented_config_file_is_exactly_the_defaults() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/fieldlink.toml");
        let loaded: Config = Figment::new()
            .merge(Toml::file_exact(&file))
            .extract()
            .expect("config/fieldlink.toml parses");
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut c = Config::default();
        c.mqtt.url = "http://nope".into();
        c.mqtt.topic_root = "fl/#".into();
        c.mqtt.uplink_queue = 0;
        c.store.url = "mysql://x".into();
        c.zones.grid_files.push("no/such/grids.geojson".into());
        c.units.push(ConfiguredUnit {
            id: "bad id".into(),
            secret: "short".into(),
            name: String::new(),
            unit_type: "spaceship".into(),
            skills: vec![],
        });
        let err = c.validate().expect_err("invalid");
        assert_eq!(err.0.len(), 8, "{err}");
        let text = err.to_string();
        assert!(text.contains("mqtt.url"), "{text}");
        assert!(text.contains("spaceship"), "{text}");
        assert!(text.contains("zones.grid_files[0]"), "{text}");
    }
}

//! The configuration tree, where it comes from, and its validation.
//!
//! Sources, later ones winning: built-in defaults, the TOML file (`--config`, default
//! `config/fieldlink.toml` when it exists), `FIELDLINK_*` environment variables (nested keys
//! joined by `__`, e.g. `FIELDLINK_MQTT__URL`), then the CLI flags people change daily. Every
//! problem is reported at once, named as the user wrote it (the file and key, the environment
//! variable, or the flag; see [`Config::load`]), and `fieldlink` exits with status 2.
//! `config/fieldlink.toml` in the repository documents every key with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fieldlink_location::LocationConfig;
use fieldlink_proto::Topics;
use serde::{Deserialize, Serialize};

mod checks;
mod sources;

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

/// Every problem found in a configuration, reported together, each in words.
#[derive(Debug, thiserror::Error)]
#[error("{}", list(.0))]
pub struct ConfigErrors(pub Vec<String>);

fn list(problems: &[String]) -> String {
    let count = match problems.len() {
        1 => "one problem".to_owned(),
        n => format!("{n} problems"),
    };
    let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    format!("the configuration has {count}:\n{}", lines.join("\n"))
}

impl Config {
    /// Loads defaults, then `file` (required when given, optional default otherwise), then the
    /// environment, then `overrides`; then validates everything. Every problem is named as the
    /// user wrote it: the file and key, the environment variable, or the flag.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigErrors> {
        let file = match file {
            Some(path) if !path.exists() => {
                return Err(ConfigErrors(vec![format!(
                    "config file {} does not exist (give an existing file with --config, or leave it out to use the defaults)",
                    path.display()
                )]));
            }
            Some(path) => Some(path),
            None => Some(Path::new(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        let mut layers = sources::Layers::read(file, overrides);
        let mut problems = std::mem::take(&mut layers.problems);
        let config = layers.extract(&mut problems);
        if let Some(config) = &config {
            let named = config.problems().into_iter();
            problems.extend(named.map(|p| p.render(|key| layers.name_of(key))));
        }
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigErrors(problems)),
        }
    }

    /// Checks what serde cannot: every problem at once, each key named as a file writes it.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let problems: Vec<String> = (self.problems().iter())
            .map(|p| p.render(str::to_owned))
            .collect();
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
        use figment::Figment;
        use figment::providers::{Format, Toml};
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

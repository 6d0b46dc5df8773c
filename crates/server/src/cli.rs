//! The command line: `fieldlink [serve]`, `fieldlink units ...`, `fieldlink tokens ...`,
//! `fieldlink sim`, `fieldlink demo`, `fieldlink certs dev`, `fieldlink seal`.
//!
//! Each subcommand takes only the options it uses (`sim --help` shows no `--mqtt`). The
//! server's options are also accepted before a subcommand (`fieldlink --data DIR units list`);
//! [`Cli::global`] merges them, the subcommand's own winning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{LogFormat, Overrides};

/// What `fieldlink --help` says before the options.
const ABOUT: &str =
    "fieldlink: the backend and radio gateway of a street's command room and its field responders.";

/// The rest of the top-level help, for people meeting fieldlink.
const LONG_ABOUT: &str = "\
fieldlink: the backend and radio gateway of a street's command room and its field responders.

Responders' handsets connect over MQTT (to fieldlink's embedded broker, or to your Mosquitto or
EMQX) and send positions, status, push-to-talk and SOS. The command room uses the HTTP API and
the /ws WebSocket. fieldlink knows where every responder is and sends the nearest free one a work
order with one click, so that orders are accepted within 1 minute and responders are on scene
within 3.

Run without a command to start the server (the same as `fieldlink serve`). Settings come from
config/fieldlink.toml (or --config FILE), then FIELDLINK_<SECTION>__<KEY> environment variables,
then the flags below. `fieldlink <command> --help` shows a command's own options.";

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "fieldlink", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The server's options (also accepted before any command).
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The settings that pick the config and override it: the top level's, with the
    /// subcommand's own on top.
    pub fn global(&self) -> GlobalArgs {
        let mut global = self.global.clone();
        let own = match &self.command {
            None => return global,
            Some(Command::Serve(serve)) => serve.clone(),
            Some(Command::Units(u)) => u.store.as_global(),
            Some(Command::Tokens(t)) => t.store.as_global(),
            Some(Command::Certs(c)) => c.store.as_global(),
            Some(Command::Sim(s)) => s.config.as_global(),
            Some(Command::Seal(s)) => s.config.as_global(),
            Some(Command::Demo(d)) => GlobalArgs {
                http: d.http,
                mqtt: d.mqtt,
                data: d.data.clone(),
                ..GlobalArgs::default()
            },
        };
        global.config = own.config.or(global.config);
        global.http = own.http.or(global.http);
        global.mqtt = own.mqtt.or(global.mqtt);
        global.data = own.data.or(global.data);
        global.log_format = own.log_format.or(global.log_format);
        global
    }
}

/// The server's options: which config, and the flags that win over it.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Config file (TOML). Default: config/fieldlink.toml when it exists.
    #[arg(
        long,
        short = 'c',
        env = "FIELDLINK_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// HTTP listen address, e.g. 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Embedded MQTT broker listen address, e.g. 0.0.0.0:1883.
    #[arg(long, value_name = "ADDR")]
    pub mqtt: Option<SocketAddr>,
    /// Data directory (SQLite database, first-run credentials). Default: ./data.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl GlobalArgs {
    /// The flags that override the config file and the environment.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            http: self.http,
            mqtt: self.mqtt,
            data: self.data.clone(),
            log_format: self.log_format,
        }
    }
}

/// `--config` and `--data`: for commands that open the server's store or write to its data
/// directory. Accepted after any of their subcommands.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// The server's config file (TOML), for its store and data directory. Default:
    /// config/fieldlink.toml when it exists.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "FIELDLINK_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// The server's data directory. Default: ./data (or the config's data_dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

impl StoreArgs {
    fn as_global(&self) -> GlobalArgs {
        GlobalArgs {
            config: self.config.clone(),
            data: self.data.clone(),
            ..GlobalArgs::default()
        }
    }
}

/// `--config`: for commands that need only the server's topic names.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArg {
    /// The server's config file (TOML), for its MQTT topic names. Default:
    /// config/fieldlink.toml when it exists.
    #[arg(
        long,
        short = 'c',
        env = "FIELDLINK_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    fn as_global(&self) -> GlobalArgs {
        GlobalArgs {
            config: self.config.clone(),
            ..GlobalArgs::default()
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: the MQTT gateway, the HTTP API and WebSocket, dispatch (the default).
    Serve(GlobalArgs),
    /// Register, list, disable and re-key responders' handsets (units).
    Units(UnitsArgs),
    /// Create, list and revoke API tokens (admin, dispatcher, viewer).
    Tokens(TokensArgs),
    /// Simulated responders against a running fieldlink: registers them through its API, then
    /// moves them and answers their work orders in real time until Ctrl-C.
    Sim(SimArgs),
    /// See fieldlink running: a server of its own, 200 simulated responders and a stream of
    /// incidents dispatched to them, told on the terminal until Ctrl-C.
    Demo(DemoArgs),
    /// Make TLS certificates for trying HTTPS, WSS and MQTT over TLS.
    Certs(CertsArgs),
    /// Seal a payload as a handset of the unit would, for `mosquitto_pub -s` (the embedded
    /// broker accepts only sealed payloads); open a sealed downlink; print the unit's seal key.
    Seal(SealArgs),
}

/// `fieldlink units ...`
#[derive(Debug, Args)]
pub struct UnitsArgs {
    /// Which store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: UnitsCommand,
}

/// `fieldlink tokens ...`
#[derive(Debug, Args)]
pub struct TokensArgs {
    /// Which store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: TokensCommand,
}

/// `fieldlink certs ...`
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Which data directory.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: CertsCommand,
}

/// `fieldlink seal ...`
#[derive(Debug, Args, Clone)]
pub struct SealArgs {
    /// Which topic names.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The unit's secret. Not `FIELDLINK_*`: those variables are config keys.
    #[arg(long, env = "FL_UNIT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Seal standard input for this topic and write it to standard output, e.g.
    /// fl/v1/u/demo-1/gps (the topic's kind is sealed in), or owntracks/demo-1/phone (the
    /// OwnTracks app's encrypted envelope).
    #[arg(long, conflicts_with_all = ["open", "print_key"], required_unless_present_any = ["open", "print_key"])]
    pub topic: Option<String>,
    /// Open a sealed downlink read from standard input and write its payload to standard output.
    #[arg(long, conflicts_with = "print_key")]
    pub open: bool,
    /// Print the unit's seal key: what the OwnTracks app's "encryption key" setting takes.
    #[arg(long)]
    pub print_key: bool,
}

/// `fieldlink certs ...`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Make a local CA, a server certificate and a client certificate for trying TLS (written
    /// to DATA/certs, or --dir), and print the settings that use them.
    Dev {
        /// Where to write them. Default: the data directory's `certs/`.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Host names or addresses the server certificate is for (repeat, or comma separated).
        /// Default: localhost, 127.0.0.1, ::1.
        #[arg(long = "host", value_delimiter = ',')]
        hosts: Vec<String>,
        /// Days the certificates are valid.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
}

/// `fieldlink sim ...`
#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Which topic names.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The fieldlink HTTP API the units are registered with.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The MQTT broker the handsets connect to, host:port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub broker: String,
    /// An admin API token (creates units and renews their secrets). Not `FIELDLINK_*`: those
    /// variables are config keys.
    #[arg(long, env = "FL_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// How many responders.
    #[arg(long, default_value_t = 200)]
    pub units: usize,
    /// Unit ids are this prefix and a number: sim000, sim001, ...
    #[arg(long, default_value = "sim")]
    pub prefix: String,
    /// Seed of every random choice: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time between two fixes of one responder (and between two simulation steps), e.g. 1s, 500ms.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub rate: Duration,
    /// The area they patrol: min_lat,min_lon,max_lat,max_lon (default: Shangcheng, Hangzhou).
    #[arg(long, value_parser = parse_bbox)]
    pub bbox: Option<fieldlink_sim::Bbox>,
    /// Only move and answer orders: no heartbeats, push-to-talk, video, field reports, breaks
    /// or coverage losses.
    #[arg(long)]
    pub orders_only: bool,
    /// Send payloads unsealed: for an external broker (Mosquitto, EMQX) whose ACL binds each
    /// handset to its topics. fieldlink's embedded broker accepts only sealed payloads.
    #[arg(long)]
    pub plain: bool,
    /// Where work orders come from and receipts go: `mqtt` (each unit's downlink topic) or `ws`
    /// (a session per unit on --server's /ws/handset). Positions and every other message go
    /// over MQTT either way.
    #[arg(long, value_enum, default_value_t = OrdersOver::Mqtt)]
    pub orders: OrdersOver,
    /// How often progress is printed.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub progress_every: Duration,
}

/// `fieldlink sim --orders`: the channel of work orders and receipts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrdersOver {
    /// The unit's MQTT downlink; receipts as MQTT acks.
    Mqtt,
    /// The server's /ws/handset WebSocket; receipts over it.
    Ws,
}

/// `fieldlink demo ...`
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// How many simulated responders.
    #[arg(long, default_value_t = 200)]
    pub units: usize,
    /// Seed of every random choice (responders and incidents).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A new incident about this often (each gap is drawn between 2/3 and 4/3 of it).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub incident_every: Duration,
    /// How long responders take to answer an order, e.g. 5s-40s.
    #[arg(long, default_value = "5s-40s", value_parser = parse_range)]
    pub accept_delay: (Duration, Duration),
    /// How often the live SLA figures are printed.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub sla_every: Duration,
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// HTTP listen address. Default: 127.0.0.1:8080 when free, else a free port.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// The demo's MQTT broker listen address. Default: 127.0.0.1:1883 when free, else a free
    /// port.
    #[arg(long, value_name = "ADDR")]
    pub mqtt: Option<SocketAddr>,
    /// Keep the demo's data in DIR. Default: a fresh temporary directory, removed at the end.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// `1s`, `500ms`, `2m`, `1h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 1s, 500ms, 2m or 1h"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?} is not a duration like 1s, 500ms, 2m or 1h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a duration like 1s, 500ms, 2m or 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `5s-40s`: a range of durations, the shorter first.
pub fn parse_range(s: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not a range like 5s-40s"))?;
    let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
    if lo > hi {
        return Err(format!(
            "{s:?}: the first duration must not be longer than the second"
        ));
    }
    Ok((lo, hi))
}

/// `min_lat,min_lon,max_lat,max_lon`.
pub fn parse_bbox(s: &str) -> Result<fieldlink_sim::Bbox, String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?} is not min_lat,min_lon,max_lat,max_lon"))?;
    let [a, b, c, d] = v[..] else {
        return Err(format!("{s:?} is not min_lat,min_lon,max_lat,max_lon"));
    };
    fieldlink_sim::Bbox::new(a, b, c, d).map_err(|e| e.to_string())
}

/// `fieldlink units ...`
#[derive(Debug, Subcommand)]
pub enum UnitsCommand {
    /// Register a unit and print its new secret (shown once).
    Add {
        /// Unit id: letters, digits, '_', '-', '.' (also its MQTT client id and username).
        id: String,
        /// Display name (call sign).
        #[arg(long, default_value = "")]
        name: String,
        /// on_foot, e_bike, motorcycle, car or other.
        #[arg(long = "type", default_value = "on_foot")]
        unit_type: String,
        /// Skills, comma separated (e.g. first_aid,mediation).
        #[arg(long, value_delimiter = ',')]
        skills: Vec<String>,
    },
    /// List units.
    List,
    /// Refuse the unit's connections and messages.
    Disable {
        /// Unit id.
        id: String,
    },
    /// Accept the unit again.
    Enable {
        /// Unit id.
        id: String,
    },
    /// Give the unit a new secret (printed once); the old one stops working.
    RotateSecret {
        /// Unit id.
        id: String,
    },
}

/// `fieldlink tokens ...`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an API token and print it (shown once).
    Add {
        /// What it is for, e.g. "wall display".
        name: String,
        /// admin, dispatcher or viewer.
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id (tok_...).
    Revoke {
        /// Token id.
        id: String,
    },
}

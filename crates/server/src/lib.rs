//! The `fieldlink` server: config, wiring, HTTP API, provisioning, graceful shutdown.
//!
//! Layout (one concept per module):
//! - [`config`]: the config tree, its sources (file, `FIELDLINK_*`, flags) and validation.
//! - [`cli`]: the command line; [`admin`]: `fieldlink units|tokens ...` and the first-run bootstrap.
//! - [`app`]: builds every part and starts the tasks ([`start`] returns a running [`Server`]).
//! - [`credentials`]: the cache of units and API tokens (MQTT CONNECT and `Authorization`).
//! - [`provision`]: creating units and tokens, shared by the CLI and the admin API.
//! - [`uplink`]: decoded uplinks into the location core; [`persist`]: positions to the store;
//!   [`retention`]: pruning old track history.
//! - [`dispatch`]: the dispatch core's owner: commands → one store commit → downlinks; handset
//!   inputs and the timer tick.
//! - [`http`]: the HTTP API; [`metrics`]: the server's metrics; [`telemetry`]: logging.
//! - [`zones`]: geofences and grids: loading (store and config files), members, zone events.
//! - [`state`]: what the handlers and tasks share; [`health`]: whether each service's commits
//!   go through (`/readyz`).
//! - [`sim`]: `fieldlink sim`, simulated responders against a running server; [`demo`]:
//!   `fieldlink demo`, a server, a simulated crew and a stream of incidents in one process.
//!
//! `src/main.rs` is the thin binary around these.

pub mod admin;
pub mod app;
pub mod certs;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod dispatch;
pub mod health;
pub mod http;
pub mod intercom;
pub mod metrics;
pub mod narrate;
pub mod persist;
pub mod provision;
pub mod push;
pub mod retention;
pub mod seal;
pub mod service_loop;
pub mod sim;
pub mod state;
pub mod table;
pub mod telemetry;
pub mod uplink;
pub mod video;
pub mod zones;

pub use app::{Server, start};
pub use config::Config;

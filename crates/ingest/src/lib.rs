//! The MQTT side of fieldlink: where handset messages enter and downlinks leave.
//!
//! ## Layout
//!
//! - [`broker`]: the embedded broker (rumqttd), its limits, handset authentication at CONNECT,
//!   and the in-process link fieldlink consumes it through.
//! - [`external`]: an external broker (Mosquitto, EMQX) reached through rumqttc instead.
//! - [`source`]: what both give the rest of fieldlink: a [`Source`] (the uplink queue of
//!   [`RawMessage`]s) and a [`Downlink`] publisher with a readiness probe.
//! - [`decode`]: protobuf / OwnTracks decoding and *structural* validation, pure and clock-free.
//! - [`pipeline`]: the task that drains the uplink queue through the [`Decoder`], counts and
//!   logs rejections, and forwards accepted [`Received`] envelopes.
//! - [`replay`]: the replay check for sealed uplinks ([`ReplayMarks`]), persisted by the server.
//! - [`throttle`]: the per-unit message rate limit the pipeline applies before decoding.
//! - [`metrics`]: the Prometheus metrics of all the above, and rate-limited rejection logs.
//!
//! This crate does not judge whether a fix is *plausible* (zero, future, too old, duplicate,
//! jump): that is the location crate's. It does not persist anything either.
//!
//! ## Wiring
//!
//! ```text
//! EmbeddedBroker::start / external::connect ──► Source { uplink, downlink }
//! pipeline::run(uplink, Decoder, units, replay, clock, metrics, sink, shutdown) ──► mpsc<Received>
//! Downlink::publish(unit, payload) ──► {root}/u/{unit}/down (sealed on the embedded broker)
//! ```

pub mod broker;
pub mod decode;
pub mod external;
pub mod metrics;
pub mod pipeline;
pub mod replay;
pub mod source;
pub mod throttle;

use std::io;
use std::net::SocketAddr;

use thiserror::Error;

pub use broker::{Authenticator, BrokerTls, EmbeddedBroker, EmbeddedBrokerConfig};
pub use decode::{Decoder, Envelope, Freshness, Limits, Rejection, Sealing, UnitDirectory, Uplink};
pub use external::{ExternalBrokerConfig, connect};
pub use metrics::IngestMetrics;
pub use pipeline::{Received, run};
pub use replay::{Channel, Mark, ReplayMarks};
pub use source::{Downlink, RawMessage, Source, SourceWorker};
pub use throttle::{Throttle, ThrottleConfig, Verdict};

/// What can go wrong starting, running or publishing through the MQTT side.
#[derive(Debug, Error)]
pub enum IngestError {
    /// The embedded broker's port is taken (often by a Mosquitto already running there).
    #[error(
        "MQTT port {addr} is already in use (another broker such as Mosquitto may be running there): \
         choose another with --mqtt {suggestion}, or use that broker with mqtt.url = \"{url}\""
    )]
    PortInUse {
        /// The address asked for.
        addr: SocketAddr,
        /// A neighbouring address to suggest.
        suggestion: SocketAddr,
        /// The `mqtt.url` that would use the broker already there.
        url: String,
    },
    /// The embedded broker's address cannot be bound for another reason (permissions, no such
    /// interface).
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// A configuration value is out of the range the broker accepts.
    #[error("invalid MQTT configuration: {0}")]
    InvalidConfig(String),
    /// The external broker URL cannot be used.
    #[error("mqtt.url {url:?} is not usable: {reason}")]
    BadUrl {
        /// The URL as configured.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The embedded broker refused or dropped fieldlink's own in-process link.
    #[error("the embedded MQTT broker's internal link failed: {0}")]
    Link(String),
    /// A thread could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// What the operating system said.
        source: io::Error,
    },
    /// The connection to the broker is gone for good (fieldlink is shutting down).
    #[error("the MQTT connection is closed (fieldlink is shutting down)")]
    Closed,
    /// A downlink on the embedded broker must be sealed with the unit's key, and it has none
    /// (registered before sealing existed): rotate its secret.
    #[error(
        "unit {0} has no seal key, so nothing can be sent to it on the embedded broker: rotate its secret (fieldlink units rotate-secret {0})"
    )]
    NoSealKey(fieldlink_proto::UnitId),
}

/// Serde helper: a [`std::time::Duration`] written as a number of seconds (`2.5` or `30`).
pub(crate) mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error as _};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| D::Error::custom(format!("{secs} is not a duration in seconds")))
    }
}

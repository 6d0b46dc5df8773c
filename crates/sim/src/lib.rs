//! The simulated fleet: virtual handsets that talk to fieldlink over real MQTT.
//!
//! Tests, demos and benchmarks use it to put responders on the street without phones.
//!
//! # Layout
//!
//! - [`handset`]: one virtual handset, a real rumqttc client with its own credentials (client id =
//!   username = unit id, password = secret), a last will on its `status` topic, a subscription to its
//!   own downlink, and publishes that wait for the broker's PUBACK when asked.
//! - [`route`]: a seeded movement model on a street-like grid inside a bounding box (default:
//!   Shangcheng district, Hangzhou) at the speed of a unit on foot, on an e-bike or in a car. No I/O.
//! - [`fleet`]: N handsets connected with bounded concurrency, each publishing fixes along its route
//!   at an interval, with counters, the last published position per unit, and a clean stop.
//! - [`responder`]: one responder as a pure state machine (no I/O, time passed in, seeded):
//!   receipts, human-like acceptance delays, declines and silence, travel to the scene, arrival,
//!   resolution, cancel and reassignment, heartbeats, duty status, push-to-talk, video, field
//!   reports, SOS, coverage losses with buffered batches.
//! - [`ws`]: one handset's WebSocket session on the server's `/ws/handset`: work orders, cancels
//!   and reassignments in (as the downlinks MQTT would carry, with the same ids), receipts out.
//! - [`crew`]: N responders over real handsets, stepped on the clock ([`Crew::step`], for tests on
//!   a manual clock) or in real time ([`Crew::run`], for `fieldlink sim` and `fieldlink demo`).
//!   Their orders come over MQTT, or over WebSocket ([`CrewConfig::orders`]); everything else
//!   goes over MQTT.
//!
//! # Not here yet
//!
//! Duty status over WebSocket (`status` on `/ws/handset`): the crew reports it over MQTT. The
//! load benchmark of issue 7 is built elsewhere on [`fleet`].

pub mod crew;
pub mod fleet;
pub mod handset;
pub mod responder;
pub mod route;
pub mod ws;

use std::time::Duration;

use fieldlink_proto::UnitId;
use thiserror::Error;

pub use crew::{Crew, CrewConfig, CrewStats, CrewStatsHandle, OrderChannel, StepReport, kind_for};
pub use fleet::{Fleet, FleetConfig, FleetStats, PublishedFix};
pub use handset::seal::Sealer;
pub use handset::{Handset, HandsetConfig};
pub use responder::{Action, Answer, Behaviour, Responder, ResponderState, Tally};
pub use route::{Bbox, Route, RoutePoint, SplitMix64, UnitKind};
pub use rumqttc::QoS;
pub use ws::{WsHandset, WsHandsetConfig};

/// What can go wrong when a simulated handset talks to a broker.
#[derive(Debug, Error)]
pub enum SimError {
    /// The broker address is not `host:port`.
    #[error("broker address {0:?} is not host:port (for example 127.0.0.1:1883)")]
    BadBroker(String),
    /// The broker answered CONNECT with a refusal.
    #[error("the broker at {broker} refused unit {unit}: {reason}")]
    Refused {
        /// `host:port`
        broker: String,
        /// The unit that tried to connect.
        unit: UnitId,
        /// The CONNACK return code, in words.
        reason: &'static str,
    },
    /// The connection could not be made (nothing listening, network error, protocol error).
    #[error("unit {unit} could not connect to the broker at {broker}: {source}")]
    Connect {
        /// `host:port`
        broker: String,
        /// The unit that tried to connect.
        unit: UnitId,
        /// What rumqttc reported (boxed: it is large, and errors travel by value).
        #[source]
        source: Box<rumqttc::ConnectionError>,
    },
    /// CONNACK or SUBACK did not come in time.
    #[error("unit {unit} got no answer from the broker at {broker} within {after:?}")]
    ConnectTimeout {
        /// `host:port`
        broker: String,
        /// The unit that tried to connect.
        unit: UnitId,
        /// How long it waited.
        after: Duration,
    },
    /// The broker refused the subscription to the unit's own downlink.
    #[error(
        "the broker refused unit {unit} a subscription to {topic} (does its ACL grant the unit its downlink?)"
    )]
    SubscribeRefused {
        /// The unit.
        unit: UnitId,
        /// The downlink topic.
        topic: String,
    },
    /// The handset's connection is gone (lost, or closed with `disconnect`); what was not
    /// acknowledged may not have been delivered.
    #[error("unit {unit} is not connected to the broker: {reason}")]
    Disconnected {
        /// The unit.
        unit: UnitId,
        /// Why the connection ended.
        reason: String,
    },
    /// A QoS 1/2 publish was not acknowledged in time; it may or may not have been delivered.
    #[error("unit {unit}: the broker did not acknowledge the publish on {topic} within {after:?}")]
    AckTimeout {
        /// The unit.
        unit: UnitId,
        /// The topic of the publish.
        topic: String,
        /// How long it waited.
        after: Duration,
    },
    /// Some handsets of a fleet could not connect; the fleet was stopped.
    #[error("{failed} of {total} handsets could not connect; the first error: {first}")]
    FleetConnect {
        /// How many failed.
        failed: usize,
        /// How many were asked for.
        total: usize,
        /// The first failure.
        #[source]
        first: Box<SimError>,
    },
    /// The server's URL is not `http(s)://` or `ws(s)://` with a host.
    #[error(
        "server URL {0:?} is not http(s):// or ws(s):// with a host (for example http://127.0.0.1:8080)"
    )]
    BadServer(String),
    /// The handset's WebSocket session could not be opened (nothing listening, TLS, refused
    /// upgrade, no `hello` in time).
    #[error("unit {unit} could not open a WebSocket session at {url}: {reason}")]
    WsConnect {
        /// The `ws(s)://.../ws/handset` URL.
        url: String,
        /// The unit.
        unit: UnitId,
        /// What went wrong, in words (a refusal carries the HTTP status and the API's error).
        reason: String,
    },
    /// The server did not answer a WebSocket receipt in time; it may or may not have it.
    #[error("unit {unit}: no answer to a WebSocket receipt within {after:?}")]
    NoAnswer {
        /// The unit.
        unit: UnitId,
        /// How long it waited.
        after: Duration,
    },
    /// The server answered a WebSocket receipt with an error (e.g. not this unit's order).
    #[error("unit {unit}: the receipt for order {order} was refused: {code}: {message}")]
    ReceiptRefused {
        /// The unit.
        unit: UnitId,
        /// The order.
        order: String,
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// The configuration cannot work (every problem, in words).
    #[error("the simulator configuration is not usable: {}", .0.join("; "))]
    Config(Vec<String>),
}

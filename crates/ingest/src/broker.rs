//! The embedded MQTT broker (rumqttd 0.20), so one process is enough.
//!
//! [`EmbeddedBroker::start`] checks the port, configures every rumqttd limit explicitly (see
//! [`EmbeddedBrokerConfig`]), authenticates handsets at CONNECT through an [`Authenticator`],
//! and consumes the uplink through rumqttd's in-process link rather than a second TCP hop. The
//! link runs on its own thread, in [`link`].
//!
//! What rumqttd does not do, and what that means here:
//! - **No topic ACL**, and no way to kick a client: a handset could publish as another unit.
//!   DESIGN.md "Identity" answers that with sealed payloads: the server's decoder requires
//!   every uplink to open with its topic's unit's key (`decode::Sealing::Required`), and
//!   every [`Downlink`] is sealed with the unit's key. What is checked
//!   at CONNECT ([`check_login`]): a client id or username that is empty or has `+`, `#`, `/` or
//!   a control character is refused first, then the [`Authenticator`] decides.
//! - **A publish that no subscription matches disconnects the publisher** (rumqttd's
//!   `NoMatchingFilters`). fieldlink's link subscribes to the uplink filters and to
//!   `{owntracks}/+/+/+`, so the OwnTracks app's side topics (`.../event`, `.../waypoint`)
//!   are counted as `bad_topic` instead of cutting the phone off.
//! - **No clean stop.** rumqttd's router, listener and timer threads have no shutdown: they
//!   end with the process. Cancelling the shutdown token stops fieldlink's link thread (the
//!   uplink then ends); the listener keeps accepting until the process exits.
//! - **Not fit for a public socket**: its TLS handshake blocks its accept loop with no timeout
//!   (one silent client stops every TLS connection), it has no cap per address, and its auth
//!   hook is not told the peer's address. So both public listeners, plain and TLS, are
//!   fieldlink's own ([`front`]): a task and a deadline per connection, a cap per address, the
//!   CONNECT checked there (refusals answered with a CONNACK code, counted in
//!   `fieldlink_mqtt_connect_refused_total{reason}` and logged with the peer's address), and
//!   the vetted connection then handed to rumqttd itself, through `rumqttd::Acceptor`: a
//!   patch of ours (`vendor/rumqttd/PATCH.md`), since rumqttd has no way to take a connection
//!   it did not accept. rumqttd's own listener only gets a loopback port.
//! - **MQTT 3.1.1 only** on this port (rumqttd's `v4` server), which every handset stack and
//!   the OwnTracks app speak.

mod front;
mod link;

#[doc(hidden)]
pub use front::read_first_packet;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldlink_proto::Topics;
use rumqttd::{
    Broker, Config, ConnectionSettings, MetricSettings, MetricType, RouterConfig, ServerSettings,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::decode::UnitDirectory;
use crate::metrics::Refusal;
use crate::source::{Downlink, Source, SourceWorker};
use crate::{IngestError, IngestMetrics};

/// Room for the topic inside an MQTT packet whose payload may be `max_payload_bytes` long.
const TOPIC_HEADROOM: usize = 1024;

/// Checks a handset's credentials at CONNECT. Called on rumqttd's accept path for every
/// connection attempt, so it must be cheap and must not block: back it with an in-memory
/// cache. The server's rule: client id == username == unit id, and the secret matches.
pub trait Authenticator: Send + Sync + 'static {
    /// True to let the client in.
    fn authenticate(&self, client_id: &str, username: &str, password: &str) -> bool;
}

/// The embedded broker's limits. Every rumqttd limit is set from here (none left to its
/// sample config, whose 100 MiB segments and 10,010 connections do not fit us).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedBrokerConfig {
    /// Where handsets connect. Default `0.0.0.0:1883`.
    pub listen: SocketAddr,
    /// Most handsets connected at once (the router's slab is sized for it; one more slot is
    /// added for fieldlink's own link). Default 20,000, this machine's file-descriptor limit.
    pub max_connections: usize,
    /// Largest payload a handset may publish, bytes; a larger packet makes rumqttd drop the
    /// connection. Default 64 KiB (a 1,000-fix GPS batch is about 40 KiB).
    pub max_payload_bytes: usize,
    /// QoS 1 downlinks in flight per handset before rumqttd waits for acks. Default 100.
    pub max_inflight: usize,
    /// Time from TCP accept to a whole MQTT CONNECT, the TLS handshake included, seconds (at
    /// most 65.5: rumqttd, which is given it too, keeps it in 16-bit milliseconds). Idle sockets
    /// are closed after it, so they cannot hold slots. Default 5.
    #[serde(deserialize_with = "crate::secs::deserialize")]
    pub connection_timeout: Duration,
    /// Pause after each connection a listener accepts, milliseconds. Any pause caps the accept
    /// rate (1 ms → 1,000/s), which a reconnect storm of thousands of handsets would feel.
    /// Default 0: `connection_timeout` and `max_connections_per_address` already guard
    /// against idle and piled-up sockets.
    pub accept_delay_ms: u64,
    /// Size of one commit-log segment, bytes. rumqttd keeps every filter's messages in
    /// segments and a reader pulls a whole segment at a time, so small segments keep latency
    /// even. Default 1 MiB.
    pub segment_bytes: usize,
    /// Segments kept per filter. `segment_bytes × max_segments` bounds the memory one filter
    /// (e.g. the uplink) holds and how far fieldlink's link may fall behind before rumqttd
    /// skips it ahead (messages lost, logged by rumqttd as a cursor jump). Default 10.
    pub max_segments: usize,
    /// QoS 0 messages the router moves to one subscriber per scheduling round. Default 200.
    pub max_outgoing_packets: u64,
    /// Capacity of the `uplink_queue` between the link thread and the pipeline. Default 8,192.
    pub uplink_queue: usize,
    /// Listen in plain text on `listen`. Default true; false needs `tls`.
    pub plain: bool,
    /// A second listener speaking MQTT over TLS. Default none.
    pub tls: Option<BrokerTls>,
    /// Most connections from one IP address at once, plain and TLS together. Default 256:
    /// handsets behind a carrier's NAT share one address.
    pub max_connections_per_address: usize,
    /// Addresses `max_connections_per_address` does not apply to. Default this host itself
    /// (`127.0.0.1`, `::1`): the simulator and the load bench connect thousands of handsets
    /// from here, and nobody outside can come from it. A TCP proxy on the same host would be
    /// uncapped too, and should cap connections itself.
    pub uncapped_addresses: Vec<std::net::IpAddr>,
}

/// The embedded broker's TLS listener: server-authenticated TLS (rustls, terminated by fieldlink
/// in front of rumqttd, see the module notes) with a certificate chain and key in PEM files.
/// Handsets log in with their unit id and secret; no client certificates (docs/security.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerTls {
    /// Listen address, usually port 8883.
    pub listen: SocketAddr,
    /// Certificate chain, leaf first (PEM).
    pub cert: std::path::PathBuf,
    /// Its private key (PEM).
    pub key: std::path::PathBuf,
}

impl Default for EmbeddedBrokerConfig {
    fn default() -> Self {
        EmbeddedBrokerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
            max_connections: 20_000,
            max_payload_bytes: 64 * 1024,
            max_inflight: 100,
            connection_timeout: Duration::from_secs(5),
            accept_delay_ms: 0,
            segment_bytes: 1024 * 1024,
            max_segments: 10,
            max_outgoing_packets: 200,
            uplink_queue: 8192,
            plain: true,
            tls: None,
            max_connections_per_address: 256,
            uncapped_addresses: vec![
                std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::Ipv6Addr::LOCALHOST.into(),
            ],
        }
    }
}

impl EmbeddedBrokerConfig {
    /// Every problem with this configuration, in words (empty when it is usable).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.plain && self.tls.is_none() {
            p.push("the broker needs a listener: plain, tls or both".to_owned());
        }
        let timeout_ms = self.connection_timeout.as_millis();
        if timeout_ms == 0 || timeout_ms > u128::from(u16::MAX) {
            p.push(format!(
                "connection_timeout must be between 0.001 and 65.535 seconds, not {} s",
                self.connection_timeout.as_secs_f64()
            ));
        }
        for (name, value) in [
            ("max_connections", self.max_connections),
            ("max_payload_bytes", self.max_payload_bytes),
            ("max_inflight", self.max_inflight),
            ("max_segments", self.max_segments),
            ("uplink_queue", self.uplink_queue),
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
        ] {
            if value == 0 {
                p.push(format!("{name} must be at least 1"));
            }
        }
        if self.max_outgoing_packets == 0 {
            p.push("max_outgoing_packets must be at least 1".to_owned());
        }
        if self.segment_bytes < self.max_payload_bytes + TOPIC_HEADROOM {
            p.push(format!(
                "segment_bytes ({}) must hold at least one message of max_payload_bytes ({}) plus its topic",
                self.segment_bytes, self.max_payload_bytes
            ));
        }
        p
    }

    /// The largest MQTT packet a handset may send, after its fixed header: a payload of
    /// `max_payload_bytes` and its topic, or a CONNECT with a last will as large.
    fn max_connect_bytes(&self) -> usize {
        self.max_payload_bytes + TOPIC_HEADROOM
    }

    /// How rumqttd serves a handset's connection, whichever way it arrived.
    fn connection_settings(
        &self,
        auth: Arc<dyn Authenticator>,
        metrics: &IngestMetrics,
    ) -> ConnectionSettings {
        let mut connections = ConnectionSettings {
            connection_timeout_ms: u16::try_from(self.connection_timeout.as_millis())
                .unwrap_or(u16::MAX),
            max_payload_size: self.max_connect_bytes(),
            max_inflight_count: self.max_inflight,
            // Static username/password pairs: none; `external_auth` below decides.
            auth: None,
            external_auth: None,
            // No log per unknown topic: a publish that matches no subscription is refused.
            dynamic_filters: false,
        };
        let metrics = metrics.clone();
        // fieldlink's listener has checked this login already; checked again so that a local
        // process connecting to rumqttd's loopback port directly gains nothing. Counted, but
        // with no address: rumqttd does not pass it.
        connections.set_auth_handler(move |client_id, username, password| {
            let verdict = check_login(auth.as_ref(), &client_id, &username, &password);
            if let Err(refusal) = verdict {
                metrics.connect_refused(refusal, None, Some((&client_id, &username)));
            }
            std::future::ready(verdict.is_ok())
        });
        connections
    }

    /// rumqttd's config. Handsets reach rumqttd through fieldlink's listeners
    /// ([`front`], `rumqttd::Acceptor`); rumqttd insists on a listener of its own too, which
    /// gets the loopback address `upstream` (the hop bench connects there).
    fn rumqttd_config(&self, connections: ConnectionSettings, upstream: SocketAddr) -> Config {
        let server = ServerSettings {
            name: "fieldlink-mqtt-upstream".to_owned(),
            listen: upstream,
            tls: None,
            next_connection_delay_ms: 0,
            connections,
        };
        let servers = HashMap::from([("fieldlink-upstream".to_owned(), server)]);
        let router = RouterConfig {
            // +1: fieldlink's own in-process link is a connection too.
            max_connections: self.max_connections + 1,
            max_outgoing_packet_count: self.max_outgoing_packets,
            max_segment_size: self.segment_bytes,
            max_segment_count: self.max_segments,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        };
        Config {
            id: 0,
            router,
            v4: Some(servers),
            v5: None,
            ws: None,
            cluster: None,
            // rumqttd's console and Prometheus exporter would open ports of their own; fieldlink
            // serves its metrics itself.
            console: None,
            bridge: None,
            prometheus: None,
            // The router's meters (connection count) every second, read by the link thread.
            // Alerts must be configured too: rumqttd 0.20's timer thread unwraps both intervals
            // (link/timer.rs) and panics when either is missing. Nobody reads alerts yet.
            metrics: Some(HashMap::from([
                (MetricType::Meters, push_every(link::METER_INTERVAL)),
                (MetricType::Alerts, push_every(Duration::from_secs(60))),
            ])),
        }
    }
}

/// The CONNECT decision: an unsafe client id or username (see
/// [`fieldlink_proto::topic::is_safe_mqtt_identity`]) is refused before the credentials are
/// looked at; then `auth` decides.
fn check_login(
    auth: &dyn Authenticator,
    client_id: &str,
    username: &str,
    password: &str,
) -> Result<(), Refusal> {
    use fieldlink_proto::topic::is_safe_mqtt_identity;
    if !is_safe_mqtt_identity(client_id) || !is_safe_mqtt_identity(username) {
        return Err(Refusal::BadIdentity);
    }
    if auth.authenticate(client_id, username, password) {
        Ok(())
    } else {
        Err(Refusal::BadCredentials)
    }
}

/// rumqttd's `MetricSettings` has private fields; its serde form is the only constructor.
fn push_every(interval: Duration) -> MetricSettings {
    use serde::de::value::{Error, MapDeserializer};
    MetricSettings::deserialize(MapDeserializer::<_, Error>::new(
        [("push_interval", interval.as_secs().max(1))].into_iter(),
    ))
    .expect("push_interval is MetricSettings' only field")
}

/// A running embedded broker. Dropping it does not stop rumqttd (see the module notes).
#[derive(Debug)]
pub struct EmbeddedBroker {
    listen: SocketAddr,
    upstream: SocketAddr,
    listening: Arc<AtomicBool>,
}

impl EmbeddedBroker {
    /// Starts fieldlink's listeners on `cfg.listen` (and `cfg.tls`), rumqttd behind them, and
    /// fieldlink's link to it, subscribed to `topics`' uplink filters. Handsets are let in when
    /// `auth` says so; downlinks are sealed with the keys `keys` gives (see [`Downlink`]).
    ///
    /// The public ports are bound before anything else, so that a port already taken is an
    /// error in words.
    ///
    /// `metrics` gets `fieldlink_connected_handsets`; cancelling `shutdown` stops the link
    /// thread (await `Source::worker`).
    pub fn start(
        cfg: &EmbeddedBrokerConfig,
        auth: Arc<dyn Authenticator>,
        keys: Arc<dyn UnitDirectory + Send + Sync>,
        topics: &Topics,
        metrics: &IngestMetrics,
        shutdown: CancellationToken,
    ) -> Result<(EmbeddedBroker, Source), IngestError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(IngestError::InvalidConfig(problems.join("; ")));
        }
        // The public listeners are fieldlink's own (see the module notes): bound here, so a
        // taken port or a bad certificate stops the start with its reason, and served from
        // tasks that hand vetted connections to rumqttd. rumqttd's own listener must exist but
        // only gets a loopback port.
        let upstream = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?
            .local_addr()
            .map_err(|source| IngestError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let mut listeners = Vec::new();
        if cfg.plain {
            listeners.push((bind(cfg.listen)?, None));
        }
        if let Some(tls) = &cfg.tls {
            let server = fieldlink_tls::server_config(&tls.cert, &tls.key, &[])
                .map_err(|e| IngestError::InvalidConfig(format!("mqtt TLS listener: {e}")))?;
            listeners.push((
                bind(tls.listen)?,
                Some(tokio_rustls::TlsAcceptor::from(server)),
            ));
        }

        let connections = cfg.connection_settings(Arc::clone(&auth), metrics);
        let mut broker = Broker::new(cfg.rumqttd_config(connections.clone(), upstream));
        let shared = Arc::new(front::Shared {
            broker: broker
                .acceptor("fieldlink-mqtt-links", connections)
                .map_err(|e| IngestError::Link(e.to_string()))?,
            accept_delay: Duration::from_millis(cfg.accept_delay_ms),
            connect_timeout: cfg.connection_timeout,
            max_per_address: cfg.max_connections_per_address,
            uncapped: cfg.uncapped_addresses.clone(),
            max_connect_bytes: cfg.max_connect_bytes(),
            auth,
            metrics: metrics.clone(),
            open: Arc::default(),
        });
        // Take the link before starting: `start` blocks for the broker's life.
        let (mut link_tx, link_rx) = broker
            .link(link::CLIENT_ID)
            .map_err(|e| IngestError::Link(e.to_string()))?;
        let meters = broker
            .meters()
            .map_err(|e| IngestError::Link(e.to_string()))?;
        let mut filters = topics.uplink_filters().to_vec();
        filters.push(format!("{}/+/+/+", topics.owntracks_prefix()));
        for filter in &filters {
            link_tx
                .subscribe(filter.clone())
                .map_err(|e| IngestError::Link(e.to_string()))?;
        }

        let listening = Arc::new(AtomicBool::new(true));
        // The address handsets dial: the plain listener's, else the TLS one's, as bound, so
        // that port 0 in the config names the port the system chose.
        let listen = match listeners.first() {
            Some((listener, _)) => (listener.local_addr()).map_err(|source| IngestError::Bind {
                addr: cfg.listen,
                source,
            })?,
            None => cfg.listen,
        };
        for (listener, tls) in listeners {
            let front = front::Front {
                listener,
                tls,
                shared: Arc::clone(&shared),
            };
            // Needs the caller's tokio runtime (the server starts the broker from it), where
            // the handsets' links then run too.
            tokio::spawn(front.run(shutdown.clone()));
        }
        {
            let listening = Arc::clone(&listening);
            std::thread::Builder::new()
                .name("fieldlink-mqtt-broker".to_owned())
                .spawn(move || {
                    // Returns only when rumqttd's listener thread ends (it failed to bind or
                    // crashed); rumqttd logs why.
                    let result = broker.start();
                    listening.store(false, Ordering::Release);
                    let why = match result {
                        Ok(()) => "its listener ended".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    tracing::error!(%listen, error = %why, "the embedded MQTT broker stopped listening");
                })
                .map_err(|source| IngestError::Thread {
                    name: "fieldlink-mqtt-broker",
                    source,
                })?;
        }

        // The queue between the link thread and the pipeline. When it is full the link thread
        // waits (`blocking_send`): rumqttd then stops forwarding to the link and keeps the
        // uplink in its commit log (up to segment_bytes × max_segments), still accepting from
        // handsets. Past that it skips the link ahead and the oldest messages are lost; a
        // handset is never blocked by a slow decoder.
        let (tx, uplink) = mpsc::channel(cfg.uplink_queue);
        let link_tx = Arc::new(Mutex::new(link_tx));
        let link_up = Arc::new(AtomicBool::new(true));
        let consumer = link::Consumer {
            link_rx,
            link_tx: Arc::clone(&link_tx),
            meters,
            tick_topic: link::tick_topic(topics),
            tx,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            link_up: Arc::clone(&link_up),
            listening: Arc::clone(&listening),
        };
        let handle = std::thread::Builder::new()
            .name("fieldlink-mqtt-link".to_owned())
            .spawn(move || consumer.run())
            .map_err(|source| IngestError::Thread {
                name: "fieldlink-mqtt-link",
                source,
            })?;

        let source = Source {
            uplink,
            downlink: Downlink::embedded(topics.clone(), link_tx, link_up, keys, metrics.clone()),
            worker: SourceWorker::thread(handle, shutdown),
        };
        tracing::info!(%listen, plain = cfg.plain, "embedded MQTT broker listening");
        if let Some(tls) = &cfg.tls {
            tracing::info!(listen = %tls.listen, "embedded MQTT broker listening with TLS");
        }
        Ok((
            EmbeddedBroker {
                listen,
                upstream,
                listening,
            },
            source,
        ))
    }

    /// The address handsets connect to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// rumqttd's own listener, on a loopback port, behind fieldlink's (for benches that
    /// measure the hop; handsets never connect here).
    #[doc(hidden)]
    pub fn upstream_addr(&self) -> SocketAddr {
        self.upstream
    }

    /// False once rumqttd's listener has stopped (it could not bind, or failed).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }
}

/// Binds `addr` with std and keeps it (a public listener), with a taken port in words.
fn bind(addr: SocketAddr) -> Result<TcpListener, IngestError> {
    check_port(addr)?;
    TcpListener::bind(addr).map_err(|source| IngestError::Bind { addr, source })
}

/// Binds `addr` once with std, and lets go, so that a taken port is reported in words before
/// rumqttd (which would only log it on its own thread) tries. The server also calls it before
/// anything else starts, so a taken port changes nothing on disk.
pub fn check_port(addr: SocketAddr) -> Result<(), IngestError> {
    match TcpListener::bind(addr) {
        Ok(listener) => {
            drop(listener);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let mut suggestion = addr;
            suggestion.set_port(addr.port().wrapping_add(1).max(1));
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                match addr {
                    SocketAddr::V4(a) => a.ip().to_string(),
                    SocketAddr::V6(a) => format!("[{}]", a.ip()),
                }
            };
            Err(IngestError::PortInUse {
                addr,
                suggestion,
                url: format!("mqtt://{host}:{}", addr.port()),
            })
        }
        Err(source) => Err(IngestError::Bind { addr, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lets in exactly one login.
    struct One;

    impl Authenticator for One {
        fn authenticate(&self, client_id: &str, username: &str, password: &str) -> bool {
            (client_id, username, password) == ("u000", "u000", "secret")
        }
    }

    #[test]
    fn unsafe_identities_are_refused_before_the_credentials() {
        assert_eq!(check_login(&One, "u000", "u000", "secret"), Ok(()));
        for (client_id, username) in [
            ("u000", "u0+0"),
            ("u#", "u000"),
            ("u000/gps", "u000"),
            ("u000", "u000\n"),
            ("", "u000"),
            ("u000", "\u{7f}"),
            // Would pass the authenticator: the identity rule comes first.
            ("u000", ""),
        ] {
            assert_eq!(
                check_login(&One, client_id, username, "secret"),
                Err(Refusal::BadIdentity),
                "{client_id:?} / {username:?}"
            );
        }
        assert_eq!(
            check_login(&One, "u000", "u000", "wrong"),
            Err(Refusal::BadCredentials)
        );
    }
}

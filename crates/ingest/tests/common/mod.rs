//! Shared parts of the ingest integration tests: a real broker, real clients, no mocks.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fieldlink_clock::{ManualClock, SharedClock, Timestamp};
use fieldlink_ingest::{
    Authenticator, Decoder, Downlink, EmbeddedBroker, EmbeddedBrokerConfig, IngestMetrics, Limits,
    Received, ReplayMarks, Sealing, Source, SourceWorker, Uplink,
};
use fieldlink_proto::{Topics, UnitId, v1};
use fieldlink_seal::SealKey;
use prometheus_client::registry::Registry;
use prost::Message;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);
pub const START: Timestamp = Timestamp::from_millis(1_764_446_400_000);

/// A topic grammar under a root no other test uses: `t<unique>/fl/v1`, `t<unique>/owntracks`.
pub fn unique_topics() -> Topics {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    let tag = format!(
        "t{}x{}x{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    );
    Topics::new(&format!("{tag}/fl/v1"), &format!("{tag}/owntracks")).expect("valid roots")
}

/// A port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr")
}

/// Polls `f` until it holds, or fails the test after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The server's rule: client id == username == unit id, and the secret matches.
#[derive(Debug)]
pub struct TestAuth(pub HashMap<String, String>);

impl Authenticator for TestAuth {
    fn authenticate(&self, client_id: &str, username: &str, password: &str) -> bool {
        client_id == username && self.0.get(username).is_some_and(|s| s == password)
    }
}

/// Units the broker lets in; `p9` passes the broker but is disabled in the unit directory.
pub fn credentials() -> TestAuth {
    TestAuth(HashMap::from([
        ("p7".to_owned(), "s3cret-p7".to_owned()),
        ("bike-2".to_owned(), "s3cret-b2".to_owned()),
        ("p9".to_owned(), "s3cret-p9".to_owned()),
    ]))
}

/// The enabled units and their seal keys (derived from their secrets, as the server does).
pub fn active_units() -> HashMap<UnitId, SealKey> {
    HashMap::from([
        (unit("p7"), SealKey::derive("s3cret-p7")),
        (unit("bike-2"), SealKey::derive("s3cret-b2")),
    ])
}

pub fn unit(s: &str) -> UnitId {
    UnitId::new(s).expect("valid id")
}

/// The limits the tests use: small enough to trip `too_large` and `batch_too_large` while the
/// broker (64 KiB) still carries the message.
pub fn test_limits() -> Limits {
    Limits {
        max_payload_bytes: 2048,
        max_batch_fixes: 5,
        // Off: these tests send bursts on purpose. `a_flooding_unit_is_throttled_before_decoding`
        // turns it on.
        throttle: fieldlink_ingest::ThrottleConfig {
            rate_per_s: 0,
            burst: 0,
        },
    }
}

/// fieldlink's ingest side, running: a source, the pipeline, and what it produced.
pub struct Ingest {
    pub topics: Topics,
    pub registry: Registry,
    pub metrics: IngestMetrics,
    pub clock: ManualClock,
    pub received: mpsc::Receiver<Received>,
    pub downlink: Downlink,
    pub worker: Option<SourceWorker>,
    pub pipeline: JoinHandle<()>,
    pub shutdown: CancellationToken,
}

impl Ingest {
    /// Wires `source` to the pipeline with the test limits.
    pub fn run(
        topics: Topics,
        registry: Registry,
        metrics: IngestMetrics,
        source: Source,
        shutdown: CancellationToken,
    ) -> Self {
        let sealing = Sealing::Optional;
        Self::run_with(
            test_limits(),
            sealing,
            topics,
            registry,
            metrics,
            source,
            shutdown,
        )
    }

    /// Wires `source` to the pipeline with `limits` and `sealing`.
    pub fn run_with(
        limits: Limits,
        sealing: Sealing,
        topics: Topics,
        registry: Registry,
        metrics: IngestMetrics,
        source: Source,
        shutdown: CancellationToken,
    ) -> Self {
        let clock = ManualClock::new(START);
        let shared: SharedClock = Arc::new(clock.clone());
        let (sink, received) = mpsc::channel(256);
        let pipeline = tokio::spawn(fieldlink_ingest::run(
            source.uplink,
            Decoder::new(topics.clone(), limits).with_sealing(sealing),
            Arc::new(active_units()),
            ReplayMarks::default(),
            shared,
            metrics.clone(),
            sink,
            shutdown.clone(),
        ));
        Ingest {
            topics,
            registry,
            metrics,
            clock,
            received,
            downlink: source.downlink,
            worker: Some(source.worker),
            pipeline,
            shutdown,
        }
    }

    /// The next accepted message for which `pick` holds (others are skipped).
    pub async fn next_where(&mut self, what: &str, pick: impl Fn(&Received) -> bool) -> Received {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(r)) if pick(&r) => return r,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the pipeline ended while waiting for {what}"),
                Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
            }
        }
    }

    /// The value of one sample line in the Prometheus text of the registry.
    pub fn sample(&self, series: &str) -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encodes");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
    }
}

/// Starts the embedded broker on a free port with the test credentials, and the pipeline.
/// Sealing is optional, so the tests of decoding can send plain payloads; the server requires
/// it ([`start_embedded_with`] with [`Sealing::Required`]).
pub fn start_embedded() -> (EmbeddedBroker, Ingest) {
    start_embedded_with(test_limits(), Sealing::Optional)
}

/// [`start_embedded`] with the pipeline's `limits` and `sealing`.
pub fn start_embedded_with(limits: Limits, sealing: Sealing) -> (EmbeddedBroker, Ingest) {
    let cfg = EmbeddedBrokerConfig {
        listen: free_port(),
        ..Default::default()
    };
    start_embedded_on(&cfg, limits, sealing)
}

/// [`start_embedded`] with the broker's `cfg`.
pub fn start_embedded_on(
    cfg: &EmbeddedBrokerConfig,
    limits: Limits,
    sealing: Sealing,
) -> (EmbeddedBroker, Ingest) {
    let topics = unique_topics();
    let mut registry = Registry::default();
    let metrics = IngestMetrics::register(&mut registry);
    let shutdown = CancellationToken::new();
    let (broker, source) = EmbeddedBroker::start(
        cfg,
        Arc::new(credentials()),
        Arc::new(active_units()),
        &topics,
        &metrics,
        shutdown.clone(),
    )
    .expect("embedded broker starts");
    (
        broker,
        Ingest::run_with(limits, sealing, topics, registry, metrics, source, shutdown),
    )
}

/// A real MQTT client standing in for a handset, with its event loop polled in a task.
pub struct Handset {
    pub client: AsyncClient,
    pub incoming: mpsc::UnboundedReceiver<rumqttc::Publish>,
    connected: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Handset {
    /// Connects (retrying while the broker is still binding) and waits for the CONNACK.
    pub async fn connect(addr: SocketAddr, login: Option<(&str, &str)>, client_id: &str) -> Self {
        let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(256 * 1024, 256 * 1024);
        if let Some((user, pass)) = login {
            options.set_credentials(user, pass);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, incoming) = mpsc::unbounded_channel();
        let (up_tx, mut connected) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = up_tx.send(true);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        let _ = up_tx.send(false);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, connected.wait_for(|up| *up))
            .await
            .unwrap_or_else(|_| panic!("{client_id} did not get a CONNACK within {WAIT:?}"))
            .expect("event loop alive");
        Handset {
            client,
            incoming,
            connected,
            task,
        }
    }

    /// A handset of the embedded broker, logging in as itself.
    pub async fn unit(addr: SocketAddr, unit: &str, secret: &str) -> Self {
        Self::connect(addr, Some((unit, secret)), unit).await
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("client queue open");
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Disconnects cleanly and stops the event loop.
    pub async fn close(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

impl Drop for Handset {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Tries one connection and reports what the broker answered: `Ok` on CONNACK, else the error.
pub async fn try_connect(
    addr: SocketAddr,
    user: &str,
    pass: &str,
    client_id: &str,
) -> Result<(), String> {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    options.set_credentials(user, pass);
    let (_client, mut eventloop) = AsyncClient::new(options, 8);
    match tokio::time::timeout(WAIT, eventloop.poll()).await {
        Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => Ok(()),
        Ok(Ok(other)) => Err(format!("unexpected first event {other:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer".to_owned()),
    }
}

pub fn fix(seq: u64) -> v1::GpsFix {
    v1::GpsFix {
        fix_time_ms: START.as_millis() - 1000 + seq as i64,
        lat: 30.2596 + seq as f64 * 1e-5,
        lon: 120.1772,
        accuracy_m: Some(5.0),
        speed_mps: Some(1.2),
        heading_deg: Some(45.0),
        battery_pct: Some(77.0),
        seq,
        ..Default::default()
    }
}

/// An encoded `GpsReport` with id `id` and `fixes`.
pub fn gps(id: &str, unit: &str, fixes: Vec<v1::GpsFix>) -> Bytes {
    v1::GpsReport {
        id: id.to_owned(),
        time_ms: START.as_millis(),
        unit: unit.to_owned(),
        fixes,
        buffered: false,
    }
    .encode_to_vec()
    .into()
}

/// True when `r` is the GPS report with id `id`.
pub fn is_gps(r: &Received, id: &str) -> bool {
    matches!(&r.envelope.message, Uplink::Gps(g) if g.id == id)
}

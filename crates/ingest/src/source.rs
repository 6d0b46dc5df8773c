//! What a broker connection gives the rest of fieldlink, whichever broker it is: the uplink
//! queue, the downlink publisher, and the worker to wait for at shutdown.
//!
//! The embedded broker ([`crate::broker`]) and an external one ([`crate::external`]) both
//! produce a [`Source`]; nothing downstream knows which it got.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fieldlink_proto::{Topics, UnitId};
use rumqttd::local::LinkTx;
use tokio::sync::mpsc;

use crate::decode::UnitDirectory;
use crate::{IngestError, IngestMetrics};

/// One MQTT message as the broker delivered it, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The topic it was published on.
    pub topic: String,
    /// The payload, as sent.
    pub payload: Bytes,
}

/// A connected broker: uplinks come out of `uplink`, downlinks go in through `downlink`.
#[derive(Debug)]
pub struct Source {
    /// Every message on the uplink subscriptions, in arrival order per publisher. Bounded
    /// (`uplink_queue` in the broker's config); see the broker modules for what happens when
    /// it is full.
    pub uplink: mpsc::Receiver<RawMessage>,
    /// Publishes to handsets; clone it freely.
    pub downlink: Downlink,
    /// The thread or task feeding `uplink`; await [`SourceWorker::join`] after cancelling the
    /// shutdown token given at start.
    pub worker: SourceWorker,
}

/// Publishes downlinks (`{root}/u/{unit}/down`, QoS 1) and says whether the broker is usable.
///
/// On the embedded broker every downlink is sealed with the unit's key for the context `down`
/// (`crates/seal`): rumqttd lets any logged-in handset subscribe to, and publish on, another
/// unit's downlink topic, so the handset must be able to tell fieldlink's orders from forged ones
/// and nobody else may read them.
#[derive(Clone)]
pub struct Downlink {
    topics: Topics,
    transport: Transport,
    connected: Arc<AtomicBool>,
    metrics: IngestMetrics,
}

#[derive(Clone)]
enum Transport {
    /// rumqttd's in-process link. `LinkTx::publish` takes `&mut self` and may block briefly
    /// on the router's bounded channel, so it sits behind a std mutex and is called from
    /// `spawn_blocking` (downlinks are rare: work orders, floor answers).
    Embedded(Arc<Mutex<LinkTx>>, Arc<Sealer>),
    /// A rumqttc client of the external broker.
    External(rumqttc::AsyncClient),
}

impl Downlink {
    pub(crate) fn embedded(
        topics: Topics,
        link: Arc<Mutex<LinkTx>>,
        up: Arc<AtomicBool>,
        keys: Arc<dyn UnitDirectory + Send + Sync>,
        metrics: IngestMetrics,
    ) -> Self {
        let sealer = Sealer {
            keys,
            counter: Mutex::default(),
        };
        Downlink {
            topics,
            transport: Transport::Embedded(link, Arc::new(sealer)),
            connected: up,
            metrics,
        }
    }

    pub(crate) fn external(
        topics: Topics,
        client: rumqttc::AsyncClient,
        up: Arc<AtomicBool>,
        metrics: IngestMetrics,
    ) -> Self {
        Downlink {
            topics,
            transport: Transport::External(client),
            connected: up,
            metrics,
        }
    }

    /// Publishes `payload` (an encoded `fieldlink.v1.Downlink`) to `unit`'s downlink topic.
    ///
    /// Delivery is QoS 1 to the handset. On the embedded broker the message enters the router
    /// in-process and rumqttd delivers it at the QoS the handset subscribed with (QoS 1 for a
    /// handset following the README). On an external broker it is published with QoS 1; while
    /// that broker is unreachable, rumqttc holds it in its request queue (this call waits when
    /// that queue is full). Returns once the broker (or the client's queue) has it, not when
    /// the handset does: receipts (`Ack`) are how fieldlink learns of delivery.
    ///
    /// On the embedded broker the payload is sealed first; a unit without a seal key gets
    /// nothing ([`IngestError::NoSealKey`]). Every failure is counted in
    /// `fieldlink_downlink_failures_total`.
    pub async fn publish(&self, unit: &UnitId, payload: Bytes) -> Result<(), IngestError> {
        let published = self.publish_once(unit, payload).await;
        if published.is_err() {
            self.metrics.downlink_failed();
        }
        published
    }

    async fn publish_once(&self, unit: &UnitId, payload: Bytes) -> Result<(), IngestError> {
        let topic = self.topics.downlink(unit);
        match &self.transport {
            Transport::Embedded(link, sealer) => {
                let payload = sealer.seal(unit, &payload)?;
                let link = Arc::clone(link);
                tokio::task::spawn_blocking(move || {
                    let mut link = link.lock().unwrap_or_else(|p| p.into_inner());
                    link.publish(topic, payload)
                        .map(drop)
                        .map_err(|e| IngestError::Link(e.to_string()))
                })
                .await
                .map_err(|_| IngestError::Closed)?
            }
            Transport::External(client) => client
                .publish_bytes(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|_| IngestError::Closed),
        }
    }

    /// True while the broker is usable: the embedded broker listens and fieldlink's link to
    /// it is up, or the external broker has acknowledged the connection. For `/readyz`.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Downlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.transport {
            Transport::Embedded(..) => "embedded",
            Transport::External(_) => "external",
        };
        f.debug_struct("Downlink")
            .field("root", &self.topics.root())
            .field("transport", &transport)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// Seals downlinks on the embedded broker: the unit's key, and one counter for all of
/// fieldlink's downlinks (microseconds since the epoch, strictly increasing, as handsets count).
struct Sealer {
    keys: Arc<dyn UnitDirectory + Send + Sync>,
    counter: Mutex<fieldlink_seal::Counter>,
}

impl Sealer {
    fn seal(&self, unit: &UnitId, payload: &[u8]) -> Result<Bytes, IngestError> {
        let key = self
            .keys
            .seal_key(unit)
            .ok_or_else(|| IngestError::NoSealKey(unit.clone()))?;
        // The wall clock, not the injected one: a counter is transport, and must keep growing
        // across restarts whatever time a test's manual clock shows.
        let now_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let counter = self
            .counter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next(now_micros);
        let sealed = fieldlink_seal::seal(
            &key,
            fieldlink_seal::DOWNLINK_CONTEXT,
            counter,
            rand::random(),
            payload,
        );
        Ok(Bytes::from(sealed))
    }
}

/// How long [`SourceWorker::join`] waits for the embedded link thread once shutdown began.
const JOIN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The thread or task that feeds a [`Source`]'s uplink queue.
#[derive(Debug)]
pub struct SourceWorker {
    inner: Worker,
}

#[derive(Debug)]
enum Worker {
    /// The embedded link's thread, and the token that tells it to stop.
    Thread(
        std::thread::JoinHandle<()>,
        tokio_util::sync::CancellationToken,
    ),
    Task(tokio::task::JoinHandle<()>),
}

impl SourceWorker {
    pub(crate) fn thread(
        handle: std::thread::JoinHandle<()>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        SourceWorker {
            inner: Worker::Thread(handle, shutdown),
        }
    }

    pub(crate) fn task(handle: tokio::task::JoinHandle<()>) -> Self {
        SourceWorker {
            inner: Worker::Task(handle),
        }
    }

    /// Waits for the worker to end. It ends soon after the shutdown token given at start is
    /// cancelled (within a quarter second for the embedded link), or when the uplink receiver
    /// is dropped.
    pub async fn join(self) {
        match self.inner {
            Worker::Thread(handle, shutdown) => {
                // Poll instead of joining on a blocking thread: if the link thread is stuck
                // inside rumqttd (seen once in a test, in a publish to the router), a blocking
                // join would also hold up the runtime's shutdown. The patience runs from the
                // shutdown, not from the start (this is awaited for the server's whole life). A
                // thread left behind ends with the process.
                while !handle.is_finished() && !shutdown.is_cancelled() {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                let deadline = std::time::Instant::now() + JOIN_PATIENCE;
                while !handle.is_finished() && std::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                if handle.is_finished() {
                    let _ = handle.join();
                } else {
                    tracing::warn!(
                        "the MQTT link thread did not stop within {} s; leaving it to end with the process",
                        JOIN_PATIENCE.as_secs()
                    );
                }
            }
            Worker::Task(handle) => {
                let _ = handle.await;
            }
        }
    }
}

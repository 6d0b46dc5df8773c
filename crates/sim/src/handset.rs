//! One virtual handset: a real MQTT client that speaks the fieldlink wire as one unit.
//!
//! It connects with client id = username = unit id and password = the unit's secret, sets its
//! last will (a `StatusHeartbeat` with `online = false` on its `status` topic) when asked, and
//! subscribes to its own downlink at QoS 1 before [`Handset::connect`] returns. Its rumqttc event
//! loop runs in a task the handset owns.
//!
//! Delivery: GPS fixes go at QoS 0 by default, as real handsets send them over cellular radio;
//! every other message, and every `*_qos1` or `qos` path, waits for the broker's acknowledgement
//! (the private `acks` module matches PUBACKs to publishes) so that nothing is lost silently.
//!
//! Sealing ([`HandsetConfig::sealed`], on by default): every payload, the last will included, is
//! sealed with the key derived from the unit's secret, and only downlinks sealed by fieldlink for
//! this unit are believed, as the embedded broker requires (docs/security.md). Turn it off for an
//! external broker, whose ACL binds topics to logins and which carries plain downlinks.
//!
//! Connection loss ends the handset (no silent reconnect that would drop queued publishes):
//! every later call fails with [`SimError::Disconnected`], and the owner connects a new one.
//! [`Handset::disconnect`] says goodbye cleanly (no last will); dropping the handset cuts the
//! connection without a DISCONNECT, as a phone losing radio does, so the broker sends its will.

mod acks;
mod conn;
mod publish;
pub(crate) mod seal;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldlink_clock::{SharedClock, SystemClock};
use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use prost::Message as _;
use rumqttc::{
    AsyncClient, ConnectionError, LastWill, MqttOptions, Packet, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::SimError;
use acks::AckTracker;
use conn::{connect_error, parse_broker, run_eventloop, wait_for};
use seal::Sealer;

/// How one handset connects and behaves.
#[derive(Clone)]
pub struct HandsetConfig {
    /// The broker, `host:port`.
    pub broker: String,
    /// The unit id: MQTT client id and username.
    pub unit: UnitId,
    /// The unit's secret: MQTT password.
    pub secret: String,
    /// The topic grammar (its root isolates tenants and parallel tests).
    pub topics: Topics,
    /// MQTT keep-alive; at least one second (rumqttc refuses less).
    pub keep_alive: Duration,
    /// Set a last will (`StatusHeartbeat { online: false }` on `status`, QoS 1).
    pub last_will: bool,
    /// Where message times (`time_ms`) come from; the fleet passes the test's clock.
    pub clock: SharedClock,
    /// How long CONNACK and SUBACK may take.
    pub connect_timeout: Duration,
    /// How long a QoS 1/2 publish may wait for its acknowledgement.
    pub ack_timeout: Duration,
    /// Downlinks held for [`Handset::next_downlink`]. When full, newer downlinks are dropped and
    /// counted: the server re-sends work orders until their receipt, so a reader that lags gets
    /// them again, while an old backlog would only be replayed late.
    pub downlink_capacity: usize,
    /// Seal every payload with the unit's key and believe only sealed downlinks: what the
    /// embedded broker requires. Default true; false for an external broker.
    pub sealed: bool,
}

impl HandsetConfig {
    /// A config with defaults: keep-alive 30 s, last will on, wall clock, 10 s timeouts, 64
    /// downlinks, sealed.
    pub fn new(
        broker: impl Into<String>,
        unit: UnitId,
        secret: impl Into<String>,
        topics: Topics,
    ) -> Self {
        HandsetConfig {
            broker: broker.into(),
            unit,
            secret: secret.into(),
            topics,
            keep_alive: Duration::from_secs(30),
            last_will: true,
            clock: Arc::new(SystemClock),
            connect_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(10),
            downlink_capacity: 64,
            sealed: true,
        }
    }
}

impl std::fmt::Debug for HandsetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandsetConfig")
            .field("broker", &self.broker)
            .field("unit", &self.unit)
            .field("secret", &"<redacted>")
            .field("topics", &self.topics)
            .field("keep_alive", &self.keep_alive)
            .field("last_will", &self.last_will)
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

/// State shared between the handset and its event-loop task.
#[derive(Debug, Default)]
struct Shared {
    acks: Mutex<AckTracker>,
    downlinks_dropped: AtomicU64,
    downlinks_bad: AtomicU64,
}

/// One connected virtual handset. See the module docs.
#[derive(Debug)]
pub struct Handset {
    cfg: HandsetConfig,
    client: AsyncClient,
    shared: Arc<Shared>,
    /// Held across "register the ack waiter, queue the request" so both happen in the same order.
    send_lock: tokio::sync::Mutex<()>,
    downlinks: mpsc::Receiver<v1::Downlink>,
    task: Option<JoinHandle<()>>,
    /// The unit's key and counter, when [`HandsetConfig::sealed`].
    sealer: Option<Arc<Sealer>>,
    /// Per-connection random prefix of message ids, so ids stay unique across reconnects.
    session: u32,
    next_msg: AtomicU64,
    next_fix_seq: AtomicU64,
}

impl Handset {
    /// Connects, waits for CONNACK, subscribes to the unit's downlink and waits for SUBACK.
    pub async fn connect(cfg: HandsetConfig) -> Result<Handset, SimError> {
        let (host, port) = parse_broker(&cfg.broker)?;
        let session: u32 = rand::random();
        let sealer = cfg
            .sealed
            .then(|| Arc::new(Sealer::new(&cfg.secret, cfg.topics.clone())));
        let unit = cfg.unit.as_str();
        let mut options = MqttOptions::new(unit, host, port);
        options
            .set_credentials(unit, cfg.secret.clone())
            .set_keep_alive(cfg.keep_alive.max(Duration::from_secs(1)))
            .set_clean_session(true)
            .set_max_packet_size(1 << 20, 1 << 20);
        if cfg.last_will {
            let will = v1::StatusHeartbeat {
                id: format!("{unit}-{session:08x}-will"),
                time_ms: cfg.clock.now().as_millis(),
                unit: unit.to_owned(),
                online: false,
                ..Default::default()
            };
            let topic = cfg.topics.uplink(&cfg.unit, UplinkKind::Status);
            let mut payload = will.encode_to_vec();
            if let Some(sealer) = &sealer {
                // Sealed now, delivered maybe much later: the server checks offline notices
                // against their own replay mark, not against the unit's later messages.
                payload = sealer.seal(&topic, &payload);
            }
            options.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, false));
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let down = cfg.topics.downlink(&cfg.unit);
        let handshake = async {
            wait_for(&mut eventloop, |p| matches!(p, Packet::ConnAck(_))).await?;
            client
                .subscribe(down.clone(), QoS::AtLeastOnce)
                .await
                .map_err(|e| ConnectionError::Io(std::io::Error::other(e)))?;
            wait_for(&mut eventloop, |p| matches!(p, Packet::SubAck(_))).await
        };
        let suback = match timeout(cfg.connect_timeout, handshake).await {
            Err(_) => {
                return Err(SimError::ConnectTimeout {
                    broker: cfg.broker.clone(),
                    unit: cfg.unit.clone(),
                    after: cfg.connect_timeout,
                });
            }
            Ok(Err(e)) => return Err(connect_error(&cfg, e)),
            Ok(Ok(p)) => p,
        };
        if let Packet::SubAck(ack) = suback
            && ack.return_codes.contains(&SubscribeReasonCode::Failure)
        {
            return Err(SimError::SubscribeRefused {
                unit: cfg.unit.clone(),
                topic: down,
            });
        }
        let shared = Arc::new(Shared::default());
        let (tx, downlinks) = mpsc::channel(cfg.downlink_capacity.max(1));
        let task = tokio::spawn(run_eventloop(
            eventloop,
            cfg.unit.clone(),
            down,
            shared.clone(),
            sealer.clone(),
            tx,
        ));
        Ok(Handset {
            cfg,
            client,
            shared,
            send_lock: tokio::sync::Mutex::new(()),
            downlinks,
            task: Some(task),
            sealer,
            session,
            next_msg: AtomicU64::new(1),
            next_fix_seq: AtomicU64::new(1),
        })
    }

    /// The unit this handset speaks as.
    pub fn unit(&self) -> &UnitId {
        &self.cfg.unit
    }

    /// The topic grammar it uses.
    pub fn topics(&self) -> &Topics {
        &self.cfg.topics
    }

    /// False once the connection is lost or closed.
    pub fn is_connected(&self) -> bool {
        self.lock_acks().closed().is_none()
    }

    /// Downlinks dropped because [`HandsetConfig::downlink_capacity`] was full, and downlinks
    /// refused: not a `Downlink`, or (sealed) not sealed by fieldlink for this unit, or replayed.
    pub fn downlinks_dropped(&self) -> (u64, u64) {
        (
            self.shared.downlinks_dropped.load(Ordering::Relaxed),
            self.shared.downlinks_bad.load(Ordering::Relaxed),
        )
    }

    /// The next downlink addressed to this unit, or `None` after `wait` or when the connection
    /// has ended and nothing is left.
    pub async fn next_downlink(&mut self, wait: Duration) -> Option<v1::Downlink> {
        timeout(wait, self.downlinks.recv()).await.ok().flatten()
    }

    /// Closes the connection cleanly (MQTT DISCONNECT, so the broker does not send the last will)
    /// and waits briefly for the event loop to finish.
    pub async fn disconnect(mut self) -> Result<(), SimError> {
        let sent = self.client.disconnect().await;
        if let Some(mut task) = self.task.take()
            && timeout(Duration::from_secs(2), &mut task).await.is_err()
        {
            task.abort();
        }
        self.lock_acks().fail_all("the handset disconnected");
        sent.map_err(|_| self.disconnected())
    }

    fn lock_acks(&self) -> std::sync::MutexGuard<'_, AckTracker> {
        // A panic while holding this lock cannot leave the tracker half-updated in a way that
        // matters more than the panic itself, so a poisoned lock is used as is.
        self.shared.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn disconnected(&self) -> SimError {
        let reason = self.lock_acks().closed().unwrap_or("closed").to_owned();
        SimError::Disconnected {
            unit: self.cfg.unit.clone(),
            reason,
        }
    }
}

impl Drop for Handset {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

//! A crew: N simulated [`Responder`]s, each over its own real [`Handset`] (MQTT), and over a
//! [`WsHandset`] session too when its orders come over WebSocket ([`OrderChannel`]).
//!
//! [`Crew::connect`] connects every unit (at most [`CrewConfig::connect_concurrency`] at once).
//! [`Crew::step`] is one step at the clock's current time: every handset's pending downlinks go to
//! its responder, every responder ticks, and what they want sent is published (fixes at QoS 0 as
//! handsets send them over the radio; receipts, reports, heartbeats, PTT, video and buffered
//! batches at QoS 1, waiting for the broker's PUBACK). A test on a manual clock advances the clock
//! and calls `step`; the responders' decisions are then the same for the same seed and the same
//! clock values (their inputs are processed in unit order; only the publishing runs concurrently,
//! at most [`CrewConfig::publish_concurrency`] units at a time). [`Crew::run`] steps in real time
//! until cancelled (`fieldlink sim`, `fieldlink demo`).
//!
//! A responder going out of coverage ([`Action::GoOffline`]) really drops its connection without
//! a DISCONNECT, so the broker sends its last will; coming back connects again and sends the fixes
//! it held back. A connection lost for any other reason is re-made at the next step after a
//! backoff (1 s doubling to 30 s); receipts and reports that could not go meanwhile wait for it.
//!
//! Orders ([`CrewConfig::orders`]) come over MQTT, the handset's downlink topic, by default. With
//! [`OrderChannel::WebSocket`] each unit also holds a session on the server's `/ws/handset`
//! (opened with the MQTT connection, dropped with it on a coverage loss, re-made with it), and
//! its receipts go over that session instead of as MQTT `Ack`s; positions and every other uplink
//! stay on MQTT. The server publishes each order on MQTT as well (its path of record) and may
//! push it twice on the socket (pushed, and in the open list of a session just opening): the
//! responder answers the first copy and drops the others by their downlink id
//! ([`Tally::duplicates`]), so one order gets one answer whichever channel was faster.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fieldlink_clock::{SharedClock, SystemClock, Timestamp};
use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use futures_util::StreamExt as _;
use rumqttc::QoS;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::responder::{Action, Behaviour, Responder, Tally};
use crate::route::{Bbox, SplitMix64, UnitKind};
use crate::ws::{WsHandset, WsHandsetConfig};
use crate::{Handset, HandsetConfig, SimError};

/// First wait before reconnecting a lost handset; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Messages a disconnected unit keeps for when it is back (fixes are not kept: they are live).
const BACKLOG: usize = 1_000;

/// Where a crew's work orders come from, and where its receipts go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrderChannel {
    /// The handset's MQTT downlink; receipts are `Ack`s on MQTT. The default.
    #[default]
    Mqtt,
    /// The server's `/ws/handset`, one session per unit beside its MQTT connection; receipts
    /// go over the session. Orders that also come over MQTT are answered once (module docs).
    WebSocket {
        /// The server's HTTP base URL (`http://127.0.0.1:8080`, `https://...`) or its
        /// WebSocket URL.
        server: String,
        /// For `wss://`: the CA certificates (PEM) to trust; `None`: the system's roots.
        ca_file: Option<PathBuf>,
    },
}

impl OrderChannel {
    /// Over the server's `/ws/handset` at `server` (its HTTP base URL), trusting the system's
    /// roots for `https://`.
    pub fn websocket(server: impl Into<String>) -> Self {
        OrderChannel::WebSocket {
            server: server.into(),
            ca_file: None,
        }
    }
}

/// How a crew runs. [`CrewConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct CrewConfig {
    /// The broker, `host:port`.
    pub broker: String,
    /// The topic grammar.
    pub topics: Topics,
    /// Each unit's id and secret (MQTT password).
    pub units: Vec<(UnitId, String)>,
    /// Where "now" comes from (wall clock by default; a test's manual clock otherwise).
    pub clock: SharedClock,
    /// Seeds kinds, start positions and every decision: same seed, same crew.
    pub seed: u64,
    /// Where the units patrol; also the area of every behaviour (default Shangcheng).
    pub bbox: Bbox,
    /// How every unit behaves, unless in `overrides`.
    pub behaviour: Behaviour,
    /// Per-unit behaviours (e.g. one who never answers); their `area` and `fix_interval` are
    /// set from this config too.
    pub overrides: HashMap<UnitId, Behaviour>,
    /// Explicit start positions (`lat, lon`), one per unit in `units` order; else seeded in `bbox`.
    pub starts: Option<Vec<(f64, f64)>>,
    /// Explicit kinds, one per unit; else seeded ([`kind_for`]). Register units with the type
    /// that matches ([`UnitKind::api_type`]): the server's jump filter uses the type's speed.
    pub kinds: Option<Vec<UnitKind>>,
    /// Time between two fixes of one unit (sets every behaviour's `fix_interval`).
    pub fix_interval: Duration,
    /// Connects in progress at once.
    pub connect_concurrency: usize,
    /// Units publishing at once within a step.
    pub publish_concurrency: usize,
    /// MQTT keep-alive of each handset.
    pub keep_alive: Duration,
    /// How long a QoS 1 publish waits for its PUBACK.
    pub ack_timeout: Duration,
    /// Whether handsets seal their payloads ([`HandsetConfig::sealed`]): true for fieldlink's
    /// embedded broker, false for an external one.
    pub sealed: bool,
    /// Where work orders come from and receipts go (MQTT by default).
    pub orders: OrderChannel,
}

impl CrewConfig {
    /// Defaults: wall clock, seed 0, Shangcheng, [`Behaviour::default`], seeded starts and
    /// kinds, a fix per second, 64 connects and 64 publishing units at once, keep-alive 30 s,
    /// PUBACK within 10 s, sealed, orders over MQTT.
    pub fn new(broker: impl Into<String>, topics: Topics, units: Vec<(UnitId, String)>) -> Self {
        CrewConfig {
            broker: broker.into(),
            topics,
            units,
            clock: Arc::new(SystemClock),
            seed: 0,
            bbox: Bbox::SHANGCHENG,
            behaviour: Behaviour::default(),
            overrides: HashMap::new(),
            starts: None,
            kinds: None,
            fix_interval: Duration::from_secs(1),
            connect_concurrency: 64,
            publish_concurrency: 64,
            keep_alive: Duration::from_secs(30),
            ack_timeout: Duration::from_secs(10),
            sealed: true,
            orders: OrderChannel::Mqtt,
        }
    }

    /// Unit `unit`'s WebSocket session, when orders come over WebSocket.
    fn ws_config(&self, unit: &UnitId, secret: &str) -> Option<WsHandsetConfig> {
        let OrderChannel::WebSocket { server, ca_file } = &self.orders else {
            return None;
        };
        let mut cfg = WsHandsetConfig::new(server.clone(), unit.clone(), secret);
        cfg.ca_file = ca_file.clone();
        cfg.answer_timeout = self.ack_timeout;
        Some(cfg)
    }

    /// Every problem with this config, in words.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.fix_interval.is_zero() {
            p.push("fix_interval must be above zero".to_owned());
        }
        if self.connect_concurrency == 0 || self.publish_concurrency == 0 {
            p.push("connect_concurrency and publish_concurrency must be at least 1".to_owned());
        }
        let n = self.units.len();
        if self.starts.as_ref().is_some_and(|s| s.len() != n) {
            p.push(format!("starts must give one position per unit ({n})"));
        }
        if self.kinds.as_ref().is_some_and(|k| k.len() != n) {
            p.push(format!("kinds must give one kind per unit ({n})"));
        }
        let mut seen = std::collections::HashSet::new();
        for (unit, _) in &self.units {
            if !seen.insert(unit) {
                p.push(format!("unit {unit} is listed twice"));
            }
        }
        for b in std::iter::once(&self.behaviour).chain(self.overrides.values()) {
            p.extend(b.problems());
        }
        p
    }
}

/// The kind of the `index`-th unit of a crew seeded with `seed` when [`CrewConfig::kinds`] is
/// not given: 60 % on foot, 25 % e-bike, 15 % patrol car.
pub fn kind_for(seed: u64, index: usize) -> UnitKind {
    let mut rng = unit_rng(seed, index);
    match rng.below(100) {
        0..60 => UnitKind::OnFoot,
        60..85 => UnitKind::EBike,
        _ => UnitKind::Car,
    }
}

fn unit_rng(seed: u64, index: usize) -> SplitMix64 {
    SplitMix64(seed ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407))
}

/// The crew's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrewStats {
    /// Units in the crew.
    pub units: u64,
    /// Handsets connected now.
    pub connected: u64,
    /// Units out of coverage now (on purpose: the behaviour's coverage losses).
    pub offline: u64,
    /// Live fixes handed to a connection.
    pub fixes_sent: u64,
    /// Fixes sent in buffered batches after a coverage loss.
    pub buffered_fixes_sent: u64,
    /// WebSocket order sessions open now ([`OrderChannel::WebSocket`]).
    pub ws_connected: u64,
    /// Downlinks received (over MQTT and WebSocket).
    pub downlinks: u64,
    /// Of those, the ones received over WebSocket.
    pub ws_downlinks: u64,
    /// Second copies of a delivery, dropped (an order over both channels).
    pub duplicates: u64,
    /// Receipts the server acknowledged (PUBACK on MQTT, `result` on WebSocket).
    pub receipts_sent: u64,
    /// Distinct work orders received.
    pub orders_received: u64,
    /// Orders accepted.
    pub accepted: u64,
    /// Orders declined after thinking it over.
    pub rejected: u64,
    /// Orders declined at once (busy, on a break).
    pub busy: u64,
    /// Orders never answered.
    pub ignored: u64,
    /// Arrivals on scene.
    pub arrived: u64,
    /// Jobs resolved.
    pub resolved: u64,
    /// Jobs ended by a cancel or a reassignment.
    pub withdrawn: u64,
    /// Coverage losses so far.
    pub coverage_losses: u64,
    /// Other messages sent (heartbeats, duty, PTT, video, field reports, SOS).
    pub other_sent: u64,
    /// Reconnects after a lost connection or a coverage loss.
    pub reconnects: u64,
    /// Failed publishes and failed reconnects.
    pub errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    units: AtomicU64,
    connected: AtomicU64,
    ws_connected: AtomicU64,
    offline: AtomicU64,
    fixes_sent: AtomicU64,
    buffered_fixes_sent: AtomicU64,
    downlinks: AtomicU64,
    ws_downlinks: AtomicU64,
    duplicates: AtomicU64,
    receipts_sent: AtomicU64,
    orders_received: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    busy: AtomicU64,
    ignored: AtomicU64,
    arrived: AtomicU64,
    resolved: AtomicU64,
    withdrawn: AtomicU64,
    coverage_losses: AtomicU64,
    other_sent: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

impl Counters {
    fn tally(&self, before: Tally, after: Tally) {
        add(&self.orders_received, after.orders - before.orders);
        add(&self.accepted, after.accepted - before.accepted);
        add(&self.rejected, after.rejected - before.rejected);
        add(&self.busy, after.busy - before.busy);
        add(&self.ignored, after.ignored - before.ignored);
        add(&self.arrived, after.arrived - before.arrived);
        add(&self.resolved, after.resolved - before.resolved);
        add(&self.withdrawn, after.withdrawn - before.withdrawn);
        add(&self.coverage_losses, after.offline - before.offline);
        add(&self.duplicates, after.duplicates - before.duplicates);
    }

    fn snapshot(&self) -> CrewStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CrewStats {
            units: l(&self.units),
            connected: l(&self.connected),
            ws_connected: l(&self.ws_connected),
            offline: l(&self.offline),
            fixes_sent: l(&self.fixes_sent),
            buffered_fixes_sent: l(&self.buffered_fixes_sent),
            downlinks: l(&self.downlinks),
            ws_downlinks: l(&self.ws_downlinks),
            duplicates: l(&self.duplicates),
            receipts_sent: l(&self.receipts_sent),
            orders_received: l(&self.orders_received),
            accepted: l(&self.accepted),
            rejected: l(&self.rejected),
            busy: l(&self.busy),
            ignored: l(&self.ignored),
            arrived: l(&self.arrived),
            resolved: l(&self.resolved),
            withdrawn: l(&self.withdrawn),
            coverage_losses: l(&self.coverage_losses),
            other_sent: l(&self.other_sent),
            reconnects: l(&self.reconnects),
            errors: l(&self.errors),
        }
    }
}

/// A handle on a crew's counters that outlives a `&Crew` borrow (for a progress printer while
/// [`Crew::run`] owns the crew).
#[derive(Debug, Clone)]
pub struct CrewStatsHandle(Arc<Counters>);

impl CrewStatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> CrewStats {
        self.0.snapshot()
    }
}

/// What one [`Crew::step`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The clock's time of the step.
    pub at: Timestamp,
    /// Downlinks handed to responders.
    pub downlinks: usize,
    /// Actions the responders asked for.
    pub actions: usize,
    /// Messages published.
    pub published: usize,
    /// Publishes or reconnects that failed.
    pub errors: usize,
}

/// One unit of the crew.
#[derive(Debug)]
struct Member {
    responder: Responder,
    handset_cfg: HandsetConfig,
    handset: Option<Handset>,
    /// The unit's `/ws/handset` session, when its orders come over WebSocket.
    ws_cfg: Option<WsHandsetConfig>,
    ws: Option<WsHandset>,
    /// Out of coverage on purpose (no reconnect until the responder comes back).
    offline: bool,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// This step's actions, then what could not go while disconnected.
    pending: VecDeque<Action>,
}

/// A connected crew. See the module docs.
#[derive(Debug)]
pub struct Crew {
    members: Vec<Member>,
    index: HashMap<UnitId, usize>,
    clock: SharedClock,
    counters: Arc<Counters>,
    connect_permits: Arc<Semaphore>,
    publish_concurrency: usize,
}

impl Crew {
    /// Connects every unit. Fails (with every connected unit disconnected again) when the config
    /// is unusable or any unit cannot connect.
    pub async fn connect(cfg: CrewConfig) -> Result<Crew, SimError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(SimError::Config(problems));
        }
        let total = cfg.units.len();
        let counters = Arc::new(Counters::default());
        counters.units.store(total as u64, Ordering::Relaxed);
        let connect_permits = Arc::new(Semaphore::new(cfg.connect_concurrency));
        let mut members = Vec::with_capacity(total);
        let mut index = HashMap::with_capacity(total);
        for (i, (unit, secret)) in cfg.units.iter().enumerate() {
            let mut rng = unit_rng(cfg.seed, i);
            let kind = match &cfg.kinds {
                Some(kinds) => kinds[i],
                None => kind_for(cfg.seed, i),
            };
            // Drawn whether or not used, so explicit starts do not change the other draws.
            let seeded = cfg.bbox.point_at(rng.unit(), rng.unit());
            let start = cfg.starts.as_ref().map_or(seeded, |s| s[i]);
            let mut behaviour = cfg
                .overrides
                .get(unit)
                .cloned()
                .unwrap_or_else(|| cfg.behaviour.clone());
            behaviour.area = cfg.bbox;
            behaviour.fix_interval = cfg.fix_interval;
            let responder = Responder::new(unit.clone(), kind, start, behaviour, rng.next_u64());
            let mut handset_cfg = HandsetConfig::new(
                &cfg.broker,
                unit.clone(),
                secret.clone(),
                cfg.topics.clone(),
            );
            handset_cfg.keep_alive = cfg.keep_alive;
            handset_cfg.clock = cfg.clock.clone();
            handset_cfg.ack_timeout = cfg.ack_timeout;
            handset_cfg.sealed = cfg.sealed;
            index.insert(unit.clone(), i);
            members.push(Member {
                responder,
                handset_cfg,
                handset: None,
                ws_cfg: cfg.ws_config(unit, secret),
                ws: None,
                offline: false,
                backoff: MIN_BACKOFF,
                retry_at: None,
                pending: VecDeque::new(),
            });
        }
        let mut joins = JoinSet::new();
        for (i, m) in members.iter().enumerate() {
            let (cfg, ws_cfg) = (m.handset_cfg.clone(), m.ws_cfg.clone());
            let permits = connect_permits.clone();
            joins.spawn(async move {
                let _permit = permits.acquire_owned().await;
                (i, connect_unit(cfg, ws_cfg).await)
            });
        }
        let (mut failed, mut first) = (0, None);
        while let Some(joined) = joins.join_next().await {
            match joined {
                Ok((i, Ok((h, ws)))) => {
                    members[i].handset = Some(h);
                    counters.connected.fetch_add(1, Ordering::Relaxed);
                    if ws.is_some() {
                        counters.ws_connected.fetch_add(1, Ordering::Relaxed);
                    }
                    members[i].ws = ws;
                }
                Ok((_, Err(e))) => {
                    failed += 1;
                    first.get_or_insert(e);
                }
                Err(e) => {
                    failed += 1;
                    first.get_or_insert(SimError::Config(vec![format!(
                        "a connect task failed: {e}"
                    )]));
                }
            }
        }
        let crew = Crew {
            members,
            index,
            clock: cfg.clock.clone(),
            counters,
            connect_permits,
            publish_concurrency: cfg.publish_concurrency,
        };
        if let Some(first) = first {
            crew.stop().await;
            return Err(SimError::FleetConnect {
                failed,
                total,
                first: Box::new(first),
            });
        }
        tracing::info!(units = total, "simulated crew connected");
        Ok(crew)
    }

    /// One step at the clock's current time. See the module docs. Failures of single units are
    /// counted ([`CrewStats::errors`]) and retried, not returned.
    pub async fn step(&mut self) -> Result<StepReport, SimError> {
        let now = self.clock.now();
        let mut report = StepReport {
            at: now,
            ..StepReport::default()
        };
        let counters = &self.counters;
        // The responders, in unit order: deterministic.
        for m in &mut self.members {
            let before = m.responder.tally();
            if let Some(h) = &mut m.handset {
                while let Some(d) = h.next_downlink(Duration::ZERO).await {
                    report.downlinks += 1;
                    m.pending.extend(m.responder.on_downlink(now, &d));
                }
            }
            if let Some(ws) = &mut m.ws {
                while let Some(d) = ws.next_downlink(Duration::ZERO).await {
                    report.downlinks += 1;
                    add(&counters.ws_downlinks, 1);
                    m.pending.extend(m.responder.on_downlink(now, &d));
                }
            }
            let actions = m.responder.tick(now);
            report.actions += actions.len();
            m.pending.extend(actions);
            counters.tally(before, m.responder.tally());
        }
        add(&counters.downlinks, report.downlinks as u64);
        // The handsets, concurrently.
        let permits = &self.connect_permits;
        // Chunks of futures built in a loop, not a stream of closures: a closure over
        // `&mut Member` makes the step's future fail the `Send` check of `tokio::spawn`.
        let mut results = Vec::with_capacity(self.members.len());
        for chunk in self.members.chunks_mut(self.publish_concurrency) {
            let mut flushes = Vec::with_capacity(chunk.len());
            for m in chunk {
                flushes.push(m.flush(counters, permits));
            }
            results.extend(futures_util::future::join_all(flushes).await);
        }
        for (published, errors) in results {
            report.published += published;
            report.errors += errors;
        }
        Ok(report)
    }

    /// Steps every `period` (wall time) until `stop` is cancelled, then disconnects every unit
    /// and returns the final counters.
    pub async fn run(
        mut self,
        period: Duration,
        stop: CancellationToken,
    ) -> Result<CrewStats, SimError> {
        let mut ticker = tokio::time::interval(period.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while stop.run_until_cancelled(ticker.tick()).await.is_some() {
            self.step().await?;
        }
        let counters = self.counters.clone();
        self.stop().await;
        Ok(counters.snapshot())
    }

    /// The counters now.
    pub fn stats(&self) -> CrewStats {
        self.counters.snapshot()
    }

    /// A handle on the counters that can be read while [`Crew::run`] owns the crew.
    pub fn stats_handle(&self) -> CrewStatsHandle {
        CrewStatsHandle(self.counters.clone())
    }

    /// A unit's responder (its state, position and tally).
    pub fn responder(&self, unit: &UnitId) -> Option<&Responder> {
        self.index.get(unit).map(|&i| &self.members[i].responder)
    }

    /// Every responder, in unit order.
    pub fn responders(&self) -> impl Iterator<Item = &Responder> {
        self.members.iter().map(|m| &m.responder)
    }

    /// Disconnects every unit cleanly (no last will).
    pub async fn stop(self) {
        let counters = self.counters.clone();
        futures_util::stream::iter(self.members)
            .for_each_concurrent(64, |mut m| {
                let counters = counters.clone();
                async move {
                    if let Some(ws) = m.ws.take() {
                        counters.ws_connected.fetch_sub(1, Ordering::Relaxed);
                        ws.close().await;
                    }
                    if let Some(h) = m.handset.take() {
                        counters.connected.fetch_sub(1, Ordering::Relaxed);
                        if let Err(e) = h.disconnect().await {
                            tracing::debug!(error = %e, "disconnect");
                        }
                    }
                }
            })
            .await;
    }
}

impl Member {
    fn unit(&self) -> &UnitId {
        &self.handset_cfg.unit
    }

    /// Whether a connection the unit should hold is missing.
    fn link_missing(&self) -> bool {
        self.handset.is_none() || (self.ws_cfg.is_some() && self.ws.is_none())
    }

    /// Publishes what is pending, in order; returns (published, errors).
    async fn flush(&mut self, counters: &Counters, permits: &Semaphore) -> (usize, usize) {
        let (mut published, mut errors) = (0, 0);
        if self.handset.as_ref().is_some_and(|h| !h.is_connected()) {
            self.handset = None;
            counters.connected.fetch_sub(1, Ordering::Relaxed);
            self.retry_at = Some(Instant::now() + self.backoff);
            tracing::debug!(unit = %self.unit(), "connection lost; reconnecting later");
        }
        if self.ws.as_ref().is_some_and(|ws| !ws.is_connected()) {
            self.ws = None;
            counters.ws_connected.fetch_sub(1, Ordering::Relaxed);
            self.retry_at.get_or_insert(Instant::now() + self.backoff);
            tracing::debug!(unit = %self.unit(), "WebSocket session lost; reconnecting later");
        }
        let retry = self.retry_at.is_some_and(|t| Instant::now() >= t);
        if self.link_missing()
            && !self.offline
            && retry
            && self.reconnect(counters, permits).await.is_err()
        {
            errors += 1;
        }
        // What cannot go now is kept (`keep`) for the next flush, not retried in this one: a
        // loop over `self.pending` itself would spin on a kept action for ever.
        let mut queue = std::mem::take(&mut self.pending);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::GoOffline => {
                    self.offline = true;
                    counters.offline.fetch_add(1, Ordering::Relaxed);
                    // Dropped, not disconnected: the broker sees the radio go and sends the will.
                    if self.handset.take().is_some() {
                        counters.connected.fetch_sub(1, Ordering::Relaxed);
                    }
                    // The same radio carries the WebSocket: it goes too, without a close frame.
                    if self.ws.take().is_some() {
                        counters.ws_connected.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Action::ComeBack => {
                    self.offline = false;
                    counters.offline.fetch_sub(1, Ordering::Relaxed);
                    if self.link_missing() && self.reconnect(counters, permits).await.is_err() {
                        errors += 1;
                    }
                }
                action => {
                    let result = match (&action, &self.ws_cfg) {
                        // Receipts go the way the orders come.
                        (Action::Receipt(receipt), Some(_)) => {
                            let Some(ws) = &self.ws else {
                                self.keep(action);
                                continue;
                            };
                            ws.send_receipt(receipt).await.map(drop)
                        }
                        _ => {
                            let Some(h) = &self.handset else {
                                self.keep(action);
                                continue;
                            };
                            send(h, &action).await
                        }
                    };
                    match result {
                        Ok(()) => {
                            published += 1;
                            match &action {
                                Action::Fix(_) => add(&counters.fixes_sent, 1),
                                Action::BufferedFixes(f) => {
                                    add(&counters.buffered_fixes_sent, f.len() as u64)
                                }
                                Action::Receipt(_) => add(&counters.receipts_sent, 1),
                                _ => add(&counters.other_sent, 1),
                            }
                        }
                        Err(e) => {
                            errors += 1;
                            add(&counters.errors, 1);
                            tracing::debug!(unit = %self.unit(), error = %e, "publish failed");
                            if matches!(e, SimError::Disconnected { .. }) {
                                self.keep(action);
                            }
                        }
                    }
                }
            }
        }
        (published, errors)
    }

    /// Keeps an action for when the unit is connected again (live fixes are dropped).
    fn keep(&mut self, action: Action) {
        if matches!(action, Action::Fix(_)) {
            return;
        }
        if self.pending.len() < BACKLOG {
            self.pending.push_back(action);
        }
    }

    /// Connects what is missing: the MQTT handset, the WebSocket session, or both.
    async fn reconnect(&mut self, counters: &Counters, permits: &Semaphore) -> Result<(), ()> {
        let result = {
            let _permit = permits.acquire().await;
            self.connect_missing(counters).await
        };
        match result {
            Ok(()) => {
                self.backoff = MIN_BACKOFF;
                self.retry_at = None;
                add(&counters.reconnects, 1);
                Ok(())
            }
            Err(e) => {
                add(&counters.errors, 1);
                tracing::debug!(unit = %self.unit(), error = %e, "reconnect failed");
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Err(())
            }
        }
    }

    /// Connects the MQTT handset and the WebSocket session that are missing.
    async fn connect_missing(&mut self, counters: &Counters) -> Result<(), SimError> {
        if self.handset.is_none() {
            self.handset = Some(Handset::connect(self.handset_cfg.clone()).await?);
            add(&counters.connected, 1);
        }
        if let (None, Some(cfg)) = (&self.ws, &self.ws_cfg) {
            self.ws = Some(WsHandset::connect(cfg.clone()).await?);
            add(&counters.ws_connected, 1);
        }
        Ok(())
    }
}

/// Connects a unit's MQTT handset and, when asked, its WebSocket session; a unit whose session
/// cannot open does not stay half connected.
async fn connect_unit(
    cfg: HandsetConfig,
    ws_cfg: Option<WsHandsetConfig>,
) -> Result<(Handset, Option<WsHandset>), SimError> {
    let handset = Handset::connect(cfg).await?;
    let Some(ws_cfg) = ws_cfg else {
        return Ok((handset, None));
    };
    match WsHandset::connect(ws_cfg).await {
        Ok(ws) => Ok((handset, Some(ws))),
        Err(e) => {
            let _ = handset.disconnect().await;
            Err(e)
        }
    }
}

/// Publishes one action (not the connection changes) on `h`.
async fn send(h: &Handset, action: &Action) -> Result<(), SimError> {
    let report = |body| v1::Report {
        id: h.new_id(),
        time_ms: h.now().as_millis(),
        unit: h.unit().to_string(),
        body: Some(body),
    };
    match action {
        Action::Fix(fix) => h.publish_fix(*fix).await.map(drop),
        Action::BufferedFixes(fixes) => h.publish_batch(fixes.clone(), true).await.map(drop),
        Action::Receipt(receipt) => {
            let ack = v1::Ack {
                id: h.new_id(),
                time_ms: h.now().as_millis(),
                unit: h.unit().to_string(),
                receipt: Some(v1::ack::Receipt::Order(receipt.clone())),
            };
            h.publish_uplink(UplinkKind::Ack, &ack, QoS::AtLeastOnce)
                .await
        }
        Action::Heartbeat(status) => h.publish_status(status.clone()).await.map(drop),
        Action::Duty(duty) => {
            let body = v1::report::Body::Duty(v1::DutyStatusChange {
                status: *duty as i32,
                note: String::new(),
            });
            h.publish_uplink(UplinkKind::Report, &report(body), QoS::AtLeastOnce)
                .await
        }
        Action::FieldReport(f) => {
            let body = v1::report::Body::FieldReport(f.clone());
            h.publish_uplink(UplinkKind::Report, &report(body), QoS::AtLeastOnce)
                .await
        }
        Action::Ptt { talkgroup, action } => {
            let msg = v1::PttMessage {
                id: h.new_id(),
                time_ms: h.now().as_millis(),
                unit: h.unit().to_string(),
                talkgroup: talkgroup.clone(),
                action: Some(*action),
            };
            h.publish_uplink(UplinkKind::Ptt, &msg, QoS::AtLeastOnce)
                .await
        }
        Action::Video { stream_id, event } => {
            let msg = v1::VideoMessage {
                id: h.new_id(),
                time_ms: h.now().as_millis(),
                unit: h.unit().to_string(),
                stream_id: stream_id.clone(),
                event: Some(event.clone()),
            };
            h.publish_uplink(UplinkKind::Video, &msg, QoS::AtLeastOnce)
                .await
        }
        Action::Sos(sos) => {
            let msg = v1::Sos {
                id: h.new_id(),
                time_ms: h.now().as_millis(),
                unit: h.unit().to_string(),
                ..sos.clone()
            };
            h.publish_uplink(UplinkKind::Sos, &msg, QoS::AtLeastOnce)
                .await
        }
        Action::GoOffline | Action::ComeBack => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_kinds_are_stable_and_mixed() {
        let kinds: Vec<UnitKind> = (0..200).map(|i| kind_for(1, i)).collect();
        assert_eq!(kinds, (0..200).map(|i| kind_for(1, i)).collect::<Vec<_>>());
        for k in [UnitKind::OnFoot, UnitKind::EBike, UnitKind::Car] {
            assert!(kinds.contains(&k), "{k:?}");
        }
    }

    #[test]
    fn a_config_that_cannot_work_says_why() {
        let unit = UnitId::new("u1").expect("id");
        let mut cfg = CrewConfig::new(
            "127.0.0.1:1",
            Topics::default(),
            vec![(unit.clone(), "s".into()), (unit, "s".into())],
        );
        cfg.starts = Some(vec![(30.25, 120.17)]);
        let p = cfg.problems();
        assert!(p.iter().any(|p| p.contains("listed twice")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("starts")), "{p:?}");
    }
}

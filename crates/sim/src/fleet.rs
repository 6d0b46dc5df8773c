//! A fleet of virtual handsets that publish fixes along their routes.
//!
//! [`Fleet::start`] connects every unit (at most [`FleetConfig::connect_concurrency`] connects
//! at a time, so 10k handsets do not stampede the broker) and returns once all are connected, or
//! stops them all and says how many failed. Each unit then publishes a QoS 0 fix every
//! [`FleetConfig::fix_interval`], starting after a seeded jitter within one interval so that the
//! fleet does not fire in the same millisecond. A unit's position is a pure function of the fix
//! time (its [`Route`] at `fix time - start time`), so a test that drives a manual clock gets
//! fix times and positions that agree with that clock.
//!
//! A unit whose connection drops reconnects with a backoff (1 s doubling to 30 s) and counts it.
//! Behaviour beyond moving (heartbeats, orders, PTT, video, going offline) is issue 7's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldlink_clock::{SharedClock, SystemClock, Timestamp};
use fieldlink_proto::{Topics, UnitId, v1};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::route::{Bbox, Route, SplitMix64, UnitKind};
use crate::{HandsetConfig, SimError};

mod unit;

/// How a fleet runs.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The broker, `host:port`.
    pub broker: String,
    /// The topic grammar.
    pub topics: Topics,
    /// Each unit's id and secret.
    pub units: Vec<(UnitId, String)>,
    /// Time between two fixes of one unit.
    pub fix_interval: Duration,
    /// Seeds routes, unit kinds and start jitter: same seed, same fleet.
    pub seed: u64,
    /// Route time zero; `None`: the clock's time when the fleet starts.
    pub start_time: Option<Timestamp>,
    /// Where fix times come from (wall time by default; a test's manual clock otherwise).
    pub clock: SharedClock,
    /// Where the units move.
    pub bbox: Bbox,
    /// Connects in progress at once.
    pub connect_concurrency: usize,
    /// MQTT keep-alive of each handset.
    pub keep_alive: Duration,
    /// Whether handsets set their last will.
    pub last_will: bool,
    /// Whether handsets seal their payloads ([`HandsetConfig::sealed`]): true for fieldlink's
    /// embedded broker, false for an external one.
    pub sealed: bool,
}

impl FleetConfig {
    /// Defaults: a fix per second, seed 0, wall clock, Shangcheng, 64 connects at once,
    /// keep-alive 30 s, last will on, sealed.
    pub fn new(broker: impl Into<String>, topics: Topics, units: Vec<(UnitId, String)>) -> Self {
        FleetConfig {
            broker: broker.into(),
            topics,
            units,
            fix_interval: Duration::from_secs(1),
            seed: 0,
            start_time: None,
            clock: Arc::new(SystemClock),
            bbox: Bbox::SHANGCHENG,
            connect_concurrency: 64,
            keep_alive: Duration::from_secs(30),
            last_will: true,
            sealed: true,
        }
    }

    /// Every problem with this config, in words.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.fix_interval.is_zero() {
            problems.push("fix_interval must be above zero".to_owned());
        }
        if self.connect_concurrency == 0 {
            problems.push("connect_concurrency must be at least 1".to_owned());
        }
        let mut seen = std::collections::HashSet::new();
        for (unit, _) in &self.units {
            if !seen.insert(unit) {
                problems.push(format!("unit {unit} is listed twice"));
            }
        }
        problems
    }
}

/// The fleet's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FleetStats {
    /// Units in the fleet.
    pub units: usize,
    /// Handsets connected now.
    pub connected: u64,
    /// Fixes handed to a live connection (QoS 0: not acknowledged by the broker).
    pub fixes_sent: u64,
    /// Failed publishes and failed reconnects.
    pub errors: u64,
    /// Successful reconnects after a lost connection.
    pub reconnects: u64,
}

/// The last fix a unit published.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedFix {
    /// How the unit moves.
    pub kind: UnitKind,
    /// The fix as it went out (its `fix_time_ms`, `lat`, `lon`, `seq`, ...).
    pub fix: v1::GpsFix,
    /// The id of the `GpsReport` that carried it.
    pub report_id: String,
}

#[derive(Debug, Default)]
struct Counters {
    connected: AtomicU64,
    fixes_sent: AtomicU64,
    errors: AtomicU64,
    reconnects: AtomicU64,
}

/// What every unit task shares.
#[derive(Debug)]
struct Common {
    clock: SharedClock,
    start_time: Timestamp,
    fix_interval: Duration,
    counters: Counters,
    /// Short critical sections (one insert per fix), so a std mutex (as mini-redis's `db.rs`).
    positions: Mutex<HashMap<UnitId, PublishedFix>>,
    connect_permits: Semaphore,
    cancel: CancellationToken,
}

/// A running fleet. Dropping it cancels the units; [`Fleet::stop`] also waits for them.
#[derive(Debug)]
pub struct Fleet {
    common: Arc<Common>,
    tracker: TaskTracker,
    routes: HashMap<UnitId, (UnitKind, Route)>,
}

impl Fleet {
    /// Connects every unit and starts publishing. Fails (with every unit stopped) when the config
    /// is unusable or any unit cannot connect.
    pub async fn start(cfg: FleetConfig) -> Result<Fleet, SimError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(SimError::Config(problems));
        }
        let total = cfg.units.len();
        let common = Arc::new(Common {
            start_time: cfg.start_time.unwrap_or_else(|| cfg.clock.now()),
            clock: cfg.clock.clone(),
            fix_interval: cfg.fix_interval,
            counters: Counters::default(),
            positions: Mutex::new(HashMap::with_capacity(total)),
            connect_permits: Semaphore::new(cfg.connect_concurrency),
            cancel: CancellationToken::new(),
        });
        let tracker = TaskTracker::new();
        let (ready_tx, mut ready_rx) = mpsc::channel(total.max(1));
        let mut routes = HashMap::with_capacity(total);
        for (i, (unit, secret)) in cfg.units.into_iter().enumerate() {
            let mut rng = SplitMix64(cfg.seed ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            let kind = match rng.below(100) {
                0..60 => UnitKind::OnFoot,
                60..85 => UnitKind::EBike,
                _ => UnitKind::Car,
            };
            let route = Route::for_kind(rng.next_u64(), cfg.bbox, kind);
            let jitter = cfg.fix_interval.mul_f64(rng.below(1_000_000) as f64 / 1e6);
            let mut handset =
                HandsetConfig::new(&cfg.broker, unit.clone(), secret, cfg.topics.clone());
            handset.keep_alive = cfg.keep_alive;
            handset.last_will = cfg.last_will;
            handset.sealed = cfg.sealed;
            handset.clock = cfg.clock.clone();
            let task = unit::UnitTask {
                handset,
                kind,
                route: route.clone(),
                jitter,
                satellites: 7 + rng.below(6) as u32,
                accuracy_m: 3.0 + rng.below(6) as f32,
                battery_pct: 40.0 + rng.below(61) as f32,
                common: common.clone(),
            };
            tracker.spawn(task.run(ready_tx.clone()));
            routes.insert(unit, (kind, route));
        }
        drop(ready_tx);
        let (mut failed, mut first) = (0, None);
        for _ in 0..total {
            match ready_rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    failed += 1;
                    first.get_or_insert(e);
                }
                None => break,
            }
        }
        let fleet = Fleet {
            common,
            tracker,
            routes,
        };
        if let Some(first) = first {
            fleet.stop().await;
            return Err(SimError::FleetConnect {
                failed,
                total,
                first: Box::new(first),
            });
        }
        tracing::info!(units = total, "simulated fleet connected");
        Ok(fleet)
    }

    /// The counters now.
    pub fn stats(&self) -> FleetStats {
        let c = &self.common.counters;
        FleetStats {
            units: self.routes.len(),
            connected: c.connected.load(Ordering::Relaxed),
            fixes_sent: c.fixes_sent.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
        }
    }

    /// The last fix each unit published (units that have not published yet are absent).
    pub fn positions(&self) -> HashMap<UnitId, PublishedFix> {
        self.common
            .positions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last fix `unit` published.
    pub fn position(&self, unit: &UnitId) -> Option<PublishedFix> {
        let positions = self
            .common
            .positions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        positions.get(unit).cloned()
    }

    /// A unit's kind and route (where it will be at any instant: see [`Fleet::start_time`]).
    pub fn route(&self, unit: &UnitId) -> Option<(UnitKind, &Route)> {
        self.routes.get(unit).map(|(kind, route)| (*kind, route))
    }

    /// Route time zero: a unit's position at fix time `t` is its route at `t - start_time`.
    pub fn start_time(&self) -> Timestamp {
        self.common.start_time
    }

    /// Stops every unit (each handset disconnects cleanly, so no last will fires) and waits.
    pub async fn stop(self) {
        self.common.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.common.cancel.cancel();
    }
}

//! Wiring: builds every part from the config, starts the tasks, and stops them in order.
//!
//! [`start`] is what `fieldlink serve` and the end-to-end tests call: it returns a [`Server`]
//! with the bound addresses (port 0 works for HTTP), and [`Server::shutdown`] drains it under a
//! grace timeout. Nothing is spawned that the [`TaskTracker`] does not wait for, except the
//! embedded broker's own threads (rumqttd has no stop; they end with the process).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use fieldlink_clock::SharedClock;
use fieldlink_ingest::{
    BrokerTls, Decoder, EmbeddedBroker, EmbeddedBrokerConfig, ExternalBrokerConfig, IngestMetrics,
    Limits, ReplayMarks, Sealing, Source,
};
use fieldlink_location::Tracker;
use fieldlink_store::{Holder, InstanceLock, Store, StoreConfig};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::dispatch::DispatchService;
use crate::metrics::ServerMetrics;
use crate::persist::{self, PendingWrites};
use crate::state::{AppState, Inner};
use crate::{admin, dispatch, http, provision, retention, uplink, zones};

/// How often the credential cache is refreshed from the store.
const CREDENTIAL_REFRESH: Duration = Duration::from_secs(3);
/// The soonest a refresh asked for by an unknown unit's CONNECT follows the previous one.
const CREDENTIAL_REFRESH_SOONEST: Duration = Duration::from_secs(1);
/// How often presence timeouts are evaluated.
const PRESENCE_TICK: Duration = Duration::from_secs(1);
/// Decoded uplinks waiting for the location core; when full, the decoder waits (back-pressure
/// onto the broker link), so nothing decoded is dropped here.
const RECEIVED_QUEUE: usize = 10_000;
/// The embedded broker accepts packets this many times `mqtt.max_payload_bytes` (see `start`).
const BROKER_PAYLOAD_HEADROOM: usize = 4;

/// A running fieldlink.
#[derive(Debug)]
pub struct Server {
    http_addr: SocketAddr,
    mqtt_addr: Option<SocketAddr>,
    state: AppState,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    first_run: Option<String>,
    instance_lock: InstanceLock,
    _broker: Option<EmbeddedBroker>,
}

impl Server {
    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where the embedded broker listens (`None` with an external broker).
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// The shared state (tests read the tracker and the store through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Credentials created on this first start (admin token, demo unit), if any.
    pub fn first_run(&self) -> Option<&str> {
        self.first_run.as_deref()
    }

    /// A token that stops the server when cancelled (signals are wired to it in `main`).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting work, lets tasks finish within `grace`, writes pending positions.
    pub async fn shutdown(self, grace: Duration) {
        self.shutdown.cancel();
        self.state.push.shutdown();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_s = grace.as_secs(),
                "some tasks did not finish within the grace period; stopping anyway"
            );
        }
        self.state.store.close().await;
        self.instance_lock.release().await;
    }

    /// Waits until the shutdown token is cancelled, then shuts down within `grace`.
    pub async fn run_until_stopped(self, grace: Duration) {
        self.shutdown.cancelled().await;
        self.shutdown(grace).await;
    }
}

/// How fieldlink verifies an external broker over `mqtts://` (and proves who it is).
fn external_tls(mqtt: &crate::config::MqttConfig) -> fieldlink_tls::ClientTls {
    let path = |p: &std::path::PathBuf| Some(p.clone()).filter(|p| !p.as_os_str().is_empty());
    fieldlink_tls::ClientTls {
        ca_file: path(&mqtt.ca_file),
        identity: path(&mqtt.client_cert).zip(path(&mqtt.client_key)),
    }
}

/// Opens the configured store (creating the data directory for SQLite).
pub async fn open_store(config: &Config) -> Result<Store> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (choose another with --data)",
            config.data_dir.display()
        )
    })?;
    Store::open(&store_config(config))
        .await
        .context("cannot open the store")
}

/// Where the configured store is.
fn store_config(config: &Config) -> StoreConfig {
    let url = config.store.effective_url(&config.data_dir);
    let pg_schema = Some(config.store.pg_schema.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    StoreConfig { url, pg_schema }
}

/// Builds and starts everything.
pub async fn start(config: Config, clock: SharedClock) -> Result<Server> {
    let topics = config.mqtt.topics()?;
    // Before anything else: a second process on the same store would keep cores of its own and
    // overwrite this one's records (docs/decisions.md, "One process per store"). The holder's
    // start time is for a person to read, so it is the wall clock's.
    let holder = Holder::this_process(fieldlink_clock::Clock::now(&fieldlink_clock::SystemClock));
    let instance_lock = InstanceLock::acquire(&store_config(&config), &holder).await?;
    // Ports next: a taken port must stop the start before anything (first-run credentials
    // included) is created.
    let listener = TcpListener::bind(config.http.listen).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {}: the port may be in use by another program; choose another with --http, e.g. --http 127.0.0.1:8081",
            config.http.listen
        )
    })?;
    let https = if config.http.tls {
        let tls = fieldlink_tls::server_config(&config.tls.cert, &config.tls.key, &[b"http/1.1"])
            .context("cannot serve HTTPS with the [tls] certificate")?;
        Some(tokio_rustls::TlsAcceptor::from(tls))
    } else {
        None
    };
    if config.mqtt.embedded() && config.mqtt.plain {
        fieldlink_ingest::broker::check_port(config.mqtt.listen)?;
    }
    let store = open_store(&config).await?;
    let now = clock.now();
    for unit in &config.units {
        provision::sync_configured_unit(&store, unit, now)
            .await
            .with_context(|| format!("provisioning unit {} from the config file", unit.id))?;
    }
    let first_run = admin::bootstrap(&store, &config.data_dir, now).await?;
    let credentials = Credentials::load(store.clone()).await?;

    let mut registry = Registry::default();
    let metrics = ServerMetrics::register(&mut registry);
    let ingest_metrics = IngestMetrics::register(&mut registry);

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();

    let (source, broker, mqtt_addr) = if config.mqtt.embedded() {
        let broker_config = EmbeddedBrokerConfig {
            listen: config.mqtt.listen,
            max_connections: config.mqtt.max_connections,
            max_connections_per_address: config.mqtt.max_connections_per_address,
            uncapped_addresses: config.mqtt.uncapped_addresses.clone(),
            // rumqttd disconnects a client whose packet exceeds its limit, without telling us.
            // Give it headroom so that moderately oversized payloads reach the decoder and are
            // refused and counted there (`too_large`), while absurd ones are still cut off.
            max_payload_bytes: config
                .mqtt
                .max_payload_bytes
                .saturating_mul(BROKER_PAYLOAD_HEADROOM),
            uplink_queue: config.mqtt.uplink_queue,
            plain: config.mqtt.plain,
            tls: config.mqtt.tls_listen.map(|listen| BrokerTls {
                listen,
                cert: config.tls.cert.clone(),
                key: config.tls.key.clone(),
            }),
            ..EmbeddedBrokerConfig::default()
        };
        let auth = Arc::new(HandsetAuth(credentials.clone()));
        let (broker, source) = EmbeddedBroker::start(
            &broker_config,
            auth,
            Arc::new(ActiveUnits(credentials.clone())),
            &topics,
            &ingest_metrics,
            shutdown.clone(),
        )?;
        let addr = broker.listen_addr();
        (source, Some(broker), Some(addr))
    } else {
        let external = ExternalBrokerConfig {
            url: config.mqtt.url.clone(),
            client_id: config.mqtt.client_id.clone(),
            username: Some(config.mqtt.username.clone()).filter(|s| !s.is_empty()),
            password: Some(config.mqtt.password.clone()).filter(|s| !s.is_empty()),
            uplink_queue: config.mqtt.uplink_queue,
            tls: external_tls(&config.mqtt),
            ..ExternalBrokerConfig::default()
        };
        let source =
            fieldlink_ingest::connect(&external, &topics, &ingest_metrics, shutdown.clone())?;
        (source, None, None)
    };
    let Source {
        uplink: raw_uplink,
        downlink,
        worker,
    } = source;
    tasks.spawn(worker.join());

    let (dispatch_service, dispatch_inputs) =
        DispatchService::restore(&store, config.dispatch.clone(), metrics.dropped("dispatch"))
            .await?;
    let (intercom_service, intercom_inputs) = crate::intercom::IntercomService::start(
        &store,
        config.intercom.clone(),
        &config.talkgroups,
        now,
        metrics.dropped("intercom"),
    )
    .await?;
    let (video_service, video_inputs) = crate::video::VideoService::start(
        &store,
        config.video.core(),
        &config.video.camera_files,
        now,
        metrics.dropped("video"),
    )
    .await?;
    let push_backend = Arc::new(crate::push::PushBackend::default());
    let hub = fieldlink_push::Hub::new(config.push.clone(), push_backend.clone(), clock.clone());
    let state = AppState::new(Inner {
        store: store.clone(),
        credentials: credentials.clone(),
        tracker: Mutex::new(Tracker::new(config.location.clone())),
        zones: Mutex::default(),
        registry,
        metrics,
        clock: clock.clone(),
        downlink,
        dispatch: dispatch_service,
        push: hub,
        intercom: intercom_service,
        journal_order: tokio::sync::Mutex::new(()),
        video: video_service,
        health: crate::health::CommitHealth::default(),
    });
    push_backend.attach(&state);
    let (stored, from_files) = zones::load(&state, &config.zones).await?;
    tracing::info!(stored, from_files, "geofences and grids loaded");
    let restored = persist::restore(&state, &store).await?;
    tracing::info!(units = restored, "latest positions restored from the store");

    // rumqttd has no topic ACL: on the embedded broker only a payload sealed with the topic's
    // unit's key proves who sent it (docs/security.md). An external broker's ACL binds topics
    // to logins, so sealing is optional there.
    let sealing = if config.mqtt.embedded() {
        Sealing::Required
    } else {
        Sealing::Optional
    };
    let replay = ReplayMarks::restore(persist::restore_seal_marks(&store).await?);
    let decoder = Decoder::new(
        topics.clone(),
        Limits {
            max_payload_bytes: config.mqtt.max_payload_bytes,
            max_batch_fixes: config.mqtt.max_batch_fixes,
            throttle: fieldlink_ingest::ThrottleConfig {
                rate_per_s: config.mqtt.max_messages_per_s,
                burst: config.mqtt.message_burst,
            },
        },
    )
    .with_sealing(sealing);
    let (received_tx, received_rx) = mpsc::channel(RECEIVED_QUEUE);
    tasks.spawn(fieldlink_ingest::run(
        raw_uplink,
        decoder,
        Arc::new(ActiveUnits(credentials.clone())),
        replay.clone(),
        clock.clone(),
        ingest_metrics,
        received_tx,
        shutdown.clone(),
    ));
    let pending = PendingWrites::default();
    tasks.spawn(uplink::run(
        received_rx,
        state.clone(),
        pending.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(persist::run(
        state.clone(),
        pending,
        replay,
        config.store.flush_interval(),
        shutdown.clone(),
    ));
    tasks.spawn(presence_ticker(state.clone(), shutdown.clone()));
    tasks.spawn(dispatch::run(
        state.clone(),
        dispatch_inputs,
        shutdown.clone(),
    ));
    tasks.spawn(crate::intercom::run(
        state.clone(),
        intercom_inputs,
        shutdown.clone(),
    ));
    tasks.spawn(crate::video::run(
        state.clone(),
        video_inputs,
        shutdown.clone(),
    ));
    tasks.spawn(retention::run(state.clone(), shutdown.clone()));
    sync_profiles(&state);
    tasks.spawn(refresh_credentials(state.clone(), shutdown.clone()));

    let http_addr = listener.local_addr()?;
    {
        let state = state.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let served = match https {
                Some(acceptor) => http::serve_tls(listener, acceptor, state, shutdown).await,
                None => http::serve(listener, state, shutdown).await,
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        });
    }
    let mqtt = mqtt_addr.map_or_else(|| "none".to_owned(), |a| a.to_string());
    tracing::info!(%http_addr, mqtt, broker = if config.mqtt.embedded() { "embedded" } else { config.mqtt.url.as_str() }, "fieldlink is running");
    Ok(Server {
        http_addr,
        mqtt_addr,
        state,
        shutdown,
        tasks,
        first_run,
        instance_lock,
        _broker: broker,
    })
}

/// The embedded broker's CONNECT check, backed by the credential cache.
struct HandsetAuth(Credentials);

impl fieldlink_ingest::Authenticator for HandsetAuth {
    /// A refusal is answered, counted and logged (rate-limited, with the peer address) by
    /// the broker's listener (`fieldlink_ingest::broker`, `check_login`).
    fn authenticate(&self, client_id: &str, username: &str, password: &str) -> bool {
        self.0.authenticate_handset(client_id, username, password)
    }
}

/// Ingest's "is this a known, enabled unit, and what is its seal key", backed by the
/// credential cache.
struct ActiveUnits(Credentials);

impl fieldlink_ingest::UnitDirectory for ActiveUnits {
    fn is_active(&self, unit: &fieldlink_proto::UnitId) -> bool {
        self.0.unit_active(unit.as_str())
    }

    fn seal_key(&self, unit: &fieldlink_proto::UnitId) -> Option<fieldlink_seal::SealKey> {
        self.0.seal_key(unit.as_str())
    }
}

async fn presence_ticker(state: AppState, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(PRESENCE_TICK);
    while shutdown.run_until_cancelled(ticker.tick()).await.is_some() {
        let now = state.clock.now();
        let mut tracker = state.tracker();
        for event in tracker.tick(now) {
            dispatch::presence_changed(&state, &event);
            tracing::info!(unit = %event.unit, from = event.from.as_str(), to = event.to.as_str(), "presence changed");
        }
        let online = tracker
            .iter()
            .filter(|s| s.presence == fieldlink_location::Presence::Online)
            .count();
        state.metrics.units_online.set(online as i64);
    }
}

/// Reloads the credential cache every [`CREDENTIAL_REFRESH`], and sooner (but at most once per
/// [`CREDENTIAL_REFRESH_SOONEST`]) when an unknown unit tried to connect.
async fn refresh_credentials(state: AppState, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(CREDENTIAL_REFRESH);
    loop {
        let due = async {
            tokio::select! {
                _ = ticker.tick() => {}
                () = state.credentials.refresh_requested() => {}
            }
        };
        if shutdown.run_until_cancelled(due).await.is_none() {
            return;
        }
        match state.credentials.reload().await {
            Ok(()) => sync_profiles(&state),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh units and tokens from the store; keeping the cached ones");
            }
        }
        // A flood of CONNECTs from unknown units must not become a flood of reloads.
        if shutdown
            .run_until_cancelled(tokio::time::sleep(CREDENTIAL_REFRESH_SOONEST))
            .await
            .is_none()
        {
            return;
        }
    }
}

/// Gives the location core each unit's movement profile (its type's maximum speed, for the
/// jump filter).
fn sync_profiles(state: &AppState) {
    let units = state.credentials.units();
    let mut tracker = state.tracker();
    for unit in units {
        let profile = tracker.config().profile(unit.unit_type.as_str());
        tracker.set_profile(&unit.id, profile);
    }
}

//! The video service: the server's owner of the live-stream registry (`crates/video`).
//!
//! Handsets announce, keep alive and stop their streams on the `video` topic; the registry marks
//! silent streams stale, drops the long silent ones and those of handsets gone offline, and
//! tracks the command room's start/stop requests until a stream answers or they time out. Fixed
//! cameras come from the config's camera files (read at each start) and the API (stored).
//!
//! Every change is a journal event (`video.stream_started`, `video.request_timed_out`, ...)
//! committed before it reaches the WebSocket hub (channel `video`); a request goes to the
//! handset as a `VideoRequest` on its MQTT downlink after the commit. Live streams are not
//! stored: a handset re-announces its stream with its next keepalive after a restart.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use fieldlink_clock::Timestamp;
use fieldlink_location::CoordSystem;
use fieldlink_proto::v1;
use fieldlink_push::Channel;
use fieldlink_store::{ChangeSet, NewEvent, Store, StoreError};
use fieldlink_video::{
    Camera, Effect, Outcome, Registry, UnitId, VideoChange, VideoConfig, VideoError, VideoEvent,
    VideoReport,
};
use prost::Message;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard, mpsc};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Handset video messages waiting for the video task; a full queue drops (the next keepalive
/// repeats the stream's state).
pub const INPUT_QUEUE: usize = 10_000;
/// How often stale streams, silent streams and request time-outs are checked.
const TICK: Duration = Duration::from_millis(500);

/// What the video task applies.
#[derive(Debug, Clone)]
pub enum VideoInput {
    /// A `VideoMessage` from `unit`'s handset.
    Message(String, Box<v1::VideoMessage>),
    /// The unit's handset went offline.
    Offline(String),
}

/// Why a command did not happen.
#[derive(Debug)]
pub enum VideoCommandError {
    /// The registry refused it; nothing changed.
    Refused(VideoError),
    /// The store could not commit it; nothing changed.
    Store(StoreError),
}

/// The registry and its input queue.
#[derive(Debug)]
pub struct VideoService {
    core: Mutex<Registry>,
    inputs: crate::service_loop::InputQueue<VideoInput>,
}

/// Reads one camera file: GeoJSON by default, CSV when its name ends in `.csv`.
pub fn read_camera_file(path: &PathBuf) -> anyhow::Result<Vec<Camera>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the camera file {}", path.display()))?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let parsed = if is_csv {
        fieldlink_video::cameras_from_csv(&text, CoordSystem::Wgs84)
    } else {
        fieldlink_video::cameras_from_geojson(&text, CoordSystem::Wgs84)
    };
    parsed.map_err(|e| anyhow::anyhow!("camera file {}: {e}", path.display()))
}

impl VideoService {
    /// The registry with the cameras of the config's files, then those added through the API.
    pub async fn start(
        store: &Store,
        config: VideoConfig,
        camera_files: &[PathBuf],
        now: Timestamp,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> anyhow::Result<(Self, mpsc::Receiver<VideoInput>)> {
        let mut core = Registry::new(config);
        for path in camera_files {
            let cameras = read_camera_file(path)?;
            let source = path.display().to_string();
            core.import_cameras(&source, cameras, now)
                .map_err(|e| anyhow::anyhow!("camera file {source}: {e}"))?;
        }
        let stored = (store.load_cameras().await).context("cannot load the cameras")?;
        let stored: Vec<Camera> = (stored.into_iter())
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .context("a stored camera is unreadable")?;
        if !stored.is_empty() {
            core.import_cameras("store", stored, now)
                .map_err(|e| anyhow::anyhow!("stored cameras: {e}"))?;
        }
        let (inputs, rx) = crate::service_loop::InputQueue::new(INPUT_QUEUE, "video", dropped);
        let service = VideoService {
            core: Mutex::new(core),
            inputs,
        };
        Ok((service, rx))
    }

    /// Queues an input without waiting; a full queue drops it (counted, logged).
    pub fn input(&self, input: VideoInput) {
        self.inputs.offer(input);
    }

    /// The registry, for reads (hold it briefly).
    pub async fn read(&self) -> MutexGuard<'_, Registry> {
        self.core.lock().await
    }

    /// Runs one command as `actor` (a journal label): the registry, one commit (its events, and
    /// `store_cameras`: the cameras the API adds), the hub, then the handset requests.
    pub async fn execute<T, F>(
        &self,
        state: &AppState,
        actor: &str,
        store_cameras: &[Camera],
        command: F,
    ) -> Result<T, VideoCommandError>
    where
        F: FnOnce(&mut Registry, Timestamp) -> Result<(T, Outcome), VideoError>,
    {
        let mut core = self.core.lock().await;
        let now = state.clock.now();
        let before = core.state().clone();
        let (value, outcome) = match command(&mut core, now) {
            Ok(done) => done,
            Err(e) => {
                *core = Registry::restore(*core.config(), before);
                return Err(VideoCommandError::Refused(e));
            }
        };
        if outcome.is_empty() {
            return Ok(value);
        }
        let mut change = ChangeSet {
            at: now,
            events: (outcome.events.iter()).map(|e| event(e, actor)).collect(),
            ..ChangeSet::default()
        };
        change.cameras_saved = (store_cameras.iter())
            .map(|c| (c.id.to_string(), json(c)))
            .collect();
        for e in &outcome.events {
            if let VideoChange::CameraRemoved { camera } = &e.change {
                change.cameras_removed.push(camera.to_string());
            }
        }
        if let Err(e) = crate::push::commit_to_channel(state, &change, Channel::Video).await {
            *core = Registry::restore(*core.config(), before);
            state.commit_failed("video", &e);
            return Err(VideoCommandError::Store(e));
        }
        state.commit_succeeded("video");
        for effect in &outcome.effects {
            send_request(state, now, effect).await;
        }
        Ok(value)
    }
}

fn json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `video.{change}`, about its stream, request or camera.
fn event(e: &VideoEvent, actor: &str) -> NewEvent {
    let data = json(e);
    let kind = format!("video.{}", data["type"].as_str().unwrap_or("change"));
    let subject = ["stream", "request", "camera", "source"]
        .iter()
        .find_map(|k| match &data[*k] {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default();
    NewEvent {
        at: e.at,
        kind,
        subject,
        actor: actor.to_owned(),
        data,
    }
}

/// Publishes a start or stop request on the unit's downlink (QoS 1). A lost one times out in
/// the registry, which the command room sees.
async fn send_request(state: &AppState, now: Timestamp, effect: &Effect) {
    let Effect::SendVideoRequest {
        unit,
        request,
        action,
    } = effect;
    let Ok(to) = fieldlink_proto::UnitId::new(unit.to_string()) else {
        return;
    };
    let msg = v1::Downlink {
        id: format!("video/{request}"),
        time_ms: now.as_millis(),
        unit: unit.to_string(),
        body: Some(v1::downlink::Body::Video(
            fieldlink_video::wire::video_request(request, action),
        )),
    };
    let publish = state
        .downlink
        .publish(&to, Bytes::from(msg.encode_to_vec()));
    match tokio::time::timeout(Duration::from_secs(2), publish).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%unit, error = %e, "video request not published"),
        Err(_) => tracing::warn!(%unit, "video request publish timed out"),
    }
}

/// Applies inputs and fires deadlines until `shutdown`.
pub async fn run(state: AppState, inputs: mpsc::Receiver<VideoInput>, shutdown: CancellationToken) {
    crate::service_loop::inputs_and_ticks(
        inputs,
        TICK,
        shutdown,
        |input| apply(&state, input),
        || tick(&state),
    )
    .await;
}

async fn tick(state: &AppState) {
    let now = state.clock.now();
    let due = (state.video.read().await.next_deadline()).is_some_and(|t| t <= now);
    if due {
        let result = (state.video)
            .execute(state, "system:video", &[], |r, now| Ok(((), r.tick(now))))
            .await;
        report(result, "deadline");
    }
}

async fn apply(state: &AppState, input: VideoInput) {
    let result = match &input {
        VideoInput::Offline(unit) => {
            let u = UnitId::from(unit.as_str());
            (state.video)
                .execute(state, "system:presence", &[], |r, now| {
                    Ok(((), r.unit_offline(&u, now)))
                })
                .await
        }
        VideoInput::Message(unit, m) => {
            let u = UnitId::from(unit.as_str());
            match VideoReport::from_wire(&u, m) {
                Ok(report) => {
                    let actor = format!("unit:{unit}");
                    (state.video)
                        .execute(state, &actor, &[], |r, now| Ok(((), r.apply(report, now)?)))
                        .await
                }
                Err(e) => {
                    tracing::info!(unit, error = %e, "video message ignored");
                    Ok(())
                }
            }
        }
    };
    report(result, &input.to_string());
}

fn report(result: Result<(), VideoCommandError>, what: &str) {
    match result {
        Ok(()) => {}
        Err(VideoCommandError::Refused(e)) => {
            tracing::info!(code = e.code(), error = %e, input = what, "video input refused");
        }
        Err(VideoCommandError::Store(e)) => {
            tracing::error!(error = %e, input = what, "video could not commit; nothing changed");
        }
    }
}

/// An input as a log line names it: `video message from patrol-07`.
impl std::fmt::Display for VideoInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VideoInput::Message(unit, _) => write!(f, "video message from {unit}"),
            VideoInput::Offline(unit) => write!(f, "{unit} offline"),
        }
    }
}

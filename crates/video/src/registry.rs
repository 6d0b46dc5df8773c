//! [`Registry`]: the handsets' streams, the fixed cameras and the pending requests, and the
//! stream lifecycle (started, keepalive, stopped, offline, stale, silent) with [`Registry::tick`].
//!
//! Every method takes the receive time `now` from the caller; staleness is measured on it, not
//! on the handset's own clock (`VideoMessage.time_ms`), which may be off. A stopped stream
//! leaves the registry: its `stream_stopped` event is the record of it.

use std::collections::BTreeMap;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::VideoConfig;
use crate::error::VideoError;
use crate::event::{Outcome, PendingRequest, StopReason, VideoChange};
use crate::model::{
    Camera, CameraId, RequestId, Stream, StreamId, StreamInfo, StreamState, UnitId,
};

/// Everything the registry holds, serde-serializable so the server can snapshot and restore it
/// (deadlines are absolute, so a restore resumes every countdown at its original instant).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistryState {
    /// Handsets' streams by id.
    pub streams: BTreeMap<StreamId, Stream>,
    /// Fixed cameras by id.
    pub cameras: BTreeMap<CameraId, Camera>,
    /// Requests sent and not yet answered, by id.
    pub requests: BTreeMap<RequestId, PendingRequest>,
}

/// The video core. See the crate docs.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub(crate) config: VideoConfig,
    pub(crate) state: RegistryState,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: VideoConfig) -> Self {
        Registry {
            config,
            state: RegistryState::default(),
        }
    }

    /// A registry resumed from a snapshot.
    pub fn restore(config: VideoConfig, state: RegistryState) -> Self {
        Registry { config, state }
    }

    /// The timing in force.
    pub fn config(&self) -> &VideoConfig {
        &self.config
    }

    /// Everything held, for a snapshot.
    pub fn state(&self) -> &RegistryState {
        &self.state
    }

    /// One stream.
    pub fn stream(&self, id: &StreamId) -> Option<&Stream> {
        self.state.streams.get(id)
    }

    /// All streams (live and stale), by id.
    pub fn streams(&self) -> impl Iterator<Item = &Stream> {
        self.state.streams.values()
    }

    /// One unit's streams.
    pub fn streams_of<'a>(&'a self, unit: &'a UnitId) -> impl Iterator<Item = &'a Stream> + 'a {
        self.streams().filter(move |s| &s.unit == unit)
    }

    /// A handset started (or re-announced) a stream. A re-announcement with the same metadata is
    /// a keepalive; with different metadata it is `stream_updated`. Either answers the unit's
    /// pending start request: the one named by `request`, else the unit's only one (a handset
    /// that does not echo request ids still fulfils it).
    pub fn stream_started(
        &mut self,
        unit: &UnitId,
        stream: &StreamId,
        info: StreamInfo,
        request: Option<RequestId>,
        now: Timestamp,
    ) -> Result<Outcome, VideoError> {
        let mut out = Outcome::default();
        match self.state.streams.get_mut(stream) {
            Some(s) if &s.unit != unit => return Err(wrong_unit(s, unit)),
            Some(s) if s.info == info => {
                s.last_seen = now;
                if s.state == StreamState::Stale {
                    s.state = StreamState::Live;
                    out.event(now, resumed(s));
                }
            }
            Some(s) => {
                s.info = info;
                s.last_seen = now;
                s.state = StreamState::Live;
                s.request_id = request.clone().or(s.request_id.take());
                let stream = Box::new(s.clone());
                out.event(now, VideoChange::StreamUpdated { stream });
            }
            None => {
                let s = Stream {
                    id: stream.clone(),
                    unit: unit.clone(),
                    info,
                    request_id: request.clone(),
                    state: StreamState::Live,
                    started_at: now,
                    last_seen: now,
                };
                let change = VideoChange::StreamStarted {
                    stream: Box::new(s.clone()),
                };
                out.event(now, change);
                self.state.streams.insert(stream.clone(), s);
            }
        }
        self.fulfil_start(unit, stream, request.as_ref(), now, &mut out);
        Ok(out)
    }

    /// A keepalive: the stream is heard from (and live again if it was stale); the rates it
    /// carries replace the announced ones.
    pub fn keepalive(
        &mut self,
        unit: &UnitId,
        stream: &StreamId,
        bitrate_kbps: Option<u32>,
        fps: Option<f32>,
        now: Timestamp,
    ) -> Result<Outcome, VideoError> {
        let s = (self.state.streams.get_mut(stream))
            .ok_or_else(|| VideoError::UnknownStream(stream.clone()))?;
        if &s.unit != unit {
            return Err(wrong_unit(s, unit));
        }
        let mut out = Outcome::default();
        s.last_seen = s.last_seen.max(now);
        s.info.bitrate_kbps = bitrate_kbps.unwrap_or(s.info.bitrate_kbps);
        s.info.fps = fps.unwrap_or(s.info.fps);
        if s.state == StreamState::Stale {
            s.state = StreamState::Live;
            out.event(now, resumed(s));
        }
        Ok(out)
    }

    /// The handset stopped a stream. A stop for a stream no longer known changes nothing (a
    /// retry, or the stream was already given up as silent).
    pub fn stream_stopped(
        &mut self,
        unit: &UnitId,
        stream: &StreamId,
        reason: &str,
        now: Timestamp,
    ) -> Result<Outcome, VideoError> {
        let mut out = Outcome::default();
        match self.state.streams.get(stream) {
            None => {}
            Some(s) if &s.unit != unit => return Err(wrong_unit(s, unit)),
            Some(_) => {
                let reason = StopReason::Handset {
                    reason: reason.to_owned(),
                };
                self.stop(stream, reason, now, &mut out);
            }
        }
        Ok(out)
    }

    /// The unit went offline: all its streams stop. Its pending requests stay until they time
    /// out (a QoS 1 request may still reach the handset when it is back).
    pub fn unit_offline(&mut self, unit: &UnitId, now: Timestamp) -> Outcome {
        let mut out = Outcome::default();
        let ids: Vec<StreamId> = self.streams_of(unit).map(|s| s.id.clone()).collect();
        for id in ids {
            self.stop(&id, StopReason::UnitOffline, now, &mut out);
        }
        out
    }

    /// Fires what is due at `now`: streams silent for `stale_after_s` go stale (at exactly that
    /// silence), for `expire_after_s` stop as silent; requests past their deadline time out.
    pub fn tick(&mut self, now: Timestamp) -> Outcome {
        let mut out = Outcome::default();
        let (stale, expire) = (self.config.stale_after(), self.config.expire_after());
        let mut silent = Vec::new();
        for s in self.state.streams.values_mut() {
            let quiet = now.since(s.last_seen);
            if quiet >= expire {
                silent.push(s.id.clone());
            } else if quiet >= stale && s.state == StreamState::Live {
                s.state = StreamState::Stale;
                let change = VideoChange::StreamStale {
                    stream: s.id.clone(),
                    unit: s.unit.clone(),
                    last_seen: s.last_seen,
                };
                out.event(now, change);
            }
        }
        for id in silent {
            self.stop(&id, StopReason::Silent, now, &mut out);
        }
        self.time_out_requests(now, &mut out);
        out
    }

    /// The earliest instant at which [`Registry::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let streams = self.streams().map(|s| match s.state {
            StreamState::Live => s.last_seen.plus(self.config.stale_after()),
            StreamState::Stale => s.last_seen.plus(self.config.expire_after()),
        });
        let requests = self.state.requests.values().map(|r| r.deadline);
        streams.chain(requests).min()
    }

    fn stop(&mut self, id: &StreamId, reason: StopReason, now: Timestamp, out: &mut Outcome) {
        let Some(s) = self.state.streams.remove(id) else {
            return;
        };
        let change = VideoChange::StreamStopped {
            stream: s.id.clone(),
            unit: s.unit.clone(),
            started_at: s.started_at,
            reason,
        };
        out.event(now, change);
        self.fulfil_stop(&s, now, out);
    }
}

fn wrong_unit(s: &Stream, unit: &UnitId) -> VideoError {
    VideoError::WrongUnit {
        stream: s.id.clone(),
        owner: s.unit.clone(),
        unit: unit.clone(),
    }
}

fn resumed(s: &Stream) -> VideoChange {
    VideoChange::StreamResumed {
        stream: s.id.clone(),
        unit: s.unit.clone(),
    }
}

//! Remote start/stop: a dispatcher asks a handset to start its camera or stop a stream. Each
//! request is an [`Effect::SendVideoRequest`] plus a `request_sent` event, and is tracked until
//! it is answered (`request_fulfilled`: the stream appeared, or stopped) or its deadline passes
//! (`request_timed_out`, from [`Registry::tick`]).
//!
//! Only pending requests are remembered: an id may be reused once its request is settled, and
//! re-sending the very same pending request is a harmless no-op (the API's retry).

use fieldlink_clock::Timestamp;

use crate::error::VideoError;
use crate::event::{Effect, Outcome, PendingRequest, RequestAction, StartOptions, VideoChange};
use crate::model::{RequestId, Stream, StreamId, StreamState, UnitId};
use crate::registry::Registry;

impl Registry {
    /// Asks `unit` to start streaming. Refused when the unit already streams live (show that
    /// stream instead), when it has a start request pending, or when `request` is in use.
    pub fn request_start(
        &mut self,
        unit: &UnitId,
        request: RequestId,
        options: StartOptions,
        now: Timestamp,
    ) -> Result<Outcome, VideoError> {
        let action = RequestAction::Start(options);
        if self.is_retry(&request, unit, &action)? {
            return Ok(Outcome::default());
        }
        if let Some(s) = (self.streams_of(unit)).find(|s| s.state == StreamState::Live) {
            let (unit, stream) = (unit.clone(), s.id.clone());
            return Err(VideoError::AlreadyStreaming { unit, stream });
        }
        if let Some(r) = self.pending_start(unit) {
            let (unit, request) = (unit.clone(), r.id.clone());
            return Err(VideoError::RequestPending { unit, request });
        }
        Ok(self.send(unit, request, action, now))
    }

    /// Asks the handset streaming `stream` to stop it. Refused when the stream is unknown or
    /// `request` is in use.
    pub fn request_stop(
        &mut self,
        stream: &StreamId,
        request: RequestId,
        reason: &str,
        now: Timestamp,
    ) -> Result<Outcome, VideoError> {
        let unit = (self.stream(stream).map(|s| s.unit.clone()))
            .ok_or_else(|| VideoError::UnknownStream(stream.clone()))?;
        let action = RequestAction::Stop {
            stream: stream.clone(),
            reason: reason.to_owned(),
        };
        if self.is_retry(&request, &unit, &action)? {
            return Ok(Outcome::default());
        }
        Ok(self.send(&unit, request, action, now))
    }

    /// One pending request.
    pub fn request(&self, id: &RequestId) -> Option<&PendingRequest> {
        self.state.requests.get(id)
    }

    /// All pending requests, by id.
    pub fn pending_requests(&self) -> impl Iterator<Item = &PendingRequest> {
        self.state.requests.values()
    }

    /// Ok(true) for a re-send of the same pending request; an error for another request's id.
    fn is_retry(
        &self,
        id: &RequestId,
        unit: &UnitId,
        action: &RequestAction,
    ) -> Result<bool, VideoError> {
        match self.state.requests.get(id) {
            None => Ok(false),
            Some(r) if &r.unit == unit && &r.action == action => Ok(true),
            Some(_) => Err(VideoError::DuplicateRequest(id.clone())),
        }
    }

    fn pending_start(&self, unit: &UnitId) -> Option<&PendingRequest> {
        (self.pending_requests())
            .find(|r| &r.unit == unit && matches!(r.action, RequestAction::Start(_)))
    }

    fn send(
        &mut self,
        unit: &UnitId,
        id: RequestId,
        action: RequestAction,
        now: Timestamp,
    ) -> Outcome {
        let pending = PendingRequest {
            id: id.clone(),
            unit: unit.clone(),
            action: action.clone(),
            sent_at: now,
            deadline: now.plus(self.config.request_timeout()),
        };
        let mut out = Outcome::default();
        let change = VideoChange::RequestSent {
            request: Box::new(pending.clone()),
        };
        out.event(now, change);
        out.effects.push(Effect::SendVideoRequest {
            unit: unit.clone(),
            request: id.clone(),
            action,
        });
        self.state.requests.insert(id, pending);
        out
    }

    /// A stream of `unit` appeared: settles the start request it names, else the unit's
    /// pending start request.
    pub(crate) fn fulfil_start(
        &mut self,
        unit: &UnitId,
        stream: &StreamId,
        named: Option<&RequestId>,
        now: Timestamp,
        out: &mut Outcome,
    ) {
        let is_start =
            |r: &PendingRequest| &r.unit == unit && matches!(r.action, RequestAction::Start(_));
        let id = match named.and_then(|id| self.state.requests.get(id)) {
            Some(r) if is_start(r) => Some(r.id.clone()),
            _ => self.pending_start(unit).map(|r| r.id.clone()),
        };
        if let Some(id) = id {
            self.settle(id, stream, now, out);
        }
    }

    /// A stream left the registry: settles every stop request for it.
    pub(crate) fn fulfil_stop(&mut self, s: &Stream, now: Timestamp, out: &mut Outcome) {
        let ids: Vec<RequestId> = (self.pending_requests())
            .filter(|r| matches!(&r.action, RequestAction::Stop { stream, .. } if stream == &s.id))
            .map(|r| r.id.clone())
            .collect();
        for id in ids {
            self.settle(id, &s.id, now, out);
        }
    }

    fn settle(&mut self, id: RequestId, stream: &StreamId, now: Timestamp, out: &mut Outcome) {
        if let Some(r) = self.state.requests.remove(&id) {
            let change = VideoChange::RequestFulfilled {
                request: id,
                unit: r.unit,
                stream: stream.clone(),
            };
            out.event(now, change);
        }
    }

    /// Requests whose deadline is at or before `now` time out.
    pub(crate) fn time_out_requests(&mut self, now: Timestamp, out: &mut Outcome) {
        let due: Vec<RequestId> = (self.pending_requests())
            .filter(|r| r.deadline <= now)
            .map(|r| r.id.clone())
            .collect();
        for id in due {
            if let Some(r) = self.state.requests.remove(&id) {
                let change = VideoChange::RequestTimedOut {
                    request: r.id,
                    unit: r.unit,
                    action: r.action,
                };
                out.event(now, change);
            }
        }
    }
}

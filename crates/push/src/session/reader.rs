//! The reader side of a session: client messages, idle detection, commands, handset input and
//! subscriptions (snapshot, or resume by sequence).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::debug;

use super::{Mode, Outbound, SessionShared, lock};
use crate::backend::{BackendError, Command, CommandError, HandsetMessage, JournalEvent};
use crate::close::CloseReason;
use crate::filter::{Channel, Filter};
use crate::hub::Hub;
use crate::protocol::{ClientMessage, ServerMessage};
use crate::snapshot::snapshot_messages;
use crate::stats::bump;
use crate::wire::decode_client;

/// The reader side: client messages, idle detection, subscriptions.
pub(super) struct Reader<'a> {
    pub hub: &'a Arc<Hub>,
    pub shared: &'a Arc<SessionShared>,
    pub malformed_in_a_row: u32,
}

enum Flow {
    Continue,
    Stop,
}

impl Reader<'_> {
    pub async fn run<S>(
        &mut self,
        stream: &mut S,
        close_rx: &mut watch::Receiver<Option<CloseReason>>,
    ) where
        S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    {
        let idle = self.hub.config.idle_timeout();
        let counters = &self.hub.counters;
        loop {
            let next = tokio::select! {
                _ = close_rx.changed() => return,
                next = timeout(idle, stream.next()) => next,
            };
            let frame = match next {
                Err(_) => {
                    self.shared.request_close(CloseReason::Idle, counters);
                    return;
                }
                Ok(None) => return,
                Ok(Some(Err(tungstenite::Error::Capacity(_)))) => {
                    self.shared.request_close(CloseReason::TooBig, counters);
                    return;
                }
                Ok(Some(Err(e))) => {
                    debug!(session = self.shared.id, error = %e, "push socket error");
                    self.shared
                        .request_close(CloseReason::ProtocolError, counters);
                    return;
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let decoded = match &frame {
                Message::Text(t) => decode_client(t.as_bytes(), false),
                Message::Binary(b) => decode_client(b, true),
                Message::Close(_) => return,
                _ => continue,
            };
            let flow = tokio::select! {
                _ = close_rx.changed() => return,
                flow = self.handle(decoded) => flow,
            };
            if let Flow::Stop = flow {
                return;
            }
        }
    }

    async fn send(&self, msg: ServerMessage) -> Flow {
        if self.shared.queue(Outbound::Message(Box::new(msg))).await {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    async fn handle(&mut self, decoded: Result<ClientMessage, String>) -> Flow {
        let msg = match decoded {
            Ok(msg) => {
                self.malformed_in_a_row = 0;
                msg
            }
            Err(why) => return self.malformed(None, why).await,
        };
        let handset = self.shared.is_handset();
        match msg {
            ClientMessage::Auth { .. } => {
                self.send(ServerMessage::error(
                    None,
                    "already_authenticated",
                    "this session is authenticated",
                ))
                .await
            }
            ClientMessage::Subscribe { .. } | ClientMessage::Unsubscribe { .. } if handset => {
                self.send(ServerMessage::error(
                    None,
                    "forbidden",
                    "handsets do not subscribe",
                ))
                .await
            }
            ClientMessage::Subscribe {
                channels,
                filter,
                resume_from,
            } => {
                if let Err(why) = filter.validate() {
                    return self.malformed(None, why).await;
                }
                self.subscribe(channels, filter, resume_from).await
            }
            ClientMessage::Unsubscribe { channels } => {
                let mut sub = lock(&self.shared.sub);
                for c in channels {
                    sub.channels.remove(&c);
                }
                Flow::Continue
            }
            ClientMessage::Command { id, .. }
                if handset || !self.shared.principal.role.may_command() =>
            {
                let role = self.shared.principal.role.name();
                self.send(ServerMessage::error(
                    Some(id),
                    "forbidden",
                    format!("a {role} may not send commands"),
                ))
                .await
            }
            ClientMessage::Command { id, op, args } => {
                let command = Command {
                    id: id.clone(),
                    op,
                    args,
                };
                let answer = self
                    .hub
                    .backend
                    .command(&self.shared.principal, command)
                    .await;
                self.send(answer_message(id, answer)).await
            }
            ClientMessage::Receipt(fields) | ClientMessage::Status(fields) if !handset => {
                let id = request_id(&fields);
                self.send(ServerMessage::error(
                    id,
                    "forbidden",
                    "receipts and status come from handsets",
                ))
                .await
            }
            ClientMessage::Receipt(fields) => {
                self.handset_input(HandsetMessage::Receipt(fields)).await
            }
            ClientMessage::Status(fields) => {
                self.handset_input(HandsetMessage::Status(fields)).await
            }
        }
    }

    async fn handset_input(&self, message: HandsetMessage) -> Flow {
        let (HandsetMessage::Receipt(fields) | HandsetMessage::Status(fields)) = &message;
        let id = request_id(fields).unwrap_or_default();
        let Some(unit) = self.shared.principal.role.unit() else {
            return Flow::Stop;
        };
        let answer = self.hub.backend.handset_input(unit, message).await;
        self.send(answer_message(id, answer)).await
    }

    async fn malformed(&mut self, id: Option<String>, why: String) -> Flow {
        bump(&self.hub.counters.malformed);
        self.malformed_in_a_row += 1;
        if self.malformed_in_a_row >= self.hub.config.max_malformed.max(1) {
            self.shared
                .request_close(CloseReason::Malformed, &self.hub.counters);
            return Flow::Stop;
        }
        self.send(ServerMessage::error(id, "bad_message", why))
            .await
    }

    /// Replaces the subscription, then sends a snapshot (or the missed events) and switches to
    /// live: live events are buffered from the start, so nothing published meanwhile is lost,
    /// and those already covered by the snapshot or replay are skipped by seq.
    async fn subscribe(
        &mut self,
        channels: Vec<Channel>,
        filter: Filter,
        resume_from: Option<i64>,
    ) -> Flow {
        let channels: BTreeSet<Channel> = channels.into_iter().collect();
        {
            let mut sub = lock(&self.shared.sub);
            sub.channels = channels.clone();
            sub.filter = filter.clone();
            sub.mode = Mode::Buffering(Vec::new());
        }
        lock(&self.shared.positions).clear();
        let coords = filter.coords;
        let start = match resume_from {
            None => {
                self.send_snapshot(channels.iter().copied().collect(), &filter)
                    .await
            }
            Some(from) => self.resume(&channels, &filter, from).await,
        };
        let last = match start {
            Ok(last) => last,
            Err(flow) => {
                lock(&self.shared.sub).mode = Mode::Idle;
                return flow;
            }
        };
        // Go live: the buffered events after `last`, in seq order, then the queue directly.
        let mut sub = lock(&self.shared.sub);
        let Mode::Buffering(mut buffered) = std::mem::replace(&mut sub.mode, Mode::Idle) else {
            return Flow::Continue;
        };
        buffered.sort_by_key(|e| e.seq);
        let mut last_seq = last;
        for event in buffered {
            if event.seq <= last_seq {
                continue;
            }
            match self
                .shared
                .tx
                .try_send(Outbound::Event(event.clone(), coords))
            {
                Ok(()) => last_seq = event.seq,
                Err(_) => {
                    drop(sub);
                    self.shared
                        .request_close(CloseReason::TooSlow, &self.hub.counters);
                    return Flow::Stop;
                }
            }
        }
        sub.mode = Mode::Live { last_seq };
        drop(sub);
        // Positions offered meanwhile waited for the snapshot or replay: send them now.
        self.shared.positions_ready.notify_one();
        Flow::Continue
    }

    /// Sends a snapshot of `channels`, in parts when large; returns its seq.
    async fn send_snapshot(&self, channels: Vec<Channel>, filter: &Filter) -> Result<i64, Flow> {
        let principal = &self.shared.principal;
        match self
            .hub
            .backend
            .snapshot(principal, &channels, filter)
            .await
        {
            Ok(snapshot) => {
                let seq = snapshot.seq;
                let limit = self.hub.config.snapshot_part_bytes();
                for msg in snapshot_messages(channels, seq, snapshot.items, limit) {
                    if let Flow::Stop = self.send(msg).await {
                        return Err(Flow::Stop);
                    }
                }
                Ok(seq)
            }
            Err(e) => Err(self
                .send(ServerMessage::error(None, "unavailable", e.to_string()))
                .await),
        }
    }

    /// Replays the journal after `from`; returns the last seq covered.
    async fn resume(
        &self,
        channels: &BTreeSet<Channel>,
        filter: &Filter,
        from: i64,
    ) -> Result<i64, Flow> {
        // Positions are not journalled: a resuming client gets their snapshot.
        if channels.contains(&Channel::Positions) {
            self.send_snapshot(vec![Channel::Positions], filter).await?;
        }
        let journalled: Vec<Channel> = channels
            .iter()
            .copied()
            .filter(|c| c.journalled())
            .collect();
        if journalled.is_empty() {
            return Ok(from);
        }
        match self.read_journal(channels, filter, from).await {
            Ok((events, last)) => {
                for event in events {
                    if !self
                        .shared
                        .queue(Outbound::Event(event, filter.coords))
                        .await
                    {
                        return Err(Flow::Stop);
                    }
                }
                Ok(last)
            }
            Err(Replay::TooOld { oldest }) => {
                if let Flow::Stop = self
                    .send(ServerMessage::SnapshotNeeded { from, oldest })
                    .await
                {
                    return Err(Flow::Stop);
                }
                self.send_snapshot(journalled, filter).await
            }
            Err(Replay::Failed(why)) => Err(self
                .send(ServerMessage::error(None, "unavailable", why))
                .await),
        }
    }

    /// The journal after `from`, page by page, up to `resume_limit` events.
    async fn read_journal(
        &self,
        channels: &BTreeSet<Channel>,
        filter: &Filter,
        from: i64,
    ) -> Result<(Vec<Arc<JournalEvent>>, i64), Replay> {
        let config = &self.hub.config;
        let page = config.resume_page.max(1);
        let mut after = from;
        let mut read = 0u64;
        let mut out = Vec::new();
        loop {
            let events = match self.hub.backend.journal_since(after, page).await {
                Ok(events) => events,
                Err(BackendError::Gap { oldest }) => return Err(Replay::TooOld { oldest }),
                Err(BackendError::Unavailable(why)) => return Err(Replay::Failed(why)),
            };
            let full_page = events.len() >= page as usize;
            let mut progressed = false;
            for event in events {
                if event.seq <= after {
                    continue;
                }
                progressed = true;
                after = event.seq;
                read += 1;
                if read > u64::from(config.resume_limit) {
                    // Too far behind to replay: the oldest point that could be is unknown
                    // here, so name where the replay stopped.
                    return Err(Replay::TooOld { oldest: after });
                }
                if channels.contains(&event.channel)
                    && filter.matches(event.unit.as_deref(), event.lat_lon, event.grid.as_deref())
                {
                    out.push(Arc::new(event));
                }
            }
            if !full_page || !progressed {
                return Ok((out, after));
            }
        }
    }
}

enum Replay {
    TooOld { oldest: i64 },
    Failed(String),
}

fn request_id(fields: &serde_json::Map<String, Value>) -> Option<String> {
    match fields.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn answer_message(id: String, answer: Result<Value, CommandError>) -> ServerMessage {
    match answer {
        Ok(data) => ServerMessage::Result { id, data },
        Err(e) => ServerMessage::Error {
            id: Some(id),
            code: e.code,
            message: e.message,
        },
    }
}

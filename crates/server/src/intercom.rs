//! The intercom service: the server's owner of the floor-control core (`crates/intercom`).
//!
//! Like dispatch, every command runs the same way ([`IntercomService::execute`]): the core under
//! its lock → one commit (journal events `ptt.granted`, `ptt.denied`, ... naming their actor,
//! finished talk bursts for the log, talkgroups made through the API) → the journal events to
//! the WebSocket hub (channel `ptt`) → the floor answers to the handsets (`FloorAnswer` on their
//! MQTT downlink, QoS 1). A failed commit puts the core back and sends nothing.
//!
//! Floor state is not stored: a floor lasts seconds, and a handset asks again after a restart.
//! Talkgroups come from the config file (`[[talkgroups]]`, read-only) and from the API (stored).
//!
//! Handset messages (`ptt` topic), presence (offline talkers lose the floor) and SOS (emergency
//! priority) arrive through a bounded queue, applied in order by [`run`], which also fires the
//! maximum-talk-time deadlines.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use fieldlink_clock::Timestamp;
use fieldlink_intercom::{
    Actor, Answer, Change, Effect, FloorPriority, Intercom, IntercomConfig, IntercomError,
    JournalEvent, Outcome, Party, Talkgroup, TalkgroupId, UnitId,
};
use fieldlink_proto::v1;
use fieldlink_store::{BurstRow, ChangeSet, NewEvent, Store, StoreError};
use prost::Message;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard, mpsc};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Handset floor messages waiting for the intercom task; a full queue drops (the handset's push
/// to talk is retried by its user, and a request id makes a retry harmless).
pub const INPUT_QUEUE: usize = 10_000;
/// How often the maximum-talk-time deadlines are checked.
const TICK: Duration = Duration::from_millis(100);

/// What the intercom task applies.
#[derive(Debug, Clone)]
pub enum PttInput {
    /// A `PttMessage` from a handset (its unit already checked against the topic).
    Message(v1::PttMessage),
    /// The unit's handset went offline.
    Offline(String),
    /// The unit sent an SOS.
    Sos(String),
}

/// Why a command did not happen.
#[derive(Debug)]
pub enum IntercomCommandError {
    /// The core refused it; nothing changed.
    Refused(IntercomError),
    /// The store could not commit it; nothing changed.
    Store(StoreError),
}

/// The floor-control core and its input queue.
#[derive(Debug)]
pub struct IntercomService {
    core: Mutex<Intercom>,
    inputs: crate::service_loop::InputQueue<PttInput>,
    /// Ids of the talkgroups from the config file (read-only through the API).
    from_config: Vec<TalkgroupId>,
}

impl IntercomService {
    /// The core with the config file's talkgroups, then the stored ones (a stored group with the
    /// id of a configured one is ignored, with a warning).
    pub async fn start(
        store: &Store,
        config: IntercomConfig,
        configured: &[Talkgroup],
        now: Timestamp,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> anyhow::Result<(Self, mpsc::Receiver<PttInput>)> {
        let mut core = Intercom::new(config);
        let mut from_config = Vec::new();
        for g in configured {
            core.save_group(now, g.clone(), Actor::system("config"))
                .map_err(|e| anyhow::anyhow!("talkgroup {} in the config file: {e}", g.id))?;
            from_config.push(g.id.clone());
        }
        for data in (store.load_talkgroups().await).context("cannot load the talkgroups")? {
            let g: Talkgroup =
                serde_json::from_value(data).context("a stored talkgroup is unreadable")?;
            if from_config.contains(&g.id) {
                tracing::warn!(talkgroup = %g.id, "a talkgroup made through the API has the id of one in the config file; the file's wins");
                continue;
            }
            core.save_group(now, g, Actor::system("restore"))
                .map_err(|e| anyhow::anyhow!("stored talkgroup: {e}"))?;
        }
        let (inputs, rx) = crate::service_loop::InputQueue::new(INPUT_QUEUE, "intercom", dropped);
        let service = IntercomService {
            core: Mutex::new(core),
            inputs,
            from_config,
        };
        Ok((service, rx))
    }

    /// Queues an input without waiting; a full queue drops it (counted, logged).
    pub fn input(&self, input: PttInput) {
        self.inputs.offer(input);
    }

    /// The core, for reads (hold it briefly).
    pub async fn read(&self) -> MutexGuard<'_, Intercom> {
        self.core.lock().await
    }

    /// Whether `g` comes from the config file (and so cannot be changed through the API).
    pub fn is_configured(&self, g: &TalkgroupId) -> bool {
        self.from_config.contains(g)
    }

    /// Runs one command: the core, one commit, then the hub and the downlinks.
    pub async fn execute<T, F>(
        &self,
        state: &AppState,
        command: F,
    ) -> Result<T, IntercomCommandError>
    where
        F: FnOnce(&mut Intercom, Timestamp) -> Result<(T, Outcome), IntercomError>,
    {
        let mut core = self.core.lock().await;
        let now = state.clock.now();
        let before = core.state().clone();
        let (value, outcome) = command(&mut core, now).map_err(|e| {
            *core = Intercom::restore(core.config().clone(), before.clone());
            IntercomCommandError::Refused(e)
        })?;
        if outcome.is_empty() {
            return Ok(value);
        }
        let change = change_set(now, &outcome);
        let channel = fieldlink_push::Channel::Ptt;
        if let Err(e) = crate::push::commit_to_channel(state, &change, channel).await {
            *core = Intercom::restore(core.config().clone(), before);
            state.commit_failed("intercom", &e);
            return Err(IntercomCommandError::Store(e));
        }
        state.commit_succeeded("intercom");
        // Under the lock, so a handset hears its answers in decision order.
        for effect in &outcome.effects {
            send_answer(state, now, effect).await;
        }
        Ok(value)
    }
}

/// The journal label of an intercom actor (the same shape as dispatch's).
fn label(actor: &Actor) -> String {
    match actor {
        Actor::Unit(u) => format!("unit:{u}"),
        Actor::Dispatcher(c) => format!("dispatcher:{c}"),
        Actor::System(r) => format!("system:{r}"),
    }
}

fn json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The journal kind and subject of an intercom change: `ptt.granted` about its talkgroup, ...
fn kind_and_subject(change: &Change) -> (String, String) {
    let data = json(change);
    let kind = format!("ptt.{}", data["type"].as_str().unwrap_or("change"));
    let subject = match change {
        Change::GroupSaved { group } => group.id.to_string(),
        Change::SosRaised { unit, .. } | Change::SosCleared { unit, .. } => unit.to_string(),
        Change::BurstReported { record } => record.group.to_string(),
        Change::GroupRemoved { group }
        | Change::Granted { group, .. }
        | Change::Denied { group, .. }
        | Change::Queued { group, .. }
        | Change::Dequeued { group, .. }
        | Change::Released { group, .. }
        | Change::Revoked { group, .. }
        | Change::Idle { group } => group.to_string(),
    };
    (kind, subject)
}

fn event(e: &JournalEvent) -> NewEvent {
    let (kind, subject) = kind_and_subject(&e.change);
    NewEvent {
        at: e.at,
        kind,
        subject,
        actor: label(&e.actor),
        data: json(e),
    }
}

fn change_set(now: Timestamp, outcome: &Outcome) -> ChangeSet {
    let mut change = ChangeSet {
        at: now,
        events: outcome.events.iter().map(event).collect(),
        ..ChangeSet::default()
    };
    for e in &outcome.events {
        match &e.change {
            // Groups the config file defines are not stored (the file stays their source).
            Change::GroupSaved { group } if e.actor != Actor::system("config") => {
                change
                    .talkgroups_saved
                    .push((group.id.to_string(), json(group)));
            }
            Change::GroupRemoved { group } => change.talkgroups_removed.push(group.to_string()),
            _ => {}
        }
    }
    change.bursts = (outcome.bursts.iter())
        .map(|b| BurstRow {
            talkgroup: b.group.to_string(),
            party: b.party.to_string(),
            start: b.start,
            end: b.end,
            duration_ms: b.duration_ms,
            outcome: json(&b.outcome).as_str().unwrap_or("ended").to_owned(),
            data: json(b),
        })
        .collect();
    change
}

/// The protobuf `FloorAnswer` for an answer.
fn floor_answer(group: &TalkgroupId, request_id: Option<&str>, answer: &Answer) -> v1::FloorAnswer {
    use v1::floor_answer::Answer as A;
    let answer = match answer {
        Answer::Granted { max_talk_ms } => A::Granted(v1::FloorGranted {
            max_talk_ms: *max_talk_ms,
        }),
        Answer::Denied { reason, holder } => A::Denied(v1::FloorDenied {
            reason: reason.as_str().to_owned(),
            holder: holder.as_ref().map(ToString::to_string).unwrap_or_default(),
        }),
        Answer::Revoked { reason } => A::Revoked(v1::FloorRevoked {
            reason: reason.as_str().to_owned(),
        }),
        Answer::Queued { position } => A::Queued(v1::FloorQueued {
            position: *position,
        }),
        Answer::Idle => A::Idle(v1::FloorIdle {}),
    };
    v1::FloorAnswer {
        talkgroup: group.to_string(),
        request_id: request_id.unwrap_or_default().to_owned(),
        answer: Some(answer),
    }
}

/// Publishes a floor answer to a unit's downlink. Consoles follow the journal on `/ws`.
async fn send_answer(state: &AppState, now: Timestamp, effect: &Effect) {
    let Effect::Floor {
        to: Party::Unit(unit),
        group,
        request_id,
        answer,
    } = effect
    else {
        return;
    };
    let answer = floor_answer(group, request_id.as_deref(), answer);
    publish_floor(state, now, unit, answer).await;
}

async fn publish_floor(state: &AppState, now: Timestamp, unit: &UnitId, answer: v1::FloorAnswer) {
    let Ok(to) = fieldlink_proto::UnitId::new(unit.to_string()) else {
        return;
    };
    let msg = v1::Downlink {
        id: format!("floor/{}/{}", answer.talkgroup, now.as_millis()),
        time_ms: now.as_millis(),
        unit: unit.to_string(),
        body: Some(v1::downlink::Body::Floor(answer)),
    };
    let payload = Bytes::from(msg.encode_to_vec());
    let publish = state.downlink.publish(&to, payload);
    match tokio::time::timeout(Duration::from_secs(2), publish).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%unit, error = %e, "floor answer not published"),
        Err(_) => tracing::warn!(%unit, "floor answer publish timed out"),
    }
}

fn priority_from_proto(p: i32) -> FloorPriority {
    match v1::FloorPriority::try_from(p) {
        Ok(v1::FloorPriority::ImminentPeril) => FloorPriority::ImminentPeril,
        Ok(v1::FloorPriority::Emergency) => FloorPriority::Emergency,
        _ => FloorPriority::Normal,
    }
}

/// Applies inputs and fires deadlines until `shutdown`.
pub async fn run(state: AppState, inputs: mpsc::Receiver<PttInput>, shutdown: CancellationToken) {
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
    let due = (state.intercom.read().await.next_deadline()).is_some_and(|t| t <= now);
    if due {
        let result = (state.intercom)
            .execute(state, |c, now| Ok(((), c.tick(now))))
            .await;
        report(result, "deadline");
    }
}

async fn apply(state: &AppState, input: PttInput) {
    let svc = &state.intercom;
    let result = match &input {
        PttInput::Offline(unit) => {
            let party = Party::unit(unit);
            svc.execute(state, |c, now| Ok(((), c.offline(now, &party))))
                .await
        }
        PttInput::Sos(unit) => {
            let u = UnitId::from(unit.as_str());
            let actor = Actor::Unit(u.clone());
            svc.execute(state, |c, now| Ok(((), c.sos(now, &u, actor))))
                .await
        }
        PttInput::Message(m) => message(state, m).await,
    };
    report(result, &input.to_string());
}

/// A handset's `PttMessage`: request, release, or a reported burst. A refusal (unknown group,
/// not a member, wrong mode) is answered `denied` with the refusal's code as the reason.
async fn message(state: &AppState, m: &v1::PttMessage) -> Result<(), IntercomCommandError> {
    use v1::ptt_message::Action;
    let g = TalkgroupId::from(m.talkgroup.as_str());
    let unit = UnitId::from(m.unit.as_str());
    let rid = Some(m.id.as_str()).filter(|r| !r.is_empty());
    let result = match &m.action {
        Some(Action::Request(r)) => {
            let priority = priority_from_proto(r.priority);
            (state.intercom)
                .execute(state, |c, now| {
                    Ok((
                        (),
                        c.request(now, Party::Unit(unit.clone()), &g, priority, rid)?,
                    ))
                })
                .await
        }
        Some(Action::Release(_)) => {
            (state.intercom)
                .execute(state, |c, now| {
                    Ok(((), c.release(now, Party::Unit(unit.clone()), &g, rid)?))
                })
                .await
        }
        Some(Action::Burst(b)) => {
            let (start, end) = (
                Timestamp::from_millis(b.start_ms),
                Timestamp::from_millis(b.end_ms),
            );
            (state.intercom)
                .execute(state, |c, now| {
                    Ok(((), c.report_burst(now, &unit, &g, rid, start, end)?))
                })
                .await
        }
        None => return Ok(()),
    };
    if let (Err(IntercomCommandError::Refused(e)), Some(Action::Request(_))) = (&result, &m.action)
    {
        tracing::info!(unit = %unit, talkgroup = %g, code = e.code(), "floor request refused");
        let answer = v1::FloorAnswer {
            talkgroup: g.to_string(),
            request_id: rid.unwrap_or_default().to_owned(),
            answer: Some(v1::floor_answer::Answer::Denied(v1::FloorDenied {
                reason: e.code().to_owned(),
                holder: String::new(),
            })),
        };
        publish_floor(state, state.clock.now(), &unit, answer).await;
    }
    result
}

fn report(result: Result<(), IntercomCommandError>, what: &str) {
    match result {
        Ok(()) => {}
        Err(IntercomCommandError::Refused(e)) => {
            tracing::info!(code = e.code(), error = %e, input = what, "intercom input refused");
        }
        Err(IntercomCommandError::Store(e)) => {
            tracing::error!(error = %e, input = what, "intercom could not commit; nothing changed");
        }
    }
}

/// An input as a log line names it: `push-to-talk message from patrol-07 for group g1`.
impl std::fmt::Display for PttInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PttInput::Message(m) => write!(
                f,
                "push-to-talk message from {} for group {}",
                m.unit, m.talkgroup
            ),
            PttInput::Offline(unit) => write!(f, "{unit} offline"),
            PttInput::Sos(unit) => write!(f, "SOS from {unit}"),
        }
    }
}

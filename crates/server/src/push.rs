//! The server's side of the WebSocket hub (`crates/push`): the [`Backend`] the hub asks
//! (authentication, snapshots, the journal, commands, handset receipts) and the feeds that keep
//! it live (journal events after each dispatch commit, accepted fixes, orders for handsets).
//!
//! Commands over the socket run the same functions as the HTTP API (`http/dispatch.rs`,
//! `http/alarms.rs`), so both answer alike; refusals carry the same codes.
//!
//! Ordering: dispatch and the intercom commit independently; each holds
//! `AppState::journal_order` from its commit until the hub has the numbered events
//! ([`journal_committed`], `intercom::ptt_event`), so the hub sees events in sequence order. A
//! snapshot holds both cores and that lock while it reads the last sequence number, so its `seq`
//! is exactly the last event it includes.

use std::sync::{OnceLock, Weak};

use fieldlink_dispatch::{
    Dispatcher, DutyStatus, Effect, IncidentId, OrderId, OrderState, ResponderStatus, UnitId,
};
use fieldlink_push::{
    Backend, BackendError, BoxFuture, Channel, Command, CommandError, Filter, HandsetMessage,
    JournalEvent, PositionUpdate, Principal, Role, Snapshot,
};
use fieldlink_store::{EventRow, NewEvent};
use serde_json::{Value, json};

use crate::http::ApiError;
use crate::http::commands;
use crate::metrics::ReasonLabel;
use crate::state::{AppState, Inner};

/// Most journal events one resume reads per page from the store.
const MAX_PAGE: u32 = 1000;

/// The hub's view of the server. Holds the state weakly: the state owns the hub.
#[derive(Debug, Default)]
pub struct PushBackend {
    state: OnceLock<Weak<Inner>>,
}

impl PushBackend {
    /// Connects the backend to the state it serves (once, at start).
    pub fn attach(&self, state: &AppState) {
        let _ = self.state.set(state.downgrade());
    }

    fn state(&self) -> Result<AppState, BackendError> {
        (self.state.get())
            .and_then(AppState::upgrade)
            .ok_or_else(|| BackendError::Unavailable("fieldlink is stopping".to_owned()))
    }
}

/// The channel a journal event kind belongs to.
pub fn channel_of(kind: &str) -> Channel {
    match kind.split('.').next() {
        Some("incident") => Channel::Incidents,
        Some("order") => Channel::Orders,
        Some("alarm") => Channel::Alarms,
        Some("ptt") => Channel::Ptt,
        Some("video") => Channel::Video,
        _ => Channel::Presence,
    }
}

/// The unit, position and grid an event is about (for the session filters): the unit named in
/// it, and the location and grid of its incident as the core knows them.
fn scope(core: &Dispatcher, data: &Value) -> (Option<String>, Option<(f64, f64)>, Option<String>) {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let unit = (data.get("unit").and_then(text))
        .or_else(|| data.pointer("/order/unit").and_then(text))
        .or_else(|| data.pointer("/alarm/kind/unit").and_then(text));
    let incident = (data.get("incident").and_then(text))
        .or_else(|| data.pointer("/incident/id").and_then(text))
        .or_else(|| data.pointer("/order/incident").and_then(text))
        .or_else(|| data.pointer("/alarm/kind/incident").and_then(text));
    let (at, grid) = incident
        .and_then(|i| core.incident(&IncidentId(i)).ok())
        .map(|i| {
            let at = i.spec.location.map(|l| (l.lat, l.lon));
            (at, i.spec.grid.clone())
        })
        .unwrap_or_default();
    (unit, at, grid)
}

fn event(core: &Dispatcher, seq: i64, at_ms: i64, e: &NewEvent) -> JournalEvent {
    let (unit, lat_lon, grid) = scope(core, &e.data);
    JournalEvent {
        seq,
        at_ms,
        channel: channel_of(&e.kind),
        kind: e.kind.clone(),
        subject: e.subject.clone(),
        actor: e.actor.clone(),
        unit,
        lat_lon,
        grid,
        data: e.data.clone(),
    }
}

fn stored_event(core: &Dispatcher, r: EventRow) -> JournalEvent {
    let new = NewEvent {
        at: r.at,
        kind: r.kind,
        subject: r.subject,
        actor: r.actor,
        data: r.data,
    };
    event(core, r.seq, r.at.as_millis(), &new)
}

/// A committed event of a service other than dispatch (intercom, video) for the hub's
/// `channel`, with the unit it names (`unit`, or a `party` of type unit).
pub fn channel_event(channel: Channel, seq: i64, e: &NewEvent) -> JournalEvent {
    let unit = (e.data.pointer("/party/type").and_then(Value::as_str) == Some("unit"))
        .then(|| e.data.pointer("/party/id").and_then(Value::as_str))
        .flatten()
        .or_else(|| e.data.get("unit").and_then(Value::as_str))
        .or_else(|| e.data.pointer("/stream/unit").and_then(Value::as_str))
        .or_else(|| e.data.pointer("/request/unit").and_then(Value::as_str))
        .map(str::to_owned);
    JournalEvent {
        seq,
        at_ms: e.at.as_millis(),
        channel,
        kind: e.kind.clone(),
        subject: e.subject.clone(),
        actor: e.actor.clone(),
        unit,
        lat_lon: None,
        grid: None,
        data: e.data.clone(),
    }
}

/// Commits `change` and hands its numbered events to the hub on `channel`, holding
/// `AppState::journal_order` throughout (see the module doc). For services other than dispatch.
pub async fn commit_to_channel(
    state: &AppState,
    change: &fieldlink_store::ChangeSet,
    channel: Channel,
) -> Result<fieldlink_store::Committed, fieldlink_store::StoreError> {
    let _journal_order = state.journal_order.lock().await;
    let committed = state.store.commit(change).await?;
    if let fieldlink_store::Committed::Written(seqs) = &committed {
        for (seq, e) in seqs.iter().zip(&change.events) {
            state.push.journal(channel_event(channel, *seq, e));
        }
    }
    Ok(committed)
}

/// Hands a commit's events, numbered by the store, to the hub. Call under the core lock.
pub fn journal_committed(state: &AppState, core: &Dispatcher, seqs: &[i64], events: &[NewEvent]) {
    for (seq, e) in seqs.iter().zip(events) {
        state.push.journal(event(core, *seq, e.at.as_millis(), e));
    }
}

/// What a handset is sent on its WebSocket for an effect, if anything: the same facts as its
/// MQTT downlink, as JSON.
pub fn handset_message(effect: &Effect) -> Option<(&UnitId, Value)> {
    match effect {
        Effect::SendOrder {
            unit,
            order,
            attempt,
        } => Some((
            unit,
            json!({ "kind": "order", "order": order, "attempt": attempt }),
        )),
        Effect::SendCancel {
            unit,
            order_id,
            reason,
        } => Some((
            unit,
            json!({ "kind": "order_cancelled", "order_id": order_id, "reason": reason }),
        )),
        Effect::SendReassigned {
            unit,
            order_id,
            to_unit,
        } => Some((
            unit,
            json!({ "kind": "order_reassigned", "order_id": order_id, "to_unit": to_unit }),
        )),
        _ => None,
    }
}

/// Sends the handset effects of a committed outcome to the handsets holding a WebSocket.
pub fn deliver_to_handsets(state: &AppState, effects: &[Effect]) {
    for effect in effects {
        if let Some((unit, message)) = handset_message(effect)
            && state.push.to_handset(unit.as_str(), message)
        {
            state.metrics.ws_orders_delivered.inc();
        }
    }
}

/// An accepted fix, for the `positions` channel.
pub fn position(state: &AppState, unit: &str, fix: &fieldlink_location::Fix, grid: Option<String>) {
    state.push.position(PositionUpdate {
        unit: unit.to_owned(),
        lat: fix.lat,
        lon: fix.lon,
        at: fix.fix_time,
        at_ms: fix.fix_time.as_millis(),
        speed: fix.speed_mps.map(f64::from),
        heading: fix.heading_deg.map(f64::from),
        accuracy: fix.accuracy_m.map(f64::from),
        status: None,
        grid,
    });
}

/// The principal of a command-room token.
pub fn principal_of(caller: &crate::credentials::Caller) -> Principal {
    let role = match caller.role {
        fieldlink_store::Role::Admin => Role::Admin,
        fieldlink_store::Role::Dispatcher => Role::Dispatcher,
        fieldlink_store::Role::Viewer => Role::Viewer,
    };
    Principal {
        name: caller.name.clone(),
        role,
    }
}

fn command_error(e: ApiError) -> CommandError {
    CommandError::new(e.code, e.message)
}

fn unavailable(e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

impl Backend for PushBackend {
    fn authenticate_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Principal>> {
        Box::pin(async move {
            let state = self.state().ok()?;
            if let Some(caller) = state.credentials.authenticate_token_fresh(token).await {
                return Some(principal_of(&caller));
            }
            // A handset: `<unit id>:<unit secret>`, the credentials it uses on MQTT.
            let (unit, secret) = token.split_once(':')?;
            if state.credentials.authenticate_handset(unit, unit, secret) {
                return Some(Principal {
                    name: unit.to_owned(),
                    role: Role::Responder {
                        unit: unit.to_owned(),
                    },
                });
            }
            state.metrics.auth_refused.inc();
            tracing::warn!("WebSocket refused: unknown, revoked or wrong token");
            None
        })
    }

    fn snapshot<'a>(
        &'a self,
        _principal: &'a Principal,
        channels: &'a [Channel],
        filter: &'a Filter,
    ) -> BoxFuture<'a, Result<Snapshot, BackendError>> {
        Box::pin(async move {
            let state = self.state()?;
            // With both cores and the journal-order lock held no commit is in flight, so `seq`
            // is exactly what the items include (lock order as in `AppState::journal_order`).
            let core = state.dispatch.read().await;
            let intercom = state.intercom.read().await;
            let journal_order = state.journal_order.lock().await;
            let seq = state.store.last_seq().await.map_err(unavailable)?;
            drop(journal_order);
            let mut items = serde_json::Map::new();
            let wants = |c: Channel| channels.contains(&c);
            if wants(Channel::Positions) || wants(Channel::Presence) {
                items.insert("units".to_owned(), units(&state, &core, filter).into());
            }
            if wants(Channel::Incidents) {
                let list: Vec<Value> = (core.state().incidents.values())
                    .filter(|i| i.is_open())
                    .filter(|i| {
                        let at = i.spec.location.map(|l| (l.lat, l.lon));
                        filter.matches(None, at, i.spec.grid.as_deref())
                    })
                    .map(|i| json!(i))
                    .collect();
                items.insert("incidents".to_owned(), list.into());
            }
            if wants(Channel::Orders) {
                let list: Vec<Value> = (core.state().orders.values())
                    .filter(|o| !o.state.is_terminal())
                    .filter(|o| {
                        let i = core.incident(&o.incident).ok();
                        let at = i.and_then(|i| i.spec.location).map(|l| (l.lat, l.lon));
                        let grid = i.and_then(|i| i.spec.grid.as_deref());
                        filter.matches(Some(o.unit.as_str()), at, grid)
                    })
                    .map(|o| json!(o))
                    .collect();
                items.insert("orders".to_owned(), list.into());
            }
            if wants(Channel::Alarms) {
                let list: Vec<Value> = (core.state().alarms.values())
                    .filter(|a| a.state != fieldlink_dispatch::AlarmState::Resolved)
                    .map(|a| json!(a))
                    .collect();
                items.insert("alarms".to_owned(), list.into());
            }
            if wants(Channel::Ptt) {
                let list: Vec<Value> = (intercom.state().groups.keys())
                    .map(|g| {
                        json!({
                            "id": g,
                            "holder": intercom.holder(g).map(ToString::to_string),
                            "queue": (intercom.queue(g).iter())
                                .map(ToString::to_string)
                                .collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                items.insert("talkgroups".to_owned(), list.into());
            }
            Ok(Snapshot {
                seq,
                items: items.into(),
            })
        })
    }

    fn journal_since(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<JournalEvent>, BackendError>> {
        Box::pin(async move {
            let state = self.state()?;
            let last = state.store.last_seq().await.map_err(unavailable)?;
            if after_seq > last {
                // A client that saw a journal this store never had (another database).
                return Err(BackendError::Gap { oldest: 1 });
            }
            let rows = (state.store)
                .journal_since(after_seq, limit.min(MAX_PAGE))
                .await
                .map_err(unavailable)?;
            let core = state.dispatch.read().await;
            Ok(rows.into_iter().map(|r| stored_event(&core, r)).collect())
        })
    }

    fn command<'a>(
        &'a self,
        principal: &'a Principal,
        command: Command,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move {
            let state = self
                .state()
                .map_err(|e| CommandError::new("unavailable", e.to_string()))?;
            commands::run(&state, &principal.name, &command.op, command.args)
                .await
                .map_err(command_error)
        })
    }

    fn handset_input<'a>(
        &'a self,
        unit: &'a str,
        message: HandsetMessage,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move {
            let state = self
                .state()
                .map_err(|e| CommandError::new("unavailable", e.to_string()))?;
            handset_input(&state, unit, message).await
        })
    }

    fn open_orders_for<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let Ok(state) = self.state() else {
                return Vec::new();
            };
            let core = state.dispatch.read().await;
            (core.state().orders.values())
                .filter(|o| o.unit.as_str() == unit && !o.state.is_terminal())
                .filter_map(|o| core.order_message(&o.id).ok())
                .map(|order| json!({ "kind": "order", "order": order, "attempt": 0 }))
                .collect()
        })
    }
}

/// The units the filter lets through, with position, presence and responder status.
fn units(state: &AppState, core: &Dispatcher, filter: &Filter) -> Vec<Value> {
    let tracker = state.tracker();
    let mut out = Vec::new();
    for record in state.credentials.units() {
        let s = tracker.get(&record.id);
        let at = s.map(|s| (s.fix.lat, s.fix.lon));
        // With a bbox, units without a position are left out (as `GET /api/v1/units` does):
        // a district's room does not want every unit never heard from.
        if (filter.bbox.is_some() && at.is_none()) || !filter.matches(Some(&record.id), at, None) {
            continue;
        }
        let status: ResponderStatus = core.responder_status(&UnitId(record.id.clone()));
        let (lat, lon) = match at {
            Some((lat, lon)) => {
                let (lat, lon) = filter.coords.convert(lat, lon);
                (Some(lat), Some(lon))
            }
            None => (None, None),
        };
        out.push(json!({
            "unit": record.id,
            "name": record.name,
            "type": record.unit_type,
            "presence": s.map(|s| s.presence.as_str()).unwrap_or("unknown"),
            "status": status,
            "lat": lat,
            "lon": lon,
            "at": s.map(|s| s.fix.fix_time),
            "at_ms": s.map(|s| s.fix.fix_time.as_millis()),
        }));
    }
    out
}

/// A receipt or a duty status from a handset's WebSocket: the same core commands as over MQTT,
/// for the session's own unit only (the core refuses a receipt for another unit's order).
async fn handset_input(
    state: &AppState,
    unit: &str,
    message: HandsetMessage,
) -> Result<Value, CommandError> {
    let unit = UnitId(unit.to_owned());
    match message {
        HandsetMessage::Receipt(fields) => {
            let order = (fields.get("order_id").and_then(Value::as_str))
                .ok_or_else(|| CommandError::new("bad_receipt", "a receipt needs order_id"))?;
            let to: OrderState = (fields.get("state").cloned())
                .and_then(|s| serde_json::from_value(s).ok())
                .ok_or_else(|| {
                    CommandError::new(
                        "bad_receipt",
                        "state must be one of delivered, accepted, rejected, en_route, on_scene, resolved",
                    )
                })?;
            let order = OrderId(order.to_owned());
            (state.dispatch)
                .execute(state, None, |d, now, src| {
                    Ok(((), d.receipt(now, &unit, &order, to, src)?))
                })
                .await
                .map_err(|e| command_error(e.into()))?;
            let core = state.dispatch.read().await;
            let o = core.order(&order).map_err(|e| command_error(e.into()))?;
            Ok(json!({ "order_id": o.id, "state": o.state }))
        }
        HandsetMessage::Status(fields) => {
            let duty: DutyStatus = (fields.get("duty").cloned())
                .and_then(|s| serde_json::from_value(s).ok())
                .ok_or_else(|| {
                    CommandError::new(
                        "bad_status",
                        "duty must be one of on_duty, on_break, off_duty, out_of_service",
                    )
                })?;
            (state.dispatch)
                .execute(state, None, |d, now, src| {
                    Ok(((), d.responder_duty(now, &unit, duty, src)?))
                })
                .await
                .map_err(|e| command_error(e.into()))?;
            let core = state.dispatch.read().await;
            Ok(json!({ "unit": unit, "status": core.responder_status(&unit) }))
        }
    }
}

/// Copies the hub's counters into the registry's metrics (called at each scrape). Counters only
/// move forward: each gets the difference since the last copy.
pub fn refresh_metrics(state: &AppState) {
    static COPYING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = COPYING.lock().unwrap_or_else(|e| e.into_inner());
    let s = state.push.stats();
    let m = &state.metrics;
    let catch_up = |c: &prometheus_client::metrics::counter::Counter, v: u64| {
        c.inc_by(v.saturating_sub(c.get()));
    };
    m.ws_connections
        .set(i64::try_from(s.connections).unwrap_or(i64::MAX));
    catch_up(&m.ws_sessions, s.sessions_total);
    catch_up(&m.ws_events_sent, s.events_sent);
    catch_up(&m.ws_position_batches, s.batches_sent);
    catch_up(&m.ws_malformed, s.malformed);
    let refused = [
        ("origin", s.refused_origin),
        ("capacity", s.refused_capacity),
        ("auth", s.refused_auth),
        ("role", s.refused_role),
    ];
    for (reason, v) in refused {
        let label = ReasonLabel {
            reason: reason.to_owned(),
        };
        catch_up(&m.ws_refused.get_or_create(&label), v);
    }
    for (reason, v) in &s.closed {
        let label = ReasonLabel {
            reason: reason.clone(),
        };
        catch_up(&m.ws_closed.get_or_create(&label), *v);
    }
}

//! The dispatch service: the server's owner of the dispatch core ([`Dispatcher`]).
//!
//! One core per process, behind a tokio `Mutex` because every command awaits its store commit
//! before it answers. Every command runs the same way ([`DispatchService::execute`]): run the
//! core → build one [`ChangeSet`](fieldlink_store::ChangeSet) (journal events naming their actor,
//! incident / order / alarm rows, the changed responder records, outbox entries for the
//! downlinks, timers, the snapshot of the rest, the request id) → `Store::commit` → only then
//! publish the downlinks and answer. A command refused or a commit that fails puts the core back
//! as it was before the command (a [`Checkpoint`](fieldlink_dispatch::Checkpoint)), so memory
//! never runs ahead of the store.
//!
//! Restart: the core is restored from the single-row snapshot the last commit wrote and the
//! responder rows (`docs/decisions.md`, "Dispatch restart"); its timers are absolute deadlines,
//! so a countdown resumes at its original instant. Downlinks committed but not published before a crash are
//! sent at start from the outbox.
//!
//! Layout:
//! - `changes`: an [`Outcome`] and the core's records as a `ChangeSet`.
//! - `wire`: effects as `v1::Downlink` protobuf outbox entries; proto enums ↔ core enums.
//! - `candidates`: responders near a point from the location tracker and the credential cache;
//!   unique ids.
//! - `inputs`: what handsets say (receipts, fixes, presence, duty) through a bounded queue, and the
//!   task that applies it and ticks the timers every 500 ms.

mod candidates;
mod changes;
mod inputs;
mod wire;

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use fieldlink_clock::Timestamp;
use fieldlink_dispatch::{
    CandidateSource, DeskState, DispatchConfig, DispatchError, Dispatcher, Incident, Outcome,
    Responder,
};
use fieldlink_store::{ChangeSet, Committed, OutboxEntry, Store, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, MutexGuard, mpsc};

pub use candidates::{RandomIds, grid_at, near};
pub use inputs::{Input, presence_changed, run};
pub use wire::{duty_from_proto, kind_from_proto, order_state_from_proto, priority_from_proto};

use crate::state::AppState;

/// Handset inputs waiting for the dispatch task. When full, further inputs are dropped and
/// logged (the uplink path must not block); order receipts are re-sent by handsets until acked.
pub const INPUT_QUEUE: usize = 10_000;
/// Longest wait for one downlink publish before it is left to the outbox and the re-send timer.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Outbox entries re-published at start, at most.
const STARTUP_REDELIVERY: u32 = 10_000;

/// Why a command did not happen.
#[derive(Debug)]
pub enum CommandError {
    /// The core refused it; nothing changed.
    Refused(DispatchError),
    /// The store could not commit it; nothing changed.
    Store(StoreError),
}

/// The dispatch core and the queue of handset inputs.
#[derive(Debug)]
pub struct DispatchService {
    core: Mutex<Dispatcher>,
    inputs: crate::service_loop::InputQueue<Input>,
}

impl DispatchService {
    /// Restores the core from the store's snapshot (an empty one on first start). Returns the
    /// service and the receiving end of its input queue, for [`run`].
    pub async fn restore(
        store: &Store,
        config: DispatchConfig,
        dropped: prometheus_client::metrics::counter::Counter,
    ) -> anyhow::Result<(Self, mpsc::Receiver<Input>)> {
        let snapshot = store
            .load_dispatch_snapshot()
            .await
            .context("cannot load the dispatch snapshot")?;
        let desk: DeskState = match snapshot {
            Some(s) => {
                let mut desk: DeskState =
                    from_json(s.data).context("the stored dispatch snapshot is unreadable")?;
                for r in s.responders {
                    let r: Responder =
                        from_json(r).context("a stored responder record is unreadable")?;
                    desk.responders.insert(r.unit.clone(), r);
                }
                desk
            }
            None => DeskState::default(),
        };
        tracing::info!(
            responders = desk.responders.len(),
            incidents = desk.incidents.len(),
            orders = desk.orders.len(),
            timers = desk.timers.iter().count(),
            "dispatch state restored"
        );
        let (inputs, rx) = crate::service_loop::InputQueue::new(INPUT_QUEUE, "dispatch", dropped);
        let core = Dispatcher::restore(config, desk, Box::new(RandomIds));
        let service = DispatchService {
            core: Mutex::new(core),
            inputs,
        };
        Ok((service, rx))
    }

    /// Queues a handset input without waiting; a full queue drops it (counted, logged).
    pub fn input(&self, input: Input) {
        self.inputs.offer(input);
    }

    /// Queues an input that must not be lost (an SOS, a field report) without blocking.
    pub fn input_must_arrive(&self, input: Input) {
        self.inputs.offer_must_arrive(input);
    }

    /// The core, for reads (hold it briefly).
    pub async fn read(&self) -> MutexGuard<'_, Dispatcher> {
        self.core.lock().await
    }

    /// Runs one command: the core, then one commit, then the downlinks. `request` (the client's
    /// request id) is recorded with the command's result for idempotency. A refused command or a
    /// failed commit changes nothing.
    pub async fn execute<T, F>(
        &self,
        state: &AppState,
        request: Option<String>,
        command: F,
    ) -> Result<T, CommandError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(
            &mut Dispatcher,
            Timestamp,
            &dyn CandidateSource,
        ) -> Result<(T, Outcome), DispatchError>,
    {
        let mut core = self.core.lock().await;
        let now = state.clock.now();
        let checkpoint = core.checkpoint();
        let src = |i: &Incident| candidates::for_incident(state, i);
        let (value, outcome) = match command(&mut core, now, &src) {
            Ok(done) => done,
            Err(e) => {
                core.rollback(checkpoint);
                return Err(CommandError::Refused(e));
            }
        };
        let responders = core.changed_responders();
        if outcome.is_empty() && responders.is_empty() {
            core.keep(checkpoint);
            return Ok(value);
        }
        let result = serde_json::to_value(&value).unwrap_or_default();
        let mut change = changes::change_set(&core, now, &outcome, &responders);
        change.request = request.map(|r| (r, result));
        let outbox = wire::outbox(&core, now, &outcome);
        change.outbox = outbox.clone();
        let journal_order = state.journal_order.lock().await;
        let failure = match state.store.commit(&change).await {
            Ok(Committed::Written(seqs)) => {
                state.commit_succeeded("dispatch");
                // Under the journal-order lock, so the hub sees the events in sequence order.
                crate::push::journal_committed(state, &core, &seqs, &change.events);
                crate::narrate::committed(state, &core, &change.events);
                None
            }
            Ok(Committed::Replayed(first)) => {
                state.commit_succeeded("dispatch");
                Some(Ok(first))
            }
            Err(e) => {
                state.commit_failed("dispatch", &e);
                Some(Err(e))
            }
        };
        drop(journal_order);
        if let Some(failure) = failure {
            // Nothing was written: the core goes back to what the store holds.
            core.rollback(checkpoint);
            let first = failure.map_err(CommandError::Store)?;
            // The store knew the request but the core did not (a request retried across a
            // restart): answer as the first time.
            return serde_json::from_value(first).map_err(|e| {
                CommandError::Store(StoreError::Corrupt {
                    what: "request result",
                    id: String::new(),
                    detail: e.to_string(),
                })
            });
        }
        core.keep(checkpoint);
        for effect in &outcome.effects {
            wire::log_alarm(effect);
        }
        // Published under the lock, so handsets see a command's messages in command order.
        publish(state, now, &outbox).await;
        crate::push::deliver_to_handsets(state, &outcome.effects);
        Ok(value)
    }
}

/// Publishes the entries and marks the published ones done in the outbox. A failed publish is
/// left to the order's re-send timer (and to the outbox at the next start).
pub async fn publish(state: &AppState, now: Timestamp, entries: &[OutboxEntry]) {
    let mut done = Vec::new();
    for e in entries {
        let Ok(unit) = fieldlink_proto::UnitId::new(e.unit.clone()) else {
            tracing::warn!(unit = %e.unit, "downlink to an invalid unit id dropped");
            done.push((e.id.clone(), now));
            continue;
        };
        let payload = Bytes::from(e.payload.clone());
        match tokio::time::timeout(PUBLISH_TIMEOUT, state.downlink.publish(&unit, payload)).await {
            Ok(Ok(())) => done.push((e.id.clone(), now)),
            Ok(Err(err)) => tracing::warn!(id = %e.id, error = %err, "downlink publish failed"),
            Err(_) => tracing::warn!(id = %e.id, "downlink publish timed out"),
        }
    }
    if done.is_empty() {
        return;
    }
    let change = ChangeSet {
        at: now,
        outbox_done: done,
        ..ChangeSet::default()
    };
    if let Err(e) = state.store.commit(&change).await {
        tracing::warn!(error = %e, "could not mark published downlinks done; they will be re-sent at start");
    }
}

/// Sends what was committed but not published before the last stop (a crash between commit and
/// publish). Handsets dedupe by order id, so a repeat is harmless.
pub async fn redeliver(state: &AppState) {
    let now = state.clock.now();
    match state.store.due_outbox(now, STARTUP_REDELIVERY).await {
        Ok(rows) if !rows.is_empty() => {
            tracing::info!(
                count = rows.len(),
                "re-sending downlinks left in the outbox"
            );
            let entries: Vec<OutboxEntry> = rows.into_iter().map(|r| r.entry).collect();
            publish(state, now, &entries).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the outbox at start"),
    }
}

fn from_json<T: DeserializeOwned>(v: serde_json::Value) -> anyhow::Result<T> {
    Ok(serde_json::from_value(v)?)
}

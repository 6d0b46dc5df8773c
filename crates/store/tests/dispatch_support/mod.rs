//! Shared by the dispatch persistence tests (`dispatch_commit.rs`, `dispatch_state.rs`): the
//! both-backends harness and builders for change sets.

#![allow(dead_code)]

use std::future::Future;

use fieldlink_store::testing::{drop_schema, postgres_config_or_skip};
use fieldlink_store::{
    AlarmRow, ChangeSet, IncidentRow, NewEvent, OrderRow, OutboxEntry, StoreConfig, TimerRow,
    Timestamp,
};
use serde_json::{Value, json};

/// One `mod` per scenario with a `sqlite` and a `postgres` test running it
/// (`#[macro_use] mod dispatch_support;` in the test file).
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let dir = tempfile::tempdir().expect("temporary directory");
                super::$scenario(fieldlink_store::testing::sqlite_config(dir.path())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                crate::dispatch_support::on_postgres(stringify!($scenario), super::$scenario)
                    .await;
            }
        }
    )*};
}

/// Runs `scenario` in a fresh PostgreSQL schema and drops the schema afterwards, pass or fail.
pub async fn on_postgres<F, Fut>(name: &str, scenario: F)
where
    F: FnOnce(StoreConfig) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(cfg) = postgres_config_or_skip(name).await else {
        return;
    };
    let outcome = tokio::spawn(scenario(cfg.clone())).await;
    drop_schema(&cfg).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub fn event(at: i64, kind: &str, subject: &str) -> NewEvent {
    NewEvent {
        at: t(at),
        kind: kind.into(),
        subject: subject.into(),
        actor: "dispatcher:d1".into(),
        data: json!({ "kind": kind, "subject": subject, "note": "unicode ok: 走失老人" }),
    }
}

pub fn incident(id: &str, status: &str, open: bool, at: i64, new: bool) -> IncidentRow {
    IncidentRow {
        id: id.into(),
        status: status.into(),
        grid: Some("g-7".into()),
        open,
        created_at: t(at),
        updated_at: t(at + 5),
        data: json!({ "id": id, "kind": "lost_person", "priority": 1, "loc": [31.23, 121.47] }),
        new,
    }
}

pub fn order(id: &str, incident: &str, unit: &str, state: &str, open: bool, at: i64) -> OrderRow {
    OrderRow {
        id: id.into(),
        incident_id: incident.into(),
        unit: unit.into(),
        state: state.into(),
        open,
        created_at: t(at),
        updated_at: t(at),
        data: json!({ "id": id, "state": state }),
        new: false,
    }
}

pub fn alarm(id: &str, state: &str, open: bool, at: i64) -> AlarmRow {
    AlarmRow {
        id: id.into(),
        kind: "target_missed".into(),
        state: state.into(),
        open,
        created_at: t(at),
        updated_at: t(at),
        data: json!({ "rule": "accept_60s" }),
        new: true,
    }
}

pub fn outbox(id: &str, unit: &str, key: &str, at: i64, next: i64) -> OutboxEntry {
    OutboxEntry {
        id: id.into(),
        unit: unit.into(),
        key: key.into(),
        payload: vec![0x0a, 0x00, 0xff, id.len() as u8],
        created_at: t(at),
        next_attempt: t(next),
    }
}

pub fn timer(id: &str, due: i64, subject: &str) -> TimerRow {
    TimerRow {
        id: id.into(),
        due: t(due),
        kind: "accept_timeout".into(),
        subject: subject.into(),
        data: json!({ "order": subject }),
    }
}

/// What one "create an incident and dispatch it" command writes: 2 events, an incident, an
/// order, its downlink and its acceptance timer, all ids suffixed with `n`.
pub fn dispatch_command(n: &str, at: i64, request: Option<(&str, Value)>) -> ChangeSet {
    let inc = format!("inc-{n}");
    let ord = format!("wo-{n}");
    ChangeSet {
        at: t(at),
        request: request.map(|(id, v)| (id.to_owned(), v)),
        events: vec![
            event(at, "incident.created", &inc),
            event(at, "order.dispatched", &ord),
        ],
        incidents: vec![incident(&inc, "dispatched", true, at, true)],
        orders: vec![OrderRow {
            new: true,
            ..order(&ord, &inc, &format!("u-{n}"), "dispatched", true, at)
        }],
        outbox: vec![outbox(&format!("ob-{n}"), &format!("u-{n}"), &ord, at, at)],
        timers_set: vec![timer(&format!("tm-{n}"), at + 30_000, &ord)],
        ..ChangeSet::default()
    }
}

//! A failed commit never wedges the dispatch loop (issue "API, CLI and logs").
//!
//! Two processes on one data directory once left an outbox row `{order}/reassigned` in the
//! store that the surviving core tried to write again: every tick's commit failed on that id,
//! forever and across restarts, and `/readyz` said ready. The instance lock now keeps a second
//! process out (`crates/server/tests/instance_lock.rs`); here the two other halves:
//!
//! - the same stale row, put there by hand, no longer stops the reassignment (outbox row ids are
//!   unique, the message id stays what handsets dedupe on);
//! - a store that refuses every outbox write (an SQLite trigger, a real database failure) makes
//!   `/readyz` answer 503 naming dispatch, and once the store takes writes again the due
//!   reassignment goes through and `/readyz` is 200 again.

use std::path::Path;
use std::time::Duration;

use fieldlink_e2e::dispatch::{SITE, WAIT, downlink, manual_clock, one_click, place, work_order};
use fieldlink_e2e::{Options, TestServer, eventually};
use fieldlink_proto::v1;
use serde_json::{Value, json};
use sqlx::Connection;

/// Runs `sql` on the test server's SQLite file, beside the server's own pool.
async fn sql(data: &Path, sql: &str) {
    let url = format!("sqlite://{}", data.join("fieldlink.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("sql");
    conn.close().await.expect("close");
}

/// A server on a data directory of the test's, two handsets, and an incident whose order is at
/// u000 (u001 is next nearest).
struct Scene {
    srv: TestServer,
    clock: std::sync::Arc<fieldlink_clock::ManualClock>,
    dir: tempfile::TempDir,
    a: fieldlink_sim::Handset,
    b: fieldlink_sim::Handset,
    incident: String,
    order: String,
}

async fn dispatched() -> Scene {
    let clock = manual_clock();
    let dir = tempfile::tempdir().expect("dir");
    let opts = Options {
        units: 2,
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let srv = TestServer::start_with_clock(opts, clock.clone()).await;
    let (mut a, b) = (srv.handset(0).await, srv.handset(1).await);
    let body = json!({"kind": "dispute", "lat": SITE.0, "lon": SITE.1, "description": "noise"});
    let (status, body) = srv.post("/api/v1/incidents", Some(&srv.admin), body).await;
    assert_eq!(status, 201, "{body}");
    let incident = body["incident"]["id"].as_str().expect("id").to_owned();
    place(&srv, &clock, &a, &b, &incident).await;
    let order = one_click(&srv, &incident, "u000").await;
    downlink(&mut a, "the work order at A", work_order).await;
    Scene {
        srv,
        clock,
        dir,
        a,
        b,
        incident,
        order,
    }
}

async fn order_state(srv: &TestServer, order: &str) -> Value {
    let (_, body) = (srv.get(&format!("/api/v1/orders/{order}"), Some(&srv.viewer))).await;
    body["order"]["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_outbox_row_of_the_same_message_does_not_stop_the_reassignment() {
    let Scene {
        srv,
        clock,
        dir,
        mut a,
        mut b,
        incident,
        order,
    } = dispatched().await;
    // What the second process had written: the reassignment notice under the message's own id.
    sql(
        dir.path(),
        &format!(
            "INSERT INTO outbox (id, unit, key, payload, created_at_ms, next_attempt_ms, \
             attempts, done_at_ms) VALUES ('{order}/reassigned', 'u000', '{order}', x'', 0, 0, 1, 1)"
        ),
    )
    .await;

    clock.advance(Duration::from_secs(31));
    let moved = downlink(&mut b, "the reassigned order at B", |d| {
        work_order(d).filter(|o| o.incident_id == incident)
    })
    .await;
    assert_ne!(moved.order_id, order);
    let told = downlink(&mut a, "the reassignment at A", |d| match &d.body {
        Some(v1::downlink::Body::OrderReassigned(r)) if r.order_id == order => Some(d.id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        told,
        format!("{order}/reassigned"),
        "the message id is unchanged"
    );
    assert_eq!(order_state(&srv, &order).await, json!("reassigned"));
    assert_eq!(
        srv.metric("fieldlink_commit_errors_total{service=\"dispatch\"}")
            .await,
        0.0
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_refusing_writes_makes_readyz_503_and_the_loop_recovers() {
    let Scene {
        srv,
        clock,
        dir,
        a,
        mut b,
        incident,
        order,
    } = dispatched().await;
    assert_eq!(srv.get("/readyz", None).await.0, 200);

    sql(
        dir.path(),
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox \
         BEGIN SELECT RAISE(ABORT, 'injected: the outbox refuses writes'); END",
    )
    .await;
    clock.advance(Duration::from_secs(31));
    let (status, body) = eventually(WAIT, "readyz turns 503", || async {
        let (status, body) = srv.get("/readyz", None).await;
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!(status, 503);
    let services = body["services"][0].as_str().unwrap_or_default().to_owned();
    assert!(
        services.starts_with("dispatch cannot commit") && services.contains("injected"),
        "{body}"
    );
    assert_eq!(body["ready"], json!(false), "{body}");
    assert!(
        srv.metric("fieldlink_commit_errors_total{service=\"dispatch\"}")
            .await
            >= 1.0
    );
    assert_eq!(
        order_state(&srv, &order).await,
        json!("dispatched"),
        "nothing changed"
    );

    sql(dir.path(), "DROP TRIGGER refuse_outbox").await;
    let moved = downlink(&mut b, "the reassigned order at B", |d| {
        work_order(d).filter(|o| o.incident_id == incident)
    })
    .await;
    assert_ne!(moved.order_id, order);
    eventually(WAIT, "readyz 200 again", || async {
        (srv.get("/readyz", None).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(order_state(&srv, &order).await, json!("reassigned"));
    drop(a);
    srv.stop().await;
}

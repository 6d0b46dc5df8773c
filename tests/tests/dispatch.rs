//! Dispatch end to end on a manual clock: the HTTP API creates and dispatches incidents, real
//! handsets (rumqttc over the embedded broker) receive their work orders and answer with
//! receipts, and the acceptance timeout reassigns an order, also across a restart.

use std::time::Duration;

use fieldlink_clock::Clock;
use fieldlink_e2e::dispatch::{
    A, SITE, WAIT, downlink, manual_clock, one_click, place, work_order,
};
use fieldlink_e2e::{Options, TestServer, eventually};
use fieldlink_proto::UplinkKind;
use fieldlink_proto::v1;
use fieldlink_sim::{Handset, QoS};
use serde_json::{Value, json};

async fn create(srv: &TestServer, request_id: &str) -> (u16, Value) {
    let body = json!({
        "kind": "dispute", "priority": "high", "lat": SITE.0, "lon": SITE.1,
        "description": "two neighbours shouting", "request_id": request_id,
    });
    srv.post("/api/v1/incidents", Some(&srv.admin), body).await
}

/// A's order is reassigned to B: B's client gets the order, A's client the reassignment.
async fn expect_reassigned(a: &mut Handset, b: &mut Handset, incident: &str, order: &str) {
    let moved = downlink(b, "the reassigned order at B", |d| {
        work_order(d).filter(|o| o.incident_id == incident)
    })
    .await;
    assert_ne!(moved.order_id, order);
    let told = downlink(a, "the reassignment at A", |d| match &d.body {
        Some(v1::downlink::Body::OrderReassigned(r)) if r.order_id == order => Some(r.clone()),
        _ => None,
    })
    .await;
    assert_eq!(told.to_unit, "u001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_click_sends_the_nearest_and_its_receipt_is_recorded() {
    let clock = manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 2,
            ..Default::default()
        },
        clock.clone(),
    )
    .await;
    let (mut a, b) = (srv.handset(0).await, srv.handset(1).await);
    let (status, first) = create(&srv, "req-a").await;
    assert_eq!(status, 201, "{first}");
    let id = first["incident"]["id"]
        .as_str()
        .expect("incident id")
        .to_owned();
    place(&srv, &clock, &a, &b, &id).await;

    // The same request id creates nothing twice.
    let (status, again) = create(&srv, "req-a").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["incident"]["id"], json!(id));
    let (_, list) = srv
        .get("/api/v1/incidents?status=open", Some(&srv.viewer))
        .await;
    assert_eq!(
        list["incidents"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );

    let order = one_click(&srv, &id, "u000").await;
    let got = downlink(&mut a, "the work order at A", work_order).await;
    assert_eq!(
        (got.order_id.as_str(), got.incident_id.as_str()),
        (order.as_str(), id.as_str())
    );
    assert_eq!(got.kind, v1::IncidentKind::Dispute as i32);

    let ack = v1::Ack {
        id: "ack-1".into(),
        time_ms: clock.now().as_millis(),
        unit: "u000".into(),
        receipt: Some(v1::ack::Receipt::Order(v1::OrderReceipt {
            order_id: order.clone(),
            state: v1::OrderState::Accepted as i32,
            ..Default::default()
        })),
    };
    a.publish_uplink(UplinkKind::Ack, &ack, QoS::AtLeastOnce)
        .await
        .expect("A acks");
    let path = format!("/api/v1/orders/{order}");
    eventually(WAIT, "the order accepted", || async {
        let (status, body) = srv.get(&path, Some(&srv.viewer)).await;
        assert_eq!(status, 200, "{body}");
        (body["order"]["state"] == json!("accepted")).then_some(())
    })
    .await;

    // The journal names who did each step.
    let journal = (srv.server.state().store.journal_since(0, 1000).await).expect("journal");
    let actor_of = |kind: &str| {
        (journal.iter())
            .find(|e| e.kind == kind)
            .map(|e| e.actor.clone())
    };
    assert_eq!(
        actor_of("incident.created").as_deref(),
        Some("dispatcher:test admin")
    );
    assert_eq!(
        actor_of("order.dispatched").as_deref(),
        Some("dispatcher:test admin")
    );
    assert_eq!(actor_of("order.accepted").as_deref(), Some("unit:u000"));

    // Errors are JSON with the core's stable codes; viewers cannot write.
    let close = format!("/api/v1/incidents/{id}/close");
    let (status, body) = srv.post(&close, Some(&srv.admin), json!({})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("orders_open")),
        "{body}"
    );
    let (status, _) = srv.post(&close, Some(&srv.viewer), json!({})).await;
    assert_eq!(status, 403);
    let (status, body) = srv.get("/api/v1/orders/nope", Some(&srv.viewer)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("unknown_order"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_not_accepted_in_30_s_goes_to_the_next_nearest() {
    let clock = manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 2,
            ..Default::default()
        },
        clock.clone(),
    )
    .await;
    let (mut a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    let (status, body) = create(&srv, "req-b").await;
    assert_eq!(status, 201, "{body}");
    let id = body["incident"]["id"]
        .as_str()
        .expect("incident id")
        .to_owned();
    place(&srv, &clock, &a, &b, &id).await;
    let order = one_click(&srv, &id, "u000").await;
    downlink(&mut a, "the work order at A", work_order).await;

    clock.advance(Duration::from_secs(31));
    expect_reassigned(&mut a, &mut b, &id, &order).await;
    let (_, body) = srv
        .get(&format!("/api/v1/orders/{order}"), Some(&srv.viewer))
        .await;
    assert_eq!(body["order"]["state"], json!("reassigned"), "{body}");
}

/// Create and dispatch, stop mid-countdown, start again on the same store: the order is still
/// there and its original 30 s deadline still reassigns it.
async fn countdown_survives_a_restart(store: Option<(String, String)>, tag: &str) {
    let clock = manual_clock();
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = || Options {
        units: 2,
        data_dir: Some(dir.path().to_path_buf()),
        tag: Some(tag.to_owned()),
        store: store.clone(),
        ..Default::default()
    };
    let srv = TestServer::start_with_clock(opts(), clock.clone()).await;
    let (mut a, b) = (srv.handset(0).await, srv.handset(1).await);
    let (status, body) = create(&srv, "req-c").await;
    assert_eq!(status, 201, "{body}");
    let id = body["incident"]["id"]
        .as_str()
        .expect("incident id")
        .to_owned();
    place(&srv, &clock, &a, &b, &id).await;
    let order = one_click(&srv, &id, "u000").await;
    downlink(&mut a, "the work order at A", work_order).await;
    clock.advance(Duration::from_secs(10));
    drop((a, b));
    srv.stop().await;

    let srv = TestServer::start_with_clock(opts(), clock.clone()).await;
    let (mut a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    let (_, body) = srv
        .get(&format!("/api/v1/orders/{order}"), Some(&srv.viewer))
        .await;
    assert_eq!(body["order"]["state"], json!("dispatched"), "{body}");
    // The same request id still answers with the first incident after the restart.
    let (status, again) = create(&srv, "req-c").await;
    assert_eq!(
        (status, &again["incident"]["id"]),
        (200, &json!(id)),
        "{again}"
    );
    // 10 s after dispatch before the stop, 31 s now: past the deadline set before it.
    clock.advance(Duration::from_secs(21));
    expect_reassigned(&mut a, &mut b, &id, &order).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_acceptance_countdown_survives_a_restart() {
    countdown_survives_a_restart(None, "restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_acceptance_countdown_survives_a_restart_on_postgresql() {
    let name = "the_acceptance_countdown_survives_a_restart_on_postgresql";
    let Some(pg) = fieldlink_store::testing::postgres_config_or_skip(name).await else {
        return;
    };
    let schema = pg.pg_schema.clone().unwrap_or_default();
    countdown_survives_a_restart(Some((pg.url.clone(), schema)), "restartpg").await;
    fieldlink_store::testing::drop_schema(&pg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_one_available_the_incident_waits_and_goes_to_the_first_who_comes_online() {
    let clock = manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 1,
            ..Default::default()
        },
        clock.clone(),
    )
    .await;
    let (status, body) = create(&srv, "req-q").await;
    assert_eq!(status, 201, "{body}");
    let id = body["incident"]["id"]
        .as_str()
        .expect("incident id")
        .to_owned();
    let path = format!("/api/v1/incidents/{id}/dispatch");
    let (status, body) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["orders"], &body["queued"]),
        (&json!([]), &json!(true))
    );
    let (_, body) = srv
        .get("/api/v1/alarms?status=raised", Some(&srv.viewer))
        .await;
    let alarm = &body["alarms"][0];
    assert_eq!(alarm["kind"]["type"], json!("no_one_available"), "{body}");
    let alarm_id = alarm["id"].as_str().expect("alarm id").to_owned();
    let (status, body) = srv
        .post(
            &format!("/api/v1/alarms/{alarm_id}/ack"),
            Some(&srv.admin),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &body["alarm"]["state"]),
        (200, &json!("acknowledged")),
        "{body}"
    );

    // The first fix brings A online: the queued incident is dispatched to it at once.
    let mut a = srv.handset(0).await;
    let t = clock.now().as_millis();
    a.publish_fix_qos1(fieldlink_e2e::fix(A.0, A.1, t))
        .await
        .expect("A publishes");
    let got = downlink(&mut a, "the queued incident's order at A", work_order).await;
    assert_eq!(got.incident_id, id);
    let (_, body) = srv
        .get(&format!("/api/v1/incidents/{id}"), Some(&srv.viewer))
        .await;
    assert_eq!(body["queued"], json!(false), "{body}");
    assert_eq!(body["orders"][0]["unit"], json!("u000"), "{body}");
}

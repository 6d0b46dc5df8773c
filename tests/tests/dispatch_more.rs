//! More dispatch end to end on a manual clock, over real MQTT handsets: reinforcement and its
//! 5-minute clock, cancelling an order, SOS and field reports from handsets, arrival detected
//! from GPS, and the supervision (SLA) report in JSON and CSV.

use std::sync::Arc;
use std::time::Duration;

use fieldlink_clock::{Clock, ManualClock};
use fieldlink_e2e::dispatch::{
    A, SITE, WAIT, downlink, manual_clock, one_click, place, work_order,
};
use fieldlink_e2e::{Options, TestServer, eventually};
use fieldlink_proto::UplinkKind;
use fieldlink_proto::v1;
use fieldlink_sim::{Handset, QoS};
use serde_json::{Value, json};

async fn start(clock: &Arc<ManualClock>) -> TestServer {
    let opts = Options {
        units: 2,
        ..Default::default()
    };
    TestServer::start_with_clock(opts, clock.clone()).await
}

/// Creates a dispute at the site; returns its id.
async fn create(srv: &TestServer, request_id: &str) -> String {
    let body = json!({
        "kind": "dispute", "priority": "high", "lat": SITE.0, "lon": SITE.1,
        "description": "two neighbours shouting", "request_id": request_id,
    });
    let (status, body) = srv.post("/api/v1/incidents", Some(&srv.admin), body).await;
    assert_eq!(status, 201, "{body}");
    body["incident"]["id"]
        .as_str()
        .expect("incident id")
        .to_owned()
}

/// The handset sends a receipt for `order` and waits until the order shows `state`.
async fn receipt(
    srv: &TestServer,
    clock: &ManualClock,
    h: &Handset,
    order: &str,
    state: v1::OrderState,
    expect: &str,
) {
    let ack = v1::Ack {
        id: format!("ack-{order}-{expect}"),
        time_ms: clock.now().as_millis(),
        unit: h.unit().to_string(),
        receipt: Some(v1::ack::Receipt::Order(v1::OrderReceipt {
            order_id: order.to_owned(),
            state: state as i32,
            ..Default::default()
        })),
    };
    h.publish_uplink(UplinkKind::Ack, &ack, QoS::AtLeastOnce)
        .await
        .expect("receipt published");
    order_in(srv, order, expect).await;
}

/// Waits until the order is in `state`.
async fn order_in(srv: &TestServer, order: &str, state: &str) -> Value {
    let path = format!("/api/v1/orders/{order}");
    eventually(WAIT, &format!("order {order} {state}"), || async {
        let (status, body) = srv.get(&path, Some(&srv.viewer)).await;
        assert_eq!(status, 200, "{body}");
        (body["order"]["state"] == json!(state)).then_some(body)
    })
    .await
}

/// The alarms of `kind` (the `type` tag) about `incident`.
async fn alarms_of(srv: &TestServer, kind: &str, incident: &str) -> Vec<Value> {
    let (status, body) = srv.get("/api/v1/alarms", Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{body}");
    (body["alarms"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter())
    .filter(|a| a["kind"]["type"] == json!(kind) && a["incident"] == json!(incident))
    .collect()
}

/// Lets a few 500 ms dispatch ticks pass on the wall clock.
async fn ticks() {
    tokio::time::sleep(Duration::from_millis(1600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reinforcement_reaches_the_next_nearest_and_its_clock_runs_from_the_request() {
    let clock = manual_clock();
    let srv = start(&clock).await;
    let (mut a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    let id = create(&srv, "req-r").await;
    place(&srv, &clock, &a, &b, &id).await;
    let first = one_click(&srv, &id, "u000").await;
    downlink(&mut a, "the work order at A", work_order).await;
    receipt(
        &srv,
        &clock,
        &a,
        &first,
        v1::OrderState::Accepted,
        "accepted",
    )
    .await;

    // Requested 100 s after the incident: the 5-minute reinforcement clock starts here.
    clock.advance(Duration::from_secs(100));
    let path = format!("/api/v1/incidents/{id}/reinforce");
    let (status, _) = srv.post(&path, Some(&srv.viewer), json!({})).await;
    assert_eq!(status, 403);
    let (status, body) = srv.post(&path, Some(&srv.admin), json!({"count": 0})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_count")),
        "{body}"
    );
    let (status, body) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orders"][0]["unit"], json!("u001"), "{body}");
    assert_eq!(body["reinforcement"]["seq"], json!(1), "{body}");
    let second = body["orders"][0]["id"]
        .as_str()
        .expect("order id")
        .to_owned();
    let got = downlink(&mut b, "the reinforcing order at B", work_order).await;
    assert_eq!(
        (got.order_id.as_str(), got.reinforcement),
        (second.as_str(), true)
    );
    assert_eq!(got.incident_id, id);
    receipt(
        &srv,
        &clock,
        &b,
        &second,
        v1::OrderState::Accepted,
        "accepted",
    )
    .await;

    // Nobody arrives. 300 s after the incident's creation is only 200 s after the request.
    clock.advance(Duration::from_secs(200));
    ticks().await;
    assert!(
        alarms_of(&srv, "reinforcement_missed", &id)
            .await
            .is_empty()
    );
    clock.advance(Duration::from_secs(99));
    ticks().await;
    assert!(
        alarms_of(&srv, "reinforcement_missed", &id)
            .await
            .is_empty()
    );
    clock.advance(Duration::from_secs(1));
    let alarm = eventually(WAIT, "the reinforcement alarm at 300 s", || async {
        alarms_of(&srv, "reinforcement_missed", &id).await.pop()
    })
    .await;
    assert_eq!(alarm["kind"]["seq"], json!(1), "{alarm}");
    assert_eq!(
        alarm["raised_at"].as_str(),
        Some(clock.now().to_rfc3339().as_str()),
        "{alarm}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_order_reaches_the_handset() {
    let clock = manual_clock();
    let srv = start(&clock).await;
    let (mut a, b) = (srv.handset(0).await, srv.handset(1).await);
    let id = create(&srv, "req-x").await;
    place(&srv, &clock, &a, &b, &id).await;
    let order = one_click(&srv, &id, "u000").await;
    downlink(&mut a, "the work order at A", work_order).await;

    let path = format!("/api/v1/orders/{order}/cancel");
    let reason = json!({"reason": "duplicate call"});
    let (status, _) = srv.post(&path, Some(&srv.viewer), reason.clone()).await;
    assert_eq!(status, 403);
    let (status, body) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("bad_body")),
        "{body}"
    );
    let (status, body) = srv.post(&path, Some(&srv.admin), reason.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["order"]["state"], json!("cancelled"), "{body}");
    let told = downlink(&mut a, "the cancel at A", |d| match &d.body {
        Some(v1::downlink::Body::OrderCancelled(c)) => Some(c.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (told.order_id.as_str(), told.reason.as_str()),
        (order.as_str(), "duplicate call")
    );
    // A cancelled order cannot be cancelled again.
    let (status, body) = srv.post(&path, Some(&srv.admin), reason).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sos_creates_a_critical_incident_and_the_nearest_other_gets_an_order() {
    let clock = manual_clock();
    let srv = start(&clock).await;
    let (a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    // An incident nobody is sent to, only to wait until dispatch counts both available.
    let probe = create(&srv, "req-probe").await;
    place(&srv, &clock, &a, &b, &probe).await;

    let sos = v1::Sos {
        id: "sos-1".into(),
        time_ms: clock.now().as_millis(),
        unit: "u000".into(),
        position: None,
        note: "help".into(),
        cancel: false,
    };
    a.publish_uplink(UplinkKind::Sos, &sos, QoS::AtLeastOnce)
        .await
        .expect("A sends SOS");
    let got = downlink(&mut b, "the SOS order at B", work_order).await;
    assert_eq!(got.priority, v1::Priority::Critical as i32);
    let (status, body) = srv
        .get(
            &format!("/api/v1/incidents/{}", got.incident_id),
            Some(&srv.viewer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let incident = &body["incident"];
    assert_eq!(incident["priority"], json!("critical"), "{body}");
    assert_eq!(
        incident["source"],
        json!({"type": "sos", "unit": "u000"}),
        "{body}"
    );
    // Placed at A's last fix.
    assert_eq!(incident["location"]["lat"], json!(A.0), "{body}");
    assert_eq!(body["orders"][0]["unit"], json!("u001"), "{body}");
    let alarms = alarms_of(&srv, "sos", &got.incident_id).await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0]["kind"]["unit"], json!("u000"));

    // The same SOS re-sent creates nothing twice; a cancel creates nothing.
    a.publish_uplink(UplinkKind::Sos, &sos, QoS::AtLeastOnce)
        .await
        .expect("A re-sends SOS");
    let cancel = v1::Sos {
        id: "sos-2".into(),
        cancel: true,
        ..sos.clone()
    };
    a.publish_uplink(UplinkKind::Sos, &cancel, QoS::AtLeastOnce)
        .await
        .expect("A cancels SOS");
    ticks().await;
    let (_, list) = srv.get("/api/v1/incidents", Some(&srv.viewer)).await;
    assert_eq!(
        list["incidents"].as_array().map(Vec::len),
        Some(2),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_field_report_becomes_an_incident_listed_by_grid() {
    let clock = manual_clock();
    let srv = start(&clock).await;
    let a = srv.handset(0).await;
    let grid = fieldlink_e2e::square_grid("g-site", SITE, 0.001, &[]);
    let (status, body) = srv.post("/api/v1/grids", Some(&srv.admin), grid).await;
    assert!(status == 200 || status == 201, "{status} {body}");

    let report = v1::Report {
        id: "rep-1".into(),
        time_ms: clock.now().as_millis(),
        unit: "u000".into(),
        body: Some(v1::report::Body::FieldReport(v1::FieldReport {
            kind: v1::IncidentKind::Flooding as i32,
            text: "water over the road".into(),
            position: Some(v1::Position {
                lat: SITE.0,
                lon: SITE.1,
                alt_m: None,
                accuracy_m: None,
            }),
            media_urls: vec![],
            priority: v1::Priority::High as i32,
        })),
    };
    a.publish_uplink(UplinkKind::Report, &report, QoS::AtLeastOnce)
        .await
        .expect("A reports");
    // Sent twice: the message id makes it one incident.
    a.publish_uplink(UplinkKind::Report, &report, QoS::AtLeastOnce)
        .await
        .expect("A reports again");
    let list = eventually(WAIT, "the field report listed", || async {
        let (status, body) = srv
            .get(
                "/api/v1/incidents?status=open&grid=g-site",
                Some(&srv.viewer),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let list = body["incidents"].as_array().cloned().unwrap_or_default();
        (!list.is_empty()).then_some(list)
    })
    .await;
    ticks().await;
    let (_, all) = srv.get("/api/v1/incidents", Some(&srv.viewer)).await;
    assert_eq!(all["incidents"].as_array().map(Vec::len), Some(1), "{all}");
    let i = &list[0];
    assert_eq!(
        i["source"],
        json!({"type": "field_report", "unit": "u000"}),
        "{i}"
    );
    assert_eq!(i["kind"], json!("flooding"), "{i}");
    assert_eq!(i["priority"], json!("high"), "{i}");
    assert_eq!(i["grid"], json!("g-site"), "{i}");
    assert_eq!(i["description"], json!("water over the road"), "{i}");
    // Other grids do not list it; a bad status is explained.
    let (_, other) = srv
        .get("/api/v1/incidents?grid=elsewhere", Some(&srv.viewer))
        .await;
    assert_eq!(other["incidents"], json!([]), "{other}");
    let (status, _) = srv
        .get("/api/v1/incidents?status=nope", Some(&srv.viewer))
        .await;
    assert_eq!(status, 400);
    // Without a position, the report is placed where the unit is.
    let t = clock.now().as_millis();
    a.publish_fix_qos1(fieldlink_e2e::fix(A.0, A.1, t))
        .await
        .expect("A publishes");
    let mut second = report.clone();
    second.id = "rep-2".into();
    if let Some(v1::report::Body::FieldReport(f)) = &mut second.body {
        f.position = None;
    }
    a.publish_uplink(UplinkKind::Report, &second, QoS::AtLeastOnce)
        .await
        .expect("A reports without a position");
    let placed = eventually(WAIT, "the second report listed", || async {
        let (_, body) = srv.get("/api/v1/incidents", Some(&srv.viewer)).await;
        (body["incidents"].as_array()?.iter())
            .find(|i| i["request_id"] == json!("report:u000:rep-2"))
            .cloned()
    })
    .await;
    assert_eq!(
        placed["location"],
        json!({"lat": A.0, "lon": A.1}),
        "{placed}"
    );
    // Open for the command room: it can be closed straight away.
    let id = i["id"].as_str().expect("id");
    let (status, body) = srv
        .post(
            &format!("/api/v1/incidents/{id}/close"),
            Some(&srv.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arrival_is_detected_from_consecutive_gps_fixes() {
    let clock = manual_clock();
    let srv = start(&clock).await;
    let (mut a, b) = (srv.handset(0).await, srv.handset(1).await);
    let id = create(&srv, "req-g").await;
    place(&srv, &clock, &a, &b, &id).await;
    let order = one_click(&srv, &id, "u000").await;
    downlink(&mut a, "the work order at A", work_order).await;
    receipt(
        &srv,
        &clock,
        &a,
        &order,
        v1::OrderState::Accepted,
        "accepted",
    )
    .await;

    // About 110 m north of the site, then at the site twice (the default needs 2 fixes inside
    // 50 m); 30 s apart, walking pace.
    let walk = [(SITE.0 + 0.001, SITE.1), SITE, SITE];
    for (n, (lat, lon)) in walk.into_iter().enumerate() {
        clock.advance(Duration::from_secs(30));
        let t = clock.now().as_millis();
        a.publish_fix_qos1(fieldlink_e2e::fix(lat, lon, t))
            .await
            .expect("A publishes");
        if n < 2 {
            ticks().await;
            let (_, body) = srv
                .get(&format!("/api/v1/orders/{order}"), Some(&srv.viewer))
                .await;
            assert_eq!(body["order"]["state"], json!("accepted"), "fix {n}: {body}");
        }
    }
    let body = order_in(&srv, &order, "on_scene").await;
    assert_eq!(body["status"], json!("on_scene"), "{body}");
    let journal = (srv.server.state().store.journal_since(0, 1000).await).expect("journal");
    let arrived = (journal.iter()).find(|e| e.kind == "order.on_scene");
    assert_eq!(
        arrived.map(|e| e.actor.as_str()),
        Some("system:gps_arrival"),
        "{journal:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sla_report_counts_targets_met_in_json_and_csv() {
    let clock = manual_clock();
    let srv = start(&clock).await;
    let (mut a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    let from = clock.now().minus(Duration::from_secs(1));

    // X: accepted after 20 s, on scene after 100 s: both targets met.
    let x = create(&srv, "req-sla-x").await;
    place(&srv, &clock, &a, &b, &x).await;
    let ox = one_click(&srv, &x, "u000").await;
    downlink(&mut a, "X at A", work_order).await;
    clock.advance(Duration::from_secs(20));
    receipt(&srv, &clock, &a, &ox, v1::OrderState::Accepted, "accepted").await;
    clock.advance(Duration::from_secs(80));
    receipt(&srv, &clock, &a, &ox, v1::OrderState::OnScene, "on_scene").await;

    // Y: dispatched 50 s late, accepted after 70 s, on scene after 200 s: both missed.
    let y = create(&srv, "req-sla-y").await;
    clock.advance(Duration::from_secs(50));
    let oy = one_click(&srv, &y, "u001").await;
    downlink(&mut b, "Y at B", work_order).await;
    clock.advance(Duration::from_secs(20));
    receipt(&srv, &clock, &b, &oy, v1::OrderState::Accepted, "accepted").await;
    clock.advance(Duration::from_secs(130));
    receipt(&srv, &clock, &b, &oy, v1::OrderState::OnScene, "on_scene").await;

    let to = clock.now().plus(Duration::from_secs(1));
    let period = format!(
        "from={}&to={}",
        from.to_rfc3339().replace('+', "%2B"),
        to.to_rfc3339().replace('+', "%2B")
    );
    let path = format!("/api/v1/reports/sla?{period}&group_by=kind&format=json");
    let (status, body) = srv.get(&path, Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{body}");
    let rows = body["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{body}");
    let r = &rows[0];
    assert_eq!(r["key"], json!("dispute"), "{body}");
    assert_eq!(
        (&r["incidents"], &r["accepted"], &r["on_scene"]),
        (&json!(2), &json!(2), &json!(2))
    );
    assert_eq!(r["within_response"], json!(0.5), "{body}");
    assert_eq!(r["within_arrival"], json!(0.5), "{body}");
    assert_eq!(r["accept_median_s"], json!(20.0), "{body}");
    assert_eq!(r["accept_p90_s"], json!(70.0), "{body}");
    assert_eq!(r["on_scene_p90_s"], json!(200.0), "{body}");

    // Per unit: A met both, B neither.
    let path = format!("/api/v1/reports/sla?{period}&group_by=unit");
    let (status, body) = srv.get(&path, Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{body}");
    let by_unit: Vec<(Value, Value, Value)> = (body["rows"].as_array().expect("rows").iter())
        .map(|r| {
            (
                r["key"].clone(),
                r["within_response"].clone(),
                r["within_arrival"].clone(),
            )
        })
        .collect();
    assert_eq!(
        by_unit,
        [
            (json!("u000"), json!(1.0), json!(1.0)),
            (json!("u001"), json!(0.0), json!(0.0))
        ]
    );

    // CSV: the same figures, as text/csv.
    let url = format!(
        "{}/api/v1/reports/sla?{period}&group_by=kind&format=csv",
        srv.base
    );
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(&srv.viewer)
        .send()
        .await
        .expect("HTTP request");
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let text = resp.text().await.expect("body");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("a row").split(',').collect();
    assert_eq!(lines.next(), None, "{text}");
    let cell = |name: &str| {
        let i = header.iter().position(|h| *h == name).expect(name);
        row[i]
    };
    assert_eq!(cell("key"), "dispute");
    assert_eq!(cell("incidents"), "2");
    assert_eq!(cell("within_response"), "0.5");
    assert_eq!(cell("within_arrival"), "0.5");
    assert_eq!(cell("accept_median_s"), "20");

    // Bad parameters are explained; viewers may read.
    let (status, body) = srv
        .get("/api/v1/reports/sla?group_by=street", Some(&srv.viewer))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_group_by"))
    );
    let (status, body) = srv
        .get("/api/v1/reports/sla?from=yesterday", Some(&srv.viewer))
        .await;
    assert_eq!((status, &body["error"]["code"]), (400, &json!("bad_time")));
    let (status, _) = srv.get("/api/v1/reports/sla", None).await;
    assert_eq!(status, 401);
}

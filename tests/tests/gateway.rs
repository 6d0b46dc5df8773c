//! The MQTT gateway end to end: real handsets (rumqttc) publish to the real broker (embedded, or
//! the machine's Mosquitto), fieldlink decodes and validates, and the HTTP API shows the result.

use std::time::Duration;

use fieldlink_e2e::{MOSQUITTO, Options, TestServer, eventually, now_ms, service_or_skip};
use fieldlink_proto::v1;
use fieldlink_sim::{Handset, HandsetConfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// A fix with speed, heading and battery too, so the API's every field is checked.
fn fix(lat: f64, lon: f64, at_ms: i64) -> v1::GpsFix {
    v1::GpsFix {
        speed_mps: Some(1.2),
        heading_deg: Some(90.0),
        battery_pct: Some(77.0),
        ..fieldlink_e2e::fix(lat, lon, at_ms)
    }
}

async fn wait_for_position(srv: &TestServer, unit: &str, lat: f64, lon: f64) -> Value {
    eventually(WAIT, &format!("{unit} at {lat},{lon}"), || async {
        let u = srv.unit(unit).await;
        (u["lat"].as_f64() == Some(lat) && u["lon"].as_f64() == Some(lon)).then_some(u)
    })
    .await
}

async fn protobuf_fix_shows_in_the_api(srv: &TestServer) {
    let handset = srv.handset(0).await;
    let t = now_ms();
    handset
        .publish_fix_qos1(fix(30.2741, 120.1551, t))
        .await
        .expect("published");
    let u = wait_for_position(srv, "u000", 30.2741, 120.1551).await;
    assert_eq!(u["online"], json!(true));
    assert_eq!(u["accuracy_m"], json!(8.0));
    assert_eq!(u["speed_mps"], json!(1.2));
    assert_eq!(u["heading_deg"], json!(90.0));
    assert_eq!(u["battery_pct"], json!(77.0));
    assert_eq!(u["source"], json!("native"));
    let fix_time = u["fix_time"].as_str().expect("fix_time");
    assert_eq!(
        fieldlink_clock::Timestamp::parse_rfc3339(fix_time).map(|t| t.as_millis()),
        Some(t)
    );
    assert!(u["received_at"].as_str().is_some_and(|s| s.ends_with('Z')));
}

#[tokio::test]
async fn a_protobuf_fix_over_the_embedded_broker_shows_in_the_api() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    protobuf_fix_shows_in_the_api(&srv).await;
    assert!(
        srv.metric("fieldlink_mqtt_messages_total{kind=\"gps\"}")
            .await
            >= 1.0
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_buffered_batch_lands_and_the_newest_fix_is_the_latest() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let handset = srv.handset(0).await;
    let t = now_ms() - 60_000;
    let fixes = (0..20)
        .map(|i| {
            fix(
                30.27 + f64::from(i) * 0.0001,
                120.15,
                t + i64::from(i) * 2_000,
            )
        })
        .collect();
    handset
        .publish_batch(fixes, true)
        .await
        .expect("batch published");
    wait_for_position(&srv, "u000", 30.27 + 19.0 * 0.0001, 120.15).await;
    srv.stop().await;
}

#[tokio::test]
async fn an_owntracks_location_shows_in_the_api() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let handset = srv.handset(0).await;
    handset
        .publish_owntracks("phone", 30.2596, 120.1772, now_ms() / 1000, 12.0)
        .await
        .expect("published");
    let u = wait_for_position(&srv, "u000", 30.2596, 120.1772).await;
    assert_eq!(u["source"], json!("owntracks"));
    assert_eq!(u["accuracy_m"], json!(12.0));
    srv.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_or_an_unknown_unit_is_refused_at_connect() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let unit = srv.units[0].id.clone();
    let wrong = HandsetConfig::new(
        srv.broker.clone(),
        unit,
        "not-the-secret-at-all",
        srv.topics.clone(),
    );
    assert!(
        Handset::connect(wrong).await.is_err(),
        "a wrong secret must be refused"
    );
    let stranger = HandsetConfig::new(
        srv.broker.clone(),
        fieldlink_proto::UnitId::new("stranger").expect("id"),
        "whatever-secret-123",
        srv.topics.clone(),
    );
    assert!(
        Handset::connect(stranger).await.is_err(),
        "an unknown unit must be refused"
    );
    srv.stop().await;
}

#[tokio::test]
async fn the_api_needs_a_token_with_the_right_role() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let (status, body) = srv.get("/api/v1/units", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], json!("unauthenticated"));
    let (status, _) = srv.get("/api/v1/units", Some("fl_tok_nope_secret")).await;
    assert_eq!(status, 401);
    let (status, body) = srv.get("/api/v1/units", Some(&srv.viewer)).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], json!("u000"));
    let (status, body) = srv
        .post("/api/v1/units", Some(&srv.viewer), json!({"id": "new-1"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], json!("forbidden"));
    let (status, body) = srv.get("/api/v1/units/nobody", Some(&srv.viewer)).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], json!("unit_not_found"));
    // health and metrics are open
    assert_eq!(srv.get("/healthz", None).await.0, 200);
    assert_eq!(srv.get("/metrics", None).await.0, 200);
    assert!(srv.metric("fieldlink_http_auth_refused_total").await >= 1.0);
    srv.stop().await;
}

#[tokio::test]
async fn an_admin_provisions_a_unit_that_connects_at_once_and_disabling_it_stops_its_messages() {
    let srv = TestServer::start(Options::default()).await;
    let (status, body) = srv
        .post(
            "/api/v1/units",
            Some(&srv.admin),
            json!({"id": "patrol-7", "type": "e_bike", "skills": ["First_Aid", "mediation"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["type"], json!("e_bike"));
    assert_eq!(body["skills"], json!(["first_aid", "mediation"]));
    let secret = body["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    assert_eq!(secret.len(), 64);
    let (status, _) = srv
        .post("/api/v1/units", Some(&srv.admin), json!({"id": "patrol-7"}))
        .await;
    assert_eq!(status, 409);
    let (status, body) = srv
        .post("/api/v1/units", Some(&srv.admin), json!({"id": "bad/id"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], json!("bad_unit_id"));

    let id = fieldlink_proto::UnitId::new("patrol-7").expect("id");
    let handset = Handset::connect(HandsetConfig::new(
        srv.broker.clone(),
        id,
        secret,
        srv.topics.clone(),
    ))
    .await
    .expect("the new unit connects with its secret");
    handset
        .publish_fix_qos1(fix(30.25, 120.16, now_ms()))
        .await
        .expect("published");
    wait_for_position(&srv, "patrol-7", 30.25, 120.16).await;

    let (status, body) = srv
        .post(
            "/api/v1/units/patrol-7/disable",
            Some(&srv.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], json!(true));
    let before = srv
        .metric("fieldlink_mqtt_rejected_total{reason=\"unknown_unit\"}")
        .await;
    handset
        .publish_fix_qos1(fix(30.26, 120.17, now_ms()))
        .await
        .expect("published");
    eventually(WAIT, "the disabled unit's fix to be refused", || async {
        (srv.metric("fieldlink_mqtt_rejected_total{reason=\"unknown_unit\"}")
            .await
            > before)
            .then_some(())
    })
    .await;
    assert_eq!(srv.unit("patrol-7").await["lat"], json!(30.25));
    srv.stop().await;
}

#[tokio::test]
async fn positions_survive_a_restart() {
    let tag = fieldlink_e2e::tag();
    let srv = TestServer::start(Options {
        units: 1,
        tag: Some(tag.clone()),
        ..Default::default()
    })
    .await;
    let dir = srv.config.data_dir.clone();
    let handset = srv.handset(0).await;
    handset
        .publish_fix_qos1(fix(30.2801, 120.1602, now_ms()))
        .await
        .expect("published");
    wait_for_position(&srv, "u000", 30.2801, 120.1602).await;
    drop(handset);
    let keep = srv.stop().await;
    let srv = TestServer::start(Options {
        units: 1,
        tag: Some(tag),
        data_dir: Some(dir),
        ..Default::default()
    })
    .await;
    let u = srv.unit("u000").await;
    assert_eq!(
        (u["lat"].as_f64(), u["lon"].as_f64()),
        (Some(30.2801), Some(120.1602))
    );
    srv.stop().await;
    drop(keep);
}

#[tokio::test]
async fn a_taken_mqtt_port_is_explained() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let mut config = fieldlink_server::Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.mqtt.listen = addr;
    let err = fieldlink_server::start(config, std::sync::Arc::new(fieldlink_clock::SystemClock))
        .await
        .expect_err("the port is taken");
    let text = format!("{err:#}");
    assert!(text.contains("already in use"), "{text}");
    assert!(text.contains("--mqtt"), "{text}");
}

#[tokio::test]
async fn the_same_gateway_works_through_the_external_mosquitto() {
    if !service_or_skip(
        "Mosquitto",
        MOSQUITTO,
        "the_same_gateway_works_through_the_external_mosquitto",
    ) {
        return;
    }
    let srv = TestServer::start(Options {
        units: 1,
        external_broker: Some(format!("mqtt://{MOSQUITTO}")),
        ..Default::default()
    })
    .await;
    eventually(WAIT, "fieldlink to be subscribed on Mosquitto", || async {
        (srv.get("/readyz", None).await.0 == 200).then_some(())
    })
    .await;
    protobuf_fix_shows_in_the_api(&srv).await;
    srv.stop().await;
}

#[tokio::test]
async fn the_same_gateway_works_on_postgresql() {
    let Some(pg) =
        fieldlink_store::testing::postgres_config_or_skip("the_same_gateway_works_on_postgresql")
            .await
    else {
        return;
    };
    let schema = pg.pg_schema.clone().unwrap_or_default();
    let srv = TestServer::start(Options {
        units: 1,
        store: Some((pg.url.clone(), schema)),
        ..Default::default()
    })
    .await;
    protobuf_fix_shows_in_the_api(&srv).await;
    srv.stop().await;
    fieldlink_store::testing::drop_schema(&pg).await;
}

#[tokio::test]
async fn an_oversized_payload_is_refused_and_counted_and_the_next_fix_lands() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let handset = srv.handset(0).await;
    let topic = srv
        .topics
        .uplink(&srv.units[0].id, fieldlink_proto::UplinkKind::Gps);
    let too_big = vec![0u8; srv.config.mqtt.max_payload_bytes + 1];
    handset
        .publish_raw(&topic, too_big, fieldlink_sim::QoS::AtLeastOnce)
        .await
        .expect("the broker takes it; fieldlink refuses it");
    eventually(WAIT, "too_large to be counted", || async {
        (srv.metric("fieldlink_mqtt_rejected_total{reason=\"too_large\"}")
            .await
            >= 1.0)
            .then_some(())
    })
    .await;
    handset
        .publish_fix_qos1(fix(30.2711, 120.1611, now_ms()))
        .await
        .expect("published");
    wait_for_position(&srv, "u000", 30.2711, 120.1611).await;
    srv.stop().await;
}

#[tokio::test]
async fn a_handset_that_drops_off_the_network_is_shown_offline_by_its_last_will() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let handset = srv.handset(0).await;
    handset
        .publish_fix_qos1(fix(30.2721, 120.1621, now_ms()))
        .await
        .expect("published");
    let u = wait_for_position(&srv, "u000", 30.2721, 120.1621).await;
    assert_eq!(u["presence"], json!("online"));
    drop(handset); // no DISCONNECT packet: the broker publishes the will
    eventually(WAIT, "u000 to be offline", || async {
        let u = srv.unit("u000").await;
        (u["presence"] == json!("offline")).then_some(u)
    })
    .await;
    srv.stop().await;
}

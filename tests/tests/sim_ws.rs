//! Issue 7: simulated responders that receive their work orders on WebSocket and send their
//! receipts there. The server on free ports with a manual clock, a `fieldlink_sim::Crew` whose
//! order channel is the server's `/ws/handset` (positions stay on MQTT), a one-click dispatch.
//!
//! The server sends the order on both channels (MQTT is its path of record): the responder must
//! answer it once, and its receipts must go over the socket, not as MQTT acks. Also: a wrong
//! secret is refused at the upgrade, and `wss://` works against fieldlink serving HTTPS with
//! the development CA.

use std::sync::Arc;
use std::time::Duration;

use fieldlink_clock::{ManualClock, SystemClock};
use fieldlink_e2e::dispatch::manual_clock;
use fieldlink_e2e::{Options, TestServer, free_port};
use fieldlink_proto::UnitId;
use fieldlink_server::Config;
use fieldlink_server::config::ConfiguredUnit;
use fieldlink_sim::{
    Behaviour, Crew, CrewConfig, OrderChannel, SimError, UnitKind, WsHandset, WsHandsetConfig,
};
use fieldlink_tls::dev;
use serde_json::{Value, json};

/// Simulated time per step: the crew publishes a fix each step.
const STEP: Duration = Duration::from_secs(2);
/// Where the responder stands.
const START: (f64, f64) = (30.2741, 120.1551);
/// The incident, about 110 m north of it.
const SITE: (f64, f64) = (30.2751, 120.1551);

/// One responder on foot at [`START`], orders over the server's `/ws/handset`, accepting after
/// exactly 10 s.
async fn crew_on_websocket(srv: &TestServer, clock: &Arc<ManualClock>) -> Crew {
    let units: Vec<(UnitId, String)> = (srv.units.iter())
        .map(|u| (u.id.clone(), u.secret.clone()))
        .collect();
    let mut cfg = CrewConfig::new(srv.broker.clone(), srv.topics.clone(), units);
    cfg.clock = clock.clone();
    cfg.sealed = srv.sealed();
    cfg.seed = 7;
    cfg.behaviour = Behaviour {
        accept_delay: (Duration::from_secs(10), Duration::from_secs(10)),
        ..Behaviour::orders_only()
    };
    cfg.starts = Some(vec![START]);
    cfg.kinds = Some(vec![UnitKind::OnFoot]);
    cfg.fix_interval = STEP;
    cfg.orders = OrderChannel::websocket(srv.base.clone());
    Crew::connect(cfg).await.expect("the crew connects")
}

/// Steps (the clock moving `by` each time) until `check` gives a value, at most `limit` steps.
async fn step_until<T, F, Fut>(
    clock: &ManualClock,
    crew: &mut Crew,
    by: Duration,
    what: &str,
    mut check: F,
) -> T
where
    F: FnMut(&Crew) -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = check(crew).await {
            return v;
        }
        clock.advance(by);
        crew.step().await.expect("the crew steps");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 200 steps");
}

async fn order(srv: &TestServer, id: &str) -> Value {
    let (status, body) = srv
        .get(&format!("/api/v1/orders/{id}"), Some(&srv.viewer))
        .await;
    assert_eq!(status, 200, "{body}");
    body["order"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crew_on_websocket_gets_its_order_there_and_answers_it_once_over_the_socket() {
    let clock = manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 1,
            ..Options::default()
        },
        clock.clone(),
    )
    .await;
    let mut crew = crew_on_websocket(&srv, &clock).await;
    assert_eq!(crew.stats().ws_connected, 1, "{:?}", crew.stats());

    step_until(&clock, &mut crew, STEP, "the responder placed", |_| async {
        let unit = srv.unit("u000").await;
        (!unit["lat"].is_null() && unit["status"] == json!("available")).then_some(())
    })
    .await;

    let body = json!({
        "kind": "lost_person", "priority": "high", "lat": SITE.0, "lon": SITE.1,
        "description": "a child missing by the lake",
    });
    let (status, created) = srv.post("/api/v1/incidents", Some(&srv.admin), body).await;
    assert_eq!(status, 201, "{created}");
    let incident = created["incident"]["id"].as_str().expect("incident id");
    let path = format!("/api/v1/incidents/{incident}/dispatch");
    let (status, click) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!(status, 200, "{click}");
    assert_eq!(click["orders"][0]["unit"], json!("u000"), "{click}");
    let id = click["orders"][0]["id"]
        .as_str()
        .expect("order id")
        .to_owned();

    // Steps without moving the clock until the socket's copy is in: the receipt `delivered` is
    // committed (the socket's `result` comes after the commit) before the server's first re-send
    // is due, so exactly one delivery of the order exists per channel.
    step_until(
        &clock,
        &mut crew,
        Duration::ZERO,
        "the order over WebSocket",
        |c| {
            let got = c.stats().ws_downlinks >= 1;
            async move { got.then_some(()) }
        },
    )
    .await;
    assert_eq!(order(&srv, &id).await["state"], json!("delivered"));

    let accepted = step_until(&clock, &mut crew, STEP, "the order accepted", |_| async {
        let o = order(&srv, &id).await;
        (!o["accepted_at"].is_null()).then_some(o)
    })
    .await;
    let receipts: Vec<&str> = (accepted["receipts"].as_array().expect("receipts").iter())
        .filter_map(Value::as_str)
        .collect();
    assert!(receipts.contains(&"accepted"), "{accepted}");
    assert!(
        ["accepted", "en_route"].contains(&accepted["state"].as_str().unwrap_or_default()),
        "{accepted}"
    );

    // One order, seen twice (MQTT and WebSocket), answered once: delivered, accepted, en route.
    let stats = crew.stats();
    assert_eq!(stats.orders_received, 1, "{stats:?}");
    assert_eq!(stats.downlinks, 2, "one copy per channel: {stats:?}");
    assert_eq!(stats.duplicates, 1, "{stats:?}");
    assert_eq!(stats.receipts_sent, 3, "{stats:?}");
    assert_eq!(stats.errors, 0, "{stats:?}");
    // The receipts took the socket: no MQTT ack ever reached the server, while fixes did.
    assert_eq!(
        srv.metric("fieldlink_mqtt_messages_total{kind=\"ack\"}")
            .await,
        0.0
    );
    assert!(
        srv.metric("fieldlink_mqtt_messages_total{kind=\"gps\"}")
            .await
            > 0.0
    );
    assert!(srv.metric("fieldlink_ws_orders_delivered_total").await >= 1.0);

    // The cancel comes over both channels too: the job ends once, the copy is dropped.
    let path = format!("/api/v1/orders/{id}/cancel");
    let body = json!({ "reason": "found at home" });
    let (status, cancelled) = srv.post(&path, Some(&srv.admin), body).await;
    assert_eq!(status, 200, "{cancelled}");
    step_until(
        &clock,
        &mut crew,
        STEP,
        "the cancel over both channels",
        |c| {
            let s = c.stats();
            let done = s.withdrawn == 1 && s.duplicates == 2;
            async move { done.then_some(()) }
        },
    )
    .await;
    let stats = crew.stats();
    assert_eq!(stats.withdrawn, 1, "{stats:?}");
    assert_eq!(
        stats.receipts_sent, 3,
        "nothing to answer to a cancel: {stats:?}"
    );
    assert_eq!(stats.errors, 0, "{stats:?}");

    crew.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handset_with_a_wrong_secret_is_refused_at_the_upgrade() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Options::default()
    })
    .await;
    let unit = srv.units[0].id.clone();
    let cfg = WsHandsetConfig::new(srv.base.clone(), unit, "not-the-secret");
    match WsHandset::connect(cfg).await {
        Err(SimError::WsConnect { reason, url, .. }) => {
            assert!(reason.contains("401"), "{reason}");
            assert!(url.ends_with("/ws/handset"), "{url}");
        }
        other => panic!("a wrong secret got in: {other:?}"),
    }
    let u = &srv.units[0];
    let ws = WsHandset::connect(WsHandsetConfig::new(
        srv.base.clone(),
        u.id.clone(),
        &u.secret,
    ))
    .await
    .expect("the right secret gets in");
    assert!(ws.is_connected());
    ws.close().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_works_with_the_servers_ca_and_not_with_another() {
    let dir = tempfile::tempdir().expect("dir");
    let hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certs = dev::generate(&dir.path().join("certs"), &hosts, 30).expect("certs");
    let other = dev::generate(&dir.path().join("other"), &hosts, 30).expect("other certs");
    let mut config = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.http.tls = true;
    config.tls.cert = certs.server_cert.clone();
    config.tls.key = certs.server_key.clone();
    config.mqtt.listen = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let (unit, secret) = (UnitId::new("wss-unit").expect("id"), "secret-of-wss-unit");
    config.units = vec![ConfiguredUnit {
        id: unit.to_string(),
        secret: secret.to_owned(),
        name: String::new(),
        unit_type: "on_foot".into(),
        skills: vec![],
    }];
    config.validate().expect("the TLS config is valid");
    let server = fieldlink_server::start(config, Arc::new(SystemClock))
        .await
        .expect("fieldlink starts with HTTPS");
    let base = format!("https://localhost:{}", server.http_addr().port());

    let mut cfg = WsHandsetConfig::new(base, unit, secret);
    cfg.ca_file = Some(other.ca.clone());
    match WsHandset::connect(cfg.clone()).await {
        Err(SimError::WsConnect { reason, .. }) => assert!(reason.contains("TLS"), "{reason}"),
        other => panic!("a server the handset does not trust got its secret: {other:?}"),
    }
    cfg.ca_file = Some(certs.ca.clone());
    let ws = WsHandset::connect(cfg)
        .await
        .expect("wss with the server's CA");
    assert!(ws.url().starts_with("wss://localhost:"), "{}", ws.url());
    assert!(ws.is_connected());
    ws.close().await;
    server.shutdown(Duration::from_secs(5)).await;
}

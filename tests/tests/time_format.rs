//! One time format: every time in the HTTP API's JSON and in the WebSocket protocol (JSON and
//! protobuf frames) is RFC 3339 with milliseconds and `Z`; epoch milliseconds appear only in
//! fields named `..._ms`. Checked on real answers of each resource kind of a real server.

use std::time::Duration;

use fieldlink_clock::Timestamp;
use fieldlink_e2e::dispatch::{SITE, WAIT, manual_clock, one_click, place};
use fieldlink_e2e::ws::WsClient;
use fieldlink_e2e::{Options, TestServer, eventually, fix};
use fieldlink_proto::UplinkKind;
use fieldlink_proto::v1;
use fieldlink_push::wire::pb;
use fieldlink_sim::QoS;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Is `s` an RFC 3339 time with milliseconds and `Z` (`2026-11-29T20:00:00.000Z`)?
fn is_api_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && Timestamp::parse_rfc3339(s).is_some()
}

/// Keys that hold an instant.
fn is_time_key(key: &str) -> bool {
    key.ends_with("_at") || ["at", "fix_time", "last_seen", "start", "end"].contains(&key)
}

/// Checks every time in `v` (`what` names the answer) and returns how many it saw: a time key
/// holds null or an API time, and no integer that looks like epoch milliseconds hides under a
/// name without `_ms`.
fn times(what: &str, key: &str, v: &Value) -> usize {
    let mut seen = 0;
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                seen += times(what, k, v);
            }
        }
        Value::Array(items) => {
            for v in items {
                seen += times(what, key, v);
            }
        }
        Value::String(s) if is_time_key(key) => {
            assert!(is_api_time(s), "{what}: {key} = {s:?} is not an API time");
            seen += 1;
        }
        Value::Number(n) => {
            let epochish = n.as_i64().is_some_and(|n| n.abs() > 1_000_000_000_000);
            assert!(
                !(is_time_key(key) || epochish) || key.ends_with("_ms"),
                "{what}: {key} = {n} is a number; times are RFC 3339 strings"
            );
        }
        _ => {}
    }
    seen
}

/// `GET path` as the viewer; checks its times and that it has at least `min` of them.
async fn check(srv: &TestServer, path: &str, min: usize) -> Value {
    let (status, body) = srv.get(path, Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{path}: {body}");
    let n = times(path, "", &body);
    assert!(n >= min, "{path}: {n} times seen, wanted {min}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_resource_answers_rfc3339_times() {
    let clock = manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 2,
            ..Default::default()
        },
        clock.clone(),
    )
    .await;
    let mut room = WsClient::command_room(&srv, &srv.admin).await;
    room.next_of("hello", WAIT).await;
    room.send(json!({"type": "subscribe", "channels": ["incidents", "orders", "alarms", "positions", "ptt"]}))
        .await;
    room.next_of("snapshot", WAIT).await;

    // Incidents and orders.
    let (a, b) = (srv.handset(0).await, srv.handset(1).await);
    let body = json!({"kind": "dispute", "lat": SITE.0, "lon": SITE.1});
    let (status, created) = srv
        .post("/api/v1/incidents", Some(&srv.admin), body.clone())
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        times("POST /api/v1/incidents", "", &created) >= 1,
        "{created}"
    );
    let id = created["incident"]["id"].as_str().expect("id").to_owned();
    place(&srv, &clock, &a, &b, &id).await;
    let order = one_click(&srv, &id, "u000").await;
    let one = check(&srv, &format!("/api/v1/incidents/{id}"), 2).await;
    assert!(
        is_api_time(one["orders"][0]["created_at"].as_str().unwrap_or_default()),
        "{one}"
    );
    check(&srv, "/api/v1/incidents", 1).await;
    check(&srv, &format!("/api/v1/orders/{order}"), 1).await;

    // Alarms: with u000 busy and u001 sent elsewhere, a third incident finds no one.
    let (_, second) = srv
        .post("/api/v1/incidents", Some(&srv.admin), body.clone())
        .await;
    let second = second["incident"]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/incidents/{second}/dispatch");
    let (status, sent) = srv
        .post(&path, Some(&srv.admin), json!({"units": ["u001"]}))
        .await;
    assert_eq!(status, 200, "{sent}");
    let (_, third) = srv.post("/api/v1/incidents", Some(&srv.admin), body).await;
    let third = third["incident"]["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/incidents/{third}/dispatch");
    let (status, queued) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!((status, &queued["queued"]), (200, &json!(true)), "{queued}");
    let alarms = check(&srv, "/api/v1/alarms", 1).await;
    assert!(
        is_api_time(
            alarms["alarms"][0]["raised_at"]
                .as_str()
                .unwrap_or_default()
        ),
        "{alarms}"
    );

    // The SLA report.
    let report = check(&srv, "/api/v1/reports/sla", 0).await;
    for key in ["from", "to"] {
        let t = report[key].as_str().unwrap_or_default();
        assert!(is_api_time(t), "sla {key}: {report}");
    }

    // Talkgroups and their bursts: the admin's console takes and gives back the floor.
    let group = json!({"name": "Patrol", "units": ["u000"], "consoles": ["test admin"]});
    let (status, g) = srv
        .send(
            reqwest::Method::PUT,
            "/api/v1/talkgroups/tg1",
            Some(&srv.admin),
            Some(group),
        )
        .await;
    assert_eq!(status, 201, "{g}");
    let (status, floor) = srv
        .post("/api/v1/talkgroups/tg1/floor", Some(&srv.admin), json!({}))
        .await;
    assert_eq!(status, 200, "{floor}");
    times("POST floor", "", &floor);
    check(&srv, "/api/v1/talkgroups/tg1", 0).await;
    clock.advance(Duration::from_secs(2));
    let (status, released) = srv
        .post(
            "/api/v1/talkgroups/tg1/floor/release",
            Some(&srv.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{released}");
    let log = eventually(WAIT, "the burst in the log", || async {
        let (_, log) = srv
            .get("/api/v1/talkgroups/tg1/log", Some(&srv.viewer))
            .await;
        (log["bursts"].as_array().is_some_and(|b| !b.is_empty())).then_some(log)
    })
    .await;
    assert!(
        times("talkgroup log", "", &log) >= 2,
        "start and end: {log}"
    );

    // Streams: a handset's live stream.
    let started = v1::VideoMessage {
        id: a.new_id(),
        time_ms: clock_ms(&clock),
        unit: "u000".into(),
        stream_id: "cam-1".into(),
        event: Some(v1::video_message::Event::Started(v1::VideoStarted {
            info: Some(v1::StreamInfo {
                codec: "h264".into(),
                width: 1280,
                height: 720,
                ..Default::default()
            }),
            request_id: String::new(),
        })),
    };
    a.publish_uplink(UplinkKind::Video, &started, QoS::AtLeastOnce)
        .await
        .expect("video started");
    let streams = eventually(WAIT, "the stream listed", || async {
        let (_, s) = srv.get("/api/v1/streams", Some(&srv.viewer)).await;
        (s["streams"].as_array().is_some_and(|s| !s.is_empty())).then_some(s)
    })
    .await;
    assert!(times("streams", "", &streams) >= 1, "{streams}");

    // Zones and units.
    let grid = fieldlink_e2e::square_grid("g-time", SITE, 0.001, &["u000"]);
    let (status, feature) = srv.post("/api/v1/grids", Some(&srv.admin), grid).await;
    assert_eq!(status, 201, "{feature}");
    assert!(
        times("POST grid", "", &feature) >= 2,
        "created_at, updated_at: {feature}"
    );
    check(&srv, "/api/v1/grids", 2).await;
    check(&srv, "/api/v1/units/u000", 2).await;
    let track = check(&srv, "/api/v1/units/u000/track", 0).await;
    for key in ["from", "to"] {
        assert!(
            is_api_time(track[key].as_str().unwrap_or_default()),
            "track {key}: {track}"
        );
    }

    // The WebSocket events of all that, and a positions batch.
    let mut kinds = Vec::new();
    let mut positions = false;
    while !(positions && kinds.iter().any(|k| k == "alarm.raised")) {
        let m = room.next(WAIT).await.expect("a message on /ws");
        let what = format!("/ws {}", m["type"]);
        times(&what, "", &m);
        match m["type"].as_str() {
            Some("event") => {
                assert!(is_api_time(m["at"].as_str().unwrap_or_default()), "{m}");
                assert!(m["at_ms"].is_i64(), "the explicit extra: {m}");
                kinds.push(m["kind"].as_str().unwrap_or_default().to_owned());
            }
            Some("positions") => {
                assert!(is_api_time(m["at"].as_str().unwrap_or_default()), "{m}");
                assert!(
                    is_api_time(m["units"][0]["at"].as_str().unwrap_or_default()),
                    "{m}"
                );
                positions = true;
            }
            _ => {}
        }
    }
    assert!(kinds.iter().any(|k| k == "incident.created"), "{kinds:?}");
    room.close().await;
    srv.stop().await;
}

fn clock_ms(clock: &fieldlink_clock::ManualClock) -> i64 {
    fieldlink_clock::Clock::now(clock).as_millis()
}

/// The next protobuf server message of the session.
async fn next_pb(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> pb::server_message::Msg {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("no socket error");
        if let Message::Binary(bytes) = msg {
            let m: pb::ServerMessage = prost::Message::decode(bytes.as_ref()).expect("protobuf");
            return m.msg.expect("a message");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn protobuf_frames_carry_rfc3339_times() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let url = format!("ws://{}/ws", srv.server.http_addr());
    let mut req = url.into_client_request().expect("request");
    let headers = req.headers_mut();
    let bearer = HeaderValue::from_str(&format!("Bearer {}", srv.admin)).expect("header");
    headers.insert("authorization", bearer);
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("fieldlink.v1.proto"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connects");
    assert!(matches!(
        next_pb(&mut ws).await,
        pb::server_message::Msg::Hello(_)
    ));
    let subscribe = pb::ClientMessage {
        msg: Some(pb::client_message::Msg::Subscribe(pb::Subscribe {
            channels: vec!["incidents".into(), "positions".into()],
            ..Default::default()
        })),
    };
    let bytes = prost::Message::encode_to_vec(&subscribe);
    ws.send(Message::binary(bytes)).await.expect("subscribe");
    assert!(matches!(
        next_pb(&mut ws).await,
        pb::server_message::Msg::Snapshot(_)
    ));

    let body = json!({"kind": "fire", "lat": SITE.0, "lon": SITE.1});
    let (status, created) = srv.post("/api/v1/incidents", Some(&srv.admin), body).await;
    assert_eq!(status, 201, "{created}");
    let handset = srv.handset(0).await;
    let now = fieldlink_e2e::now_ms();
    handset
        .publish_fix_qos1(fix(SITE.0, SITE.1, now))
        .await
        .expect("fix");

    let (mut event, mut batch) = (None, None);
    while event.is_none() || batch.is_none() {
        match next_pb(&mut ws).await {
            pb::server_message::Msg::Event(e) if e.kind == "incident.created" => event = Some(e),
            pb::server_message::Msg::Positions(p) => batch = Some(p),
            _ => {}
        }
    }
    let (event, batch) = (event.expect("event"), batch.expect("positions"));
    assert!(is_api_time(&event.at), "{event:?}");
    assert_eq!(
        Timestamp::parse_rfc3339(&event.at).map(Timestamp::as_millis),
        Some(event.at_ms)
    );
    let data: Value = serde_json::from_str(&event.data_json).expect("data is JSON");
    assert!(times("protobuf event data", "", &data) >= 1, "{data}");
    assert!(is_api_time(&batch.at), "{batch:?}");
    let unit = &batch.units[0];
    assert!(is_api_time(&unit.at), "{batch:?}");
    assert_eq!(
        Timestamp::parse_rfc3339(&unit.at).map(Timestamp::as_millis),
        Some(now)
    );
    srv.stop().await;
}

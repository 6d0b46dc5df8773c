//! The WebSocket push end to end: the real server, real MQTT handsets placing themselves, and
//! real WebSocket clients (tokio-tungstenite) for the command room and the handsets.

use std::time::{Duration, Instant};

use fieldlink_e2e::dispatch::{SITE, WAIT, manual_clock, one_click, place};
use fieldlink_e2e::ws::WsClient;
use fieldlink_e2e::{Options, TestServer};
use fieldlink_push::PushConfig;
use serde_json::{Value, json};

async fn create(srv: &TestServer, description: &str) -> String {
    let body = json!({
        "kind": "lost_person", "priority": "high", "lat": SITE.0, "lon": SITE.1,
        "description": description,
    });
    let (status, v) = srv.post("/api/v1/incidents", Some(&srv.admin), body).await;
    assert_eq!(status, 201, "{v}");
    v["incident"]["id"]
        .as_str()
        .expect("incident id")
        .to_owned()
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().filter_map(|e| e["seq"].as_i64()).collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    (events.iter())
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

async fn subscribe(ws: &mut WsClient, resume_from: Option<i64>) {
    let mut msg = json!({
        "type": "subscribe",
        "channels": ["incidents", "orders", "alarms", "presence"],
    });
    if let Some(seq) = resume_from {
        msg["resume_from"] = json!(seq);
    }
    ws.send(msg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn command_room_sees_a_dispatch_and_gets_exactly_what_it_missed() {
    let clock = manual_clock();
    let opts = Options {
        units: 2,
        ..Default::default()
    };
    let srv = TestServer::start_with_clock(opts, clock.clone()).await;
    let (a, b) = (srv.handset(0).await, srv.handset(1).await);
    let first = create(&srv, "a child lost near the school gate").await;
    place(&srv, &clock, &a, &b, &first).await;

    let mut room = WsClient::command_room(&srv, &srv.viewer).await;
    let hello = room.next_of("hello", WAIT).await;
    assert_eq!(hello["role"], json!("viewer"), "{hello}");
    subscribe(&mut room, None).await;
    let snapshot = room.next_of("snapshot", WAIT).await;
    let incidents = snapshot["items"]["incidents"]
        .as_array()
        .expect("incidents");
    assert!(
        incidents.iter().any(|i| i["id"] == json!(first)),
        "{snapshot}"
    );
    let snapshot_seq = snapshot["seq"].as_i64().expect("seq");

    // A dispatch, seen within the same test, in order and after the snapshot.
    let order = one_click(&srv, &first, "u000").await;
    let seen = room.events_until("order.dispatched", WAIT).await;
    assert_eq!(
        kinds(&seen),
        ["order.created", "order.dispatched"],
        "{seen:?}"
    );
    assert_eq!(seen[1]["subject"], json!(order));
    let s = seqs(&seen);
    assert!(s[0] > snapshot_seq && s[0] < s[1], "{s:?}");
    let status = room.events_until("responder.status", WAIT).await;
    assert_eq!(
        status.last().expect("event")["data"]["to"],
        json!("committed")
    );
    let last_seen = status.last().and_then(|e| e["seq"].as_i64()).expect("seq");
    room.close().await;

    // While the room is away: another incident, and the first order cancelled.
    let second = create(&srv, "water over the kerb on Zhongshan Road").await;
    let cancel = json!({ "reason": "the child was found by his mother" });
    let path = format!("/api/v1/orders/{order}/cancel");
    let (st, body) = srv.post(&path, Some(&srv.admin), cancel).await;
    assert_eq!(st, 200, "{body}");
    let missed = (srv.server.state().store)
        .journal_since(last_seen, 1000)
        .await
        .expect("journal");
    assert!(missed.len() >= 3, "{missed:?}");

    let mut room = WsClient::command_room(&srv, &srv.viewer).await;
    subscribe(&mut room, Some(last_seen)).await;
    let mut got = Vec::new();
    while got.len() < missed.len() {
        got.push(room.next_of("event", WAIT).await);
    }
    let want: Vec<i64> = missed.iter().map(|e| e.seq).collect();
    assert_eq!(seqs(&got), want, "exactly the missed events, in order");
    assert!((got.iter()).any(|e| e["kind"] == "incident.created" && e["subject"] == json!(second)));
    assert!(
        room.next(Duration::from_millis(500))
            .await
            .is_none_or(|m| m["type"] != "event"),
        "no duplicate after the replay"
    );

    // Live again after the replay.
    let third = create(&srv, "a dispute in the market").await;
    let live = room.next_of("event", WAIT).await;
    assert_eq!(
        (live["kind"].as_str(), live["subject"].as_str()),
        (Some("incident.created"), Some(third.as_str()))
    );
    assert!(live["seq"].as_i64() > want.last().copied());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handsets_get_orders_on_the_socket_and_their_receipts_end_the_resending() {
    let clock = manual_clock();
    let opts = Options {
        units: 2,
        ..Default::default()
    };
    let srv = TestServer::start_with_clock(opts, clock.clone()).await;
    let (a, b) = (srv.handset(0).await, srv.handset(1).await);
    let first = create(&srv, "an old man fell on the stairs").await;
    place(&srv, &clock, &a, &b, &first).await;

    // u000 holds no WebSocket when its order is sent: it gets it when it connects.
    let order = one_click(&srv, &first, "u000").await;
    let mut ws_a = WsClient::handset(&srv, 0).await;
    let pushed = ws_a.next_of("order", WAIT).await;
    assert_eq!(
        pushed["data"]["order"]["order_id"],
        json!(order),
        "{pushed}"
    );

    // u001 is connected when its order is sent: it arrives at once.
    let mut ws_b = WsClient::handset(&srv, 1).await;
    ws_b.next_of("hello", WAIT).await;
    let second = create(&srv, "smoke from a kitchen window").await;
    let t = Instant::now();
    let order_b = one_click(&srv, &second, "u001").await;
    let pushed = ws_b.next_of("order", WAIT).await;
    assert_eq!(pushed["data"]["order"]["order_id"], json!(order_b));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // A responder cannot answer for another unit's order.
    ws_b.send(json!({"type": "receipt", "id": "r0", "order_id": order, "state": "accepted"}))
        .await;
    let refused = ws_b.next_of("error", WAIT).await;
    assert_eq!(refused["code"], json!("wrong_unit"), "{refused}");

    // A receipt over the WebSocket is recorded and ends the re-sending.
    ws_a.send(json!({"type": "receipt", "id": "r1", "order_id": order, "state": "delivered"}))
        .await;
    let answer = ws_a.next_of("result", WAIT).await;
    assert_eq!(answer["id"], json!("r1"), "{answer}");
    let path = format!("/api/v1/orders/{order}");
    let (_, before) = srv.get(&path, Some(&srv.viewer)).await;
    assert_eq!(before["order"]["state"], json!("delivered"), "{before}");
    let resends = before["order"]["resends"].clone();
    clock.advance(Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, after) = srv.get(&path, Some(&srv.viewer)).await;
    assert_eq!(
        after["order"]["resends"], resends,
        "no re-send after the receipt"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_roles_origin_tickets_and_oversize_messages() {
    let push = PushConfig {
        allowed_origins: vec!["https://command.example.org".to_owned()],
        auth_timeout_ms: 300,
        ..PushConfig::default()
    };
    let opts = Options {
        units: 1,
        push: Some(push),
        ..Default::default()
    };
    let srv = TestServer::start(opts).await;

    // A viewer may watch but not command.
    let mut viewer = WsClient::command_room(&srv, &srv.viewer).await;
    viewer
        .send(json!({"type": "command", "id": "c1", "op": "dispatch", "args": {"incident": "x"}}))
        .await;
    let refused = viewer.next_of("error", WAIT).await;
    assert_eq!(
        (refused["id"].as_str(), refused["code"].as_str()),
        (Some("c1"), Some("forbidden"))
    );

    // A dispatcher's command runs through the same code as the HTTP API.
    let mut admin = WsClient::command_room(&srv, &srv.admin).await;
    let args = json!({"kind": "flooding", "lat": SITE.0, "lon": SITE.1, "description": "underpass flooded"});
    admin
        .send(json!({"type": "command", "id": "c2", "op": "create_incident", "args": args}))
        .await;
    let done = admin.next_of("result", WAIT).await;
    assert_eq!(done["id"], json!("c2"));
    let id = done["data"]["incident"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (st, _) = srv
        .get(&format!("/api/v1/incidents/{id}"), Some(&srv.viewer))
        .await;
    assert_eq!(st, 200);
    admin
        .send(json!({"type": "command", "id": "c3", "op": "close", "args": {"incident": "nope"}}))
        .await;
    let unknown = admin.next_of("error", WAIT).await;
    assert_eq!(unknown["code"], json!("unknown_incident"), "{unknown}");

    // Origins: a browser from another site is refused before the upgrade.
    let evil = WsClient::connect(&srv, "/ws", Some(&srv.viewer), Some("https://evil.example"))
        .await
        .expect_err("a foreign origin is refused");
    assert_eq!(evil.status, 403, "{}", evil.body);
    let ok = WsClient::connect(
        &srv,
        "/ws",
        Some(&srv.viewer),
        Some("https://command.example.org"),
    )
    .await;
    assert!(ok.is_ok(), "the configured origin is allowed");

    // Tickets, for browsers: single use.
    let (st, t) = srv
        .post("/api/v1/ws-ticket", Some(&srv.viewer), json!({}))
        .await;
    assert_eq!(st, 200, "{t}");
    let path = format!("/ws?ticket={}", t["ticket"].as_str().expect("ticket"));
    let mut by_ticket = WsClient::connect(&srv, &path, None, None)
        .await
        .expect("a ticket opens a socket");
    assert_eq!(
        by_ticket.next_of("hello", WAIT).await["role"],
        json!("viewer")
    );
    let again = WsClient::connect(&srv, &path, None, None)
        .await
        .expect_err("a ticket works once");
    assert_eq!(again.status, 401);

    // Wrong credentials, and none at all.
    let wrong = WsClient::connect(&srv, "/ws", Some("not-a-token"), None)
        .await
        .expect_err("a wrong token is refused");
    assert_eq!(wrong.status, 401);
    let mut silent = WsClient::connect(&srv, "/ws", None, None)
        .await
        .expect("upgraded, waiting for auth");
    assert_eq!(silent.close_code(WAIT).await, Some(4001));

    // A handset credential belongs on /ws/handset only.
    let u = &srv.units[0];
    let unit_token = format!("{}:{}", u.id, u.secret);
    let misplaced = WsClient::connect(&srv, "/ws", Some(&unit_token), None)
        .await
        .expect_err("a handset on the command-room endpoint is refused");
    assert_eq!(misplaced.status, 403);

    // An oversize message closes the socket with 1009.
    let big = "x".repeat(PushConfig::default().max_message_bytes + 1);
    let _ = admin.send_text(big).await;
    assert_eq!(admin.close_code(WAIT).await, Some(1009));
    let closed = srv
        .metric("fieldlink_ws_closed_total{reason=\"too_big\"}")
        .await;
    assert_eq!(closed, 1.0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_client_is_closed_and_the_others_keep_their_pace() {
    let push = PushConfig {
        outbound_queue: 16,
        write_buffer_bytes: 4 * 1024,
        max_write_buffer_bytes: 96 * 1024,
        ..PushConfig::default()
    };
    let opts = Options {
        units: 1,
        push: Some(push),
        ..Default::default()
    };
    let srv = TestServer::start(opts).await;
    let mut stalled = WsClient::stalled_command_room(&srv, &srv.viewer).await;
    subscribe(&mut stalled, None).await;
    let mut fast = WsClient::command_room(&srv, &srv.viewer).await;
    subscribe(&mut fast, None).await;
    fast.next_of("snapshot", WAIT).await;

    // The stalled client never reads again; the fast one measures each event's delay. Socket
    // and write buffers absorb a few hundred kB before the stalled client's queue fills.
    let mut worst = Duration::ZERO;
    let mut created = 0;
    let too_slow = "fieldlink_ws_closed_total{reason=\"too_slow\"}";
    while srv.metric(too_slow).await < 1.0 {
        assert!(created < 3000, "the stalled client was never closed");
        for _ in 0..20 {
            let description = format!("incident {created}: {}", "details ".repeat(375));
            let t = Instant::now();
            let id = create(&srv, &description).await;
            let e = fast.next_of("event", WAIT).await;
            assert_eq!(e["subject"], json!(id));
            worst = worst.max(t.elapsed());
            created += 1;
        }
    }
    assert!(
        worst < Duration::from_secs(2),
        "the fast client's worst create→event delay: {worst:?} over {created} incidents"
    );
    // Reading again, it finds what was queued, then the 4008 close.
    assert_eq!(
        stalled.close_code(Duration::from_secs(30)).await,
        Some(4008)
    );
    assert_eq!(srv.metric(too_slow).await, 1.0);
    srv.stop().await;
}

//! The hub over real sockets: an axum server on 127.0.0.1:0 with the hub's upgrade, and
//! tokio-tungstenite clients, against an in-test backend that holds the journal in a Vec.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use fieldlink_clock::{ManualClock, Timestamp};
use fieldlink_push::{
    Backend, BackendError, BoxFuture, Channel, ClientMessage, Command, CommandError, Endpoint,
    Filter, HandsetMessage, Hub, JournalEvent, PositionUpdate, Principal, PushConfig, Role,
    ServerMessage, Snapshot, upgrade, wire,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

type Client = WebSocketStream<TcpStream>;

#[derive(Debug, Default)]
struct TestBackend {
    journal: Mutex<Vec<JournalEvent>>,
    /// Events before this seq were dropped by "retention".
    oldest: AtomicI64,
    /// Delay of each `journal_since` call, in ms, so that a test can publish during a replay.
    replay_delay_ms: AtomicU64,
    journal_calls: AtomicU64,
    orders: Mutex<HashMap<String, Vec<Value>>>,
    commands: Mutex<Vec<Command>>,
    inputs: Mutex<Vec<(String, HandsetMessage)>>,
    /// When set, the items of every snapshot.
    snapshot_items: Mutex<Option<Value>>,
}

impl Backend for TestBackend {
    fn authenticate_token<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Principal>> {
        Box::pin(async move {
            let role = match token {
                "admin-token" => Role::Admin,
                "dispatcher-token" => Role::Dispatcher,
                "viewer-token" => Role::Viewer,
                t => Role::Responder {
                    unit: t.strip_prefix("unit-")?.to_owned(),
                },
            };
            Some(Principal {
                name: token.to_owned(),
                role,
            })
        })
    }

    fn snapshot<'a>(
        &'a self,
        _principal: &'a Principal,
        channels: &'a [Channel],
        _filter: &'a Filter,
    ) -> BoxFuture<'a, Result<Snapshot, BackendError>> {
        Box::pin(async move {
            let journal = self.journal.lock().expect("lock");
            let items = self.snapshot_items.lock().expect("lock").clone();
            Ok(Snapshot {
                seq: journal.last().map_or(0, |e| e.seq),
                items: items
                    .unwrap_or_else(|| json!({"channels": channels, "events": journal.len()})),
            })
        })
    }

    fn journal_since(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<JournalEvent>, BackendError>> {
        Box::pin(async move {
            self.journal_calls.fetch_add(1, Ordering::SeqCst);
            let delay = self.replay_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let oldest = self.oldest.load(Ordering::SeqCst);
            if after_seq + 1 < oldest {
                return Err(BackendError::Gap { oldest });
            }
            let journal = self.journal.lock().expect("lock");
            if after_seq > journal.last().map_or(0, |e| e.seq) {
                // A client from before a journal reset.
                return Err(BackendError::Gap { oldest });
            }
            Ok(journal
                .iter()
                .filter(|e| e.seq > after_seq)
                .take(limit as usize)
                .cloned()
                .collect())
        })
    }

    fn command<'a>(
        &'a self,
        _principal: &'a Principal,
        command: Command,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move {
            if command.op == "explode" {
                return Err(CommandError::new("invalid", "no such op"));
            }
            let op = command.op.clone();
            self.commands.lock().expect("lock").push(command);
            Ok(json!({"done": op}))
        })
    }

    fn handset_input<'a>(
        &'a self,
        unit: &'a str,
        message: HandsetMessage,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move {
            self.inputs
                .lock()
                .expect("lock")
                .push((unit.to_owned(), message));
            Ok(json!({"recorded": true}))
        })
    }

    fn open_orders_for<'a>(&'a self, unit: &'a str) -> BoxFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.orders
                .lock()
                .expect("lock")
                .get(unit)
                .cloned()
                .unwrap_or_default()
        })
    }
}

struct Harness {
    hub: Arc<Hub>,
    backend: Arc<TestBackend>,
    clock: ManualClock,
    addr: SocketAddr,
}

fn test_config() -> PushConfig {
    PushConfig {
        position_tick_ms: 50,
        ping_interval_ms: 1000,
        idle_timeout_ms: 10_000,
        auth_timeout_ms: 300,
        close_grace_ms: 2000,
        allowed_origins: vec!["https://room.example".into()],
        ..PushConfig::default()
    }
}

async fn start(config: PushConfig) -> Harness {
    let backend = Arc::new(TestBackend::default());
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let hub = Hub::new(config, backend.clone(), Arc::new(clock.clone()));
    let room = hub.clone();
    let handset = hub.clone();
    let app = Router::new()
        .route(
            "/ws",
            any(move |req: Request| upgrade(room.clone(), Endpoint::CommandRoom, req)),
        )
        .route(
            "/ws/handset",
            any(move |req: Request| upgrade(handset.clone(), Endpoint::Handset, req)),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Harness {
        hub,
        backend,
        clock,
        addr,
    }
}

impl Harness {
    /// Appends an event to the journal and hands it to the hub, as the server does after a commit.
    fn publish(
        &self,
        channel: Channel,
        unit: Option<&str>,
        lat_lon: Option<(f64, f64)>,
        data: Value,
    ) -> i64 {
        let mut journal = self.backend.journal.lock().expect("lock");
        let seq = journal.last().map_or(1, |e| e.seq + 1);
        let event = JournalEvent {
            seq,
            at_ms: 1_000_000 + seq,
            channel,
            kind: "test".into(),
            subject: format!("s{seq}"),
            actor: "system".into(),
            unit: unit.map(str::to_owned),
            lat_lon,
            grid: None,
            data,
        };
        journal.push(event.clone());
        self.hub.journal(event);
        seq
    }

    async fn connect(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, tungstenite::Error> {
        self.connect_with(path, headers, None).await
    }

    async fn connect_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> Result<Client, tungstenite::Error> {
        let mut req = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("request");
        for (name, value) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("recv buffer");
        }
        let stream = socket.connect(self.addr).await.expect("connect");
        let (ws, _response) = tokio_tungstenite::client_async(req, stream).await?;
        Ok(ws)
    }

    async fn admin(&self) -> Client {
        let mut ws = self
            .connect("/ws", &[("authorization", "Bearer admin-token")])
            .await
            .expect("connect");
        let hello = recv(&mut ws).await;
        assert_eq!(hello["type"], "hello");
        ws
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// The next JSON message, skipping pings.
async fn recv(ws: &mut Client) -> Value {
    loop {
        let msg = timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for a message")
            .expect("stream ended")
            .expect("socket error");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("json"),
            Message::Binary(b) => {
                let pb: wire::pb::ServerMessage =
                    prost::Message::decode(b.as_ref()).expect("proto");
                let msg = wire::server_from_proto(pb).expect("from proto");
                return serde_json::to_value(msg).expect("json");
            }
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// The close frame's code and reason, skipping everything before it.
async fn expect_close(ws: &mut Client) -> (u16, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("timed out waiting for close");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned());
            }
            Some(Ok(Message::Close(None))) => return (1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error before close: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

async fn send(ws: &mut Client, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

fn http_status(err: tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// Receives messages until an event with `seq`, returning the seqs of all events received.
async fn events_until(ws: &mut Client, last: i64) -> Vec<i64> {
    let mut seqs = Vec::new();
    loop {
        let msg = recv(ws).await;
        if msg["type"] == "event" {
            let seq = msg["seq"].as_i64().expect("seq");
            seqs.push(seq);
            if seq >= last {
                return seqs;
            }
        }
    }
}

#[tokio::test]
async fn auth_by_header() {
    let h = start(test_config()).await;
    let mut ws = h
        .connect("/ws", &[("authorization", "Bearer dispatcher-token")])
        .await
        .expect("connect");
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["role"], "dispatcher");
    assert_eq!(hello["protocol"], "fieldlink.v1.json");
    assert_eq!(hello["limits"]["max_message_bytes"], 65536);
    let err = h
        .connect("/ws", &[("authorization", "Bearer nope")])
        .await
        .expect_err("bad token");
    assert_eq!(http_status(err), 401);
}

#[tokio::test]
async fn auth_by_ticket_is_single_use() {
    let h = start(test_config()).await;
    let viewer = Principal {
        name: "vera".into(),
        role: Role::Viewer,
    };
    let ticket = h.hub.tickets().issue(viewer, h.clock.now_for_test());
    let path = format!("/ws?ticket={ticket}");
    let mut ws = h.connect(&path, &[]).await.expect("first use");
    let hello = recv(&mut ws).await;
    assert_eq!(hello["name"], "vera");
    let err = h.connect(&path, &[]).await.expect_err("second use");
    assert_eq!(http_status(err), 401);
}

trait NowForTest {
    fn now_for_test(&self) -> Timestamp;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> Timestamp {
        fieldlink_clock::Clock::now(self)
    }
}

#[tokio::test]
async fn auth_by_first_message_and_missing_auth_closes_4001() {
    let h = start(test_config()).await;
    let mut ws = h.connect("/ws", &[]).await.expect("connect");
    send(&mut ws, json!({"type": "auth", "token": "viewer-token"})).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["role"], "viewer");

    let mut silent = h.connect("/ws", &[]).await.expect("connect");
    let (code, reason) = expect_close(&mut silent).await;
    assert_eq!(code, 4001, "{reason}");

    let mut wrong = h.connect("/ws", &[]).await.expect("connect");
    send(
        &mut wrong,
        json!({"type": "subscribe", "channels": ["orders"]}),
    )
    .await;
    assert_eq!(expect_close(&mut wrong).await.0, 4001);
}

#[tokio::test]
async fn wrong_origin_is_refused_before_upgrade() {
    let h = start(test_config()).await;
    let err = h
        .connect(
            "/ws",
            &[
                ("origin", "https://evil.example"),
                ("authorization", "Bearer admin-token"),
            ],
        )
        .await
        .expect_err("foreign origin");
    assert_eq!(http_status(err), 403);
    let mut ws = h
        .connect(
            "/ws",
            &[
                ("origin", "https://room.example"),
                ("authorization", "Bearer admin-token"),
            ],
        )
        .await
        .expect("allowed origin");
    assert_eq!(recv(&mut ws).await["type"], "hello");
    assert_eq!(h.hub.stats().refused_origin, 1);
}

#[tokio::test]
async fn wrong_endpoint_for_the_role_is_refused() {
    let h = start(test_config()).await;
    let err = h
        .connect("/ws", &[("authorization", "Bearer unit-u1")])
        .await
        .expect_err("responder on /ws");
    assert_eq!(http_status(err), 403);
    let err = h
        .connect("/ws/handset", &[("authorization", "Bearer admin-token")])
        .await
        .expect_err("admin on /ws/handset");
    assert_eq!(http_status(err), 403);
}

#[tokio::test]
async fn commands_viewer_forbidden_admin_executes_malformed_reported() {
    let h = start(test_config()).await;
    let mut viewer = h
        .connect("/ws", &[("authorization", "Bearer viewer-token")])
        .await
        .expect("connect");
    recv(&mut viewer).await;
    send(
        &mut viewer,
        json!({"type": "command", "id": "c1", "op": "dispatch", "args": {}}),
    )
    .await;
    let err = recv(&mut viewer).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["id"], "c1");

    let mut admin = h.admin().await;
    send(
        &mut admin,
        json!({"type": "command", "id": "c2", "op": "create_incident", "args": {"x": 1}}),
    )
    .await;
    let result = recv(&mut admin).await;
    assert_eq!(
        result,
        json!({"type": "result", "id": "c2", "data": {"done": "create_incident"}})
    );
    send(
        &mut admin,
        json!({"type": "command", "id": "c3", "op": "explode"}),
    )
    .await;
    let err = recv(&mut admin).await;
    assert_eq!(err["code"], "invalid");
    assert_eq!(err["id"], "c3");
    assert_eq!(h.backend.commands.lock().expect("lock").len(), 1);

    admin.send(Message::text("{not json")).await.expect("send");
    let err = recv(&mut admin).await;
    assert_eq!(err["code"], "bad_message");
    assert_eq!(h.hub.stats().malformed, 1);
}

#[tokio::test]
async fn subscribe_gets_snapshot_then_live_events() {
    let h = start(test_config()).await;
    for _ in 0..3 {
        h.publish(Channel::Orders, None, None, json!({}));
    }
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders"]}),
    )
    .await;
    let snapshot = recv(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"], 3);
    assert_eq!(snapshot["channels"], json!(["orders"]));
    h.publish(Channel::Alarms, None, None, json!({})); // not subscribed
    h.publish(Channel::Orders, None, None, json!({"n": 5}));
    let event = recv(&mut ws).await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["seq"], 5);
    assert_eq!(event["channel"], "orders");
    assert_eq!(event["data"], json!({"n": 5}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_sends_exactly_the_missed_events_even_during_concurrent_publication() {
    let config = PushConfig {
        resume_page: 3,
        ..test_config()
    };
    let h = Arc::new(start(config).await);
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders", "incidents"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["seq"], 0);
    for _ in 0..3 {
        h.publish(Channel::Orders, None, None, json!({}));
    }
    assert_eq!(events_until(&mut ws, 3).await, vec![1, 2, 3]);
    drop(ws);

    // While disconnected: 4..=10 (alarms at 6 are not subscribed).
    for i in 4..=10 {
        let channel = if i == 6 {
            Channel::Alarms
        } else {
            Channel::Incidents
        };
        h.publish(channel, None, None, json!({}));
    }
    h.backend.replay_delay_ms.store(20, Ordering::SeqCst);
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders", "incidents"], "resume_from": 3}),
    )
    .await;
    // Publish 11..=30 while the replay pages through the journal.
    let publisher = {
        let h = h.clone();
        tokio::spawn(async move {
            for _ in 11..=30 {
                h.publish(Channel::Orders, None, None, json!({}));
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    let seqs = events_until(&mut ws, 30).await;
    publisher.await.expect("publisher");
    let expected: Vec<i64> = (4..=30).filter(|s| *s != 6).collect();
    assert_eq!(seqs, expected);
    assert!(
        h.backend.journal_calls.load(Ordering::SeqCst) >= 3,
        "paged replay"
    );
    // Nothing more (no duplicates) arrives.
    h.publish(Channel::Orders, None, None, json!({}));
    assert_eq!(events_until(&mut ws, 31).await, vec![31]);
}

#[tokio::test]
async fn resume_older_than_the_journal_gets_snapshot_needed_then_a_snapshot() {
    let h = start(test_config()).await;
    for _ in 0..12 {
        h.publish(Channel::Orders, None, None, json!({}));
    }
    h.backend.oldest.store(10, Ordering::SeqCst);
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders"], "resume_from": 2}),
    )
    .await;
    let needed = recv(&mut ws).await;
    assert_eq!(
        needed,
        json!({"type": "snapshot_needed", "from": 2, "oldest": 10})
    );
    let snapshot = recv(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"], 12);
    h.publish(Channel::Orders, None, None, json!({}));
    assert_eq!(events_until(&mut ws, 13).await, vec![13]);
}

#[tokio::test]
async fn resume_beyond_the_limit_gets_snapshot_needed() {
    let config = PushConfig {
        resume_limit: 5,
        resume_page: 2,
        ..test_config()
    };
    let h = start(config).await;
    for _ in 0..20 {
        h.publish(Channel::Orders, None, None, json!({}));
    }
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders"], "resume_from": 1}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "snapshot_needed");
    assert_eq!(recv(&mut ws).await["seq"], 20);
}

fn position(unit: &str, lat: f64, lon: f64) -> PositionUpdate {
    PositionUpdate {
        unit: unit.into(),
        lat,
        lon,
        at: fieldlink_clock::Timestamp::from_millis(1_000_000),
        at_ms: 1_000_000,
        speed: None,
        heading: None,
        accuracy: None,
        status: None,
        grid: None,
    }
}

#[tokio::test]
async fn positions_are_coalesced_per_tick() {
    let config = PushConfig {
        position_tick_ms: 300,
        ..test_config()
    };
    let h = start(config).await;
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["positions"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "snapshot");
    for i in 0..10 {
        h.hub
            .position(position("u1", 39.0 + f64::from(i) * 0.001, 116.0));
    }
    let batch = recv(&mut ws).await;
    assert_eq!(batch["type"], "positions");
    let units = batch["units"].as_array().expect("units");
    assert_eq!(units.len(), 1);
    assert_eq!(units[0]["unit"], "u1");
    assert_eq!(units[0]["lat"], json!(39.0 + 9.0 * 0.001));
    // Nothing else follows: a second batch would need a new position.
    assert!(
        timeout(Duration::from_millis(700), recv(&mut ws))
            .await
            .is_err()
    );
    assert_eq!(h.hub.stats().batches_sent, 1);
}

#[tokio::test]
async fn one_units_updates_within_a_tick_reach_three_differently_filtered_sessions() {
    let config = PushConfig {
        position_tick_ms: 300,
        ..test_config()
    };
    let h = start(config).await;
    let filters = [
        json!({}),
        json!({"bbox": [116.0, 39.0, 117.0, 40.0], "coords": "gcj02"}),
        json!({"units": ["u2"]}),
    ];
    let mut sessions = Vec::new();
    for filter in filters {
        let mut ws = h.admin().await;
        send(
            &mut ws,
            json!({"type": "subscribe", "channels": ["positions"], "filter": filter}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["type"], "snapshot");
        sessions.push(ws);
    }
    for i in 0..10 {
        h.hub
            .position(position("u1", 39.0 + f64::from(i) * 0.001, 116.5));
    }
    h.hub.position(position("u2", 30.0, 116.5));
    let last_lat = 39.0 + 9.0 * 0.001;
    let (gcj_lat, gcj_lon) = fieldlink_location::wgs84_to_gcj02(last_lat, 116.5);

    let all = recv(&mut sessions[0]).await;
    assert_eq!(all["type"], "positions");
    let units = all["units"].as_array().expect("units");
    assert_eq!(units.len(), 2, "{all}");
    assert_eq!(units[0]["unit"], "u1");
    assert_eq!(units[0]["lat"], json!(last_lat));
    assert_eq!(units[0]["lon"], json!(116.5));
    assert_eq!(units[1]["unit"], "u2");

    let bbox = recv(&mut sessions[1]).await;
    let units = bbox["units"].as_array().expect("units");
    assert_eq!(units.len(), 1, "{bbox}");
    assert_eq!(units[0]["unit"], "u1");
    let got_lat = units[0]["lat"].as_f64().expect("lat");
    let got_lon = units[0]["lon"].as_f64().expect("lon");
    assert!((got_lat - gcj_lat).abs() < 1e-9 && (got_lon - gcj_lon).abs() < 1e-9);

    let only_u2 = recv(&mut sessions[2]).await;
    let units = only_u2["units"].as_array().expect("units");
    assert_eq!(units.len(), 1, "{only_u2}");
    assert_eq!(units[0]["unit"], "u2");
    assert_eq!(units[0]["lat"], json!(30.0));

    // One batch each, nothing more.
    for ws in &mut sessions {
        assert!(timeout(Duration::from_millis(500), recv(ws)).await.is_err());
    }
    assert_eq!(h.hub.stats().batches_sent, 3);
}

#[tokio::test]
async fn bbox_filter_applies_to_positions_and_events() {
    let h = start(test_config()).await;
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["positions", "alarms"],
               "filter": {"bbox": [116.0, 39.0, 117.0, 40.0]}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "snapshot");
    h.hub.position(position("outside", 30.0, 116.5));
    h.hub.position(position("inside", 39.5, 116.5));
    let batch = recv(&mut ws).await;
    assert_eq!(batch["units"].as_array().map(Vec::len), Some(1));
    assert_eq!(batch["units"][0]["unit"], "inside");
    h.publish(
        Channel::Alarms,
        Some("u1"),
        Some((30.0, 116.5)),
        json!({"where": "out"}),
    );
    h.publish(
        Channel::Alarms,
        Some("u1"),
        Some((39.5, 116.5)),
        json!({"where": "in"}),
    );
    h.publish(Channel::Alarms, None, None, json!({"where": "nowhere"}));
    let seqs = events_until(&mut ws, 3).await;
    assert_eq!(seqs, vec![2, 3]);
}

#[tokio::test]
async fn gcj02_session_gets_converted_coordinates() {
    let h = start(test_config()).await;
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["positions"], "filter": {"coords": "gcj02"}}),
    )
    .await;
    recv(&mut ws).await;
    h.hub.position(position("u1", 39.9, 116.4));
    let batch = recv(&mut ws).await;
    let (lat, lon) = fieldlink_location::wgs84_to_gcj02(39.9, 116.4);
    let got_lat = batch["units"][0]["lat"].as_f64().expect("lat");
    let got_lon = batch["units"][0]["lon"].as_f64().expect("lon");
    assert!((got_lat - lat).abs() < 1e-9 && (got_lon - lon).abs() < 1e-9);
    assert!((got_lat - 39.9).abs() > 1e-4, "converted");
}

#[tokio::test]
async fn oversize_message_closes_1009() {
    let h = start(test_config()).await;
    let mut ws = h.admin().await;
    let big = "x".repeat(100 * 1024);
    ws.send(Message::text(big)).await.expect("send");
    let (code, _) = expect_close(&mut ws).await;
    assert_eq!(code, 1009);
    let stats = h.hub.stats();
    assert_eq!(stats.closed.get("too_big"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_is_closed_4008_while_others_keep_up() {
    let config = PushConfig {
        outbound_queue: 32,
        ..test_config()
    };
    let h = Arc::new(start(config).await);
    let mut stalled = h
        .connect_with(
            "/ws",
            &[("authorization", "Bearer admin-token")],
            Some(4096),
        )
        .await
        .expect("connect");
    recv(&mut stalled).await;
    send(
        &mut stalled,
        json!({"type": "subscribe", "channels": ["orders"]}),
    )
    .await;
    assert_eq!(recv(&mut stalled).await["type"], "snapshot");

    let mut healthy = h.admin().await;
    send(
        &mut healthy,
        json!({"type": "subscribe", "channels": ["orders"]}),
    )
    .await;
    assert_eq!(recv(&mut healthy).await["type"], "snapshot");
    // The healthy client reads everything on its own task.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let msg = recv(&mut healthy).await;
            if msg["type"] == "event" && seen_tx.send(msg["seq"].as_i64().unwrap_or(-1)).is_err() {
                return;
            }
        }
    });

    let payload = json!({"pad": "p".repeat(4000)});
    let mut expected = 1i64;
    let started = Instant::now();
    while h.hub.stats().closed.get("too_slow").copied().unwrap_or(0) == 0 {
        assert!(expected < 50_000, "the stalled client was never closed");
        // Bursts smaller than the queue; the healthy client must catch up with each one
        // promptly while the stalled one falls further behind.
        let mut published = 0;
        for _ in 0..8 {
            published = h.publish(Channel::Orders, None, None, payload.clone());
        }
        while expected <= published {
            let seq = timeout(Duration::from_secs(3), seen_rx.recv())
                .await
                .expect("healthy client fell behind")
                .expect("reader ended");
            assert_eq!(seq, expected);
            expected += 1;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let marker = h.publish(Channel::Orders, None, None, json!({"marker": true}));
    let started = Instant::now();
    while expected <= marker {
        let seq = timeout(Duration::from_secs(3), seen_rx.recv())
            .await
            .expect("healthy client fell behind")
            .expect("reader ended");
        assert_eq!(seq, expected);
        expected += 1;
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    reader.abort();

    // The stalled client now reads: what was queued, then the 4008 close.
    let (code, reason) = expect_close(&mut stalled).await;
    assert_eq!(code, 4008, "{reason}");
    assert!(reason.contains("resume from"), "{reason}");
}

#[tokio::test]
async fn handset_gets_open_orders_and_pushed_orders_and_sends_receipts() {
    let h = start(test_config()).await;
    h.backend
        .orders
        .lock()
        .expect("lock")
        .insert("u1".into(), vec![json!({"order_id": "o1"})]);
    assert!(!h.hub.to_handset("u1", json!({"order_id": "o0"})));
    let mut ws = h
        .connect("/ws/handset", &[("authorization", "Bearer unit-u1")])
        .await
        .expect("connect");
    let hello = recv(&mut ws).await;
    assert_eq!(hello["role"], "responder");
    assert_eq!(hello["unit"], "u1");
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "order", "data": {"order_id": "o1"}})
    );
    // The session is registered once hello is sent; wait for it.
    let deadline = Instant::now() + WAIT;
    while h.hub.handsets_connected().is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(h.hub.to_handset("u1", json!({"order_id": "o2"})));
    assert!(!h.hub.to_handset("u9", json!({"order_id": "o3"})));
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "order", "data": {"order_id": "o2"}})
    );

    send(
        &mut ws,
        json!({"type": "receipt", "id": "r1", "order_id": "o2", "state": "accepted"}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "result", "id": "r1", "data": {"recorded": true}})
    );
    let inputs = h.backend.inputs.lock().expect("lock").clone();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].0, "u1");
    assert!(matches!(&inputs[0].1, HandsetMessage::Receipt(f) if f["state"] == "accepted"));

    // A handset may not command.
    send(
        &mut ws,
        json!({"type": "command", "id": "c1", "op": "dispatch"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "forbidden");
}

#[tokio::test]
async fn protobuf_subprotocol() {
    let h = start(test_config()).await;
    for _ in 0..2 {
        h.publish(Channel::Orders, None, None, json!({"k": "v"}));
    }
    let mut ws = h
        .connect(
            "/ws",
            &[
                ("authorization", "Bearer admin-token"),
                ("sec-websocket-protocol", "fieldlink.v1.proto"),
            ],
        )
        .await
        .expect("connect");
    // The hello must come as a binary frame.
    let first = timeout(WAIT, ws.next())
        .await
        .expect("hello")
        .expect("open")
        .expect("ok");
    let Message::Binary(bytes) = first else {
        panic!("expected binary, got {first:?}");
    };
    let pb: wire::pb::ServerMessage = prost::Message::decode(bytes.as_ref()).expect("decode");
    let hello = wire::server_from_proto(pb).expect("hello");
    assert!(
        matches!(hello, ServerMessage::Hello { ref protocol, .. } if protocol == "fieldlink.v1.proto")
    );

    let subscribe = ClientMessage::Subscribe {
        channels: vec![Channel::Orders],
        filter: Filter::default(),
        resume_from: Some(1),
    };
    let bytes = prost::Message::encode_to_vec(&wire::client_to_proto(&subscribe));
    ws.send(Message::binary(bytes)).await.expect("send");
    let event = recv(&mut ws).await;
    assert_eq!(event["seq"], 2);
    assert_eq!(event["data"], json!({"k": "v"}));
}

#[tokio::test]
async fn shutdown_closes_with_1001() {
    let h = start(test_config()).await;
    let mut ws = h.admin().await;
    h.hub.shutdown();
    assert_eq!(expect_close(&mut ws).await.0, 1001);
    let err = h
        .connect("/ws", &[("authorization", "Bearer admin-token")])
        .await
        .expect_err("refused while shutting down");
    assert_eq!(http_status(err), 503);
}

#[tokio::test]
async fn the_positions_ticker_stops_on_shutdown_and_when_the_hub_is_dropped() {
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let wait_for = |want: usize| async move {
        let deadline = Instant::now() + WAIT;
        while alive() != want {
            assert!(
                Instant::now() < deadline,
                "{} tasks alive, want {want}",
                alive()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let before = alive();
    let hub = Hub::new(
        test_config(),
        Arc::new(TestBackend::default()),
        Arc::new(clock.clone()),
    );
    // The ticker holds only a Weak<Hub>.
    assert_eq!(alive(), before + 1);
    assert_eq!(Arc::weak_count(&hub), 1);
    drop(hub);
    wait_for(before).await;

    let hub = Hub::new(
        test_config(),
        Arc::new(TestBackend::default()),
        Arc::new(clock),
    );
    assert_eq!(alive(), before + 1);
    hub.shutdown();
    wait_for(before).await;
    assert_eq!(Arc::weak_count(&hub), 0);
}

#[tokio::test]
async fn connection_cap_answers_503() {
    let config = PushConfig {
        max_connections: 1,
        ..test_config()
    };
    let h = start(config).await;
    let _first = h.admin().await;
    let err = h
        .connect("/ws", &[("authorization", "Bearer admin-token")])
        .await
        .expect_err("over the cap");
    assert_eq!(http_status(err), 503);
}

#[tokio::test]
async fn idle_client_is_closed_4000() {
    let config = PushConfig {
        idle_timeout_ms: 200,
        ping_interval_ms: 10_000,
        ..test_config()
    };
    let h = start(config).await;
    let mut ws = h.admin().await;
    // Not reading means not answering pings either; here there are none before the timeout.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(expect_close(&mut ws).await.0, 4000);
}

#[tokio::test]
async fn repeated_malformed_messages_close_1008() {
    let h = start(test_config()).await;
    let mut ws = h.admin().await;
    for _ in 0..4 {
        ws.send(Message::text("nope")).await.expect("send");
        assert_eq!(recv(&mut ws).await["code"], "bad_message");
    }
    ws.send(Message::text("nope")).await.expect("send");
    assert_eq!(expect_close(&mut ws).await.0, 1008);
}

#[tokio::test]
async fn unsubscribe_stops_a_channel() {
    let h = start(test_config()).await;
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders", "alarms"]}),
    )
    .await;
    recv(&mut ws).await;
    send(
        &mut ws,
        json!({"type": "unsubscribe", "channels": ["alarms"]}),
    )
    .await;
    // The unsubscribe is handled before the next command's result is sent.
    send(
        &mut ws,
        json!({"type": "command", "id": "sync", "op": "noop"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["id"], "sync");
    h.publish(Channel::Alarms, None, None, json!({}));
    h.publish(Channel::Orders, None, None, json!({}));
    assert_eq!(events_until(&mut ws, 2).await, vec![2]);
}

#[tokio::test]
async fn a_newer_handset_session_replaces_the_older_4009() {
    let h = start(test_config()).await;
    let mut old = h
        .connect("/ws/handset", &[("authorization", "Bearer unit-u1")])
        .await
        .expect("connect");
    assert_eq!(recv(&mut old).await["type"], "hello");
    let mut new = h
        .connect("/ws/handset", &[("authorization", "Bearer unit-u1")])
        .await
        .expect("connect");
    assert_eq!(recv(&mut new).await["type"], "hello");
    assert_eq!(expect_close(&mut old).await.0, 4009);
    assert!(h.hub.to_handset("u1", json!({"order_id": "o9"})));
    assert_eq!(recv(&mut new).await["type"], "order");
}

#[tokio::test]
async fn pongs_keep_a_reading_client_alive() {
    let config = PushConfig {
        idle_timeout_ms: 300,
        ping_interval_ms: 100,
        ..test_config()
    };
    let h = start(config).await;
    let mut ws = h.admin().await;
    // Reading answers the pings (tungstenite replies with pongs); nothing else is sent.
    let deadline = Instant::now() + Duration::from_millis(900);
    let mut pings = 0;
    while let Ok(next) = tokio::time::timeout_at(deadline, ws.next()).await {
        match next {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("only pings expected, got {other:?}"),
        }
    }
    assert!(pings >= 3, "{pings} pings");
    send(
        &mut ws,
        json!({"type": "command", "id": "still-here", "op": "noop"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["id"], "still-here");
}

#[tokio::test]
async fn ticket_in_the_first_message_and_wrong_endpoint_after_auth_4003() {
    let h = start(test_config()).await;
    let ticket = h.hub.tickets().issue(
        Principal {
            name: "d".into(),
            role: Role::Dispatcher,
        },
        h.clock.now_for_test(),
    );
    let mut ws = h.connect("/ws", &[]).await.expect("connect");
    send(&mut ws, json!({"type": "auth", "token": ticket})).await;
    assert_eq!(recv(&mut ws).await["role"], "dispatcher");

    let mut handset = h.connect("/ws/handset", &[]).await.expect("connect");
    send(
        &mut handset,
        json!({"type": "auth", "token": "admin-token"}),
    )
    .await;
    assert_eq!(expect_close(&mut handset).await.0, 4003);
}

#[tokio::test]
async fn resume_with_positions_gets_a_positions_snapshot_then_the_journal() {
    let h = start(test_config()).await;
    for _ in 0..4 {
        h.publish(Channel::Orders, None, None, json!({}));
    }
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders", "positions"], "resume_from": 2}),
    )
    .await;
    let snapshot = recv(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["channels"], json!(["positions"]));
    assert_eq!(events_until(&mut ws, 4).await, vec![3, 4]);
}

#[tokio::test]
async fn resume_from_beyond_the_journal_gets_snapshot_needed() {
    let h = start(test_config()).await;
    h.publish(Channel::Orders, None, None, json!({}));
    let mut ws = h.admin().await;
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["orders"], "resume_from": 500}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["type"], "snapshot_needed");
    assert_eq!(recv(&mut ws).await["seq"], 1);
    h.publish(Channel::Orders, None, None, json!({}));
    assert_eq!(events_until(&mut ws, 2).await, vec![2]);
}

#[tokio::test]
async fn a_snapshot_larger_than_the_write_buffer_arrives_complete_in_parts() {
    let h = start(test_config()).await;
    h.publish(Channel::Presence, None, None, json!({}));
    let positions: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"unit": format!("unit-{i:05}"), "lat": 39.0 + f64::from(i) / 1024.0,
                   "lon": 116.4, "at_ms": 1_000_000 + i, "status": "available",
                   "note": "p".repeat(150)})
        })
        .collect();
    let presence: Vec<Value> = (0..10_000)
        .map(|i| json!({"unit": format!("unit-{i:05}"), "state": "online"}))
        .collect();
    let items = json!({"positions": positions, "presence": presence, "generated": "now"});
    let size = items.to_string().len();
    assert!(size > 2_500_000, "{size}");
    assert!(size > PushConfig::default().max_write_buffer_bytes);
    *h.backend.snapshot_items.lock().expect("lock") = Some(items.clone());

    let mut ws = h.admin().await;
    // Positions keep coming while the snapshot is sent: they must not come between its parts.
    let feeder = {
        let hub = h.hub.clone();
        tokio::spawn(async move {
            for i in 0..1000 {
                hub.position(position("moving", 39.0 + f64::from(i) / 1024.0, 116.0));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["positions", "presence"]}),
    )
    .await;
    let mut parts = Vec::new();
    loop {
        let msg = recv(&mut ws).await;
        assert_eq!(msg["type"], "snapshot", "{}", msg["type"]);
        assert_eq!(msg["seq"], 1);
        assert_eq!(msg["channels"], json!(["positions", "presence"]));
        assert_eq!(msg["part"], parts.len() + 1);
        assert!(msg.to_string().len() <= 256 * 1024);
        let last = msg["last"].as_bool().expect("last");
        parts.push(msg);
        if last {
            break;
        }
    }
    assert!(parts.len() >= 10, "{} parts", parts.len());
    // Concatenated by key, the parts are the backend's items.
    let mut whole = serde_json::Map::new();
    for part in parts {
        let Value::Object(items) = part["items"].clone() else {
            panic!("items not an object");
        };
        for (key, value) in items {
            match (whole.get_mut(&key), value) {
                (Some(Value::Array(have)), Value::Array(more)) => have.extend(more),
                (_, value) => {
                    whole.insert(key, value);
                }
            }
        }
    }
    // (Compared as a whole without printing 3 MB should it fail; the lats are exact binary
    // fractions so that they survive the text round trip bit for bit.)
    let whole = Value::Object(whole);
    assert!(whole == items, "reassembled snapshot differs");

    // The session is alive: live events and positions follow.
    assert_eq!(recv(&mut ws).await["type"], "positions");
    feeder.abort();
    let seq = h.publish(
        Channel::Presence,
        Some("u1"),
        None,
        json!({"state": "online"}),
    );
    assert_eq!(events_until(&mut ws, seq).await, vec![seq]);
    assert_eq!(h.hub.stats().closed.values().sum::<u64>(), 0);
}

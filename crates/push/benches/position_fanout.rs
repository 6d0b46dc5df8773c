//! Per-fix cost of `Hub::position` with 1,100 command-room sessions over real sockets: 100
//! subscribed to every position, 1,000 to a 2 km bbox (the shape of the server's load benchmark).
//! Prints ns per fix (median of 5 rounds of 20,000 fixes over 10,000 units) and what the clients
//! received. Run: `cargo bench -p fieldlink-push --bench position_fanout`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::routing::any;
use fieldlink_clock::SystemClock;
use fieldlink_push::{
    Backend, BackendError, BoxFuture, Channel, Command, CommandError, Endpoint, Filter,
    HandsetMessage, Hub, JournalEvent, PositionUpdate, Principal, PushConfig, Role, Snapshot,
    upgrade,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[derive(Debug)]
struct Quiet;

impl Backend for Quiet {
    fn authenticate_token<'a>(&'a self, _token: &'a str) -> BoxFuture<'a, Option<Principal>> {
        Box::pin(async move {
            Some(Principal {
                name: "bench".into(),
                role: Role::Admin,
            })
        })
    }
    fn snapshot<'a>(
        &'a self,
        _principal: &'a Principal,
        _channels: &'a [Channel],
        _filter: &'a Filter,
    ) -> BoxFuture<'a, Result<Snapshot, BackendError>> {
        Box::pin(async move {
            Ok(Snapshot {
                seq: 0,
                items: json!({}),
            })
        })
    }
    fn journal_since(
        &self,
        _after_seq: i64,
        _limit: u32,
    ) -> BoxFuture<'_, Result<Vec<JournalEvent>, BackendError>> {
        Box::pin(async move { Ok(Vec::new()) })
    }
    fn command<'a>(
        &'a self,
        _principal: &'a Principal,
        _command: Command,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move { Ok(Value::Null) })
    }
    fn handset_input<'a>(
        &'a self,
        _unit: &'a str,
        _message: HandsetMessage,
    ) -> BoxFuture<'a, Result<Value, CommandError>> {
        Box::pin(async move { Ok(Value::Null) })
    }
    fn open_orders_for<'a>(&'a self, _unit: &'a str) -> BoxFuture<'a, Vec<Value>> {
        Box::pin(async move { Vec::new() })
    }
}

/// A deterministic spread over ~50 km around Beijing.
fn spot(i: u64) -> (f64, f64) {
    let x = (i.wrapping_mul(2_654_435_761) % 10_000) as f64 / 10_000.0;
    let y = (i.wrapping_mul(40_503) % 10_000) as f64 / 10_000.0;
    (39.7 + 0.45 * y, 116.1 + 0.6 * x)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let config = PushConfig {
        max_connections: 5000,
        ..PushConfig::default()
    };
    let hub = Hub::new(config, Arc::new(Quiet), Arc::new(SystemClock));
    let room = hub.clone();
    let app = Router::new().route(
        "/ws",
        any(move |req: Request| upgrade(room.clone(), Endpoint::CommandRoom, req)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let frames = Arc::new(AtomicU64::new(0));
    let subscribed = Arc::new(AtomicU64::new(0));
    for i in 0..1100u64 {
        let mut req = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        req.headers_mut()
            .insert("authorization", HeaderValue::from_static("Bearer t"));
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut ws, _) = tokio_tungstenite::client_async(req, stream)
            .await
            .expect("upgrade");
        let filter = if i < 100 {
            json!({})
        } else {
            let (lat, lon) = spot(i * 7919);
            // ~2 km square.
            json!({"bbox": [lon - 0.0117, lat - 0.009, lon + 0.0117, lat + 0.009]})
        };
        ws.send(Message::text(
            json!({"type": "subscribe", "channels": ["positions"], "filter": filter}).to_string(),
        ))
        .await
        .expect("subscribe");
        let frames = frames.clone();
        let subscribed = subscribed.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(t) = msg {
                    if t.as_str().starts_with(r#"{"type":"snapshot""#) {
                        subscribed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while subscribed.load(Ordering::Relaxed) < 1100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let fixes = 20_000u64;
    let mut rounds = Vec::new();
    for round in 0..5u64 {
        let updates: Vec<PositionUpdate> = (0..fixes)
            .map(|n| {
                let unit = (round * fixes + n) % 10_000;
                let (lat, lon) = spot(unit + n);
                PositionUpdate {
                    unit: format!("unit-{unit:05}"),
                    lat,
                    lon,
                    at: fieldlink_clock::Timestamp::EPOCH,
                    at_ms: 0,
                    speed: Some(1.0),
                    heading: Some(90.0),
                    accuracy: Some(5.0),
                    status: Some("available".into()),
                    grid: None,
                }
            })
            .collect();
        let started = Instant::now();
        for update in updates {
            hub.position(update);
        }
        let elapsed = started.elapsed();
        rounds.push(elapsed.as_nanos() as f64 / fixes as f64);
        // Let the writers (and the ticker) drain before the next round.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    rounds.sort_by(f64::total_cmp);
    println!(
        "Hub::position with 1,100 sessions: median {:.0} ns/fix (rounds {:?})",
        rounds[2],
        rounds.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    println!(
        "positions frames received by the clients: {}; batches sent: {}",
        frames.load(Ordering::Relaxed),
        hub.stats().batches_sent
    );
    hub.shutdown();
}

//! A handset's WebSocket session on the server's `/ws/handset`: work orders in, receipts out.
//!
//! The protocol is the hub's (`crates/push/README.md`, "Handsets"): the upgrade carries
//! `Authorization: Bearer <unit>:<secret>` (the unit's MQTT credentials) and asks for
//! `fieldlink.v1.json`; the server sends `hello`, then one `order` per order still open for the
//! unit, then every new order, cancel and reassignment as it is committed. A receipt goes up as
//! `{"type": "receipt", "id", "order_id", "state"}` and is answered by a `result` (or an `error`)
//! with the same `id`: [`WsHandset::send_receipt`] waits for that answer as an MQTT publish waits
//! for its PUBACK.
//!
//! Each `order` becomes the [`v1::Downlink`] the same message would be over MQTT, with the id the
//! server gives that downlink (`{order}/{attempt}`, `{order}/cancel`, `{order}/reassigned`;
//! `server/src/dispatch/wire.rs`). That is what lets a [`crate::Responder`] answer an order once
//! although the server sends it on both channels (MQTT stays the path of record) and may send it
//! twice on this one (pushed, and in the open list of a session that was just opening).
//!
//! `ws://` and `wss://` (rustls, trusting [`WsHandsetConfig::ca_file`] or the system's roots);
//! `http(s)://` base URLs are taken as the same server. Like [`crate::Handset`], a session that
//! ends stays ended: every later call fails with [`SimError::Disconnected`] and the owner
//! connects a new one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fieldlink_proto::{UnitId, v1};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::SimError;

/// The subprotocol asked for: JSON text frames.
const JSON_PROTOCOL: &str = "fieldlink.v1.json";
/// The handsets' endpoint.
const HANDSET_PATH: &str = "/ws/handset";

/// How one handset's WebSocket session connects.
#[derive(Clone)]
pub struct WsHandsetConfig {
    /// The server: its HTTP base URL (`http://host:8080`, `https://...`) or its WebSocket URL
    /// (`ws://`, `wss://`); `/ws/handset` is appended unless the path already ends with it.
    pub server: String,
    /// The unit.
    pub unit: UnitId,
    /// The unit's secret (the same as on MQTT).
    pub secret: String,
    /// For `wss://`: the CA certificates (PEM) the server's chain must lead to; `None`: the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// How long the connection, the upgrade and the server's `hello` may take.
    pub connect_timeout: Duration,
    /// How long a receipt waits for the server's answer.
    pub answer_timeout: Duration,
    /// Orders held for [`WsHandset::next_downlink`]; when full, newer ones are dropped (the
    /// server re-sends an order until its receipt, and MQTT carries it too).
    pub order_capacity: usize,
}

impl WsHandsetConfig {
    /// Defaults: the system's roots, 10 s to connect and for each answer, 64 orders held.
    pub fn new(server: impl Into<String>, unit: UnitId, secret: impl Into<String>) -> Self {
        WsHandsetConfig {
            server: server.into(),
            unit,
            secret: secret.into(),
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            answer_timeout: Duration::from_secs(10),
            order_capacity: 64,
        }
    }
}

impl std::fmt::Debug for WsHandsetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsHandsetConfig")
            .field("server", &self.server)
            .field("unit", &self.unit)
            .field("secret", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// The server's answer to one request: `result.data`, or `error` (code, message).
type Answer = Result<Value, (String, String)>;

/// What the handset asks its session task to do.
#[derive(Debug)]
enum Request {
    /// Send this JSON and hand the answer with `id` to `reply`.
    Send {
        id: String,
        message: Value,
        reply: oneshot::Sender<Answer>,
    },
    /// Close the session cleanly.
    Close,
}

/// One open `/ws/handset` session. See the module docs.
#[derive(Debug)]
pub struct WsHandset {
    unit: UnitId,
    url: String,
    answer_timeout: Duration,
    requests: mpsc::Sender<Request>,
    orders: mpsc::Receiver<v1::Downlink>,
    /// Why the session ended, once it has.
    ended: Arc<Mutex<Option<String>>>,
    task: Option<JoinHandle<()>>,
    /// Per-session random prefix of request ids.
    session: u32,
    next_id: AtomicU64,
}

impl WsHandset {
    /// Connects, upgrades with the unit's credentials and waits for the server's `hello`: when
    /// this returns, the server holds the session and pushes the unit's orders to it.
    pub async fn connect(cfg: WsHandsetConfig) -> Result<WsHandset, SimError> {
        let url = handset_url(&cfg.server)?;
        let failed = |reason: String| SimError::WsConnect {
            url: url.clone(),
            unit: cfg.unit.clone(),
            reason,
        };
        let ended = Arc::new(Mutex::new(None));
        let (requests, requests_rx) = mpsc::channel(16);
        let (orders_tx, orders) = mpsc::channel(cfg.order_capacity.max(1));
        let session = Session {
            requests: requests_rx,
            orders: orders_tx,
            ended: ended.clone(),
        };
        let task = timeout(cfg.connect_timeout, open(&cfg, &url, session))
            .await
            .map_err(|_| {
                failed(format!(
                    "not open (connection, upgrade, hello) within {:?}",
                    cfg.connect_timeout
                ))
            })?
            .map_err(failed)?;
        Ok(WsHandset {
            unit: cfg.unit,
            url,
            answer_timeout: cfg.answer_timeout,
            requests,
            orders,
            ended,
            task: Some(task),
            session: rand::random(),
            next_id: AtomicU64::new(1),
        })
    }

    /// The unit.
    pub fn unit(&self) -> &UnitId {
        &self.unit
    }

    /// The `ws(s)://.../ws/handset` URL it connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// False once the session has ended.
    pub fn is_connected(&self) -> bool {
        self.ended().is_none()
    }

    /// The next order, cancel or reassignment as a downlink, or `None` after `wait` or when the
    /// session has ended and nothing is left.
    pub async fn next_downlink(&mut self, wait: Duration) -> Option<v1::Downlink> {
        timeout(wait, self.orders.recv()).await.ok().flatten()
    }

    /// Sends a receipt and waits for the server's answer (the order's state after it).
    pub async fn send_receipt(&self, receipt: &v1::OrderReceipt) -> Result<Value, SimError> {
        let id = format!(
            "{}-ws-{:08x}-{}",
            self.unit,
            self.session,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let mut message = json!({
            "type": "receipt",
            "id": id,
            "order_id": receipt.order_id,
            "state": state_name(receipt.state),
        });
        if !receipt.reason.is_empty() {
            message["reason"] = json!(receipt.reason);
        }
        let (reply, answer) = oneshot::channel();
        let request = Request::Send { id, message, reply };
        if self.requests.send(request).await.is_err() {
            return Err(self.disconnected());
        }
        match timeout(self.answer_timeout, answer).await {
            Err(_) => Err(SimError::NoAnswer {
                unit: self.unit.clone(),
                after: self.answer_timeout,
            }),
            Ok(Err(_)) => Err(self.disconnected()),
            Ok(Ok(Ok(data))) => Ok(data),
            Ok(Ok(Err((code, message)))) => Err(SimError::ReceiptRefused {
                unit: self.unit.clone(),
                order: receipt.order_id.clone(),
                code,
                message,
            }),
        }
    }

    /// Closes the session cleanly (a close frame) and waits briefly for the server's reply.
    pub async fn close(mut self) {
        let _ = self.requests.send(Request::Close).await;
        if let Some(mut task) = self.task.take()
            && timeout(Duration::from_secs(2), &mut task).await.is_err()
        {
            task.abort();
        }
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn disconnected(&self) -> SimError {
        SimError::Disconnected {
            unit: self.unit.clone(),
            reason: self.ended().unwrap_or_else(|| "closed".to_owned()),
        }
    }
}

impl Drop for WsHandset {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `server` as the handsets' WebSocket URL.
fn handset_url(server: &str) -> Result<String, SimError> {
    let bad = || SimError::BadServer(server.to_owned());
    let (scheme, rest) = server.split_once("://").ok_or_else(bad)?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return Err(bad()),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(bad());
    }
    let path = if rest.ends_with(HANDSET_PATH) {
        ""
    } else {
        HANDSET_PATH
    };
    let url = format!("{scheme}://{rest}{path}");
    url.parse::<Uri>()
        .ok()
        .filter(|u| u.host().is_some())
        .ok_or_else(bad)?;
    Ok(url)
}

/// The session task's ends of the handset's channels.
#[derive(Debug)]
struct Session {
    requests: mpsc::Receiver<Request>,
    orders: mpsc::Sender<v1::Downlink>,
    /// Why the session ended, once it has.
    ended: Arc<Mutex<Option<String>>>,
}

/// TCP, TLS for `wss://`, the upgrade and the `hello`, then the session task. Errors in words.
async fn open(
    cfg: &WsHandsetConfig,
    url: &str,
    session: Session,
) -> Result<JoinHandle<()>, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
    let tls = uri.scheme_str() == Some("wss");
    let host = uri.host().unwrap_or_default();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let headers = request.headers_mut();
    let bearer = format!("Bearer {}:{}", cfg.unit, cfg.secret);
    let bearer = HeaderValue::from_str(&bearer).map_err(|_| "the secret is not a valid header")?;
    headers.insert("authorization", bearer);
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(JSON_PROTOCOL),
    );
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    if !tls {
        let ws = upgrade(request, tcp).await?;
        return Ok(tokio::spawn(run(ws, session)));
    }
    let config = fieldlink_tls::client_config(&fieldlink_tls::ClientTls {
        ca_file: cfg.ca_file.clone(),
        identity: None,
    })
    .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from(host.clone())
        .map_err(|_| format!("{host:?} is not a name a certificate can be for"))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let ws = upgrade(request, stream).await?;
    Ok(tokio::spawn(run(ws, session)))
}

/// The upgrade on an open stream, then the `hello`.
async fn upgrade<S>(
    request: tungstenite::handshake::client::Request,
    stream: S,
) -> Result<WebSocketStream<S>, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws, _) = match tokio_tungstenite::client_async(request, stream).await {
        Ok(upgraded) => upgraded,
        Err(tungstenite::Error::Http(response)) => {
            let body = (response.body().as_deref())
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return Err(format!("refused: {} {body}", response.status()));
        }
        Err(e) => return Err(e.to_string()),
    };
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                if v["type"] == "hello" {
                    return Ok(ws);
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(closed_by_server(frame)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed before hello".to_owned()),
        }
    }
}

/// The session task: hands orders to the handset and answers to their waiters, sends what the
/// handset asks, and records why it ended. Pings are answered by tungstenite while reading.
async fn run<S>(mut ws: WebSocketStream<S>, session: Session)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Session {
        mut requests,
        orders,
        ended,
    } = session;
    let mut waiting: HashMap<String, oneshot::Sender<Answer>> = HashMap::new();
    let why = loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(Request::Send { id, message, reply }) => {
                    waiting.insert(id, reply);
                    if let Err(e) = ws.send(Message::text(message.to_string())).await {
                        break format!("send failed: {e}");
                    }
                }
                Some(Request::Close) | None => {
                    let _ = ws.close(None).await;
                    // The server's close reply, so the socket is not reset under it.
                    let _ = timeout(Duration::from_secs(1), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    break "closed".to_owned();
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                        tracing::debug!("a WebSocket message that is not JSON ignored");
                        continue;
                    };
                    incoming(v, &mut waiting, &orders);
                }
                Some(Ok(Message::Close(frame))) => break closed_by_server(frame),
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "the connection ended".to_owned(),
            },
        }
    };
    tracing::debug!(reason = %why, "handset WebSocket session ended");
    *ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    // Dropping `waiting` wakes every waiter with "disconnected".
}

/// One message from the server.
fn incoming(
    v: Value,
    waiting: &mut HashMap<String, oneshot::Sender<Answer>>,
    orders: &mpsc::Sender<v1::Downlink>,
) {
    let id = v["id"].as_str().unwrap_or_default();
    match v["type"].as_str().unwrap_or_default() {
        "order" => match downlink(&v["data"]) {
            Some(d) => {
                if orders.try_send(d).is_err() {
                    tracing::debug!("order dropped: the handset's queue is full");
                }
            }
            None => tracing::debug!(data = %v["data"], "an order message not understood"),
        },
        "result" => {
            if let Some(reply) = waiting.remove(id) {
                let _ = reply.send(Ok(v["data"].clone()));
            }
        }
        "error" => {
            let code = v["code"].as_str().unwrap_or_default().to_owned();
            let message = v["message"].as_str().unwrap_or_default().to_owned();
            match waiting.remove(id) {
                Some(reply) => {
                    let _ = reply.send(Err((code, message)));
                }
                None => tracing::debug!(%code, %message, "error from the server"),
            }
        }
        _ => {}
    }
}

/// An `order` message's `data` as the downlink the server publishes for it on MQTT, with the
/// same id. The fields a handset acts on; the rest of the work order stays empty.
fn downlink(data: &Value) -> Option<v1::Downlink> {
    use v1::downlink::Body;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let (id, body) = match data["kind"].as_str()? {
        "order" => {
            let order = &data["order"];
            let order_id = order["order_id"].as_str()?;
            let attempt = data["attempt"].as_u64().unwrap_or(0);
            let at = &order["location"];
            let location = (at["lat"].as_f64())
                .zip(at["lon"].as_f64())
                .map(|(lat, lon)| v1::Position {
                    lat,
                    lon,
                    ..Default::default()
                });
            let work_order = v1::WorkOrder {
                order_id: order_id.to_owned(),
                incident_id: text(&order["incident_id"]),
                title: text(&order["kind"]).replace('_', " "),
                description: text(&order["description"]),
                location,
                ..Default::default()
            };
            (format!("{order_id}/{attempt}"), Body::Order(work_order))
        }
        "order_cancelled" => {
            let order_id = text(&data["order_id"]);
            let body = Body::OrderCancelled(v1::OrderCancelled {
                order_id: order_id.clone(),
                reason: text(&data["reason"]),
            });
            (format!("{order_id}/cancel"), body)
        }
        "order_reassigned" => {
            let order_id = text(&data["order_id"]);
            let body = Body::OrderReassigned(v1::OrderReassigned {
                order_id: order_id.clone(),
                to_unit: text(&data["to_unit"]),
                reason: "not accepted in time".to_owned(),
            });
            (format!("{order_id}/reassigned"), body)
        }
        _ => return None,
    };
    Some(v1::Downlink {
        id,
        body: Some(body),
        ..Default::default()
    })
}

/// The receipt state as the hub's JSON names it (`delivered`, `en_route`, ...).
fn state_name(state: i32) -> String {
    let name =
        v1::OrderState::try_from(state).map_or("ORDER_STATE_UNSPECIFIED", |s| s.as_str_name());
    name.trim_start_matches("ORDER_STATE_").to_ascii_lowercase()
}

fn closed_by_server(frame: Option<tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(f) => format!("closed by the server: {} {}", u16::from(f.code), f.reason),
        None => "closed by the server".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_become_the_handset_endpoint() {
        let url = |s| handset_url(s).expect(s);
        assert_eq!(
            url("http://127.0.0.1:8080"),
            "ws://127.0.0.1:8080/ws/handset"
        );
        assert_eq!(url("https://fl.example/"), "wss://fl.example/ws/handset");
        assert_eq!(url("ws://[::1]:9/ws/handset"), "ws://[::1]:9/ws/handset");
        assert!(handset_url("127.0.0.1:8080").is_err());
        assert!(handset_url("ftp://x").is_err());
        assert!(handset_url("http://").is_err());
    }

    #[test]
    fn orders_get_the_ids_of_their_mqtt_downlinks() {
        let order = json!({
            "kind": "order", "attempt": 2,
            "order": {
                "order_id": "o-1", "incident_id": "i-1", "kind": "lost_person",
                "priority": "high", "location": {"lat": 30.1, "lon": 120.2},
                "description": "a child", "reinforcement": false, "state": "dispatched",
            },
        });
        let d = downlink(&order).expect("an order");
        assert_eq!(d.id, "o-1/2");
        let Some(v1::downlink::Body::Order(o)) = d.body else {
            panic!("not an order: {d:?}");
        };
        assert_eq!(o.location.map(|p| (p.lat, p.lon)), Some((30.1, 120.2)));
        assert_eq!(o.title, "lost person");
        let cancel = json!({"kind": "order_cancelled", "order_id": "o-1", "reason": "x"});
        assert_eq!(downlink(&cancel).expect("a cancel").id, "o-1/cancel");
        let moved = json!({"kind": "order_reassigned", "order_id": "o-1", "to_unit": "u2"});
        assert_eq!(
            downlink(&moved).expect("a reassignment").id,
            "o-1/reassigned"
        );
        assert!(downlink(&json!({"kind": "news"})).is_none());
    }

    #[test]
    fn receipt_states_have_the_hubs_names() {
        assert_eq!(state_name(v1::OrderState::Delivered as i32), "delivered");
        assert_eq!(state_name(v1::OrderState::EnRoute as i32), "en_route");
        assert_eq!(state_name(v1::OrderState::OnScene as i32), "on_scene");
    }
}

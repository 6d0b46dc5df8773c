//! A WebSocket client for the end-to-end tests: the command room on `/ws`, a handset on
//! `/ws/handset`, over a real socket with tokio-tungstenite.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestServer;

/// One WebSocket session.
#[derive(Debug)]
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How an upgrade was refused: the HTTP status and the JSON body's error code.
#[derive(Debug)]
pub struct Refused {
    /// HTTP status of the refusal.
    pub status: u16,
    /// The whole error, as text.
    pub body: String,
}

impl WsClient {
    /// Connects to `path` with an optional bearer token and `Origin`.
    pub async fn connect(
        srv: &TestServer,
        path: &str,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<WsClient, Refused> {
        let url = format!("ws://{}{}", srv.server.http_addr(), path);
        let mut req = url.into_client_request().expect("request");
        if let Some(t) = token {
            let v = HeaderValue::from_str(&format!("Bearer {t}")).expect("header");
            req.headers_mut().insert("authorization", v);
        }
        if let Some(o) = origin {
            let v = HeaderValue::from_str(o).expect("header");
            req.headers_mut().insert("origin", v);
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(WsClient { ws }),
            Err(Error::Http(resp)) => Err(Refused {
                status: resp.status().as_u16(),
                body: resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            }),
            Err(e) => panic!("WebSocket connect to {path} failed: {e}"),
        }
    }

    /// The command room with `token`.
    pub async fn command_room(srv: &TestServer, token: &str) -> WsClient {
        Self::connect(srv, "/ws", Some(token), None)
            .await
            .expect("the command room connects")
    }

    /// The command room over a socket whose receive buffer is tiny (4 KiB), for a client that
    /// stops reading: the server's writes back up at once.
    pub async fn stalled_command_room(srv: &TestServer, token: &str) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("receive buffer");
        let stream = socket
            .connect(srv.server.http_addr())
            .await
            .expect("TCP connect");
        let url = format!("ws://{}/ws", srv.server.http_addr());
        let mut req = url.into_client_request().expect("request");
        let v = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        req.headers_mut().insert("authorization", v);
        let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
            .await
            .expect("the stalled client connects");
        WsClient { ws }
    }

    /// The handset of unit `i` (credential `<unit>:<secret>`).
    pub async fn handset(srv: &TestServer, i: usize) -> WsClient {
        let u = &srv.units[i];
        let token = format!("{}:{}", u.id, u.secret);
        Self::connect(srv, "/ws/handset", Some(&token), None)
            .await
            .expect("the handset connects")
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) -> Result<(), Error> {
        self.ws.send(Message::text(text)).await
    }

    /// The next JSON message within `wait` (pings answered, pongs skipped); `None` on timeout
    /// or close.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next()).await.ok()??;
            match msg.ok()? {
                Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next message of `kind` (`type` field), skipping others; panics after `wait`.
    pub async fn next_of(&mut self, kind: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(v) if v["type"] == kind => return v,
                Some(_) => continue,
                None => panic!("no {kind} message within {wait:?}"),
            }
        }
    }

    /// Journal events until one whose `kind` is `until` arrives (included).
    pub async fn events_until(&mut self, until: &str, wait: Duration) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            let e = self.next_of("event", wait).await;
            let done = e["kind"] == until;
            got.push(e);
            if done {
                return got;
            }
        }
    }

    /// Reads until the server closes; its close code (`None` if it never closed in `wait`).
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await.ok()? {
                Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => {
                    return Some(code.into());
                }
                Some(Ok(Message::Close(None))) => return Some(1005),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Closes the session.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

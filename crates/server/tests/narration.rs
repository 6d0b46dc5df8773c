//! The server log tells dispatch in words: the real binary, a real handset on its embedded
//! broker, and one incident from creation through dispatch, acceptance and arrival to its
//! close, read back from the JSON log on stderr; and no ERROR line when the handset leaves.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use fieldlink_sim::{Handset, HandsetConfig, QoS};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "narration-test-secret-0001";
/// The handset stands here; the incident is about 15 m away.
const HANDSET: (f64, f64) = (30.2741, 120.1551);
const SITE: (f64, f64) = (30.2742, 120.1552);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The log's messages, as they come.
struct Log {
    lines: Receiver<Value>,
    seen: Vec<String>,
    errors: Vec<Value>,
}

fn is_error(line: &Value) -> bool {
    line["level"] == json!("ERROR")
}

impl Log {
    /// Waits for a message starting with `start`; returns the whole line.
    fn wait_for(&mut self, start: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "no log message starting {start:?} within {WAIT:?}; seen:\n{}",
                    self.seen.join("\n")
                );
            };
            if is_error(&line) {
                self.errors.push(line.clone());
            }
            let message = line["message"].as_str().unwrap_or_default().to_owned();
            self.seen.push(message.clone());
            if message.starts_with(start) {
                return line;
            }
        }
    }
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let response = (http.post(&url).bearer_auth(token).json(&body).send().await).expect("POST");
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert!(status.is_success(), "POST {url}: {status} {body}");
    body
}

async fn receipt(handset: &Handset, order: &str, state: v1::OrderState, n: u32) {
    let ack = v1::Ack {
        id: format!("ack-{n}"),
        time_ms: now_ms(),
        unit: handset.unit().to_string(),
        receipt: Some(v1::ack::Receipt::Order(v1::OrderReceipt {
            order_id: order.to_owned(),
            state: state as i32,
            ..Default::default()
        })),
    };
    (handset
        .publish_uplink(UplinkKind::Ack, &ack, QoS::AtLeastOnce)
        .await)
        .expect("receipt");
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(since.expect("after 1970").as_millis()).expect("ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_tells_an_incident_from_creation_to_close_with_names() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("fieldlink.toml");
    std::fs::write(
        &config,
        format!(
            "[[units]]\nid = \"patrol-01\"\nsecret = \"{SECRET}\"\nname = \"Wang Lei\"\ntype = \"e_bike\"\n"
        ),
    )
    .expect("config");
    let (http_addr, mqtt_addr) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_fieldlink"))
        .env_remove("RUST_LOG")
        .env_remove("FIELDLINK_CONFIG")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--http", &http_addr, "--mqtt", &mqtt_addr])
        .args(["--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fieldlink starts");
    let stderr = child.stderr.take().expect("stderr");
    let _server = Server(child);
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line).unwrap_or(json!({ "message": line }));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    let mut log = Log {
        lines,
        seen: Vec::new(),
        errors: Vec::new(),
    };
    log.wait_for("fieldlink is running");
    let credentials = std::fs::read_to_string(dir.path().join("data/first-run-credentials.txt"))
        .expect("first-run credentials");
    let token = (credentials.split_whitespace())
        .find(|w| w.starts_with("fl_tok_"))
        .expect("admin token")
        .to_owned();

    let topics = Topics::new("fl/v1", "owntracks").expect("topics");
    let unit = UnitId::new("patrol-01").expect("unit id");
    let handset = Handset::connect(HandsetConfig::new(&mqtt_addr, unit, SECRET, topics))
        .await
        .expect("the handset connects");
    let fix = v1::GpsFix {
        fix_time_ms: now_ms(),
        lat: HANDSET.0,
        lon: HANDSET.1,
        accuracy_m: Some(8.0),
        satellites: 9,
        ..Default::default()
    };
    handset.publish_fix_qos1(fix).await.expect("fix");

    let http = reqwest::Client::new();
    let api = format!("http://{http_addr}/api/v1");
    let incident = json!({"kind": "dispute", "priority": "high", "lat": SITE.0, "lon": SITE.1,
        "description": "two neighbours shouting"});
    let created = post(&http, format!("{api}/incidents"), &token, incident).await;
    let id = created["incident"]["id"].as_str().expect("id").to_owned();
    let line = log.wait_for("incident created:");
    assert_eq!(line["incident"], json!(id), "{line}");
    let message = line["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("a dispute (high priority)") && message.contains("by dispatcher "),
        "{line}"
    );

    // The fix may still be on its way to the tracker: one click until the unit is there.
    let deadline = Instant::now() + WAIT;
    let order = loop {
        let url = format!("{api}/incidents/{id}/dispatch");
        let r = (http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await)
            .expect("POST");
        let body: Value = r.json().await.expect("JSON");
        if let Some(order) = body["orders"][0]["id"].as_str() {
            break order.to_owned();
        }
        assert!(Instant::now() < deadline, "never dispatched: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let line = log.wait_for("incident dispatched to");
    let message = line["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("incident dispatched to patrol-01 (Wang Lei), ")
            && message.contains(" m away, by dispatcher "),
        "{line}"
    );
    assert_eq!(line["order"], json!(order), "{line}");

    receipt(&handset, &order, v1::OrderState::Accepted, 1).await;
    let line = log.wait_for("patrol-01 (Wang Lei) accepted the order after ");
    assert!(
        line["message"].as_str().unwrap_or_default().ends_with(" s"),
        "{line}"
    );
    receipt(&handset, &order, v1::OrderState::OnScene, 2).await;
    log.wait_for("patrol-01 (Wang Lei) arrived on scene");
    receipt(&handset, &order, v1::OrderState::Resolved, 3).await;
    log.wait_for("patrol-01 (Wang Lei) finished the work");
    post(
        &http,
        format!("{api}/incidents/{id}/close"),
        &token,
        json!({}),
    )
    .await;
    log.wait_for("incident closed by dispatcher ");

    // An ordinary disconnect is no error: the broker's routine lines are debug lines.
    handset.disconnect().await.expect("disconnects");
    tokio::time::sleep(Duration::from_secs(1)).await;
    log.errors.extend(log.lines.try_iter().filter(is_error));
    assert!(
        log.errors.is_empty(),
        "ERROR lines in the log of a normal run:\n{}",
        (log.errors.iter().map(Value::to_string))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for message in &log.seen {
        for debug_form in ["Some(", "None", "Id(\"", "::"] {
            assert!(
                !message.contains(debug_form),
                "Rust debug form {debug_form:?} in {message:?}"
            );
        }
    }
}

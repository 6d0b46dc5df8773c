//! TLS end to end, with certificates from `fieldlink_tls::dev` (what `fieldlink certs dev`
//! writes): fieldlink serving HTTPS, WSS and MQTT over TLS on its embedded broker, with the
//! plain listeners off; real clients that trust the CA get in, clients that do not are refused;
//! and silent or crowding clients not shutting the TLS listener for the others;
//! and fieldlink refusing an external broker (a private Mosquitto with a TLS listener) whose
//! certificate comes from another CA, has expired or names another host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fieldlink_clock::SystemClock;
use fieldlink_e2e::{eventually, fix, free_port, now_ms};
use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use fieldlink_server::config::ConfiguredUnit;
use fieldlink_server::{Config, Server, provision};
use fieldlink_store::Role;
use fieldlink_tls::dev::{self, DevCa, Validity};
use fieldlink_tls::{ClientTls, client_config};
use futures_util::StreamExt;
use prost::Message as _;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const WAIT: Duration = Duration::from_secs(10);
const UNIT: &str = "tls-unit-1";
const SECRET: &str = "secret-of-the-tls-unit";

fn hosts() -> Vec<String> {
    vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
}

/// fieldlink with HTTPS and only a TLS listener on its embedded broker: the server, its admin
/// token, the TLS broker address and the plain broker address (configured but turned off).
async fn start_tls_server(
    certs: &dev::DevFiles,
    data: &Path,
    per_address: usize,
) -> (Server, String, SocketAddr, SocketAddr) {
    let mqtts: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut config = Config {
        data_dir: data.to_owned(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.http.tls = true;
    config.tls.cert = certs.server_cert.clone();
    config.tls.key = certs.server_key.clone();
    let plain: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    config.mqtt.listen = plain;
    config.mqtt.plain = false;
    config.mqtt.tls_listen = Some(mqtts);
    config.mqtt.max_connections_per_address = per_address;
    // The test's clients come from this host, which is uncapped by default.
    config.mqtt.uncapped_addresses = Vec::new();
    config.store.flush_interval_ms = 100;
    // UNIT, and two more (`{UNIT}-2`, `{UNIT}-3`) for tests that need several connections.
    config.units = ["", "-2", "-3"]
        .iter()
        .map(|suffix| ConfiguredUnit {
            id: format!("{UNIT}{suffix}"),
            secret: SECRET.to_owned(),
            name: String::new(),
            unit_type: "on_foot".into(),
            skills: vec![],
        })
        .collect();
    config.validate().expect("the TLS config is valid");
    let server = fieldlink_server::start(config, Arc::new(SystemClock))
        .await
        .expect("fieldlink starts with TLS");
    let state = server.state();
    let admin = provision::add_token(&state.store, "tls admin", Role::Admin, state.clock.now())
        .await
        .expect("token")
        .secret;
    state.credentials.reload().await.expect("reload");
    (server, admin, mqtts, plain)
}

fn tls_to(ca: &Path) -> TlsConnector {
    let config = client_config(&ClientTls {
        ca_file: Some(ca.to_owned()),
        identity: None,
    })
    .expect("client config");
    TlsConnector::from(config)
}

/// `GET path` over HTTPS with a real TLS client trusting `ca`: (status line, body).
async fn https_get(
    addr: SocketAddr,
    ca: &Path,
    path: &str,
    token: &str,
) -> Result<(String, String), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = tls_to(ca)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

/// A handset's MQTT options over TLS, trusting `ca`.
fn mqtts_options(addr: SocketAddr, ca: &Path, client: &str, secret: &str) -> MqttOptions {
    let mut options = MqttOptions::new(client, "localhost", addr.port());
    options.set_credentials(client, secret);
    options.set_keep_alive(Duration::from_secs(5));
    let config = client_config(&ClientTls {
        ca_file: Some(ca.to_owned()),
        identity: None,
    })
    .expect("client config");
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    options
}

/// Polls the event loop until CONNACK (Ok) or the first error (Err, in words).
async fn connack(eventloop: &mut rumqttc::EventLoop) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, eventloop.poll()).await {
            Err(_) => return Err("no CONNACK in time".to_owned()),
            Ok(Err(e)) => return Err(format!("{e:?}")),
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                return if ack.code == rumqttc::ConnectReturnCode::Success {
                    Ok(())
                } else {
                    Err(format!("{:?}", ack.code))
                };
            }
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_wss_and_mqtts_let_in_clients_that_trust_the_ca_and_nobody_else() {
    let dir = tempfile::tempdir().expect("dir");
    let certs = dev::generate(&dir.path().join("certs"), &hosts(), 30).expect("certs");
    let other = dev::generate(&dir.path().join("other"), &hosts(), 30).expect("other certs");
    let (server, admin, mqtts, plain_mqtt) =
        start_tls_server(&certs, &dir.path().join("data"), 256).await;
    let http = server.http_addr();

    // HTTPS: a client trusting the CA reads the API; one trusting another CA is refused.
    let (status, body) = https_get(http, &certs.ca, "/healthz", &admin)
        .await
        .expect("https");
    assert!(status.contains("200"), "{status} {body}");
    let refused = https_get(http, &other.ca, "/healthz", &admin)
        .await
        .unwrap_err();
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut plain = TcpStream::connect(http).await.expect("tcp");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));

    // WSS: the command room's WebSocket over the same TLS port gets its hello.
    let tcp = TcpStream::connect(http).await.expect("tcp");
    let tls = tls_to(&certs.ca)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("wss handshake");
    let mut req = format!("wss://localhost:{}/ws", http.port())
        .into_client_request()
        .expect("request");
    let bearer = HeaderValue::from_str(&format!("Bearer {admin}")).expect("header");
    req.headers_mut().insert("authorization", bearer);
    let (mut ws, response) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("wss upgrade");
    assert_eq!(response.status().as_u16(), 101);
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("hello in time");
    let first = first
        .expect("a message")
        .expect("a frame")
        .into_text()
        .expect("text");
    assert!(first.contains("\"hello\""), "{first}");

    // MQTT over TLS: the handset connects with its secret and its fix lands.
    let (client, mut eventloop) =
        AsyncClient::new(mqtts_options(mqtts, &certs.ca, UNIT, SECRET), 16);
    connack(&mut eventloop)
        .await
        .expect("the handset gets in over TLS");
    let topics = Topics::default();
    let report = v1::GpsReport {
        id: "tls-fix-1".into(),
        time_ms: now_ms(),
        unit: UNIT.into(),
        fixes: vec![fix(30.2741, 120.1551, now_ms())],
        buffered: false,
    };
    let unit = UnitId::new(UNIT).expect("id");
    let topic = topics.uplink(&unit, UplinkKind::Gps);
    // Sealed, as the embedded broker requires (tests/tests/sealing.rs).
    let sealed =
        fieldlink_sim::Sealer::new(SECRET, topics.clone()).seal(&topic, &report.encode_to_vec());
    client
        .publish(topic, QoS::AtLeastOnce, false, sealed)
        .await
        .expect("publish");
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    eventually(
        WAIT,
        "the fix sent over TLS is the unit's position",
        || async {
            let (status, body) =
                https_get(http, &certs.ca, &format!("/api/v1/units/{UNIT}"), &admin)
                    .await
                    .ok()?;
            (status.contains("200") && body.contains("30.2741")).then_some(())
        },
    )
    .await;
    pump.abort();

    // A handset that trusts another CA refuses the broker; the plain port is closed.
    let (_c, mut eventloop) = AsyncClient::new(mqtts_options(mqtts, &other.ca, UNIT, SECRET), 16);
    let err = connack(&mut eventloop).await.unwrap_err();
    assert!(err.contains("InvalidCertificate"), "{err}");
    assert!(
        TcpStream::connect(plain_mqtt).await.is_err(),
        "no plain MQTT listener"
    );

    server.shutdown(Duration::from_secs(5)).await;
}

/// A private Mosquitto with one TLS listener (and nothing else) on `port`, from `certs` in `dir`.
struct PrivateMosquitto {
    child: std::process::Child,
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rumqttd alone would do the TLS handshake in its accept loop with no timeout, so one silent
/// socket would stop every TLS handset; fieldlink's own TLS listener does each handshake in its
/// own task with a timeout, and caps connections per address (here 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_client_or_a_crowd_from_one_address_cannot_shut_the_tls_listener() {
    let dir = tempfile::tempdir().expect("dir");
    let certs = dev::generate(&dir.path().join("certs"), &hosts(), 30).expect("certs");
    let (server, _admin, mqtts, _plain) =
        start_tls_server(&certs, &dir.path().join("data"), 3).await;
    let http = server.http_addr();
    let metric = |reason: &'static str| {
        let ca = certs.ca.clone();
        async move {
            let (_, text) = https_get(http, &ca, "/metrics", "").await.expect("metrics");
            let line = format!("fieldlink_mqtt_connect_refused_total{{reason=\"{reason}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&line)?.parse::<f64>().ok())
                .unwrap_or(0.0)
        }
    };

    // Each connection its own unit: a second login of one client id would take over the first.
    let ca = certs.ca.clone();
    let handset = |unit: &'static str| {
        let options = mqtts_options(mqtts, &ca, unit, SECRET);
        async move {
            let (client, mut eventloop) = AsyncClient::new(options, 16);
            let outcome = connack(&mut eventloop).await;
            // Keep polling, so the connection stays up while the caller holds the client.
            // (Only when connected: polling after an error would connect again.)
            let connected = outcome.is_ok();
            let pump =
                tokio::spawn(async move { while connected && eventloop.poll().await.is_ok() {} });
            (outcome, client, pump)
        }
    };

    // A socket that never says a word: a handset still gets in beside it.
    let silent = TcpStream::connect(mqtts).await.expect("tcp");
    let (first, _c1, _p1) = handset("tls-unit-1").await;
    first.expect("a handset gets in beside a silent socket");
    // The third connection from this address fills its 3 slots; a fourth is closed at once.
    let (second, _c2, _p2) = handset("tls-unit-1-2").await;
    second.expect("the second handset connection");
    let (fourth, _c3, _p3) = handset("tls-unit-1-3").await;
    assert!(
        fourth.is_err(),
        "a fourth connection from one address is refused"
    );
    assert_eq!(metric("too_many_connections").await, 1.0);

    // The silent socket is dropped at the handshake timeout (5 s) and counted; its slot comes
    // back and the next handset gets in.
    eventually(
        Duration::from_secs(15),
        "the silent socket timed out",
        || async { (metric("tls_handshake").await == 1.0).then_some(()) },
    )
    .await;
    let (again, _c4, _p4) = handset("tls-unit-1-3").await;
    again.expect("the silent socket's slot is free again");
    drop(silent);
    server.shutdown(Duration::from_secs(2)).await;
}

/// The mosquitto binary, or None (and SKIPPED) outside CI; CI fails without it.
fn mosquitto_binary(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("mosquitto"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: the mosquitto binary is not installed, and CI requires it");
        }
        eprintln!("SKIPPED {test}: the mosquitto binary is not installed");
    }
    found
}

fn start_mosquitto(bin: &Path, dir: &Path, cert: &Path, key: &Path, port: u16) -> PrivateMosquitto {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\npersistence false\nlistener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\nallow_anonymous true\n",
            cert.display(),
            key.display()
        ),
    )
    .expect("conf");
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the private mosquitto did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    PrivateMosquitto { child }
}

/// Whether fieldlink, pointed at `mqtts://host:port` trusting `ca`, connects within a few s.
async fn fieldlink_connects(host: &str, port: u16, ca: &Path, data: &Path) -> bool {
    let mut config = Config {
        data_dir: data.to_owned(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().expect("addr");
    config.mqtt.url = format!("mqtts://{host}:{port}");
    config.mqtt.ca_file = ca.to_owned();
    config.mqtt.client_id = format!("fieldlink-tls-{}", free_port());
    config.validate().expect("valid");
    let server = fieldlink_server::start(config, Arc::new(SystemClock))
        .await
        .expect("fieldlink starts (it connects in the background)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut connected = false;
    while tokio::time::Instant::now() < deadline {
        if server.state().downlink.is_connected() {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown(Duration::from_secs(2)).await;
    connected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fieldlink_refuses_an_external_broker_whose_certificate_it_cannot_trust() {
    let test = "fieldlink_refuses_an_external_broker_whose_certificate_it_cannot_trust";
    let Some(bin) = mosquitto_binary(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let ca = DevCa::new("broker CA").expect("ca");
    let ca_file = dir.path().join("ca.pem");
    dev::write(&ca_file, ca.cert_pem(), false).expect("write");
    let other = dev::generate(&dir.path().join("other"), &hosts(), 30).expect("other CA");
    let cases = [
        (
            "good",
            ca.issue_server(&hosts(), Validity::days_from_now(30)),
            &ca_file,
            true,
        ),
        (
            "another CA",
            ca.issue_server(&hosts(), Validity::days_from_now(30)),
            &other.ca,
            false,
        ),
        (
            "expired",
            ca.issue_server(&hosts(), Validity::expired()),
            &ca_file,
            false,
        ),
        (
            "another host",
            ca.issue_server(
                &["broker.example.org".to_owned()],
                Validity::days_from_now(30),
            ),
            &ca_file,
            false,
        ),
    ];
    for (i, (case, issued, trust, expect)) in cases.into_iter().enumerate() {
        let issued = issued.expect("certificate");
        let case_dir = dir.path().join(format!("case{i}"));
        std::fs::create_dir_all(&case_dir).expect("dir");
        let (cert, key) = (case_dir.join("server.pem"), case_dir.join("server.key"));
        dev::write(&cert, &issued.cert_pem, false).expect("write");
        dev::write(&key, &issued.key_pem, true).expect("write");
        let port = free_port();
        let _broker = start_mosquitto(&bin, &case_dir, &cert, &key, port);
        let connected = fieldlink_connects("localhost", port, trust, &case_dir.join("data")).await;
        assert_eq!(connected, expect, "case {case}: connected = {connected}");
    }
}

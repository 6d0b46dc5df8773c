//! The Mosquitto ACL that `deploy/mosquitto/` ships, tried for real: a private Mosquitto is
//! started on a free port from `deploy/mosquitto/mosquitto.conf` and `deploy/mosquitto/acl`
//! (only the paths and the port are changed), with a password file made by `mosquitto_passwd`,
//! and fieldlink runs behind it as the `fieldlink` account. Handset A then tries to speak as B and
//! to read B's downlinks; an anonymous client tries to connect.
//!
//! Needs `mosquitto` and `mosquitto_passwd` on PATH (Debian's `mosquitto` package, which
//! `.ci/run` installs): without them the test fails under `CI=true` and says SKIPPED elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fieldlink_e2e::{Options, TestServer, eventually, fix, free_port, now_ms};
use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use fieldlink_sim::{Handset, HandsetConfig, QoS};
use prost::Message;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
/// How long a client that must receive nothing listens after the legitimate receiver got it.
const QUIET: Duration = Duration::from_millis(1500);
const SERVER_USER: &str = "fieldlink";
const SERVER_PASSWORD: &str = "the-fieldlink-service-password";

/// `name` found on PATH (or in the sbin directories, where Debian puts the broker).
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Both Mosquitto binaries, or: a panic in CI, a SKIPPED line elsewhere.
fn mosquitto_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (find_binary("mosquitto"), find_binary("mosquitto_passwd")) {
        (Some(broker), Some(passwd)) => Some((broker, passwd)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: mosquitto and mosquitto_passwd must be installed, and CI requires them")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: mosquitto or mosquitto_passwd is not installed (Debian package `mosquitto`)"
            );
            None
        }
    }
}

/// A private Mosquitto, killed when dropped.
struct PrivateMosquitto {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl PrivateMosquitto {
    /// Starts Mosquitto from `deploy/mosquitto/` with these `(username, password)` logins.
    fn start(broker: &Path, passwd: &Path, logins: &[(&str, &str)]) -> PrivateMosquitto {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/mosquitto");
        let dir = tempfile::tempdir().expect("temp dir");
        let passwords = dir.path().join("passwd");
        for (i, (user, password)) in logins.iter().enumerate() {
            let mut cmd = Command::new(passwd);
            if i == 0 {
                cmd.arg("-c");
            }
            let status = cmd
                .arg("-b")
                .arg(&passwords)
                .arg(user)
                .arg(password)
                .status()
                .expect("mosquitto_passwd runs");
            assert!(status.success(), "mosquitto_passwd -b {user} failed");
        }
        std::fs::copy(deploy.join("acl"), dir.path().join("acl")).expect("copy the ACL");
        // The shipped configuration, with its paths pointing here and a free port on loopback.
        let port = free_port();
        let shipped =
            std::fs::read_to_string(deploy.join("mosquitto.conf")).expect("read mosquitto.conf");
        let etc = "/etc/mosquitto/fieldlink/";
        assert!(
            shipped.contains(etc) && shipped.contains("listener 1883\n"),
            "deploy/mosquitto/mosquitto.conf changed shape: update this test"
        );
        let conf = shipped
            .replace(etc, &format!("{}/", dir.path().display()))
            .replace("listener 1883\n", &format!("listener {port} 127.0.0.1\n"));
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write mosquitto.conf");
        // Run as root, Mosquitto drops to its own user: it must be able to read these files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = |p: &Path, mode| {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
            };
            open(dir.path(), 0o755);
            for f in ["passwd", "acl", "mosquitto.conf"] {
                open(&dir.path().join(f), 0o644);
            }
        }
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).expect("log file");
        let child = Command::new(broker)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        let mut m = PrivateMosquitto {
            child,
            addr: format!("127.0.0.1:{port}"),
            dir,
        };
        m.wait_listening();
        m
    }

    fn wait_listening(&mut self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("mosquitto exited ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not listen on {}:\n{}", self.addr, self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for PrivateMosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw MQTT client that logs in as `user`: its CONNACK code, and the client with its event loop.
async fn raw_client(
    addr: &str,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> (ConnectReturnCode, AsyncClient, rumqttc::EventLoop) {
    let (host, port) = addr.split_once(':').expect("host:port");
    let mut options = MqttOptions::new(client_id, host, port.parse().expect("port"));
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let code = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.code,
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("{client_id}: connection failed: {e}"),
            }
        }
    })
    .await
    .expect("CONNACK in time");
    (code, client, eventloop)
}

#[tokio::test]
async fn the_deployed_mosquitto_acl_binds_each_handset_to_its_own_topics() {
    const TEST: &str = "the_deployed_mosquitto_acl_binds_each_handset_to_its_own_topics";
    let Some((broker, passwd)) = mosquitto_or_skip(TEST) else {
        return;
    };
    // The server's units u000 (A) and u001 (B) get secrets that depend on its tag: take the tag
    // first, so the password file can hold the same secrets.
    let tag = fieldlink_e2e::tag();
    let secret = |i: usize| format!("secret-of-unit-{i:03}-{tag}");
    let (secret_a, secret_b) = (secret(0), secret(1));
    let mosquitto = PrivateMosquitto::start(
        &broker,
        &passwd,
        &[
            (SERVER_USER, SERVER_PASSWORD),
            ("u000", &secret_a),
            ("u001", &secret_b),
        ],
    );
    let srv = TestServer::start(Options {
        units: 2,
        tag: Some(tag.clone()),
        external_broker: Some(format!("mqtt://{}", mosquitto.addr)),
        external_credentials: Some((SERVER_USER.into(), SERVER_PASSWORD.into())),
        default_topics: true,
        ..Default::default()
    })
    .await;
    assert_eq!(
        srv.units[0].secret, secret_a,
        "the test's secrets follow TestServer's"
    );
    assert_eq!(
        srv.topics,
        Topics::default(),
        "the ACL is written for the default topics"
    );
    eventually(
        WAIT,
        "fieldlink to be subscribed on the private Mosquitto",
        || async { (srv.get("/readyz", None).await.0 == 200).then_some(()) },
    )
    .await;

    let a = srv.handset(0).await;
    let mut b = srv.handset(1).await;
    let (id_a, id_b) = (srv.units[0].id.clone(), srv.units[1].id.clone());

    // B's own fix lands: the path through the broker works.
    b.publish_fix_qos1(fix(30.2000, 120.1000, now_ms()))
        .await
        .expect("B publishes");
    eventually(WAIT, "B's own fix", || async {
        let u = srv.unit("u001").await;
        (u["lat"].as_f64() == Some(30.2)).then_some(())
    })
    .await;

    // A publishes a fix that says it is B's, on B's topic: the broker drops it. A's own fix,
    // published after it on the same connection, lands, so the forged one had every chance.
    let forged = v1::GpsReport {
        unit: id_b.to_string(),
        // Plausible for B (a few metres from its fix), so only the ACL can keep it out.
        fixes: vec![fix(30.2003, 120.1003, now_ms())],
        ..Default::default()
    };
    a.publish_raw(
        &srv.topics.uplink(&id_b, UplinkKind::Gps),
        forged.encode_to_vec(),
        QoS::AtLeastOnce,
    )
    .await
    .expect("Mosquitto acknowledges a denied QoS 1 publish and drops it");
    a.publish_raw(
        &format!("owntracks/{id_b}/phone"),
        json!({"_type": "location", "lat": 30.2005, "lon": 120.1005, "tst": now_ms() / 1000})
            .to_string()
            .into_bytes(),
        QoS::AtLeastOnce,
    )
    .await
    .expect("a denied OwnTracks publish is acknowledged and dropped too");
    a.publish_fix_qos1(fix(30.3000, 120.3000, now_ms()))
        .await
        .expect("A publishes its own fix");
    eventually(WAIT, "A's own fix", || async {
        let u = srv.unit("u000").await;
        (u["lat"].as_f64() == Some(30.3)).then_some(())
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let u = srv.unit("u001").await;
    assert_eq!(
        (u["lat"].as_f64(), u["lon"].as_f64()),
        (Some(30.2), Some(120.1)),
        "B's position must not move on A's forged fixes"
    );
    assert_eq!(
        srv.metric("fieldlink_mqtt_messages_total{kind=\"owntracks\"}")
            .await,
        0.0,
        "the forged OwnTracks fix must not reach fieldlink"
    );

    // A, now a raw client with A's login, subscribes to B's downlink, to every downlink and to
    // everything. (The broker names every session after its username, so this login would
    // replace A's handset session anyway: close that one first.) Mosquitto 2.0 grants such
    // subscriptions and filters each message by the ACL when it delivers; whatever it answers,
    // nothing of B's may arrive.
    a.disconnect().await.expect("A's handset disconnects");
    let (code, spy, mut spy_loop) = raw_client(
        &mosquitto.addr,
        "u000-spy",
        Some((id_a.as_str(), &secret_a)),
    )
    .await;
    assert_eq!(code, ConnectReturnCode::Success, "A logs in");
    let filters = [
        srv.topics.downlink(&id_b),
        "fl/v1/u/+/down".to_owned(),
        "#".to_owned(),
    ];
    for filter in &filters {
        spy.subscribe(filter.clone(), rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
    }
    let codes = tokio::time::timeout(WAIT, async {
        let mut codes = Vec::new();
        while codes.len() < filters.len() {
            if let Event::Incoming(Packet::SubAck(ack)) =
                spy_loop.poll().await.expect("spy connection")
            {
                codes.extend(ack.return_codes);
            }
        }
        codes
    })
    .await
    .expect("SUBACKs in time");
    assert_eq!(codes.len(), filters.len(), "one SUBACK code per filter");
    eprintln!("SUBACK codes for A's spying filters {filters:?}: {codes:?}");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let spied = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(event) = spy_loop.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = event {
                    seen.lock().expect("lock").push(p.topic);
                }
            }
        })
    };

    // fieldlink asks B for video: B gets the request on its downlink, A gets nothing.
    let (status, v) = srv
        .post(
            "/api/v1/units/u001/video/start",
            Some(&srv.admin),
            json!({"reason": "acl test"}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let request = v["request"].as_str().expect("request id").to_owned();
    let got = tokio::time::timeout(WAIT, async {
        loop {
            match b.next_downlink(WAIT).await {
                Some(v1::Downlink {
                    body: Some(v1::downlink::Body::Video(r)),
                    ..
                }) => return r.request_id,
                Some(_) => continue,
                None => panic!("B's downlink ended"),
            }
        }
    })
    .await
    .expect("B receives its video request");
    assert_eq!(got, request);
    tokio::time::sleep(QUIET).await;
    spied.abort();
    let seen = seen.lock().expect("lock").clone();
    assert!(seen.is_empty(), "A's spy received {seen:?}");

    // Nobody gets in without a login, nor with a wrong password, nor as B with A's password.
    for (who, login) in [
        ("anonymous", None),
        ("wrong password", Some(("u001", "not-the-secret"))),
        ("A's password for B", Some(("u001", secret_a.as_str()))),
    ] {
        let (code, _, _) = raw_client(&mosquitto.addr, "intruder", login).await;
        assert_ne!(code, ConnectReturnCode::Success, "{who} must be refused");
    }
    // Still B's position, after all of it.
    assert_eq!(srv.unit("u001").await["lat"].as_f64(), Some(30.2));
    srv.stop().await;
    drop(mosquitto);
}

#[tokio::test]
async fn a_handset_cannot_take_over_another_units_session_by_its_client_id() {
    const TEST: &str = "a_handset_cannot_take_over_another_units_session_by_its_client_id";
    let Some((broker, passwd)) = mosquitto_or_skip(TEST) else {
        return;
    };
    let mosquitto = PrivateMosquitto::start(
        &broker,
        &passwd,
        &[
            ("u000", "secret-of-a-000000"),
            ("u001", "secret-of-b-111111"),
        ],
    );
    // Mosquitto's ACL binds topics to logins: payloads go plain, as on any external broker.
    let mut b_cfg = HandsetConfig::new(
        mosquitto.addr.clone(),
        UnitId::new("u001").expect("id"),
        "secret-of-b-111111",
        Topics::default(),
    );
    b_cfg.sealed = false;
    let b = Handset::connect(b_cfg).await.expect("B connects");
    // A logs in with its own credentials but B's client id: the broker uses A's username as the
    // client id instead, so B's session stays.
    let (code, _intruder, mut intruder_loop) = raw_client(
        &mosquitto.addr,
        "u001",
        Some(("u000", "secret-of-a-000000")),
    )
    .await;
    assert_eq!(code, ConnectReturnCode::Success);
    let keep_polling = tokio::spawn(async move { while intruder_loop.poll().await.is_ok() {} });
    tokio::time::sleep(QUIET).await;
    assert!(
        b.is_connected(),
        "B must stay connected:\n{}",
        mosquitto.log()
    );
    b.publish_fix_qos1(fix(30.2, 120.1, now_ms()))
        .await
        .expect("B's connection still works");
    keep_polling.abort();
}

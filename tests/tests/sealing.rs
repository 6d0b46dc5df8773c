//! Sealed payloads on the embedded broker (docs/security.md), tried the way a curious or stolen
//! handset would: rumqttd has no topic ACL, so handset A (u000), logged in with its own secret,
//! can publish on handset B's (u001) topics and subscribe to anything. Nothing it does there
//! may move B, answer for B, or let A read B's orders:
//!
//! - A's fix on B's topic, sealed with A's key, is refused as `forged`; an unsealed one as
//!   `unsealed`; B's own sealed fix, captured and published again, as `replayed`, also after
//!   fieldlink restarts; B's position never moves.
//! - A subscribed to B's downlink, to `+` downlinks and to `#` does receive the bytes (the broker
//!   delivers them), but cannot open them; B can.
//! - Rotating B's secret or disabling B takes effect on B's next message, while B stays connected.

use std::time::Duration;

use fieldlink_e2e::dispatch::{SITE, downlink, manual_clock, one_click, place, work_order};
use fieldlink_e2e::{Options, TestServer, eventually, fix};
use fieldlink_proto::{UplinkKind, v1};
use fieldlink_seal::SealKey;
use fieldlink_sim::QoS;
use prost::Message;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish};
use serde_json::json;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
/// Where B stands; A's forgeries try to move B to FAR.
const B_AT: (f64, f64) = (30.2760, 120.1570);
const FAR: (f64, f64) = (30.3000, 120.2000);

/// A raw MQTT client logged in as unit `i`, subscribed to `filters` (rumqttd lets it), handing
/// over everything it receives. Returns once every SUBACK is in.
async fn spy(
    srv: &TestServer,
    i: usize,
    filters: &[String],
) -> (AsyncClient, mpsc::UnboundedReceiver<Publish>) {
    let u = &srv.units[i];
    let (host, port) = srv.broker.split_once(':').expect("host:port");
    // Its own client id would take over the unit's handset session: use a second login.
    let mut options = MqttOptions::new(u.id.as_str(), host, port.parse().expect("port"));
    options
        .set_credentials(u.id.as_str(), u.secret.clone())
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    for f in filters {
        client
            .subscribe(f.as_str(), rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let want = filters.len();
    tokio::spawn(async move {
        let mut subacks = 0;
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subacks += 1;
                    if subacks == want
                        && let Some(done) = subscribed_tx.take()
                    {
                        let _ = done.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(WAIT, subscribed)
        .await
        .expect("SUBACKs in time")
        .expect("spy running");
    (client, rx)
}

/// The unit's position as the API shows it.
async fn lat_of(srv: &TestServer, unit: &str) -> Option<f64> {
    srv.unit(unit).await["lat"].as_f64()
}

/// Publishes `payload` on `topic` from `client` and waits until `reason` is counted once more.
async fn refused(
    srv: &TestServer,
    client: &AsyncClient,
    topic: &str,
    payload: Vec<u8>,
    reason: &str,
) {
    let series = format!("fieldlink_mqtt_rejected_total{{reason=\"{reason}\"}}");
    let before = srv.metric(&series).await;
    client
        .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
        .await
        .expect("publish queued");
    eventually(WAIT, &format!("{reason} counted"), || async {
        (srv.metric(&series).await == before + 1.0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handset_cannot_move_another_unit_on_the_embedded_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tag = fieldlink_e2e::tag();
    let opts = || Options {
        units: 2,
        data_dir: Some(dir.path().to_path_buf()),
        tag: Some(tag.clone()),
        ..Default::default()
    };
    let srv = TestServer::start(opts()).await;
    let b_unit = srv.units[1].id.clone();
    let b_gps = srv.topics.uplink(&b_unit, UplinkKind::Gps);
    // A logs in with its own secret and listens on B's topic, as rumqttd allows.
    let (a, mut heard) = spy(&srv, 0, std::slice::from_ref(&b_gps)).await;
    let b = srv.handset(1).await;
    // A minute ago, so that B's own next fix, 55 m on, is a walk and not a jump.
    b.publish_fix_qos1(fix(B_AT.0, B_AT.1, fieldlink_e2e::now_ms() - 60_000))
        .await
        .expect("B publishes");
    eventually(WAIT, "B's fix", || async {
        (lat_of(&srv, "u001").await == Some(B_AT.0)).then_some(())
    })
    .await;
    let captured = tokio::time::timeout(WAIT, heard.recv())
        .await
        .expect("A hears B's fix in time")
        .expect("spy running")
        .payload
        .to_vec();
    assert!(fieldlink_seal::is_sealed(&captured), "B's fix went sealed");

    // A's forgery: a fix for B, far away.
    let forged = v1::GpsReport {
        id: "not-from-b".into(),
        unit: b_unit.to_string(),
        fixes: vec![fix(FAR.0, FAR.1, fieldlink_e2e::now_ms())],
        ..Default::default()
    }
    .encode_to_vec();
    let a_sealer = fieldlink_sim::Sealer::new(&srv.units[0].secret, srv.topics.clone());
    refused(&srv, &a, &b_gps, a_sealer.seal(&b_gps, &forged), "forged").await;
    refused(&srv, &a, &b_gps, forged.clone(), "unsealed").await;
    refused(&srv, &a, &b_gps, captured.clone(), "replayed").await;
    assert_eq!(lat_of(&srv, "u001").await, Some(B_AT.0), "B has not moved");
    assert!(b.is_connected());

    // B's own next fix still lands.
    b.publish_fix_qos1(fix(B_AT.0 + 0.0005, B_AT.1, fieldlink_e2e::now_ms()))
        .await
        .expect("B publishes");
    eventually(WAIT, "B's next fix", || async {
        (lat_of(&srv, "u001").await == Some(B_AT.0 + 0.0005)).then_some(())
    })
    .await;
    drop((a, b));
    srv.stop().await;

    // After a restart the replay marks are still known: the captured fix is still refused.
    let srv = TestServer::start(opts()).await;
    let (a, _heard) = spy(&srv, 0, std::slice::from_ref(&b_gps)).await;
    refused(&srv, &a, &b_gps, captured, "replayed").await;
    assert_eq!(lat_of(&srv, "u001").await, Some(B_AT.0 + 0.0005));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_units_work_order_reaches_a_curious_handset_only_as_ciphertext() {
    let clock = manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 3,
            ..Default::default()
        },
        clock.clone(),
    )
    .await;
    let a_down = srv.topics.downlink(&srv.units[0].id);
    let all_down = a_down.replace("/u000/", "/+/");
    // u002 is the curious one: A's downlink, every downlink, everything.
    let (_spy, mut heard) = spy(&srv, 2, &[a_down.clone(), all_down, "#".to_owned()]).await;
    let (mut a, b) = (srv.handset(0).await, srv.handset(1).await);
    let description = "lost child, red coat, near the school gate";
    let (status, body) = srv
        .post(
            "/api/v1/incidents",
            Some(&srv.admin),
            json!({"kind": "lost_person", "priority": "high", "lat": SITE.0, "lon": SITE.1,
                   "description": description}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let incident = body["incident"]["id"].as_str().expect("id").to_owned();
    place(&srv, &clock, &a, &b, &incident).await;
    one_click(&srv, &incident, "u000").await;
    let order = downlink(&mut a, "A's work order", work_order).await;
    assert_eq!(order.incident_id, incident, "A reads its own order");

    // What the curious handset got of A's downlink: bytes it cannot open.
    let a_key = SealKey::derive(&srv.units[0].secret);
    let spy_key = SealKey::derive(&srv.units[2].secret);
    let mut copies = 0;
    // `#` also brings fieldlink's own traffic, which never stops: listen for a while.
    let listen_until = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(p)) = tokio::time::timeout_at(listen_until, heard.recv()).await {
        if p.topic != a_down {
            continue;
        }
        copies += 1;
        assert!(fieldlink_seal::open(&spy_key, "down", &p.payload).is_err());
        assert!(
            !String::from_utf8_lossy(&p.payload).contains("red coat"),
            "nothing of the order in clear"
        );
        let opened = fieldlink_seal::open(&a_key, "down", &p.payload).expect("A's key opens it");
        let d = v1::Downlink::decode(opened.payload.as_slice()).expect("a Downlink");
        assert!(work_order(&d).is_some());
    }
    assert!(
        copies >= 1,
        "the broker delivered A's downlink to the subscriber"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_secret_or_disabling_a_unit_stops_its_next_message_while_connected() {
    let srv = TestServer::start(Options {
        units: 2,
        ..Default::default()
    })
    .await;
    let (a, b) = (srv.handset(0).await, srv.handset(1).await);
    let now = fieldlink_e2e::now_ms();
    b.publish_fix_qos1(fix(B_AT.0, B_AT.1, now))
        .await
        .expect("B");
    eventually(WAIT, "B's fix", || async {
        (lat_of(&srv, "u001").await == Some(B_AT.0)).then_some(())
    })
    .await;

    let forged = "fieldlink_mqtt_rejected_total{reason=\"forged\"}";
    let (status, body) = srv
        .post(
            "/api/v1/units/u001/rotate-secret",
            Some(&srv.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let before = srv.metric(forged).await;
    b.publish_fix_qos1(fix(FAR.0, FAR.1, now + 1000))
        .await
        .expect("the broker still takes B's publish");
    eventually(WAIT, "B's old-key fix refused", || async {
        (srv.metric(forged).await == before + 1.0).then_some(())
    })
    .await;
    assert_eq!(lat_of(&srv, "u001").await, Some(B_AT.0));

    let unknown = "fieldlink_mqtt_rejected_total{reason=\"unknown_unit\"}";
    let (status, body) = srv
        .post("/api/v1/units/u000/disable", Some(&srv.admin), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = srv.metric(unknown).await;
    a.publish_raw(
        &srv.topics.uplink(&srv.units[0].id, UplinkKind::Gps),
        v1::GpsReport {
            id: "after-disable".into(),
            fixes: vec![fix(FAR.0, FAR.1, now + 2000)],
            ..Default::default()
        }
        .encode_to_vec(),
        QoS::AtLeastOnce,
    )
    .await
    .expect("the broker still takes A's publish");
    eventually(WAIT, "disabled A's fix refused", || async {
        (srv.metric(unknown).await == before + 1.0).then_some(())
    })
    .await;
    assert_ne!(lat_of(&srv, "u000").await, Some(FAR.0));
    srv.stop().await;
}

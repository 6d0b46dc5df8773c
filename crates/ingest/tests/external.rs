//! The same ingest path through an external broker: the Mosquitto this machine (and CI) runs
//! at 127.0.0.1:1883, anonymous, with a topic root of its own per test.
//!
//! Outside CI, a missing Mosquitto skips the test with a printed reason; with `CI=true` it fails.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use fieldlink_ingest::{ExternalBrokerConfig, IngestMetrics, Uplink};
use fieldlink_proto::{UplinkKind, v1};
use prometheus_client::registry::Registry;
use prost::Message;
use tokio_util::sync::CancellationToken;

const MOSQUITTO: &str = "127.0.0.1:1883";

/// True when Mosquitto answers; otherwise skips (prints why) or, in CI, fails.
fn mosquitto_or_skip() -> bool {
    let addr: SocketAddr = MOSQUITTO.parse().expect("address");
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Mosquitto is not reachable at {MOSQUITTO}, and CI=true requires it");
    }
    println!("SKIPPED (Mosquitto not reachable at {MOSQUITTO})");
    false
}

fn start_external(client_id: &str) -> Ingest {
    let topics = unique_topics();
    let mut registry = Registry::default();
    let metrics = IngestMetrics::register(&mut registry);
    let shutdown = CancellationToken::new();
    let cfg = ExternalBrokerConfig {
        url: format!("mqtt://{MOSQUITTO}"),
        client_id: format!("{client_id}-{}", topics.root().replace('/', "-")),
        ..Default::default()
    };
    let source =
        fieldlink_ingest::connect(&cfg, &topics, &metrics, shutdown.clone()).expect("valid config");
    Ingest::run(topics, registry, metrics, source, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_mosquitto_a_fix_a_batch_owntracks_and_a_downlink() {
    if !mosquitto_or_skip() {
        return;
    }
    let mut ingest = start_external("fl-ingest-test");
    let downlink = ingest.downlink.clone();
    eventually("connected to Mosquitto", WAIT, || downlink.is_connected()).await;
    let t = ingest.topics.clone();
    let addr: SocketAddr = MOSQUITTO.parse().expect("address");
    let client_id = format!("p7-{}", t.root().replace('/', "-"));
    let mut p7 = Handset::connect(addr, None, &client_id).await;
    p7.client
        .subscribe(t.downlink(&unit("p7")), rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");

    // fieldlink's SUBSCRIBE may still be on its way: repeat the first fix until one lands.
    let gps_topic = t.uplink(&unit("p7"), UplinkKind::Gps);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        p7.publish(&gps_topic, gps("one", "p7", vec![fix(1)])).await;
        let got = tokio::time::timeout(Duration::from_millis(200), ingest.received.recv()).await;
        if let Ok(Some(r)) = got {
            assert!(is_gps(&r, "one"));
            assert_eq!(r.received_at, START);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no fix through Mosquitto"
        );
    }

    let batch: Vec<_> = (2..=4).map(fix).collect();
    p7.publish(&gps_topic, gps("batch", "p7", batch.clone()))
        .await;
    let r = ingest.next_where("the batch", |r| is_gps(r, "batch")).await;
    let Uplink::Gps(report) = &r.envelope.message else {
        unreachable!()
    };
    assert_eq!(report.fixes, batch);

    let json = r#"{"_type":"location","lat":30.26,"lon":120.18,"tst":1764446399,"acc":9}"#;
    p7.publish(&t.owntracks(&unit("p7"), "phone"), json).await;
    let r = ingest
        .next_where("the OwnTracks fix", |r| {
            matches!(r.envelope.message, Uplink::OwnTracksLocation { .. })
        })
        .await;
    assert_eq!(r.envelope.unit, unit("p7"));

    // A bad message is counted, and the next good one still lands.
    p7.publish(&gps_topic, vec![0xff, 0xff]).await;
    let m = ingest.metrics.clone();
    eventually("malformed counted", WAIT, || {
        m.rejected_total("malformed") == 1
    })
    .await;
    p7.publish(&gps_topic, gps("after", "p7", vec![fix(9)]))
        .await;
    ingest
        .next_where("the fix after the bad one", |r| is_gps(r, "after"))
        .await;

    let order = v1::Downlink {
        id: "d-1".into(),
        ..Default::default()
    }
    .encode_to_vec();
    ingest
        .downlink
        .publish(&unit("p7"), Bytes::from(order))
        .await
        .expect("downlink publish");
    let got = tokio::time::timeout(WAIT, p7.incoming.recv())
        .await
        .expect("downlink within the wait")
        .expect("client alive");
    assert_eq!(got.topic, t.downlink(&unit("p7")));
    assert_eq!(
        v1::Downlink::decode(got.payload).expect("decodes").id,
        "d-1"
    );

    ingest.shutdown.cancel();
    let worker = ingest.worker.take().expect("worker");
    tokio::time::timeout(Duration::from_secs(3), worker.join())
        .await
        .expect("the client task ends after shutdown");
    assert!(!ingest.downlink.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_retried_and_not_ready() {
    let topics = unique_topics();
    let mut registry = Registry::default();
    let metrics = IngestMetrics::register(&mut registry);
    let shutdown = CancellationToken::new();
    let cfg = ExternalBrokerConfig {
        url: format!("mqtt://{}", free_port()),
        client_id: "fl-nobody".into(),
        ..Default::default()
    };
    let source =
        fieldlink_ingest::connect(&cfg, &topics, &metrics, shutdown.clone()).expect("valid config");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!source.downlink.is_connected(), "nothing listens there");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), source.worker.join())
        .await
        .expect("the client task ends during its backoff");

    for bad in [
        "http://x:1",
        "mqtt://:1883",
        "mqtt://host:port",
        "mqtts://:8883",
    ] {
        let cfg = ExternalBrokerConfig {
            url: bad.into(),
            ..Default::default()
        };
        let err = fieldlink_ingest::connect(&cfg, &topics, &metrics, CancellationToken::new())
            .expect_err(bad);
        assert!(err.to_string().contains(bad), "{err}");
    }
    // mqtts:// is TLS: a CA file that is not there is named in the error.
    let cfg = ExternalBrokerConfig {
        url: "mqtts://broker.example.org:8883".into(),
        tls: fieldlink_tls::ClientTls {
            ca_file: Some("no-such-ca.pem".into()),
            identity: None,
        },
        ..Default::default()
    };
    let err = fieldlink_ingest::connect(&cfg, &topics, &metrics, CancellationToken::new())
        .expect_err("a missing CA file");
    assert!(err.to_string().contains("no-such-ca.pem"), "{err}");
}

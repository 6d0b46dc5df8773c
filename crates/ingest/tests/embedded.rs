//! The embedded broker end to end: real rumqttd on a free port, real rumqttc handsets with
//! credentials, the real pipeline.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use fieldlink_ingest::{
    EmbeddedBroker, EmbeddedBrokerConfig, IngestError, IngestMetrics, Sealing, Uplink,
};
use fieldlink_proto::{UplinkKind, v1};
use fieldlink_seal::SealKey;
use prometheus_client::registry::Registry;
use prost::Message;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_a_batch_and_an_owntracks_location_arrive() {
    let (broker, mut ingest) = start_embedded();
    let p7 = Handset::unit(broker.listen_addr(), "p7", "s3cret-p7").await;
    let t = ingest.topics.clone();

    p7.publish(
        &t.uplink(&unit("p7"), UplinkKind::Gps),
        gps("one", "p7", vec![fix(1)]),
    )
    .await;
    let r = ingest
        .next_where("the single fix", |r| is_gps(r, "one"))
        .await;
    assert_eq!(r.envelope.unit, unit("p7"));
    assert_eq!(
        r.received_at, START,
        "received_at comes from the injected clock"
    );
    let Uplink::Gps(report) = &r.envelope.message else {
        unreachable!()
    };
    assert_eq!(report.fixes, vec![fix(1)]);

    ingest.clock.advance(Duration::from_secs(5));
    let batch: Vec<_> = (2..=5).map(fix).collect();
    p7.publish(
        &t.uplink(&unit("p7"), UplinkKind::Gps),
        gps("batch", "", batch.clone()),
    )
    .await;
    let r = ingest.next_where("the batch", |r| is_gps(r, "batch")).await;
    assert_eq!(r.received_at, START.plus(Duration::from_secs(5)));
    let Uplink::Gps(report) = &r.envelope.message else {
        unreachable!()
    };
    assert_eq!(report.fixes, batch);

    let json = r#"{"_type":"location","lat":30.2601,"lon":120.1779,"tst":1764446399,"acc":9,"vel":7.2,"batt":63,"tid":"p7"}"#;
    p7.publish(&t.owntracks(&unit("p7"), "phone"), json).await;
    let r = ingest
        .next_where("the OwnTracks fix", |r| {
            matches!(r.envelope.message, Uplink::OwnTracksLocation { .. })
        })
        .await;
    assert_eq!(r.envelope.unit, unit("p7"));
    let Uplink::OwnTracksLocation { device, location } = &r.envelope.message else {
        unreachable!()
    };
    assert_eq!(device, "phone");
    assert_eq!(
        (location.lat, location.lon, location.tst),
        (30.2601, 120.1779, 1_764_446_399)
    );

    assert_eq!(ingest.metrics.messages_total("gps"), 2);
    assert_eq!(ingest.metrics.messages_total("owntracks"), 1);
    assert_eq!(
        ingest.sample("fieldlink_mqtt_messages_total{kind=\"gps\"}"),
        2.0
    );
    assert!(ingest.sample("fieldlink_decode_seconds_count") >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_at_connect() {
    let (broker, ingest) = start_embedded();
    let addr = broker.listen_addr();
    // A good handset first, so the listener is surely up and refusals are the broker's.
    let _p7 = Handset::unit(addr, "p7", "s3cret-p7").await;

    assert!(
        try_connect(addr, "bike-2", "s3cret-b2", "bike-2")
            .await
            .is_ok()
    );
    // The handset is told why, in the CONNACK's return code (rumqttd alone just closed).
    for (user, pass, client_id, case, said) in [
        (
            "bike-2",
            "wrong",
            "bike-2",
            "wrong password",
            "NotAuthorized",
        ),
        (
            "ghost",
            "s3cret-b2",
            "ghost",
            "unknown unit",
            "NotAuthorized",
        ),
        (
            "bike-2",
            "s3cret-b2",
            "p7",
            "client id is not the username",
            "NotAuthorized",
        ),
        ("bike-2", "", "bike-2", "empty password", "NotAuthorized"),
        (
            "bike+2",
            "s3cret-b2",
            "bike+2",
            "a wildcard in the id",
            "BadClientId",
        ),
    ] {
        let answer = try_connect(addr, user, pass, client_id).await;
        let err = answer.expect_err(case);
        assert!(err.contains(said), "{case}: {err}");
    }
    let m = &ingest.metrics;
    assert_eq!(m.connect_refused_total("bad_credentials"), 4);
    assert_eq!(m.connect_refused_total("bad_identity"), 1);
}

/// Both public listeners are fieldlink's own, the plain one too: at most
/// `max_connections_per_address` connections from one address (one more is closed at once), a
/// socket that never sends its CONNECT is closed at `connection_timeout`, bytes that are not
/// MQTT are closed at once; each counted, and the slots come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_listener_caps_an_address_and_closes_silent_and_garbled_sockets() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let cfg = EmbeddedBrokerConfig {
        listen: free_port(),
        max_connections_per_address: 2,
        // The test connects from this host, which is uncapped by default.
        uncapped_addresses: Vec::new(),
        connection_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let (broker, ingest) = start_embedded_on(&cfg, test_limits(), Sealing::Optional);
    let addr = broker.listen_addr();
    let m = ingest.metrics.clone();
    /// Reads until the server closes; the bytes it said first.
    async fn closed_by_server(tcp: &mut TcpStream) -> Vec<u8> {
        let mut said = Vec::new();
        tokio::time::timeout(WAIT, tcp.read_to_end(&mut said))
            .await
            .expect("closed by the server in time")
            .expect("read");
        said
    }

    let p7 = Handset::unit(addr, "p7", "s3cret-p7").await;
    let mut silent = TcpStream::connect(addr).await.expect("tcp");
    // A third from this address: closed at once, before a word.
    let mut third = TcpStream::connect(addr).await.expect("tcp");
    assert!(closed_by_server(&mut third).await.is_empty());
    eventually("counted", WAIT, || {
        m.connect_refused_total("too_many_connections") == 1
    })
    .await;

    // The silent socket goes at the timeout (1 s here), counted; its slot comes back.
    assert!(closed_by_server(&mut silent).await.is_empty());
    eventually("the silent socket counted", WAIT, || {
        m.connect_refused_total("bad_connect") == 1
    })
    .await;
    let mut garbled = TcpStream::connect(addr).await.expect("tcp");
    garbled
        .write_all(b"GET / HTTP/1.1\r\nHost: fieldlink\r\n\r\n")
        .await
        .expect("write");
    assert!(closed_by_server(&mut garbled).await.is_empty());
    eventually("the garbled socket counted", WAIT, || {
        m.connect_refused_total("bad_connect") == 2
    })
    .await;
    // Its slot came back too: a handset gets in, and the first one was never disturbed.
    let b2 = Handset::unit(addr, "bike-2", "s3cret-b2").await;
    assert!(p7.is_connected() && b2.is_connected());
    assert_eq!(m.connect_refused_total("too_many_connections"), 1);
}

/// Every validation rule: the bad input raises its reason counter, and the next good message
/// from the same connection still lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_counts_its_reason_and_the_next_good_message_lands() {
    let (broker, mut ingest) = start_embedded();
    let addr = broker.listen_addr();
    let p7 = Handset::unit(addr, "p7", "s3cret-p7").await;
    let p9 = Handset::unit(addr, "p9", "s3cret-p9").await; // let in by the broker, disabled
    let t = ingest.topics.clone();
    let gps_topic = t.uplink(&unit("p7"), UplinkKind::Gps);
    let ot_topic = t.owntracks(&unit("p7"), "phone");
    let bad_fix = |f: fn(&mut v1::GpsFix)| {
        let mut x = fix(1);
        f(&mut x);
        gps("bad", "p7", vec![x])
    };
    let cases: Vec<(&str, &Handset, String, Bytes)> = vec![
        (
            "bad_topic",
            &p7,
            format!("{}/u/p7/teleport", t.root()),
            gps("x", "p7", vec![fix(1)]),
        ),
        (
            "bad_topic",
            &p7,
            format!("{}/p7/phone/event", t.owntracks_prefix()),
            Bytes::from_static(b"{}"),
        ),
        (
            "too_large",
            &p7,
            gps_topic.clone(),
            Bytes::from(vec![0u8; 3000]),
        ),
        (
            "malformed",
            &p7,
            gps_topic.clone(),
            Bytes::from_static(&[0xff, 0xff, 0xff]),
        ),
        (
            "malformed",
            &p7,
            ot_topic.clone(),
            Bytes::from_static(b"{\"_type\":"),
        ),
        (
            "unit_mismatch",
            &p7,
            gps_topic.clone(),
            gps("x", "bike-2", vec![fix(1)]),
        ),
        (
            "unknown_unit",
            &p9,
            t.uplink(&unit("p9"), UplinkKind::Gps),
            gps("x", "p9", vec![fix(1)]),
        ),
        (
            "bad_coordinates",
            &p7,
            gps_topic.clone(),
            bad_fix(|f| f.lat = 91.0),
        ),
        (
            "bad_value",
            &p7,
            gps_topic.clone(),
            bad_fix(|f| f.speed_mps = Some(-3.0)),
        ),
        (
            "bad_value",
            &p7,
            gps_topic.clone(),
            bad_fix(|f| f.heading_deg = Some(361.0)),
        ),
        (
            "bad_value",
            &p7,
            gps_topic.clone(),
            bad_fix(|f| f.battery_pct = Some(120.0)),
        ),
        (
            "empty_batch",
            &p7,
            gps_topic.clone(),
            gps("x", "p7", vec![]),
        ),
        (
            "batch_too_large",
            &p7,
            gps_topic.clone(),
            gps("x", "p7", (0..6).map(fix).collect()),
        ),
        (
            "ignored_type",
            &p7,
            ot_topic.clone(),
            Bytes::from_static(br#"{"_type":"waypoint","desc":"x"}"#),
        ),
        (
            "forged",
            &p7,
            ot_topic.clone(),
            Bytes::from_static(br#"{"_type":"encrypted","data":"AAAA"}"#),
        ),
    ];
    let mut covered = std::collections::HashSet::new();
    for (i, (reason, handset, topic, payload)) in cases.into_iter().enumerate() {
        covered.insert(reason);
        let before = ingest.metrics.rejected_total(reason);
        handset.publish(&topic, payload.to_vec()).await;
        let metrics = ingest.metrics.clone();
        eventually(&format!("case {i}: {reason} counted"), WAIT, || {
            metrics.rejected_total(reason) == before + 1
        })
        .await;
        let series = format!("fieldlink_mqtt_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(
            ingest.sample(&series),
            (before + 1) as f64,
            "{series} in /metrics"
        );

        let id = format!("good-{i}");
        p7.publish(&gps_topic, gps(&id, "p7", vec![fix(i as u64)]))
            .await;
        ingest
            .next_where(&format!("the good message after {reason}"), |r| {
                is_gps(r, &id)
            })
            .await;
        assert!(
            p7.is_connected(),
            "{reason}: the handset must not be cut off"
        );
    }
    // `throttled` needs a unit over its rate: `a_flooding_unit_is_throttled_before_decoding`;
    // `unsealed` and `replayed` need sealing required: `sealing_required_refuses_...`.
    covered.extend(["throttled", "unsealed", "replayed"]);
    for reason in fieldlink_ingest::Rejection::REASONS {
        assert!(covered.contains(reason), "no case for {reason}");
    }
}

/// With sealing required (the server's setting on this broker): a sealed fix lands; a plain one,
/// one sealed with another unit's key, and a replayed one are refused and counted; the handset
/// stays connected throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_required_refuses_unsealed_forged_and_replayed_payloads() {
    let (broker, mut ingest) = start_embedded_with(test_limits(), Sealing::Required);
    let p7 = Handset::unit(broker.listen_addr(), "p7", "s3cret-p7").await;
    let topic = ingest.topics.uplink(&unit("p7"), UplinkKind::Gps);
    let key = SealKey::derive("s3cret-p7");
    let sealed = |id: &str, counter: u64| {
        fieldlink_seal::seal(
            &key,
            "gps",
            counter,
            rand_bytes(),
            &gps(id, "p7", vec![fix(1)]),
        )
    };
    let first = sealed("sealed-1", 1_000);
    p7.publish(&topic, first.clone()).await;
    let got = ingest
        .next_where("the sealed fix", |r| is_gps(r, "sealed-1"))
        .await;
    assert_eq!(
        got.envelope.freshness,
        Some(fieldlink_ingest::Freshness::Counter(1_000))
    );

    let other_key = SealKey::derive("s3cret-b2");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unsealed", gps("plain", "p7", vec![fix(2)]).to_vec()),
        (
            "forged",
            fieldlink_seal::seal(
                &other_key,
                "gps",
                2_000,
                rand_bytes(),
                &gps("b", "p7", vec![]),
            ),
        ),
        ("replayed", first),
        ("replayed", sealed("older", 999)),
    ];
    for (reason, payload) in cases {
        let before = ingest.metrics.rejected_total(reason);
        p7.publish(&topic, payload).await;
        let metrics = ingest.metrics.clone();
        eventually(&format!("{reason} counted"), WAIT, || {
            metrics.rejected_total(reason) == before + 1
        })
        .await;
    }
    p7.publish(&topic, sealed("sealed-2", 1_001)).await;
    ingest
        .next_where("the next sealed fix", |r| is_gps(r, "sealed-2"))
        .await;
    assert!(p7.is_connected());
}

fn rand_bytes() -> [u8; 16] {
    static N: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    [N.fetch_add(1, std::sync::atomic::Ordering::Relaxed); 16]
}

/// A unit over its rate (here 1 a second, bursts of 5) has the excess dropped before decoding
/// and counted as `throttled`; another unit's message still lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_unit_is_throttled_before_decoding() {
    let limits = fieldlink_ingest::Limits {
        throttle: fieldlink_ingest::ThrottleConfig {
            rate_per_s: 1,
            burst: 5,
        },
        ..test_limits()
    };
    let (broker, mut ingest) = start_embedded_with(limits, fieldlink_ingest::Sealing::Optional);
    let p7 = Handset::unit(broker.listen_addr(), "p7", "s3cret-p7").await;
    let bike = Handset::unit(broker.listen_addr(), "bike-2", "s3cret-b2").await;
    let topic = ingest.topics.uplink(&unit("p7"), UplinkKind::Gps);
    let started = std::time::Instant::now();
    for i in 0..20u64 {
        p7.publish(&topic, gps(&format!("f{i}"), "p7", vec![fix(i)]))
            .await;
    }
    let bike_topic = ingest.topics.uplink(&unit("bike-2"), UplinkKind::Gps);
    bike.publish(&bike_topic, gps("calm", "bike-2", vec![fix(1)]))
        .await;
    ingest
        .next_where("the calm unit's fix", |r| is_gps(r, "calm"))
        .await;
    let metrics = ingest.metrics.clone();
    eventually("all 20 counted", WAIT, || {
        metrics.messages_total("gps") + metrics.rejected_total("throttled") == 21
    })
    .await;
    // Five at once, plus one a second while they were sent.
    let refill = started.elapsed().as_secs();
    let passed = metrics.messages_total("gps") - 1;
    assert!(
        passed >= 5 && passed <= 5 + refill + 1,
        "{passed} of p7's 20 passed"
    );
    assert_eq!(
        ingest.sample("fieldlink_mqtt_rejected_total{reason=\"throttled\"}"),
        (20 - passed) as f64
    );
}

/// More than rumqttd's 200-message link buffer: proves the link answers `Unschedule`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_2000_messages_all_arrive() {
    let (broker, mut ingest) = start_embedded();
    let p7 = Handset::unit(broker.listen_addr(), "p7", "s3cret-p7").await;
    let topic = ingest.topics.uplink(&unit("p7"), UplinkKind::Gps);
    let publisher = {
        let client = p7.client.clone();
        tokio::spawn(async move {
            for i in 0..2000u64 {
                let payload = gps(&format!("b{i}"), "p7", vec![fix(i)]);
                client
                    .publish(
                        topic.as_str(),
                        rumqttc::QoS::AtMostOnce,
                        false,
                        payload.to_vec(),
                    )
                    .await
                    .expect("queue open");
            }
        })
    };
    let mut seen = 0;
    while seen < 2000 {
        ingest
            .next_where("burst messages", |r| {
                matches!(r.envelope.message, Uplink::Gps(_))
            })
            .await;
        seen += 1;
    }
    publisher.await.expect("publisher done");
    assert_eq!(ingest.metrics.messages_total("gps"), 2000);
    assert_eq!(ingest.metrics.rejected_total("malformed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downlink_reaches_the_subscribed_handset() {
    let (broker, ingest) = start_embedded();
    let mut p7 = Handset::unit(broker.listen_addr(), "p7", "s3cret-p7").await;
    let down = ingest.topics.downlink(&unit("p7"));
    p7.client
        .subscribe(down.as_str(), rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    assert!(ingest.downlink.is_connected());

    let order = v1::Downlink {
        id: "d-1".into(),
        unit: "p7".into(),
        ..Default::default()
    }
    .encode_to_vec();
    // The SUBACK may not be in yet: publish until the handset has one.
    let deadline = tokio::time::Instant::now() + WAIT;
    let got = loop {
        ingest
            .downlink
            .publish(&unit("p7"), Bytes::from(order.clone()))
            .await
            .expect("downlink publish");
        match tokio::time::timeout(Duration::from_millis(200), p7.incoming.recv()).await {
            Ok(Some(p)) => break p,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "no downlink within {WAIT:?}"
            ),
        }
    };
    assert_eq!(got.topic, down);
    assert_eq!(
        got.qos,
        rumqttc::QoS::AtLeastOnce,
        "delivered at the subscription's QoS 1"
    );
    // Sealed for p7, for the downlink context; nobody else's key opens it.
    assert!(
        fieldlink_seal::is_sealed(&got.payload),
        "downlinks are sealed"
    );
    assert!(
        fieldlink_seal::open(&SealKey::derive("s3cret-b2"), "down", &got.payload).is_err(),
        "another unit cannot read p7's downlink"
    );
    let opened = fieldlink_seal::open(&SealKey::derive("s3cret-p7"), "down", &got.payload)
        .expect("opens with p7's key");
    assert_eq!(
        v1::Downlink::decode(opened.payload.as_slice())
            .expect("decodes")
            .id,
        "d-1"
    );
    // A unit without a seal key gets nothing, with the reason.
    let err = ingest
        .downlink
        .publish(&unit("p9"), Bytes::from(order.clone()))
        .await
        .expect_err("p9 has no key");
    assert!(matches!(err, IngestError::NoSealKey(_)), "{err}");
    assert_eq!(ingest.metrics.downlink_failures_total(), 1, "counted");
    // fieldlink's own downlink comes back on the uplink filter: skipped and counted as seen,
    // not as a rejection (an alert on rejections must not fire on normal traffic).
    let metrics = ingest.metrics.clone();
    eventually("own downlink seen", WAIT, || {
        metrics.downlinks_seen_total() >= 1
    })
    .await;
    let rejected: u64 = (fieldlink_ingest::Rejection::REASONS.iter())
        .map(|r| metrics.rejected_total(r))
        .sum();
    assert_eq!(rejected, 0, "an own downlink is no rejection");
}

/// Port 0 in the config: the broker says the port it got, and a handset gets in there (the
/// demo's `--mqtt 127.0.0.1:0` dialled port 0 before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_zero_names_the_port_the_system_chose() {
    let cfg = EmbeddedBrokerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    let (broker, _ingest) = start_embedded_on(&cfg, test_limits(), Sealing::Optional);
    let addr = broker.listen_addr();
    assert_ne!(addr.port(), 0, "{addr}");
    let p7 = Handset::unit(addr, "p7", "s3cret-p7").await;
    assert!(p7.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_handsets_follows_connects_and_disconnects() {
    let (broker, ingest) = start_embedded();
    let addr = broker.listen_addr();
    let m = ingest.metrics.clone();
    let p7 = Handset::unit(addr, "p7", "s3cret-p7").await;
    let b2 = Handset::unit(addr, "bike-2", "s3cret-b2").await;
    eventually("2 handsets", WAIT, || m.connected_handsets() == 2).await;
    assert_eq!(ingest.sample("fieldlink_connected_handsets"), 2.0);
    b2.close().await;
    eventually("1 handset", WAIT, || m.connected_handsets() == 1).await;
    p7.close().await;
    eventually("no handset", WAIT, || m.connected_handsets() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_said_in_words_with_the_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let cfg = EmbeddedBrokerConfig {
        listen: taken.local_addr().expect("addr"),
        ..Default::default()
    };
    let metrics = IngestMetrics::register(&mut Registry::default());
    let err = EmbeddedBroker::start(
        &cfg,
        std::sync::Arc::new(credentials()),
        std::sync::Arc::new(active_units()),
        &unique_topics(),
        &metrics,
        CancellationToken::new(),
    )
    .expect_err("the port is taken");
    assert!(matches!(err, IngestError::PortInUse { .. }), "{err:?}");
    let text = err.to_string();
    let port = cfg.listen.port();
    assert!(
        text.contains(&format!("MQTT port 127.0.0.1:{port} is already in use")),
        "{text}"
    );
    assert!(text.contains("--mqtt 127.0.0.1:"), "{text}");
    assert!(
        text.contains(&format!("mqtt.url = \"mqtt://127.0.0.1:{port}\"")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limits_are_all_reported_at_once() {
    let cfg = EmbeddedBrokerConfig {
        listen: free_port(),
        connection_timeout: Duration::from_secs(100),
        max_connections: 0,
        segment_bytes: 1024,
        ..Default::default()
    };
    let problems = cfg.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_link_thread() {
    let (broker, mut ingest) = start_embedded();
    let _p7 = Handset::unit(broker.listen_addr(), "p7", "s3cret-p7").await;
    assert!(ingest.downlink.is_connected());
    ingest.shutdown.cancel();
    let worker = ingest.worker.take().expect("worker");
    tokio::time::timeout(Duration::from_secs(2), worker.join())
        .await
        .expect("the link thread ends within 2 s of cancellation");
    assert!(!ingest.downlink.is_connected());
    tokio::time::timeout(Duration::from_secs(2), &mut ingest.pipeline)
        .await
        .expect("the pipeline ends")
        .expect("no panic");
}

//! One handset against the real Mosquitto: uplinks arrive as sent, downlinks come back, the last
//! will fires only when the handset vanishes, and a lost connection is said, not swallowed.
//! Mosquitto is an external broker, so these handsets send plain payloads; the last test seals,
//! as on fieldlink's embedded broker, and checks both directions with the unit's key.

mod support;

use std::time::Duration;

use fieldlink_proto::owntracks::{self, Message};
use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use fieldlink_sim::{Handset, HandsetConfig, QoS, SimError};
use prost::Message as _;
use support::{MOSQUITTO, Observer, eventually, mosquitto_or_skip, unique_topics};

const WAIT: Duration = Duration::from_secs(5);

fn unit(id: &str) -> UnitId {
    UnitId::new(id).expect("valid unit id")
}

async fn handset(topics: &Topics, id: &str) -> Handset {
    let mut cfg = HandsetConfig::new(MOSQUITTO, unit(id), "secret", topics.clone());
    cfg.sealed = false;
    Handset::connect(cfg).await.expect("connects to Mosquitto")
}

fn fix(lat: f64, lon: f64) -> v1::GpsFix {
    v1::GpsFix {
        fix_time_ms: 1_764_446_400_000,
        lat,
        lon,
        accuracy_m: Some(4.0),
        source: v1::FixSource::Gnss as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_fix_arrives_on_the_units_gps_topic_and_decodes_to_the_same_report() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let mut obs = Observer::start(&topics.uplink_filters()).await;
    let h = handset(&topics, "patrol-07").await;
    let gps = topics.uplink(h.unit(), UplinkKind::Gps);

    let sent = h.publish_fix_qos1(fix(30.25, 120.17)).await.expect("acked");
    let got = obs.next_on(&gps, WAIT).await.expect("the fix arrives");
    assert_eq!(v1::GpsReport::decode(got.payload).expect("decodes"), sent);
    assert_eq!(sent.unit, "patrol-07");
    assert_eq!(sent.fixes[0].seq, 1, "the handset numbers its fixes");

    let sent = h
        .publish_fix(fix(30.26, 120.18))
        .await
        .expect("queued at QoS 0");
    let got = obs
        .next_on(&gps, WAIT)
        .await
        .expect("the QoS 0 fix arrives");
    let got = v1::GpsReport::decode(got.payload).expect("decodes");
    assert_eq!(got, sent);
    assert_eq!(got.fixes[0].seq, 2);
    assert_ne!(got.id, "", "every message has an id");
    h.disconnect().await.expect("clean goodbye");
}

#[tokio::test]
async fn batches_heartbeats_and_owntracks_arrive_as_sent() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let mut obs = Observer::start(&topics.uplink_filters()).await;
    let h = handset(&topics, "ebike-3").await;

    let batch = vec![
        fix(30.25, 120.17),
        fix(30.251, 120.171),
        fix(30.252, 120.172),
    ];
    let sent = h.publish_batch(batch, true).await.expect("acked");
    let got = obs
        .next_on(&topics.uplink(h.unit(), UplinkKind::Gps), WAIT)
        .await
        .expect("batch");
    let batch = v1::GpsReport::decode(got.payload).expect("decodes");
    assert_eq!(batch, sent);
    assert!(batch.buffered);
    assert_eq!(
        batch.fixes.iter().map(|f| f.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    let status = v1::StatusHeartbeat {
        online: true,
        battery_pct: Some(77.0),
        ..Default::default()
    };
    let sent = h.publish_status(status).await.expect("acked");
    let got = obs
        .next_on(&topics.uplink(h.unit(), UplinkKind::Status), WAIT)
        .await
        .expect("status");
    assert_eq!(
        v1::StatusHeartbeat::decode(got.payload).expect("decodes"),
        sent
    );
    assert!(sent.time_ms > 0 && sent.unit == "ebike-3");
    assert!(
        !sent.id.is_empty() && sent.id != batch.id,
        "ids are unique per message"
    );

    h.publish_owntracks("phone", 30.2601, 120.1702, 1_764_446_400, 6.0)
        .await
        .expect("acked");
    let got = obs
        .next_on(&topics.owntracks(h.unit(), "phone"), WAIT)
        .await
        .expect("owntracks");
    let Message::Location(loc) = owntracks::decode(&got.payload).expect("OwnTracks JSON") else {
        panic!("not a location");
    };
    assert_eq!(
        (loc.lat, loc.lon, loc.tst, loc.acc),
        (30.2601, 120.1702, 1_764_446_400, Some(6.0))
    );
    assert_eq!(loc.tid.as_deref(), Some("-3"));

    h.publish_raw(
        &topics.uplink(h.unit(), UplinkKind::Gps),
        b"not protobuf".to_vec(),
        QoS::AtLeastOnce,
    )
    .await
    .expect("raw bytes go out as they are");
    let got = obs
        .next_on(&topics.uplink(h.unit(), UplinkKind::Gps), WAIT)
        .await
        .expect("raw");
    assert_eq!(&got.payload[..], b"not protobuf");
}

#[tokio::test]
async fn a_downlink_to_the_unit_is_returned_by_next_downlink() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let obs = Observer::start(&[]).await;
    let mut h = handset(&topics, "foot-12").await;
    let order = v1::Downlink {
        id: "dl-1".into(),
        time_ms: 1_764_446_400_000,
        unit: "foot-12".into(),
        body: Some(v1::downlink::Body::Command(v1::Command {
            name: "locate_now".into(),
            args: Default::default(),
        })),
    };
    // Another unit's downlink and a payload that is no Downlink must not reach this one.
    let other = topics.downlink(&unit("foot-13"));
    obs.client
        .publish(other, QoS::AtLeastOnce, false, order.encode_to_vec())
        .await
        .expect("queued");
    let mine = topics.downlink(h.unit());
    obs.client
        .publish(mine.clone(), QoS::AtLeastOnce, false, b"junk".to_vec())
        .await
        .expect("queued");
    obs.client
        .publish(mine, QoS::AtLeastOnce, false, order.encode_to_vec())
        .await
        .expect("queued");

    assert_eq!(h.next_downlink(WAIT).await, Some(order));
    assert_eq!(
        h.downlinks_dropped(),
        (0, 1),
        "the junk was counted as undecodable"
    );
    assert_eq!(h.next_downlink(Duration::from_millis(200)).await, None);
}

#[tokio::test]
async fn the_last_will_says_offline_when_a_handset_vanishes_not_when_it_says_goodbye() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let mut obs = Observer::start(&topics.uplink_filters()).await;
    let polite = handset(&topics, "polite").await;
    let vanishing = handset(&topics, "vanishing").await;
    polite.disconnect().await.expect("clean goodbye");
    drop(vanishing); // the radio is gone: no DISCONNECT

    let (polite_status, vanishing_status) = (
        topics.uplink(&unit("polite"), UplinkKind::Status),
        topics.uplink(&unit("vanishing"), UplinkKind::Status),
    );
    let mut polite_will = false;
    let mut will = None;
    assert!(
        obs.until(WAIT, |p| {
            polite_will |= p.topic == polite_status;
            if p.topic == vanishing_status {
                will = v1::StatusHeartbeat::decode(p.payload.clone()).ok();
            }
            will.is_some()
        })
        .await,
        "the vanished handset's will arrives"
    );
    let will = will.expect("decoded");
    assert!(!will.online);
    assert_eq!(will.unit, "vanishing");
    assert!(!polite_will, "a clean goodbye fires no will");
}

#[tokio::test]
async fn a_lost_connection_fails_publishes_in_words() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let first = handset(&topics, "twin").await;
    // The broker drops the first session when a second client takes the same client id.
    let _second = handset(&topics, "twin").await;
    assert!(
        eventually(WAIT, || async { !first.is_connected() }).await,
        "the first learns it is gone"
    );
    let err = first
        .publish_fix_qos1(fix(30.25, 120.17))
        .await
        .expect_err("not connected");
    assert!(matches!(err, SimError::Disconnected { .. }), "{err}");
    assert!(err.to_string().contains("twin is not connected"), "{err}");
    let err = first
        .publish_fix(fix(30.25, 120.17))
        .await
        .expect_err("QoS 0 too");
    assert!(matches!(err, SimError::Disconnected { .. }), "{err}");
}

#[tokio::test]
async fn a_sealing_handset_seals_every_uplink_and_believes_only_its_own_sealed_downlinks() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let mut obs = Observer::start(&topics.uplink_filters()).await;
    let mut h = Handset::connect(HandsetConfig::new(
        MOSQUITTO,
        unit("sealed-1"),
        "the-unit-secret",
        topics.clone(),
    ))
    .await
    .expect("connects");
    let key = fieldlink_seal::SealKey::derive("the-unit-secret");

    // Uplink: sealed for its kind, with a counter; it opens with the unit's key only.
    let gps = topics.uplink(h.unit(), UplinkKind::Gps);
    let sent = h.publish_fix_qos1(fix(30.25, 120.17)).await.expect("acked");
    let got = obs.next_on(&gps, WAIT).await.expect("the fix arrives");
    let opened = fieldlink_seal::open(&key, "gps", &got.payload).expect("opens for gps");
    assert_eq!(
        v1::GpsReport::decode(opened.payload.as_slice()).expect("decodes"),
        sent
    );
    assert!(fieldlink_seal::open(&key, "ack", &got.payload).is_err());
    let other = fieldlink_seal::SealKey::derive("another-secret");
    assert!(fieldlink_seal::open(&other, "gps", &got.payload).is_err());

    // Downlinks: a plain one, one sealed with another key and a replayed one are refused; the
    // one sealed by fieldlink for this unit, newer than the last, is believed.
    let order = v1::Downlink {
        id: "dl-s".into(),
        unit: "sealed-1".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let down = topics.downlink(h.unit());
    let good = fieldlink_seal::seal(&key, "down", 10, [1; 16], &order);
    for payload in [
        order.clone(),
        fieldlink_seal::seal(&other, "down", 11, [2; 16], &order),
        fieldlink_seal::seal(&key, "gps", 12, [3; 16], &order),
        good.clone(),
        good,
    ] {
        obs.client
            .publish(down.clone(), QoS::AtLeastOnce, false, payload)
            .await
            .expect("queued");
    }
    let got = h.next_downlink(WAIT).await.expect("the sealed downlink");
    assert_eq!(got.id, "dl-s");
    assert_eq!(h.next_downlink(Duration::from_millis(300)).await, None);
    assert_eq!(
        h.downlinks_dropped(),
        (0, 4),
        "plain, foreign, wrong context and replayed refused"
    );
}

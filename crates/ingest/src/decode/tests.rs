//! One test per rule: the bad input, and the reason it is refused with.

use std::collections::HashSet;

use fieldlink_proto::v1;
use fieldlink_proto::{Topics, UnitId, UplinkKind};
use prost::Message;

use super::*;

fn unit(s: &str) -> UnitId {
    UnitId::new(s).expect("valid id")
}

fn setup() -> (Decoder, HashSet<UnitId>) {
    let limits = Limits {
        max_payload_bytes: 4096,
        max_batch_fixes: 3,
        ..Limits::default()
    };
    let units = HashSet::from([unit("p7"), unit("bike-2")]);
    (Decoder::new(Topics::default(), limits), units)
}

fn fix() -> v1::GpsFix {
    v1::GpsFix {
        fix_time_ms: 1_700_000_000_000,
        lat: 30.2596,
        lon: 120.1772,
        accuracy_m: Some(5.0),
        speed_mps: Some(1.4),
        heading_deg: Some(90.0),
        battery_pct: Some(80.0),
        ..Default::default()
    }
}

fn gps(fixes: Vec<v1::GpsFix>) -> Vec<u8> {
    v1::GpsReport {
        id: "r1".into(),
        unit: "p7".into(),
        fixes,
        ..Default::default()
    }
    .encode_to_vec()
}

fn reason(topic: &str, payload: &[u8]) -> &'static str {
    let (d, units) = setup();
    d.decode(topic, payload, &units)
        .expect_err("must be refused")
        .reason()
}

#[test]
fn accepts_a_fix_a_batch_and_every_kind() {
    let (d, units) = setup();
    let env = d
        .decode("fl/v1/u/p7/gps", &gps(vec![fix()]), &units)
        .expect("valid");
    assert_eq!(env.unit, unit("p7"));
    assert!(matches!(env.message, Uplink::Gps(ref r) if r.fixes.len() == 1));
    let env = d
        .decode("fl/v1/u/p7/gps", &gps(vec![fix(), fix(), fix()]), &units)
        .expect("a batch");
    assert_eq!(env.message.kind(), "gps");

    let status = v1::StatusHeartbeat {
        battery_pct: Some(50.0),
        ..Default::default()
    };
    let sos = v1::Sos {
        position: Some(fix()),
        ..Default::default()
    };
    let cases: [(UplinkKind, Vec<u8>); 6] = [
        (UplinkKind::Status, status.encode_to_vec()),
        (UplinkKind::Ptt, v1::PttMessage::default().encode_to_vec()),
        (
            UplinkKind::Video,
            v1::VideoMessage::default().encode_to_vec(),
        ),
        (UplinkKind::Sos, sos.encode_to_vec()),
        (UplinkKind::Ack, v1::Ack::default().encode_to_vec()),
        (UplinkKind::Report, v1::Report::default().encode_to_vec()),
    ];
    for (kind, payload) in cases {
        let topic = d.topics().uplink(&unit("bike-2"), kind);
        let env = d.decode(&topic, &payload, &units).expect("valid");
        assert_eq!(env.message.kind(), kind.as_str());
    }
}

#[test]
fn accepts_owntracks_location_and_lwt() {
    let (d, units) = setup();
    let json = br#"{"_type":"location","lat":30.26,"lon":120.18,"tst":1700000000,"acc":12,"vel":18,"cog":270,"batt":40}"#;
    let env = d.decode("owntracks/p7/phone", json, &units).expect("valid");
    assert!(
        matches!(env.message, Uplink::OwnTracksLocation { ref device, ref location } if device == "phone" && location.lat == 30.26)
    );
    let env = d
        .decode("owntracks/p7/phone", br#"{"_type":"lwt","tst":1}"#, &units)
        .expect("valid");
    assert_eq!(
        env.message,
        Uplink::OwnTracksLwt {
            device: "phone".into()
        }
    );
}

#[test]
fn topic_rules() {
    assert_eq!(reason("elsewhere/p7/gps", &gps(vec![fix()])), "bad_topic");
    assert_eq!(reason("fl/v1/u/a b/gps", &gps(vec![fix()])), "bad_topic");
    assert_eq!(
        reason("fl/v1/u/p7/teleport", &gps(vec![fix()])),
        "bad_topic"
    );
    assert_eq!(reason("fl/v1/u/p7/down", b"anything"), "not_uplink");
    assert_eq!(
        reason("fl/v1/u/ghost/gps", &gps(vec![fix()])),
        "unknown_unit"
    );
    assert_eq!(reason("owntracks/ghost/phone", b"{}"), "unknown_unit");
}

#[test]
fn size_and_decoding_rules() {
    assert_eq!(reason("fl/v1/u/p7/gps", &[0u8; 4097]), "too_large");
    assert_eq!(reason("fl/v1/u/p7/gps", &[0xff, 0xff, 0xff]), "malformed");
    assert_eq!(reason("owntracks/p7/phone", b"not json"), "malformed");
    assert_eq!(reason("fl/v1/u/p7/gps", &gps(vec![])), "empty_batch");
    assert_eq!(
        reason("fl/v1/u/p7/gps", &gps(vec![fix(); 4])),
        "batch_too_large"
    );
}

#[test]
fn unit_in_payload_must_be_the_topics() {
    let other = v1::GpsReport {
        unit: "bike-2".into(),
        fixes: vec![fix()],
        ..Default::default()
    };
    assert_eq!(
        reason("fl/v1/u/p7/gps", &other.encode_to_vec()),
        "unit_mismatch"
    );
    let status = v1::StatusHeartbeat {
        unit: "bike-2".into(),
        ..Default::default()
    };
    assert_eq!(
        reason("fl/v1/u/p7/status", &status.encode_to_vec()),
        "unit_mismatch"
    );
}

#[test]
fn coordinates_and_values_must_be_finite_and_in_range() {
    let with = |f: fn(&mut v1::GpsFix)| {
        let mut x = fix();
        f(&mut x);
        gps(vec![fix(), x])
    };
    let t = "fl/v1/u/p7/gps";
    assert_eq!(reason(t, &with(|f| f.lat = 90.5)), "bad_coordinates");
    assert_eq!(reason(t, &with(|f| f.lon = -180.1)), "bad_coordinates");
    assert_eq!(reason(t, &with(|f| f.lat = f64::NAN)), "bad_coordinates");
    assert_eq!(
        reason(t, &with(|f| f.lon = f64::INFINITY)),
        "bad_coordinates"
    );
    assert_eq!(
        reason(t, &with(|f| f.heading_deg = Some(360.5))),
        "bad_value"
    );
    assert_eq!(reason(t, &with(|f| f.speed_mps = Some(-0.1))), "bad_value");
    assert_eq!(
        reason(t, &with(|f| f.accuracy_m = Some(f32::NAN))),
        "bad_value"
    );
    assert_eq!(
        reason(t, &with(|f| f.battery_pct = Some(101.0))),
        "bad_value"
    );
    assert_eq!(
        reason(t, &with(|f| f.alt_m = Some(f64::NEG_INFINITY))),
        "bad_value"
    );
    // the edges are valid
    let (d, units) = setup();
    let edge = with(|f| {
        f.lat = -90.0;
        f.lon = 180.0;
        f.heading_deg = Some(360.0);
        f.speed_mps = Some(0.0);
        f.battery_pct = Some(0.0);
    });
    assert!(d.decode(t, &edge, &units).is_ok());

    let sos = v1::Sos {
        position: Some(v1::GpsFix { lat: 91.0, ..fix() }),
        ..Default::default()
    };
    assert_eq!(
        reason("fl/v1/u/p7/sos", &sos.encode_to_vec()),
        "bad_coordinates"
    );
    let status = v1::StatusHeartbeat {
        battery_pct: Some(-1.0),
        ..Default::default()
    };
    assert_eq!(
        reason("fl/v1/u/p7/status", &status.encode_to_vec()),
        "bad_value"
    );
    let ot = br#"{"_type":"location","lat":30,"lon":120,"tst":1,"cog":400}"#;
    assert_eq!(reason("owntracks/p7/phone", ot), "bad_value");
    let ot = br#"{"_type":"location","lat":95,"lon":120,"tst":1}"#;
    assert_eq!(reason("owntracks/p7/phone", ot), "bad_coordinates");
}

#[test]
fn owntracks_types_we_do_not_use() {
    let t = "owntracks/p7/phone";
    assert_eq!(
        reason(t, br#"{"_type":"transition","event":"enter"}"#),
        "ignored_type"
    );
    assert_eq!(
        reason(t, br#"{"_type":"encrypted","data":"AAAA"}"#),
        "encrypted_unsupported"
    );
}

#[test]
fn every_reason_is_listed_once_and_messages_are_words() {
    let mut seen = HashSet::new();
    for r in Rejection::REASONS {
        assert!(seen.insert(r), "{r} listed twice");
    }
    let r = Rejection::TooLarge { size: 10, max: 5 };
    assert_eq!(
        r.to_string(),
        "payload of 10 bytes is larger than the limit of 5 bytes"
    );
    assert_eq!(Rejection::REASONS[r.index()], "too_large");
    let long = "x/".repeat(500);
    let (d, units) = setup();
    let err = d.decode(&long, b"", &units).expect_err("refused");
    assert!(err.to_string().len() < 300, "a hostile topic is clipped");
}

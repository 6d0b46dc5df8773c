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
    assert_eq!(reason("fl/v1/u/p7/down", b"anything"), "bad_topic");
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
    // Encrypted, from a unit that has no seal key: it cannot be opened.
    assert_eq!(
        reason(t, br#"{"_type":"encrypted","data":"AAAA"}"#),
        "forged"
    );
}

/// p7 and bike-2 with their seal keys, and a decoder that requires sealing.
fn sealed_setup() -> (Decoder, std::collections::HashMap<UnitId, SealKey>) {
    let units = std::collections::HashMap::from([
        (unit("p7"), SealKey::derive("secret-p7")),
        (unit("bike-2"), SealKey::derive("secret-b2")),
    ]);
    let decoder =
        Decoder::new(Topics::default(), Limits::default()).with_sealing(Sealing::Required);
    (decoder, units)
}

#[test]
fn a_sealed_payload_opens_with_its_units_key_and_kind_and_carries_its_counter() {
    let (d, units) = sealed_setup();
    let key = SealKey::derive("secret-p7");
    let sealed = fieldlink_seal::seal(&key, "gps", 77, [1; 16], &gps(vec![fix()]));
    let env = d.decode("fl/v1/u/p7/gps", &sealed, &units).expect("opens");
    assert_eq!(env.freshness, Some(Freshness::Counter(77)));
    assert!(matches!(env.message, Uplink::Gps(_)));

    let offline = v1::StatusHeartbeat {
        unit: "p7".into(),
        online: false,
        ..Default::default()
    }
    .encode_to_vec();
    let will = fieldlink_seal::seal(&key, "status", 5, [2; 16], &offline);
    let env = d.decode("fl/v1/u/p7/status", &will, &units).expect("opens");
    assert_eq!(
        env.freshness,
        Some(Freshness::Offline(5)),
        "offline notices have their own replay mark"
    );
}

#[test]
fn under_required_sealing_plain_foreign_moved_and_altered_payloads_are_refused() {
    let (d, units) = sealed_setup();
    let r = |topic: &str, payload: &[u8]| {
        d.decode(topic, payload, &units)
            .expect_err("must be refused")
            .reason()
    };
    let body = gps(vec![fix()]);
    assert_eq!(r("fl/v1/u/p7/gps", &body), "unsealed");
    // bike-2 seals a fix claiming p7 with its own key and publishes it on p7's topic.
    let foreign = fieldlink_seal::seal(&SealKey::derive("secret-b2"), "gps", 9, [3; 16], &body);
    assert_eq!(r("fl/v1/u/p7/gps", &foreign), "forged");
    // p7's own sealed fix moved to its receipt topic, and to bike-2's gps topic.
    let own = fieldlink_seal::seal(&SealKey::derive("secret-p7"), "gps", 10, [4; 16], &body);
    assert_eq!(r("fl/v1/u/p7/ack", &own), "forged");
    assert_eq!(r("fl/v1/u/bike-2/gps", &own), "forged");
    let mut altered = own.clone();
    *altered.last_mut().expect("not empty") ^= 1;
    assert_eq!(r("fl/v1/u/p7/gps", &altered), "forged");
    assert_eq!(r("fl/v1/u/p7/gps", &own[..20]), "forged", "truncated");
    // OwnTracks too: plain JSON is refused, the app's encrypted envelope with p7's key opens.
    let json = br#"{"_type":"location","lat":30.26,"lon":120.18,"tst":1700000000}"#;
    assert_eq!(r("owntracks/p7/phone", json), "unsealed");
    let ot = fieldlink_seal::seal_owntracks(&SealKey::derive("secret-p7"), [5; 24], json);
    let env = d.decode("owntracks/p7/phone", &ot, &units).expect("opens");
    assert_eq!(env.freshness, Some(Freshness::OwnTracksTst(1_700_000_000)));
    assert_eq!(r("owntracks/bike-2/phone", &ot), "forged");
}

#[test]
fn under_optional_sealing_plain_payloads_pass_and_sealed_ones_are_still_checked() {
    let (d, units) = sealed_setup();
    let d = d.with_sealing(Sealing::Optional);
    let body = gps(vec![fix()]);
    let env = d
        .decode("fl/v1/u/p7/gps", &body, &units)
        .expect("plain passes");
    assert_eq!(env.freshness, None);
    let foreign = fieldlink_seal::seal(&SealKey::derive("secret-b2"), "gps", 9, [3; 16], &body);
    assert_eq!(
        d.decode("fl/v1/u/p7/gps", &foreign, &units)
            .expect_err("refused")
            .reason(),
        "forged"
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

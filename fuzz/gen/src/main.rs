//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`, with the real
//! encoders (prost for the protobuf messages, serde for JSON), plus a few malformed inputs.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml -p fieldlink-fuzz-gen` (from the repository root;
//! or pass the corpus directory as the only argument). Existing files of the same name are
//! overwritten; others (findings added by hand, libFuzzer's additions) are left alone.

use std::path::{Path, PathBuf};

use fieldlink_proto::v1;
use fieldlink_push::ClientMessage;
use prost::Message;
use serde_json::json;

/// The unit `decode_framed` knows (`fieldlink_ingest::decode::FRAMED_UNIT`).
const UNIT: &str = "u1";
const T: i64 = 1_700_000_000_000;

/// `decode_framed`'s topic selectors.
mod topic {
    pub const GPS: u8 = 0;
    pub const STATUS: u8 = 1;
    pub const PTT: u8 = 2;
    pub const VIDEO: u8 = 3;
    pub const SOS: u8 = 4;
    pub const ACK: u8 = 5;
    pub const REPORT: u8 = 6;
    pub const DOWN: u8 = 7;
    pub const OWNTRACKS: u8 = 8;
    pub const RAW: u8 = 9;
}

fn framed(selector: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend_from_slice(payload);
    v
}

fn raw_topic(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![topic::RAW, u8::try_from(topic.len()).expect("short topic")];
    v.extend_from_slice(topic.as_bytes());
    v.extend_from_slice(payload);
    v
}

fn gps_fix(i: i64) -> v1::GpsFix {
    v1::GpsFix {
        fix_time_ms: T + i * 1000,
        lat: 30.27 + i as f64 * 0.0001,
        lon: 120.15,
        alt_m: Some(12.0),
        accuracy_m: Some(8.0),
        speed_mps: Some(1.5),
        heading_deg: Some(90.0),
        satellites: 9,
        battery_pct: Some(80.0),
        seq: i as u64 + 1,
        ..Default::default()
    }
}

fn uplink_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let gps = v1::GpsReport {
        id: "m1".into(),
        time_ms: T,
        unit: UNIT.into(),
        fixes: vec![gps_fix(0)],
        buffered: false,
    };
    let batch = v1::GpsReport {
        id: "m2".into(),
        fixes: (0..5).map(gps_fix).collect(),
        buffered: true,
        ..gps.clone()
    };
    let status = v1::StatusHeartbeat {
        id: "m3".into(),
        time_ms: T,
        unit: UNIT.into(),
        online: true,
        battery_pct: Some(55.0),
        charging: true,
        signal_dbm: Some(-80),
        firmware: "1.2.3".into(),
        ..Default::default()
    };
    let ptt = v1::PttMessage {
        id: "m4".into(),
        time_ms: T,
        unit: UNIT.into(),
        talkgroup: "tg-1".into(),
        action: Some(v1::ptt_message::Action::Request(v1::FloorRequest {
            priority: 1,
        })),
    };
    let burst = v1::PttMessage {
        id: "m5".into(),
        action: Some(v1::ptt_message::Action::Burst(v1::TalkBurst {
            start_ms: T,
            end_ms: T + 4000,
        })),
        ..ptt.clone()
    };
    let video = v1::VideoMessage {
        id: "m6".into(),
        time_ms: T,
        unit: UNIT.into(),
        stream_id: "s1".into(),
        event: Some(v1::video_message::Event::Started(v1::VideoStarted {
            request_id: "vr-1".into(),
            ..Default::default()
        })),
    };
    let keepalive = v1::VideoMessage {
        id: "m7".into(),
        event: Some(v1::video_message::Event::Keepalive(v1::VideoKeepalive {
            bitrate_kbps: Some(900),
            fps: Some(25.0),
        })),
        ..video.clone()
    };
    let sos = v1::Sos {
        id: "m8".into(),
        time_ms: T,
        unit: UNIT.into(),
        position: Some(gps_fix(0)),
        note: "help".into(),
        cancel: false,
    };
    let ack = v1::Ack {
        id: "m9".into(),
        time_ms: T,
        unit: UNIT.into(),
        receipt: Some(v1::ack::Receipt::Order(v1::OrderReceipt {
            order_id: "o-1".into(),
            state: 2,
            reason: String::new(),
            position: Some(gps_fix(1)),
        })),
    };
    let command_ack = v1::Ack {
        id: "m10".into(),
        receipt: Some(v1::ack::Receipt::Command(v1::CommandReceipt {
            downlink_id: "d-1".into(),
            ok: true,
            detail: "done".into(),
        })),
        ..ack.clone()
    };
    let report = v1::Report {
        id: "m11".into(),
        time_ms: T,
        unit: UNIT.into(),
        body: Some(v1::report::Body::FieldReport(v1::FieldReport {
            kind: 1,
            text: "smoke on the third floor".into(),
            position: Some(v1::Position {
                lat: 30.27,
                lon: 120.15,
                alt_m: None,
                accuracy_m: Some(5.0),
            }),
            media_urls: vec!["https://example.invalid/p.jpg".into()],
            priority: 2,
        })),
    };
    let duty = v1::Report {
        id: "m12".into(),
        body: Some(v1::report::Body::Duty(v1::DutyStatusChange {
            status: 1,
            note: "on duty".into(),
        })),
        ..report.clone()
    };
    let owntracks = json!({
        "_type": "location", "lat": 30.2596, "lon": 120.1772, "tst": 1_700_000_000,
        "acc": 13, "alt": 6, "batt": 40, "bs": 2, "vel": 18, "cog": 270, "tid": "u1"
    })
    .to_string();
    let other_unit = v1::GpsReport {
        unit: "u2".into(),
        ..gps.clone()
    };
    let bad_lat = v1::GpsReport {
        fixes: vec![v1::GpsFix {
            lat: f64::NAN,
            ..gps_fix(0)
        }],
        ..gps.clone()
    };
    let gps_bytes = gps.encode_to_vec();
    vec![
        ("gps-single", framed(topic::GPS, &gps_bytes)),
        ("gps-batch", framed(topic::GPS, &batch.encode_to_vec())),
        ("status", framed(topic::STATUS, &status.encode_to_vec())),
        ("ptt-request", framed(topic::PTT, &ptt.encode_to_vec())),
        ("ptt-burst", framed(topic::PTT, &burst.encode_to_vec())),
        (
            "video-started",
            framed(topic::VIDEO, &video.encode_to_vec()),
        ),
        (
            "video-keepalive",
            framed(topic::VIDEO, &keepalive.encode_to_vec()),
        ),
        ("sos", framed(topic::SOS, &sos.encode_to_vec())),
        ("ack-order", framed(topic::ACK, &ack.encode_to_vec())),
        (
            "ack-command",
            framed(topic::ACK, &command_ack.encode_to_vec()),
        ),
        (
            "report-field",
            framed(topic::REPORT, &report.encode_to_vec()),
        ),
        ("report-duty", framed(topic::REPORT, &duty.encode_to_vec())),
        (
            "owntracks-location",
            framed(topic::OWNTRACKS, owntracks.as_bytes()),
        ),
        (
            "owntracks-lwt",
            framed(topic::OWNTRACKS, br#"{"_type":"lwt","tst":1700000000}"#),
        ),
        ("raw-topic-gps", raw_topic("fl/v1/u/u1/gps", &gps_bytes)),
        // Malformed, or refused after decoding.
        ("bad-down-topic", framed(topic::DOWN, &gps_bytes)),
        (
            "bad-truncated-gps",
            framed(topic::GPS, &gps_bytes[..gps_bytes.len() / 2]),
        ),
        ("bad-garbage", framed(topic::STATUS, &[0xff; 16])),
        (
            "bad-other-unit",
            framed(topic::GPS, &other_unit.encode_to_vec()),
        ),
        ("bad-nan-lat", framed(topic::GPS, &bad_lat.encode_to_vec())),
        ("bad-empty-gps", framed(topic::GPS, &[])),
        ("bad-wildcard-topic", raw_topic("fl/v1/u/+/gps", &gps_bytes)),
        (
            "bad-owntracks-json",
            framed(topic::OWNTRACKS, br#"{"_type":"location","lat":"x"}"#),
        ),
    ]
}

fn owntracks_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let location = json!({
        "_type": "location", "lat": 30.2596, "lon": 120.1772, "tst": 1_700_000_000,
        "acc": 13, "alt": 6, "vac": 2, "batt": 40, "bs": 2, "vel": 18, "cog": 270,
        "tid": "ce", "t": "u", "conn": "w", "created_at": 1_700_000_005,
        "topic": "owntracks/u1/phone", "BSSID": "b0:f2:8:45:94:33"
    });
    let minimal = json!({"_type": "location", "lat": -33.9, "lon": 151.2, "tst": 1});
    let lwt = json!({"_type": "lwt", "tst": 1_700_000_000});
    let encrypted =
        json!({"_type": "encrypted", "data": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="});
    let transition = json!({"_type": "transition", "event": "enter", "desc": "home"});
    vec![
        ("location-full", location.to_string().into_bytes()),
        ("location-minimal", minimal.to_string().into_bytes()),
        ("lwt", lwt.to_string().into_bytes()),
        ("encrypted", encrypted.to_string().into_bytes()),
        ("transition", transition.to_string().into_bytes()),
        (
            "bad-no-coordinates",
            br#"{"_type":"location","lat":30.2}"#.to_vec(),
        ),
        ("bad-not-json", b"not json".to_vec()),
        ("bad-no-type", br#"{"lat":1,"lon":2,"tst":3}"#.to_vec()),
        (
            "bad-huge-number",
            br#"{"_type":"location","lat":1e999,"lon":2,"tst":3}"#.to_vec(),
        ),
        ("bad-deep", "[".repeat(200).into_bytes()),
    ]
}

fn ws_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let messages: Vec<(&str, serde_json::Value)> = vec![
        (
            "auth",
            json!({"type": "auth", "token": "fl_abc_0123456789"}),
        ),
        (
            "subscribe",
            json!({"type": "subscribe", "channels": ["incidents", "positions", "ptt"],
                   "filter": {"bbox": [120.0, 30.0, 121.0, 31.0], "grid": "g1",
                              "units": ["u1"], "coords": "gcj02"},
                   "resume_from": 42}),
        ),
        (
            "unsubscribe",
            json!({"type": "unsubscribe", "channels": ["video"]}),
        ),
        (
            "command-dispatch",
            json!({"type": "command", "id": "c1", "op": "dispatch",
                   "args": {"incident": "i-1", "units": ["u1"]}}),
        ),
        (
            "command-create",
            json!({"type": "command", "id": "c2", "op": "create_incident",
                   "args": {"kind": "fire", "lat": 30.27, "lon": 120.15, "request_id": "r1"}}),
        ),
        (
            "receipt",
            json!({"type": "receipt", "order": "o-1", "state": "accepted"}),
        ),
        ("status", json!({"type": "status", "status": "on_duty"})),
    ];
    let mut out = Vec::new();
    for (name, value) in messages {
        let msg: ClientMessage = serde_json::from_value(value).expect("a valid client message");
        // Text frame: flag byte 0, JSON. Binary frame: flag byte 1, protobuf.
        let mut text = vec![0u8];
        text.extend(serde_json::to_vec(&msg).expect("JSON"));
        let mut binary = vec![1u8];
        binary.extend(fieldlink_push::wire::client_to_proto(&msg).encode_to_vec());
        out.push((format!("json-{name}"), text));
        out.push((format!("proto-{name}"), binary));
    }
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("bad-json-type", b"\x00{\"type\":\"teleport\"}".to_vec()),
        (
            "bad-json-truncated",
            b"\x00{\"type\":\"auth\",\"tok".to_vec(),
        ),
        ("bad-proto-garbage", b"\x01\xff\xff\xff\xff".to_vec()),
        ("bad-proto-empty", vec![1u8]),
        (
            "bad-json-channel",
            b"\x00{\"type\":\"subscribe\",\"channels\":[\"nope\"]}".to_vec(),
        ),
    ];
    out.into_iter()
        .map(|(n, v)| (&*Box::leak(n.into_boxed_str()), v))
        .chain(bad)
        .collect()
}

/// The bytes a handset's client sends first: CONNECTs as rumqttc writes them, and what the
/// listener must refuse (other versions, other packets, other protocols, cut or lying lengths).
fn mqtt_connect_corpus() -> Vec<(&'static str, Vec<u8>)> {
    use rumqttc::mqttbytes::{QoS, v4};
    let connect = |login: bool, will: Option<Vec<u8>>| {
        let mut c = v4::Connect::new("patrol-01");
        c.keep_alive = 60;
        if login {
            c.set_login("patrol-01", "s3cret-of-patrol-01");
        }
        c.last_will = will.map(|payload| {
            v4::LastWill::new("fl/v1/u/patrol-01/status", payload, QoS::AtLeastOnce, false)
        });
        let mut buf = bytes::BytesMut::new();
        c.write(&mut buf).expect("a CONNECT encodes");
        buf.to_vec()
    };
    let login = connect(true, None);
    // The same CONNECT with another protocol level (and MQTT 5's empty property list).
    let with_level = |name: &str, level: u8| {
        let mut body = Vec::new();
        body.extend_from_slice(&u16::try_from(name.len()).expect("short").to_be_bytes());
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&[level, 0xc2, 0x00, 0x3c]);
        if level == 5 {
            body.push(0);
        }
        // What follows the keep-alive: the client id and the login.
        body.extend_from_slice(&login[12..]);
        let mut packet = vec![0x10, u8::try_from(body.len()).expect("short")];
        packet.extend(body);
        packet
    };
    vec![
        ("connect-login", login.clone()),
        ("connect-no-login", connect(false, None)),
        ("connect-last-will", connect(true, Some(vec![0; 40]))),
        ("connect-large-will", connect(true, Some(vec![b'w'; 300]))),
        (
            "connect-then-ping",
            [login.as_slice(), &[0xc0, 0x00]].concat(),
        ),
        ("bad-mqtt5", with_level("MQTT", 5)),
        ("bad-mqtt31", with_level("MQIsdp", 3)),
        ("bad-publish-first", b"\x30\x0a\x00\x03a/bhello".to_vec()),
        (
            "bad-http",
            b"GET / HTTP/1.1\r\nHost: fieldlink\r\n\r\n".to_vec(),
        ),
        (
            "bad-length-overflow",
            vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ),
        ("bad-cut-short", login[..9].to_vec()),
        (
            "bad-string-past-end",
            b"\x10\x0c\x00\x04MQTT\x04\xc2\x00\x3c\x00\x40".to_vec(),
        ),
    ]
}

fn write(dir: &Path, target: &str, files: Vec<(&str, Vec<u8>)>) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    let n = files.len();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write a corpus file");
    }
    println!("{n} seeds in {}", dir.display());
}

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus"));
    write(&dir, "uplink_protobuf", uplink_corpus());
    write(&dir, "owntracks_json", owntracks_corpus());
    write(&dir, "ws_client_frame", ws_corpus());
    write(&dir, "mqtt_connect", mqtt_connect_corpus());
}

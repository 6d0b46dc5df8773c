//! Stream lifecycle: start, keepalive, stale at exactly the configured silence, resume,
//! handset stop, offline, silent expiry, and the wire mapping.

use fieldlink_proto::v1;

use super::*;

#[test]
fn a_stream_starts_and_stops_with_one_event_each() {
    let mut r = registry();
    let out = start(&mut r, at(0));
    assert_eq!(kinds(&out), ["stream_started"]);
    assert!(out.effects.is_empty());
    let s = r.stream(&sid("s1")).unwrap();
    assert_eq!(
        (s.state, s.started_at, s.info.width),
        (StreamState::Live, at(0), 1920)
    );

    let out = r
        .stream_stopped(&unit("u1"), &sid("s1"), "user", at(40))
        .unwrap();
    let stopped = VideoChange::StreamStopped {
        stream: sid("s1"),
        unit: unit("u1"),
        started_at: at(0),
        reason: StopReason::Handset {
            reason: "user".to_owned(),
        },
    };
    assert_eq!(changes(&out), [stopped]);
    assert!(r.stream(&sid("s1")).is_none());
    // A retried stop changes nothing.
    assert!(
        r.stream_stopped(&unit("u1"), &sid("s1"), "user", at(41))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_repeated_start_is_a_keepalive_unless_the_metadata_changed() {
    let mut r = registry();
    start(&mut r, at(0));
    assert!(start(&mut r, at(10)).is_empty());
    assert_eq!(r.stream(&sid("s1")).unwrap().last_seen, at(10));
    let mut lower = hd();
    (lower.width, lower.height) = (1280, 720);
    let out = r
        .stream_started(&unit("u1"), &sid("s1"), lower, None, at(12))
        .unwrap();
    assert_eq!(kinds(&out), ["stream_updated"]);
    assert_eq!(r.stream(&sid("s1")).unwrap().info.width, 1280);
}

#[test]
fn keepalives_keep_a_stream_live_and_update_its_rates() {
    let mut r = registry();
    start(&mut r, at(0));
    for s in (5..=300).step_by(5) {
        let out = r
            .keepalive(&unit("u1"), &sid("s1"), Some(1800), None, at(s))
            .unwrap();
        assert!(out.is_empty(), "keepalives are not journalled");
        assert!(
            r.tick(at(s).plus(std::time::Duration::from_millis(4999)))
                .is_empty()
        );
    }
    let s = r.stream(&sid("s1")).unwrap();
    assert_eq!(
        (s.state, s.info.bitrate_kbps, s.info.fps),
        (StreamState::Live, 1800, 25.0)
    );
}

#[test]
fn stale_exactly_at_the_configured_silence_then_resumed_by_a_keepalive() {
    let mut r = registry();
    start(&mut r, at(0));
    assert_eq!(r.next_deadline(), Some(at(15)));
    assert!(r.tick(at_ms(14_999)).is_empty());
    let out = r.tick(at(15));
    let stale = VideoChange::StreamStale {
        stream: sid("s1"),
        unit: unit("u1"),
        last_seen: at(0),
    };
    assert_eq!(changes(&out), [stale]);
    assert_eq!(r.stream(&sid("s1")).unwrap().state, StreamState::Stale);
    assert!(r.tick(at(16)).is_empty(), "stale is reported once");
    assert_eq!(r.next_deadline(), Some(at(120)));

    let out = r
        .keepalive(&unit("u1"), &sid("s1"), None, None, at(20))
        .unwrap();
    assert_eq!(kinds(&out), ["stream_resumed"]);
    assert_eq!(r.stream(&sid("s1")).unwrap().state, StreamState::Live);
}

#[test]
fn a_silent_stream_is_stopped_at_expire_after() {
    let mut r = registry();
    start(&mut r, at(0));
    assert_eq!(kinds(&r.tick(at(15))), ["stream_stale"]);
    assert!(r.tick(at_ms(119_999)).is_empty());
    let out = r.tick(at(120));
    assert!(matches!(
        &changes(&out)[..],
        [VideoChange::StreamStopped {
            reason: StopReason::Silent,
            ..
        }]
    ));
    assert!(r.stream(&sid("s1")).is_none());
    assert_eq!(r.next_deadline(), None);
    let err = r
        .keepalive(&unit("u1"), &sid("s1"), None, None, at(121))
        .unwrap_err();
    assert_eq!(err.code(), "unknown_stream");
}

#[test]
fn all_of_a_units_streams_stop_when_it_goes_offline() {
    let mut r = registry();
    start(&mut r, at(0));
    r.stream_started(&unit("u1"), &sid("s2"), hd(), None, at(1))
        .unwrap();
    r.stream_started(&unit("u2"), &sid("s3"), hd(), None, at(1))
        .unwrap();
    let out = r.unit_offline(&unit("u1"), at(5));
    assert_eq!(kinds(&out), ["stream_stopped", "stream_stopped"]);
    assert!(changes(&out).iter().all(|c| matches!(
        c,
        VideoChange::StreamStopped { unit, reason: StopReason::UnitOffline, .. } if unit.as_str() == "u1"
    )));
    let left: Vec<&str> = r.streams().map(|s| s.id.as_str()).collect();
    assert_eq!(left, ["s3"]);
    assert!(r.unit_offline(&unit("u1"), at(6)).is_empty());
}

#[test]
fn a_unit_cannot_speak_for_another_units_stream() {
    let mut r = registry();
    start(&mut r, at(0));
    let err = r
        .keepalive(&unit("u2"), &sid("s1"), None, None, at(1))
        .unwrap_err();
    assert_eq!(err.code(), "wrong_unit");
    let err = r
        .stream_stopped(&unit("u2"), &sid("s1"), "user", at(1))
        .unwrap_err();
    assert_eq!(err.code(), "wrong_unit");
    let err = r
        .stream_started(&unit("u2"), &sid("s1"), hd(), None, at(1))
        .unwrap_err();
    assert_eq!(err.code(), "wrong_unit");
    assert!(r.stream(&sid("s1")).is_some());
}

#[test]
fn events_round_trip_through_json_with_a_type_tag() {
    let mut r = registry();
    let out = start(&mut r, at(0));
    let json = serde_json::to_string(&out.events[0]).unwrap();
    assert!(json.contains(r#""type":"stream_started""#), "{json}");
    assert!(json.contains(r#""protocol":"webrtc""#), "{json}");
    let back: VideoEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, out.events[0]);
}

#[test]
fn a_video_message_from_the_wire_drives_the_registry() {
    use v1::video_message::Event;
    let info = v1::StreamInfo {
        codec: "h265".to_owned(),
        width: 1280,
        height: 720,
        fps: 30.0,
        bitrate_kbps: 1500,
        play_urls: vec![
            v1::PlayUrl {
                protocol: v1::PlayProtocol::Hls as i32,
                url: "https://media.example.invalid/u1.m3u8".to_owned(),
            },
            v1::PlayUrl {
                protocol: v1::PlayProtocol::Gb28181 as i32,
                url: String::new(),
            },
        ],
        gb28181_device_id: "34020000001320000101".to_owned(),
        gb28181_channel_id: "34020000001310000101".to_owned(),
    };
    let msg = |event| v1::VideoMessage {
        id: "m1".to_owned(),
        time_ms: 0,
        unit: String::new(),
        stream_id: "s1".to_owned(),
        event: Some(event),
    };
    let started = msg(Event::Started(v1::VideoStarted {
        info: Some(info),
        request_id: String::new(),
    }));
    let report = VideoReport::from_wire(&unit("u1"), &started).unwrap();
    let mut r = registry();
    assert_eq!(kinds(&r.apply(report, at(0)).unwrap()), ["stream_started"]);
    let s = r.stream(&sid("s1")).unwrap();
    assert_eq!(
        s.info.play_urls,
        [PlayUrl::new(
            PlayProtocol::Hls,
            "https://media.example.invalid/u1.m3u8"
        )]
    );
    assert_eq!(
        s.info.gb28181.as_ref().unwrap().device_id,
        "34020000001320000101"
    );

    let mut other = started.clone();
    other.unit = "u9".to_owned();
    let err = VideoReport::from_wire(&unit("u1"), &other).unwrap_err();
    assert!(matches!(err, WireError::UnitMismatch { .. }));
    let stopped = msg(Event::Stopped(v1::VideoStopped {
        reason: "battery".to_owned(),
    }));
    let report = VideoReport::from_wire(&unit("u1"), &stopped).unwrap();
    assert_eq!(kinds(&r.apply(report, at(3)).unwrap()), ["stream_stopped"]);
}

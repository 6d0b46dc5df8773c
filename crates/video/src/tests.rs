//! Unit tests of the video core on a manual timeline (plain `Timestamp`s, default config: 15 s
//! stale, 120 s silent, 30 s request timeout), and the helpers they share.

mod import;
mod near;
mod requests;
mod streams;

use crate::*;

/// The start of every test's timeline.
pub(crate) const T0: i64 = 1_800_000_000_000;

/// `T0` + `ms` milliseconds.
pub(crate) fn at_ms(ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

/// `T0` + `s` seconds.
pub(crate) fn at(s: i64) -> Timestamp {
    at_ms(s * 1000)
}

pub(crate) fn unit(s: &str) -> UnitId {
    UnitId::from(s)
}

pub(crate) fn sid(s: &str) -> StreamId {
    StreamId::from(s)
}

pub(crate) fn rid(s: &str) -> RequestId {
    RequestId::from(s)
}

/// 1080p H.264 with an RTSP and a WebRTC URL.
pub(crate) fn hd() -> StreamInfo {
    StreamInfo {
        codec: "h264".to_owned(),
        width: 1920,
        height: 1080,
        fps: 25.0,
        bitrate_kbps: 2500,
        play_urls: vec![
            PlayUrl::new(PlayProtocol::Rtsp, "rtsp://media.example.invalid/u1"),
            PlayUrl::new(
                PlayProtocol::Webrtc,
                "https://media.example.invalid/whep/u1",
            ),
        ],
        gb28181: None,
    }
}

pub(crate) fn registry() -> Registry {
    Registry::new(VideoConfig::default())
}

/// The changes of an outcome, without their times.
pub(crate) fn changes(out: &Outcome) -> Vec<VideoChange> {
    out.events.iter().map(|e| e.change.clone()).collect()
}

/// The `type` tags of an outcome's events, as the journal stores them.
pub(crate) fn kinds(out: &Outcome) -> Vec<String> {
    (out.events.iter())
        .map(|e| {
            serde_json::to_value(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// `u1` starts stream `s1` at `now`.
pub(crate) fn start(r: &mut Registry, now: Timestamp) -> Outcome {
    r.stream_started(&unit("u1"), &sid("s1"), hd(), None, now)
        .unwrap()
}

#[test]
fn config_defaults_validate_and_bad_ones_report_every_problem() {
    assert!(VideoConfig::default().validate().is_empty());
    let bad = VideoConfig {
        stale_after_s: 0,
        expire_after_s: 0,
        request_timeout_s: 0,
    };
    assert_eq!(bad.validate().len(), 3);
    let toml_like: VideoConfig = serde_json::from_str(r#"{"stale_after_s": 20}"#).unwrap();
    assert_eq!(toml_like.expire_after_s, 120);
}

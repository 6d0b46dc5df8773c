//! Live video end to end, on a manual clock: handsets announce streams over real MQTT, the
//! command room lists what can be watched near an incident (handsets and fixed cameras), asks a
//! handset to start its camera, and sees requests answered, timed out and streams go stale.

use std::path::PathBuf;
use std::time::Duration;

use fieldlink_clock::Clock;
use fieldlink_e2e::dispatch::{WAIT, downlink, manual_clock};
use fieldlink_e2e::{Options, TestServer, eventually, fix};
use fieldlink_proto::UplinkKind;
use fieldlink_proto::v1;
use fieldlink_sim::{Handset, QoS};
use serde_json::{Value, json};

/// Next to the example file's checkpoint `cp-example-001` (Hubin, Hangzhou).
const SCENE: (f64, f64) = (30.2573, 120.1640);

fn example_cameras() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/cameras.example.geojson")
}

async fn video(h: &Handset, stream: &str, event: v1::video_message::Event) {
    let m = v1::VideoMessage {
        id: h.new_id(),
        time_ms: h.now().as_millis(),
        unit: h.unit().to_string(),
        stream_id: stream.to_owned(),
        event: Some(event),
    };
    h.publish_uplink(UplinkKind::Video, &m, QoS::AtLeastOnce)
        .await
        .expect("video message published");
}

fn started(request_id: &str) -> v1::video_message::Event {
    v1::video_message::Event::Started(v1::VideoStarted {
        info: Some(v1::StreamInfo {
            codec: "h264".into(),
            width: 1280,
            height: 720,
            fps: 25.0,
            bitrate_kbps: 2000,
            play_urls: vec![v1::PlayUrl {
                protocol: v1::PlayProtocol::Hls as i32,
                url: "https://media.example.invalid/live/u000.m3u8".into(),
            }],
            ..Default::default()
        }),
        request_id: request_id.to_owned(),
    })
}

async fn journal_kinds(srv: &TestServer) -> Vec<(String, Value)> {
    let rows = (srv.server.state().store)
        .journal_since(0, 10_000)
        .await
        .expect("journal");
    (rows.into_iter())
        .filter(|r| r.kind.starts_with("video."))
        .map(|r| (r.kind, r.data))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_near_a_scene_requests_and_stale_streams() {
    let clock = manual_clock();
    let srv = TestServer::start_with_clock(
        Options {
            units: 2,
            camera_files: vec![example_cameras()],
            ..Default::default()
        },
        clock.clone(),
    )
    .await;
    let (a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    let t = clock.now().as_millis();
    a.publish_fix_qos1(fix(SCENE.0 + 0.0003, SCENE.1, t))
        .await
        .expect("A's fix");
    b.publish_fix_qos1(fix(SCENE.0 + 0.0020, SCENE.1, t))
        .await
        .expect("B's fix");

    // A streams on its own: it is listed near the scene with the fixed checkpoints.
    video(&a, "s-a", started("")).await;
    let near = format!("/api/v1/streams?near={},{}&radius_m=400", SCENE.0, SCENE.1);
    let list = eventually(WAIT, "A's stream near the scene", || async {
        let (status, v) = srv.get(&near, Some(&srv.viewer)).await;
        assert_eq!(status, 200, "{v}");
        let list = v["streams"].as_array()?.clone();
        list.iter().any(|s| s["kind"] == "handset").then_some(list)
    })
    .await;
    let ids: Vec<&str> = (list.iter())
        .map(|s| {
            s["stream"]["id"]
                .as_str()
                .or(s["camera"]["id"].as_str())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        ids.first(),
        Some(&"cp-example-001"),
        "nearest first: {list:?}"
    );
    assert!(ids.contains(&"s-a"), "{ids:?}");
    let distances: Vec<f64> = list
        .iter()
        .filter_map(|s| s["distance_m"].as_f64())
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    let (_, cams) = srv.get("/api/v1/cameras", Some(&srv.viewer)).await;
    assert!(
        cams["cameras"].as_array().is_some_and(|c| c.len() >= 3),
        "{cams}"
    );

    // The command room asks B to start its camera; B answers with a stream.
    let (status, v) = srv
        .post(
            "/api/v1/units/u001/video/start",
            Some(&srv.admin),
            json!({"reason": "incident near the lake"}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let request = v["request"].as_str().expect("request id").to_owned();
    let asked = downlink(&mut b, "B's video request", |d| match &d.body {
        Some(v1::downlink::Body::Video(r)) => Some(r.clone()),
        _ => None,
    })
    .await;
    assert_eq!(asked.request_id, request);
    assert!(matches!(
        asked.action,
        Some(v1::video_request::Action::Start(ref s)) if s.reason == "incident near the lake"
    ));
    video(&b, "s-b", started(&request)).await;
    eventually(WAIT, "the request fulfilled", || async {
        let kinds = journal_kinds(&srv).await;
        kinds
            .iter()
            .any(|(k, d)| k == "video.request_fulfilled" && d["request"] == json!(request))
            .then_some(())
    })
    .await;

    // Asking A, which streams already, is refused; a request B never answers times out.
    let (status, v) = srv
        .post(
            "/api/v1/units/u000/video/start",
            Some(&srv.admin),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (409, json!("already_streaming"))
    );
    video(
        &b,
        "s-b",
        v1::video_message::Event::Stopped(v1::VideoStopped {
            reason: "user".into(),
        }),
    )
    .await;
    eventually(WAIT, "B's stream stopped", || async {
        let (_, v) = srv.get("/api/v1/streams", Some(&srv.viewer)).await;
        let ids: Vec<&str> = v["streams"]
            .as_array()?
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect();
        (!ids.contains(&"s-b")).then_some(())
    })
    .await;
    let (status, v) = srv
        .post(
            "/api/v1/units/u001/video/start",
            Some(&srv.admin),
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let unanswered = v["request"].as_str().expect("request id").to_owned();

    // 31 s of silence: the unanswered request times out and A's stream is stale.
    clock.advance(Duration::from_secs(31));
    eventually(WAIT, "time-out and stale", || async {
        let kinds = journal_kinds(&srv).await;
        let timed_out = (kinds.iter())
            .any(|(k, d)| k == "video.request_timed_out" && d["request"] == json!(unanswered));
        let stale = (kinds.iter()).any(|(k, d)| k == "video.stream_stale" && d["stream"] == "s-a");
        (timed_out && stale).then_some(())
    })
    .await;
    srv.stop().await;
}

//! Track history end to end: a tunnel's late batch lands in time order without moving the unit
//! back, the JSON, GeoJSON and GPX exports, simplification, and retention.

use std::time::Duration;

use fieldlink_clock::Timestamp;
use fieldlink_e2e::{Options, TestServer, eventually, fix, now_ms};
use fieldlink_store::TrackRow;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_tunnel_batch_lands_in_history_without_moving_the_unit_back() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let handset = srv.handset(0).await;
    let t0 = now_ms() - 120_000;
    let step = |i: i64| 30.27 + i as f64 * 0.00002;
    // Out of the tunnel: the newest fixes arrive first.
    for i in 30..35 {
        handset
            .publish_fix_qos1(fix(step(i), 120.15, t0 + i * 2_000))
            .await
            .expect("published");
    }
    eventually(WAIT, "the newest fix is the latest", || async {
        (srv.unit("u000").await["lat"].as_f64() == Some(step(34))).then_some(())
    })
    .await;
    // Then the handset's buffer from inside the tunnel.
    let older = (0..30)
        .map(|i| fix(step(i), 120.15, t0 + i * 2_000))
        .collect();
    handset.publish_batch(older, true).await.expect("batch");

    let from = Timestamp::from_millis(t0 - 1_000).to_rfc3339();
    let path = format!("/api/v1/units/u000/track?from={from}&include_flagged=true");
    let body = eventually(WAIT, "all 35 fixes in the history", || async {
        let (status, body) = srv.get(&path, Some(&srv.viewer)).await;
        assert_eq!(status, 200, "{body}");
        (body["count"] == json!(35)).then_some(body)
    })
    .await;
    let times: Vec<i64> = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            Timestamp::parse_rfc3339(p["fix_time"].as_str().unwrap())
                .unwrap()
                .as_millis()
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "time order: {times:?}"
    );
    assert_eq!(times.first(), Some(&t0));
    let latest = srv.unit("u000").await;
    assert_eq!(latest["lat"].as_f64(), Some(step(34)), "{latest}");

    // The export formats of the same history.
    let client = reqwest::Client::new();
    let get = |format: &str| {
        client
            .get(format!(
                "{}/api/v1/units/u000/track?from={from}&format={format}",
                srv.base
            ))
            .bearer_auth(&srv.viewer)
            .send()
    };
    let resp = get("geojson").await.expect("geojson");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/geo+json");
    let geo: Value = serde_json::from_str(&resp.text().await.unwrap()).expect("GeoJSON parses");
    assert_eq!(geo["type"], "Feature");
    assert_eq!(geo["geometry"]["type"], "LineString");
    assert_eq!(geo["geometry"]["coordinates"].as_array().unwrap().len(), 35);
    assert_eq!(geo["geometry"]["coordinates"][0], json!([120.15, step(0)]));
    let resp = get("gpx").await.expect("gpx");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/gpx+xml");
    let gpx = resp.text().await.unwrap();
    assert!(gpx.starts_with("<?xml") && gpx.contains("<gpx"), "{gpx}");
    assert_eq!(gpx.matches("<trkpt").count(), 35);
    // A straight walk simplifies to its two ends.
    let (_, simple) = srv
        .get(&format!("{path}&simplify_m=5"), Some(&srv.viewer))
        .await;
    assert_eq!(simple["count"], json!(2), "{simple}");
    for (query, code) in [
        ("format=kml", "bad_format"),
        ("from=yesterday", "bad_time"),
        (
            "from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z",
            "bad_time_range",
        ),
        ("format=gpx&coords=gcj02", "bad_coords"),
    ] {
        let (status, body) = srv
            .get(
                &format!("/api/v1/units/u000/track?{query}"),
                Some(&srv.viewer),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    let (status, _) = srv
        .get("/api/v1/units/nobody/track", Some(&srv.viewer))
        .await;
    assert_eq!(status, 404);
    srv.stop().await;
}

#[tokio::test]
async fn history_older_than_the_retention_is_pruned_and_counted() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let state = srv.server.state();
    let retention = state.tracker().config().track_retention;
    let now = Timestamp::from_millis(now_ms());
    let row = |at: Timestamp| TrackRow {
        unit: "u000".into(),
        fix_time: at,
        received_at: at,
        lat: 30.27,
        lon: 120.15,
        alt_m: None,
        accuracy_m: None,
        speed_mps: None,
        heading_deg: None,
        battery_pct: None,
        source: "native".into(),
        flag: None,
    };
    let old = now.minus(retention + Duration::from_secs(3600));
    let rows = [
        row(old),
        row(old.plus(Duration::from_secs(1))),
        row(now.minus(Duration::from_secs(60))),
    ];
    state.store.append_track(&rows).await.expect("rows written");
    // The server's own prune at start may have run after the rows went in; together they
    // deleted exactly the two old rows.
    let pruned = fieldlink_server::retention::prune_once(state).await;
    assert!(pruned <= 2, "pruned {pruned}");
    let left = state
        .store
        .track("u000", Timestamp::from_millis(0), now, true, 10)
        .await
        .expect("track read");
    assert_eq!(left.len(), 1);
    assert_eq!(srv.metric("fieldlink_track_rows_pruned_total").await, 2.0);
    srv.stop().await;
}

//! The location API end to end: a real server, real MQTT, real handsets and the simulated fleet.
//! Nearest-k against a brute-force scan over 1,000 units, and the list filters and coordinate
//! systems. The track history is in `track.rs`.

use std::time::Duration;

use fieldlink_e2e::{Options, TestServer, eventually, fix, now_ms};
use fieldlink_location::{haversine_m, wgs84_to_gcj02};
use fieldlink_sim::{Fleet, FleetConfig};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn units(srv: &TestServer, query: &str) -> Vec<Value> {
    let (status, body) = srv
        .get(&format!("/api/v1/units{query}"), Some(&srv.viewer))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a list").clone()
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nearest_k_over_a_thousand_units_equals_a_brute_force_scan() {
    let srv = TestServer::start(Options {
        units: 1000,
        ..Default::default()
    })
    .await;
    let creds = srv
        .units
        .iter()
        .map(|u| (u.id.clone(), u.secret.clone()))
        .collect();
    let fleet = Fleet::start(FleetConfig::new(
        srv.broker.clone(),
        srv.topics.clone(),
        creds,
    ))
    .await
    .expect("fleet starts");
    eventually(
        Duration::from_secs(60),
        "all 1,000 units positioned",
        || async {
            let list = units(&srv, "").await;
            list.iter().all(|u| u["lat"].is_f64()).then_some(())
        },
    )
    .await;
    fleet.stop().await;
    // A stable picture: no fix still in flight between two reads.
    let snapshot = eventually(WAIT, "positions settle", || async {
        let a = units(&srv, "").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let b = units(&srv, "").await;
        let pos = |l: &[Value]| {
            l.iter()
                .map(|u| (u["lat"].clone(), u["lon"].clone()))
                .collect::<Vec<_>>()
        };
        (pos(&a) == pos(&b)).then_some(b)
    })
    .await;
    assert_eq!(snapshot.len(), 1000);

    for (lat, lon) in [
        (30.2741, 120.1551),
        (30.25, 120.18),
        (30.22, 120.21),
        (30.31, 120.14),
        (31.23, 121.47),
    ] {
        let mut brute: Vec<(f64, String)> = snapshot
            .iter()
            .map(|u| {
                let d = haversine_m(
                    lat,
                    lon,
                    u["lat"].as_f64().unwrap(),
                    u["lon"].as_f64().unwrap(),
                );
                (d, u["id"].as_str().unwrap().to_owned())
            })
            .collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (status, body) = srv
            .get(
                &format!("/api/v1/units/nearest?lat={lat}&lon={lon}&k=5"),
                Some(&srv.viewer),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let got = body.as_array().expect("a list");
        assert_eq!(got.len(), 5);
        for (g, (d, id)) in got.iter().zip(&brute) {
            assert_eq!(
                g["id"].as_str(),
                Some(id.as_str()),
                "at {lat},{lon}: {body}"
            );
            let gd = g["distance_m"].as_f64().expect("distance_m");
            assert!((gd - d).abs() < 0.01, "{id}: {gd} vs {d}");
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn the_unit_list_filters_by_box_status_and_coordinate_system() {
    let srv = TestServer::start(Options {
        units: 3,
        ..Default::default()
    })
    .await;
    let (a, b) = ((30.2741, 120.1551), (30.30, 120.20));
    // Kept connected: a dropped handset's last will would make the unit offline.
    let mut handsets = Vec::new();
    for (i, (lat, lon)) in [a, b].into_iter().enumerate() {
        let handset = srv.handset(i).await;
        handset
            .publish_fix_qos1(fix(lat, lon, now_ms()))
            .await
            .expect("published");
        handsets.push(handset);
    }
    eventually(WAIT, "two units positioned", || async {
        (units(&srv, "?status=online").await.len() == 2).then_some(())
    })
    .await;

    assert_eq!(ids(&units(&srv, "").await), ["u000", "u001", "u002"]);
    assert_eq!(
        ids(&units(&srv, "?bbox=120.15,30.27,120.16,30.28").await),
        ["u000"]
    );
    assert_eq!(ids(&units(&srv, "?status=online").await), ["u000", "u001"]);
    assert!(units(&srv, "?status=stale,offline").await.is_empty());

    // GCJ-02 moves Hangzhou by a few hundred metres, exactly as the converter says.
    let gcj = units(&srv, "?coords=gcj02&bbox=120.15,30.27,120.17,30.28").await;
    assert_eq!(ids(&gcj), ["u000"]);
    let (glat, glon) = (
        gcj[0]["lat"].as_f64().unwrap(),
        gcj[0]["lon"].as_f64().unwrap(),
    );
    let (elat, elon) = wgs84_to_gcj02(a.0, a.1);
    assert!(
        (glat - elat).abs() < 1e-9 && (glon - elon).abs() < 1e-9,
        "{gcj:?}"
    );
    let shift = haversine_m(a.0, a.1, glat, glon);
    assert!((100.0..1000.0).contains(&shift), "shift {shift} m");
    // A box around the WGS-84 point is asked in GCJ-02, so it misses the unit.
    let tight = format!(
        "?coords=gcj02&bbox={},{},{},{}",
        a.1 - 0.0005,
        a.0 - 0.0005,
        a.1 + 0.0005,
        a.0 + 0.0005
    );
    assert!(units(&srv, &tight).await.is_empty());

    // Nearest: the query point in GCJ-02 finds the unit at distance ~0.
    let (status, near) = srv
        .get(
            &format!("/api/v1/units/nearest?lat={glat}&lon={glon}&k=2&coords=gcj02"),
            Some(&srv.viewer),
        )
        .await;
    assert_eq!(status, 200, "{near}");
    assert_eq!(ids(near.as_array().unwrap()), ["u000", "u001"]);
    assert!(near[0]["distance_m"].as_f64().unwrap() < 1.0, "{near}");
    assert!(
        (near[0]["lat"].as_f64().unwrap() - glat).abs() < 1e-9,
        "{near}"
    );
    // A disabled unit is not available.
    let (status, _) = srv
        .post("/api/v1/units/u000/disable", Some(&srv.admin), json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, near) = srv
        .get(
            &format!(
                "/api/v1/units/nearest?lat={}&lon={}&k=2&available=true",
                a.0, a.1
            ),
            Some(&srv.viewer),
        )
        .await;
    assert_eq!(ids(near.as_array().unwrap()), ["u001"], "{near}");

    for (path, code) in [
        ("/api/v1/units?bbox=1,2,3", "bad_bbox"),
        ("/api/v1/units?status=asleep", "bad_status"),
        ("/api/v1/units?coords=mars", "bad_coords"),
        ("/api/v1/units/nearest?lon=120", "bad_point"),
        ("/api/v1/units/nearest?lat=30&lon=120&k=0", "bad_k"),
        (
            "/api/v1/units/nearest?lat=30&lon=120&available=maybe",
            "bad_flag",
        ),
    ] {
        let (status, body) = srv.get(path, Some(&srv.viewer)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{path}"
        );
    }
    let (_, metrics) = srv.get("/metrics", None).await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("fieldlink_track_rows_pruned_total")
    );
    srv.stop().await;
}

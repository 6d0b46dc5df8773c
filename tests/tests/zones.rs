//! Geofences and grids end to end: a real server, real MQTT handsets walking in and out of a grid
//! made through the API, the hysteresis at a boundary, a restart, and the example GeoJSON file of
//! the config loaded at start. Roles and validation of the API are in `zones_api.rs`.
//!
//! Zone events are counted after the fix moved the unit, so before asserting exact counts each
//! test sends a last fix that changes nothing and waits for it: the uplink path is one task, so by
//! then every earlier fix's events are counted.

use std::path::PathBuf;
use std::time::Duration;

use fieldlink_e2e::{Options, TestServer, eventually, now_ms};
use fieldlink_proto::v1;
use fieldlink_sim::Handset;
use fieldlink_store::Role;
use reqwest::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
/// The test grid: a square of ±0.001° around this centre (about 222 m × 192 m).
const C: (f64, f64) = (30.26, 120.17);
const HALF: f64 = 0.001;
/// Metres per degree of longitude at the centre's latitude.
const M_PER_DEG_LON: f64 = 96_043.0;
const ENTER: &str = "fieldlink_zone_events_total{kind=\"enter\"}";
const EXIT: &str = "fieldlink_zone_events_total{kind=\"exit\"}";

fn square(id: &str, members: &[&str]) -> Value {
    fieldlink_e2e::square_grid(id, C, HALF, members)
}

/// A point `m` metres east of the square's east edge (negative: inside), on the centre line.
fn east_of_edge(m: f64) -> (f64, f64) {
    (C.0, C.1 + HALF + m / M_PER_DEG_LON)
}

/// A handset and the fix time of its next fix (30 s apart, so walking is never a jump).
struct Walker {
    handset: Handset,
    unit: String,
    at_ms: i64,
}

impl Walker {
    async fn new(srv: &TestServer, i: usize) -> Walker {
        Walker {
            handset: srv.handset(i).await,
            unit: srv.units[i].id.to_string(),
            at_ms: now_ms() - 40 * 60_000,
        }
    }

    /// Sends a fix and waits until it is the unit's latest position.
    async fn go(&mut self, srv: &TestServer, (lat, lon): (f64, f64)) {
        self.at_ms += 30_000;
        let fix = v1::GpsFix {
            fix_time_ms: self.at_ms,
            lat,
            lon,
            accuracy_m: Some(5.0),
            satellites: 9,
            ..Default::default()
        };
        self.handset.publish_fix_qos1(fix).await.expect("published");
        eventually(WAIT, "the fix is the latest position", || async {
            let u = srv.unit(&self.unit).await;
            let near = |v: &Value, want: f64| v.as_f64().is_some_and(|v| (v - want).abs() < 1e-9);
            (near(&u["lat"], lat) && near(&u["lon"], lon)).then_some(())
        })
        .await;
    }
}

async fn ids(srv: &TestServer, query: &str) -> Vec<String> {
    let (status, body) = srv
        .get(&format!("/api/v1/units{query}"), Some(&srv.viewer))
        .await;
    assert_eq!(status, 200, "{body}");
    let list = body.as_array().expect("a list");
    list.iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn counts(srv: &TestServer) -> (f64, f64) {
    (srv.metric(ENTER).await, srv.metric(EXIT).await)
}

#[tokio::test]
async fn a_handset_walks_into_a_grid_made_through_the_api_and_out_past_the_hysteresis() {
    let srv = TestServer::start(Options {
        units: 2,
        ..Default::default()
    })
    .await;
    let token = srv.token(Role::Dispatcher).await;
    let (status, body) = srv
        .post(
            "/api/v1/grids",
            Some(&token),
            square("g1", &["u000", "u001"]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["properties"]["members"], json!(["u000", "u001"]));
    assert_eq!(body["properties"]["source"], "api");

    let mut w = Walker::new(&srv, 0).await;
    w.go(&srv, east_of_edge(100.0)).await;
    assert!(ids(&srv, "?grid=g1").await.is_empty());
    w.go(&srv, C).await;
    assert_eq!(ids(&srv, "?grid=g1").await, ["u000"]);
    eventually(WAIT, "one enter event", || async {
        (counts(&srv).await == (1.0, 0.0)).then_some(())
    })
    .await;
    let (status, grid) = srv.get("/api/v1/grids/g1/units", Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{grid}");
    let inside: Vec<_> = grid["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].clone(), m["in_grid"].clone()))
        .collect();
    assert_eq!(
        inside,
        [(json!("u000"), json!(true)), (json!("u001"), json!(false))],
        "{grid}"
    );

    // 10 m outside: not in the grid any more by geometry, but within the hysteresis: no exit.
    w.go(&srv, east_of_edge(10.0)).await;
    assert!(ids(&srv, "?grid=g1").await.is_empty());
    w.go(&srv, east_of_edge(11.0)).await;
    assert_eq!(
        counts(&srv).await,
        (1.0, 0.0),
        "within the hysteresis: still inside"
    );
    // 40 m outside: past the 15 m hysteresis, it has left.
    w.go(&srv, east_of_edge(40.0)).await;
    eventually(WAIT, "one exit event", || async {
        (counts(&srv).await == (1.0, 1.0)).then_some(())
    })
    .await;
    w.go(&srv, east_of_edge(45.0)).await;
    assert_eq!(counts(&srv).await, (1.0, 1.0));
    srv.stop().await;
}

#[tokio::test]
async fn a_fix_jittering_a_few_metres_around_the_boundary_does_not_flap() {
    let srv = TestServer::start(Options {
        units: 1,
        ..Default::default()
    })
    .await;
    let (status, body) = srv
        .send(
            Method::PUT,
            "/api/v1/grids/g2",
            Some(&srv.admin),
            Some(square("g2", &[])),
        )
        .await;
    assert_eq!(status, 201, "PUT creates: {body}");
    let mut w = Walker::new(&srv, 0).await;
    for i in 0..12 {
        let m = if i % 2 == 0 { 5.0 } else { -4.0 };
        w.go(&srv, east_of_edge(m + i as f64 * 0.1)).await;
    }
    w.go(&srv, east_of_edge(-6.0)).await;
    assert_eq!(counts(&srv).await, (1.0, 0.0), "one enter, never an exit");
    srv.stop().await;
}

fn example_grids() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/grids.example.geojson")
}

#[tokio::test]
async fn zones_survive_a_restart_and_the_example_grid_file_loads_at_start() {
    let tag = fieldlink_e2e::tag();
    let options = |data_dir| Options {
        units: 1,
        tag: Some(tag.clone()),
        data_dir,
        grid_files: vec![example_grids()],
        ..Default::default()
    };
    let srv = TestServer::start(options(None)).await;
    let dir = srv.config.data_dir.clone();
    let (status, body) = srv
        .post("/api/v1/grids", Some(&srv.admin), square("g1", &["u000"]))
        .await;
    assert_eq!(status, 201, "{body}");
    let mut w = Walker::new(&srv, 0).await;
    w.go(&srv, C).await;
    assert_eq!(ids(&srv, "?grid=g1").await, ["u000"]);
    drop(w);
    let keep = srv.stop().await;

    let srv = TestServer::start(options(Some(dir))).await;
    let (_, grids) = srv.get("/api/v1/grids", Some(&srv.viewer)).await;
    let listed: Vec<_> = grids["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].clone(), f["properties"]["source"].clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (json!("g1"), json!("api")),
            (json!("shangcheng-hubin-01"), json!("file")),
            (json!("shangcheng-hubin-02"), json!("file")),
        ]
    );
    let (_, g1) = srv.get("/api/v1/grids/g1", Some(&srv.viewer)).await;
    assert_eq!(g1["properties"]["members"], json!(["u000"]));
    assert_eq!(
        ids(&srv, "?grid=g1").await,
        ["u000"],
        "the restored position is in the restored grid"
    );

    // File grids are read-only, and work like any other.
    let admin = Some(srv.admin.as_str());
    let (status, body) = srv
        .send(
            Method::DELETE,
            "/api/v1/grids/shangcheng-hubin-01",
            admin,
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("read_only_zone"))
    );
    let (status, _) = srv
        .send(
            Method::PUT,
            "/api/v1/grids/shangcheng-hubin-02",
            admin,
            Some(square("shangcheng-hubin-02", &[])),
        )
        .await;
    assert_eq!(status, 409);
    let mut w = Walker::new(&srv, 0).await;
    // Later than the restored fix, and long enough after it that 800 m is a walk, not a jump.
    w.at_ms = now_ms() - 10 * 60_000;
    w.go(&srv, (30.2570, 120.1625)).await;
    assert_eq!(ids(&srv, "?grid=shangcheng-hubin-01").await, ["u000"]);
    assert!(ids(&srv, "?grid=shangcheng-hubin-02").await.is_empty());
    w.go(&srv, (30.2571, 120.1625)).await;
    // Left g1 (well outside now) and entered the first example grid.
    assert_eq!(counts(&srv).await, (1.0, 1.0));
    drop(w);
    srv.stop().await;
    drop(keep);
}

//! Geofence-rule alarms and responder status end to end: a geofence with `alarm_on: enter`, a
//! real handset walking in (an alarm appears, is acknowledged, then resolved) and out (no alarm
//! for `enter`); the responder status in `GET /api/v1/units` and its `responder_status=` filter.

use std::time::Duration;

use fieldlink_e2e::{Options, TestServer, eventually, now_ms};
use fieldlink_proto::v1;
use fieldlink_sim::Handset;
use fieldlink_store::Role;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
/// The venue's centre.
const C: (f64, f64) = (30.26, 120.17);
/// About 250 m north of the centre (a walk of 30 s on foot).
const AWAY: (f64, f64) = (30.26225, 120.17);

fn venue(alarm_on: &str) -> Value {
    json!({
        "type": "Feature",
        "id": "venue",
        "geometry": {"type": "Point", "coordinates": [C.1, C.0]},
        "properties": {"name": "Hubin venue", "radius_m": 100, "alarm_on": alarm_on}
    })
}

/// Sends fixes 30 s apart and waits until each is the unit's latest position.
struct Walker {
    handset: Handset,
    unit: String,
    at_ms: i64,
}

impl Walker {
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

async fn geofence_alarms(srv: &TestServer) -> Vec<Value> {
    let (status, body) = srv.get("/api/v1/alarms", Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{body}");
    (body["alarms"].as_array().cloned().unwrap_or_default())
        .into_iter()
        .filter(|a| a["kind"]["type"] == "geofence")
        .collect()
}

async fn ids(srv: &TestServer, query: &str) -> Vec<String> {
    let (status, body) = srv
        .get(&format!("/api/v1/units{query}"), Some(&srv.viewer))
        .await;
    assert_eq!(status, 200, "{body}");
    (body.as_array().expect("a list").iter())
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn walking_into_an_enter_geofence_raises_an_alarm_that_is_acknowledged_and_resolved() {
    let srv = TestServer::start(Options {
        units: 2,
        ..Default::default()
    })
    .await;
    let dispatcher = srv.token(Role::Dispatcher).await;

    // alarm_on is for geofences, and checked.
    let grid = fieldlink_e2e::square_grid("g1", C, 0.001, &[]);
    let mut bad_grid = grid.clone();
    bad_grid["properties"]["alarm_on"] = json!("enter");
    let (status, body) = srv.post("/api/v1/grids", Some(&dispatcher), bad_grid).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_alarm_on"))
    );
    let (status, body) = srv
        .post("/api/v1/geofences", Some(&dispatcher), venue("inside"))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_alarm_on"))
    );
    let (status, body) = srv
        .post("/api/v1/geofences", Some(&dispatcher), venue("enter"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["properties"]["alarm_on"], "enter", "{body}");
    let (_, shown) = srv.get("/api/v1/geofences/venue", Some(&srv.viewer)).await;
    assert_eq!(shown["properties"]["alarm_on"], "enter", "{shown}");

    let mut w = Walker {
        handset: srv.handset(0).await,
        unit: srv.units[0].id.to_string(),
        at_ms: now_ms() - 40 * 60_000,
    };
    w.go(&srv, AWAY).await;
    assert!(geofence_alarms(&srv).await.is_empty());

    // Responder status: u000 is online and on duty, u001 was never heard from.
    let u = eventually(WAIT, "u000 available", || async {
        let u = srv.unit("u000").await;
        (u["status"] == "available").then_some(u)
    })
    .await;
    assert_eq!(u["presence"], "online", "{u}");
    assert_eq!(srv.unit("u001").await["status"], "offline");
    assert_eq!(ids(&srv, "?responder_status=available").await, ["u000"]);
    assert_eq!(
        ids(&srv, "?responder_status=offline,on_scene").await,
        ["u001"]
    );
    let (status, body) = srv
        .get("/api/v1/units?responder_status=asleep", Some(&srv.viewer))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_responder_status"))
    );

    // Walks in: one geofence alarm, raised by the rule.
    w.go(&srv, C).await;
    let alarm = eventually(WAIT, "the geofence alarm", || async {
        geofence_alarms(&srv).await.pop()
    })
    .await;
    assert_eq!(alarm["state"], "raised", "{alarm}");
    assert_eq!(alarm["kind"]["zone"], "venue", "{alarm}");
    assert_eq!(alarm["kind"]["unit"], "u000", "{alarm}");
    assert_eq!(alarm["kind"]["entered"], true, "{alarm}");
    assert_eq!(
        alarm["kind"]["message"], "u000 entered Hubin venue",
        "{alarm}"
    );
    let id = alarm["id"].as_str().expect("id").to_owned();

    // Viewers cannot resolve; a dispatcher acknowledges, then resolves (with a note).
    let resolve = format!("/api/v1/alarms/{id}/resolve");
    let (status, _) = srv.post(&resolve, Some(&srv.viewer), json!({})).await;
    assert_eq!(status, 403);
    let (status, body) = srv
        .post(
            &format!("/api/v1/alarms/{id}/ack"),
            Some(&dispatcher),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &body["alarm"]["state"]),
        (200, &json!("acknowledged"))
    );
    let (status, body) = srv
        .post(
            &resolve,
            Some(&dispatcher),
            json!({"note": "expected visit"}),
        )
        .await;
    assert_eq!(
        (status, &body["alarm"]["state"]),
        (200, &json!("resolved")),
        "{body}"
    );
    let (status, body) = srv.post(&resolve, Some(&dispatcher), json!({})).await;
    assert_eq!(
        (status, &body["alarm"]["state"]),
        (200, &json!("resolved")),
        "a repeat is a no-op"
    );
    let (status, body) = srv
        .post("/api/v1/alarms/nope/resolve", Some(&dispatcher), json!({}))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("unknown_alarm"))
    );

    // Walks out: no alarm for an `enter` geofence (a last fix that changes nothing first, so
    // every earlier fix's events have been handled).
    w.go(&srv, AWAY).await;
    w.go(&srv, (AWAY.0 + 0.0001, AWAY.1)).await;
    let exits = srv
        .metric("fieldlink_zone_events_total{kind=\"exit\"}")
        .await;
    assert_eq!(exits, 1.0, "it did leave the venue");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let alarms = geofence_alarms(&srv).await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    srv.stop().await;
}

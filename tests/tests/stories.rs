//! The seed's two stories end to end, with the simulated fleet as the responders: the server on
//! free ports and a manual clock the test drives, the real broker, real MQTT handsets
//! (`fieldlink_sim::Crew`) that receive work orders, answer after a human delay, walk to the
//! scene and report, and a real WebSocket client in the command room. Targets are the defaults:
//! accepted within 60 s, on scene within 180 s, reinforcements within 300 s.
//!
//! 1. *Lost child*: an incident near a school at 20:00; one click sends the nearest free
//!    responder; accepted within a minute, on scene within three (arrival detected from GPS);
//!    the command room sees every step in order; the track and the streams near the scene.
//! 2. *Flash flood*: twelve incidents at once for ten responders, two of whom never answer:
//!    nobody holds two orders at once, silent units lose their orders to the next nearest,
//!    incidents nobody could take wait and go out as responders free up, and the SLA report
//!    counts what met each target.
//! 3. The lost child again on the machine's Mosquitto and PostgreSQL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use fieldlink_clock::{Clock, ManualClock, Timestamp};
use fieldlink_e2e::ws::WsClient;
use fieldlink_e2e::{MOSQUITTO, Options, TestServer, now_ms, service_or_skip};
use fieldlink_proto::UnitId;
use fieldlink_sim::{Behaviour, Crew, CrewConfig, UnitKind};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
/// Simulated time per step: the crew publishes a fix each step.
const STEP: Duration = Duration::from_secs(2);

/// The school gate (a primary school in Hubin, by the example checkpoint cp-example-001).
const SCHOOL: (f64, f64) = (30.2575, 120.1645);

/// A manual clock at 20:00 Beijing time (12:00 UTC) of the latest such moment before now.
fn eight_pm() -> Arc<ManualClock> {
    const DAY: i64 = 86_400_000;
    let now = now_ms();
    let mut at = now - now.rem_euclid(DAY) + 12 * 3_600_000;
    if at > now {
        at -= DAY;
    }
    Arc::new(ManualClock::new(Timestamp::from_millis(at)))
}

/// `(lat, lon)` moved `north_m` and `east_m` metres.
fn offset((lat, lon): (f64, f64), north_m: f64, east_m: f64) -> (f64, f64) {
    let dlat = north_m / 111_320.0;
    let dlon = east_m / (111_320.0 * lat.to_radians().cos());
    (lat + dlat, lon + dlon)
}

fn example_cameras() -> Vec<std::path::PathBuf> {
    vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/cameras.example.geojson")]
}

/// A crew of the server's units on foot (as the test server registers them), at `starts`.
async fn crew(
    srv: &TestServer,
    clock: &Arc<ManualClock>,
    starts: Vec<(f64, f64)>,
    behaviour: Behaviour,
    overrides: HashMap<UnitId, Behaviour>,
) -> Crew {
    let units: Vec<(UnitId, String)> = (srv.units.iter())
        .map(|u| (u.id.clone(), u.secret.clone()))
        .collect();
    let n = units.len();
    let mut cfg = CrewConfig::new(srv.broker.clone(), srv.topics.clone(), units);
    cfg.clock = clock.clone();
    cfg.sealed = srv.sealed();
    cfg.seed = 7;
    cfg.behaviour = behaviour;
    cfg.overrides = overrides;
    cfg.starts = Some(starts);
    cfg.kinds = Some(vec![UnitKind::OnFoot; n]);
    cfg.fix_interval = STEP;
    Crew::connect(cfg).await.expect("the crew connects")
}

/// Answers after 10–30 s, walks to the scene, reports arrival only when at the spot (5 m), so
/// the server's arrival detection from GPS (50 m, two fixes) comes first; works 60–120 s.
fn responder() -> Behaviour {
    Behaviour {
        accept_delay: (Duration::from_secs(10), Duration::from_secs(30)),
        work_time: (Duration::from_secs(60), Duration::from_secs(120)),
        arrival_radius_m: 5.0,
        ..Behaviour::orders_only()
    }
}

/// One step of simulated time: the clock moves, every responder acts, the server catches up.
async fn step(clock: &ManualClock, crew: &mut Crew) {
    clock.advance(STEP);
    crew.step().await.expect("the crew steps");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// Steps until `check` gives a value, at most `limit` of simulated time.
async fn step_until<T, F, Fut>(
    clock: &ManualClock,
    crew: &mut Crew,
    limit: Duration,
    what: &str,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = clock.now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            clock.now().since(start) <= limit,
            "{what}: not within {limit:?} of simulated time"
        );
        step(clock, crew).await;
    }
}

/// Every responder has reported a position and is available (so dispatch ranks them all).
async fn everyone_placed(srv: &TestServer, clock: &ManualClock, crew: &mut Crew) {
    let n = srv.units.len();
    step_until(
        clock,
        crew,
        Duration::from_secs(20),
        "every responder placed",
        || async {
            let (status, body) = srv.get("/api/v1/units", Some(&srv.viewer)).await;
            assert_eq!(status, 200, "{body}");
            let placed = (body.as_array()?.iter())
                .filter(|u| !u["lat"].is_null() && u["status"] == json!("available"))
                .count();
            (placed == n).then_some(())
        },
    )
    .await;
}

async fn create_incident(srv: &TestServer, kind: &str, at: (f64, f64), text: &str) -> String {
    let body = json!({
        "kind": kind, "priority": "high", "lat": at.0, "lon": at.1, "description": text,
    });
    let (status, body) = srv.post("/api/v1/incidents", Some(&srv.admin), body).await;
    assert_eq!(status, 201, "{body}");
    body["incident"]["id"].as_str().expect("id").to_owned()
}

async fn one_click(srv: &TestServer, incident: &str) -> Value {
    let path = format!("/api/v1/incidents/{incident}/dispatch");
    let (status, body) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn incident(srv: &TestServer, id: &str) -> Value {
    let (status, body) = srv
        .get(&format!("/api/v1/incidents/{id}"), Some(&srv.viewer))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A time field of the API (RFC 3339).
fn at(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(Timestamp::parse_rfc3339)
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.millis_since(from) as f64 / 1000.0
}

/// The lost-child loop on a server started with `opts`.
async fn lost_child(opts: Options) {
    let clock = eight_pm();
    let srv = TestServer::start_with_clock(
        Options {
            units: 5,
            camera_files: example_cameras(),
            ..opts
        },
        clock.clone(),
    )
    .await;
    // The nearest responder 100 m north of the gate; the others 400 m to 1.5 km away.
    let starts = vec![
        offset(SCHOOL, 100.0, 0.0),
        offset(SCHOOL, -400.0, 50.0),
        offset(SCHOOL, 300.0, 600.0),
        offset(SCHOOL, -900.0, -700.0),
        offset(SCHOOL, 1500.0, 0.0),
    ];
    let mut crew = crew(&srv, &clock, starts, responder(), HashMap::new()).await;
    everyone_placed(&srv, &clock, &mut crew).await;

    let mut room = WsClient::command_room(&srv, &srv.viewer).await;
    room.next_of("hello", WAIT).await;
    room.send(json!({"type": "subscribe", "channels": ["incidents", "orders"]}))
        .await;
    room.next_of("snapshot", WAIT).await;

    let id = create_incident(
        &srv,
        "lost_person",
        SCHOOL,
        "a seven-year-old boy missing at the school gate",
    )
    .await;
    let created = at(&incident(&srv, &id).await["incident"]["created_at"]).expect("created_at");
    let click = one_click(&srv, &id).await;
    assert_eq!(
        click["orders"][0]["unit"],
        json!("u000"),
        "the nearest: {click}"
    );
    let order = click["orders"][0]["id"].as_str().expect("order").to_owned();

    let done = step_until(
        &clock,
        &mut crew,
        Duration::from_secs(240),
        "on scene",
        || async {
            let (status, body) = srv
                .get(&format!("/api/v1/orders/{order}"), Some(&srv.viewer))
                .await;
            assert_eq!(status, 200, "{body}");
            (body["order"]["state"] == json!("on_scene")).then_some(body)
        },
    )
    .await;
    let accepted = at(&done["order"]["accepted_at"]).expect("accepted_at");
    let on_scene = at(&done["order"]["on_scene_at"]).expect("on_scene_at");
    assert!(
        seconds(created, accepted) <= 60.0,
        "accepted after {} s",
        seconds(created, accepted)
    );
    assert!(
        seconds(created, on_scene) <= 180.0,
        "on scene after {} s",
        seconds(created, on_scene)
    );
    let receipts: Vec<&str> = (done["order"]["receipts"]
        .as_array()
        .expect("receipts")
        .iter())
    .filter_map(Value::as_str)
    .collect();
    assert!(
        !receipts.contains(&"on_scene"),
        "arrival came from GPS before any on-scene receipt: {receipts:?}"
    );

    // The command room saw the loop in order.
    let events = room.events_until("order.on_scene", WAIT).await;
    let steps: Vec<&str> = (events.iter())
        .filter(|e| e["subject"] == json!(id) || e["subject"] == json!(order))
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| *k != "order.en_route")
        .collect();
    assert_eq!(
        steps,
        [
            "incident.created",
            "order.created",
            "order.dispatched",
            "order.delivered",
            "order.accepted",
            "order.on_scene"
        ],
        "{events:?}"
    );

    // The responder's track from the dispatch to the scene is there.
    let path = format!(
        "/api/v1/units/u000/track?from={}&to={}",
        created.to_rfc3339().replace('+', "%2B"),
        clock.now().to_rfc3339().replace('+', "%2B")
    );
    let (status, track) = srv.get(&path, Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{track}");
    let points = track["points"].as_array().expect("points").len();
    assert!(points >= 10, "{points} points: {track}");

    // What can be watched near the scene: the checkpoint by the gate, and the responder's own
    // camera once asked to start it.
    let (status, body) = (srv.post(
        "/api/v1/units/u000/video/start",
        Some(&srv.admin),
        json!({}),
    ))
    .await;
    assert_eq!(status, 202, "{body}");
    let near = format!(
        "/api/v1/streams?near={},{}&radius_m=500",
        SCHOOL.0, SCHOOL.1
    );
    let streams = step_until(
        &clock,
        &mut crew,
        Duration::from_secs(30),
        "the handset's stream",
        || async {
            let (status, body) = srv.get(&near, Some(&srv.viewer)).await;
            assert_eq!(status, 200, "{body}");
            let list = body["streams"].as_array()?.clone();
            (list.iter())
                .any(|s| s["kind"] == json!("handset") && s["stream"]["unit"] == json!("u000"))
                .then_some(list)
        },
    )
    .await;
    assert!(
        (streams.iter()).any(|s| s["camera"]["id"] == json!("cp-example-001")),
        "{streams:?}"
    );
    room.close().await;
    crew.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_child_near_a_school_at_eight_pm() {
    lost_child(Options::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_child_on_mosquitto_and_postgresql() {
    let name = "lost_child_on_mosquitto_and_postgresql";
    if !service_or_skip("Mosquitto", MOSQUITTO, name) {
        return;
    }
    let Some(pg) = fieldlink_store::testing::postgres_config_or_skip(name).await else {
        return;
    };
    let schema = pg.pg_schema.clone().unwrap_or_default();
    lost_child(Options {
        external_broker: Some(format!("mqtt://{MOSQUITTO}")),
        store: Some((pg.url.clone(), schema)),
        ..Options::default()
    })
    .await;
    fieldlink_store::testing::drop_schema(&pg).await;
}

/// Open orders (not ended) per unit, from the open incidents.
async fn open_orders(srv: &TestServer, incidents: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut by_unit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in incidents {
        let body = incident(srv, id).await;
        for o in body["orders"].as_array().into_iter().flatten() {
            let state = o["state"].as_str().unwrap_or_default();
            if [
                "dispatched",
                "delivered",
                "accepted",
                "en_route",
                "on_scene",
            ]
            .contains(&state)
            {
                let unit = o["unit"].as_str().unwrap_or_default().to_owned();
                by_unit
                    .entry(unit)
                    .or_default()
                    .push(o["id"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    by_unit
}

/// Replays the journal: an order is open from `order.created` until it is rejected, reassigned,
/// cancelled or resolved; no unit may get an order while another of its orders is open.
async fn no_unit_holds_two_orders(srv: &TestServer) {
    let events = (srv.server.state().store)
        .journal_since(0, 100_000)
        .await
        .expect("journal");
    let mut unit_of: HashMap<String, String> = HashMap::new();
    let mut open: HashMap<String, String> = HashMap::new();
    for e in &events {
        let order = e.subject.clone();
        match e.kind.as_str() {
            "order.created" => {
                let unit = find_unit(&e.data).unwrap_or_else(|| panic!("no unit in {}", e.data));
                if let Some(other) = open.get(&unit) {
                    panic!("{unit} got {order} while {other} was open");
                }
                open.insert(unit.clone(), order.clone());
                unit_of.insert(order, unit);
            }
            "order.rejected" | "order.reassigned" | "order.cancelled" | "order.resolved" => {
                if let Some(unit) = unit_of.get(&order) {
                    open.remove(unit);
                }
            }
            _ => {}
        }
    }
    assert!(
        unit_of.len() >= 12,
        "{} orders in the journal",
        unit_of.len()
    );
}

/// The `unit` of the order inside a journal event's data.
fn find_unit(data: &Value) -> Option<String> {
    match data {
        Value::Object(map) => {
            if let (Some(Value::String(unit)), true) =
                (map.get("unit"), map.contains_key("incident"))
            {
                return Some(unit.clone());
            }
            map.values().find_map(find_unit)
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flash_flood_twelve_incidents_for_ten_responders() {
    let clock = eight_pm();
    let srv = TestServer::start_with_clock(
        Options {
            units: 10,
            ..Options::default()
        },
        clock.clone(),
    )
    .await;
    // Ten responders on a 3 × 4 grid of 300 m around the district centre; u003 and u007 never
    // answer (their handsets are on, nobody looks at them).
    let centre = (30.2600, 120.1700);
    let starts: Vec<(f64, f64)> = (0..10)
        .map(|i| offset(centre, f64::from(i / 4) * 300.0, f64::from(i % 4) * 300.0))
        .collect();
    let silent = ["u003", "u007"];
    let overrides: HashMap<UnitId, Behaviour> = (silent.iter())
        .map(|u| {
            let b = Behaviour {
                never_answer: 1.0,
                ..responder()
            };
            (UnitId::new(*u).expect("id"), b)
        })
        .collect();
    let mut crew = crew(&srv, &clock, starts.clone(), responder(), overrides).await;
    everyone_placed(&srv, &clock, &mut crew).await;

    // The water comes: twelve reports at once, spread over the same streets.
    let from = clock.now();
    let mut incidents = Vec::new();
    for i in 0..12 {
        let spot = offset(
            centre,
            f64::from(i % 3) * 350.0 + 40.0,
            f64::from(i / 3) * 280.0 + 30.0,
        );
        let id = create_incident(
            &srv,
            "flooding",
            spot,
            &format!("water over the kerb, street {i}"),
        )
        .await;
        incidents.push(id);
    }
    let mut queued = 0;
    for id in &incidents {
        let click = one_click(&srv, id).await;
        if click["queued"] == json!(true) {
            queued += 1;
        }
    }
    assert_eq!(queued, 2, "ten responders, twelve incidents: two wait");

    // Until every incident has someone on scene, looking every 20 s of simulated time.
    let mut steps = 0;
    step_until(
        &clock,
        &mut crew,
        Duration::from_secs(1800),
        "every incident reached",
        || {
            steps += 1;
            let look = steps % 10 == 1;
            let incidents = &incidents;
            let srv = &srv;
            async move {
                if !look {
                    return None;
                }
                for (unit, orders) in open_orders(srv, incidents).await {
                    assert!(orders.len() <= 1, "{unit} holds {orders:?} at once");
                }
                let mut reached = 0;
                let mut summary = Vec::new();
                for id in incidents {
                    let body = incident(srv, id).await;
                    if at(&body["incident"]["first_on_scene_at"]).is_some() {
                        reached += 1;
                    }
                    let orders: Vec<String> = (body["orders"].as_array().into_iter().flatten())
                        .map(|o| {
                            format!(
                                "{}:{}",
                                o["unit"].as_str().unwrap_or("?"),
                                o["state"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    summary.push(format!(
                        "{id} {} [{}]",
                        body["incident"]["state"],
                        orders.join(" ")
                    ));
                }
                eprintln!("{reached}/12 reached: {}", summary.join("; "));
                (reached == incidents.len()).then_some(())
            }
        },
    )
    .await;
    // And between the looks: the journal never gives a unit a second order while one is open.
    no_unit_holds_two_orders(&srv).await;

    // The silent units lost their orders to the next nearest, and never reached a scene.
    let mut reassigned = 0;
    let mut reached_by: BTreeMap<String, usize> = BTreeMap::new();
    for id in &incidents {
        let body = incident(&srv, id).await;
        for o in body["orders"].as_array().into_iter().flatten() {
            let unit = o["unit"].as_str().unwrap_or_default();
            if silent.contains(&unit) {
                assert_eq!(o["state"], json!("reassigned"), "{o}");
                assert!(!o["reassigned_to"].is_null(), "{o}");
                reassigned += 1;
            }
            if !o["on_scene_at"].is_null() {
                *reached_by.entry(unit.to_owned()).or_default() += 1;
            }
        }
    }
    assert!(
        reassigned >= 2,
        "both silent units were tried first somewhere: {reassigned}"
    );
    assert!(
        silent.iter().all(|u| !reached_by.contains_key(*u)),
        "{reached_by:?}"
    );
    // Twelve scenes reached by eight answering responders: the queue went out as they freed.
    assert_eq!(reached_by.values().sum::<usize>(), 12, "{reached_by:?}");
    assert!(
        reached_by.values().any(|n| *n >= 2),
        "someone took a second incident: {reached_by:?}"
    );

    // The SLA report counts what met each target, as the incidents themselves say.
    let (mut accepted_in_time, mut on_scene_in_time) = (0, 0);
    for id in &incidents {
        let i = &incident(&srv, id).await["incident"];
        let created = at(&i["created_at"]).expect("created_at");
        let accepted = at(&i["first_accepted_at"]).expect("accepted");
        let on_scene = at(&i["first_on_scene_at"]).expect("on scene");
        accepted_in_time += usize::from(seconds(created, accepted) <= 60.0);
        on_scene_in_time += usize::from(seconds(created, on_scene) <= 180.0);
    }
    let to = clock.now().plus(Duration::from_secs(1));
    let path = format!(
        "/api/v1/reports/sla?from={}&to={}&group_by=kind&format=json",
        from.to_rfc3339().replace('+', "%2B"),
        to.to_rfc3339().replace('+', "%2B")
    );
    let (status, body) = srv.get(&path, Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{body}");
    let row = &body["rows"][0];
    assert_eq!(
        (&row["key"], &row["incidents"]),
        (&json!("flooding"), &json!(12)),
        "{body}"
    );
    let share = |n: usize| json!(n as f64 / 12.0);
    assert_eq!(row["within_response"], share(accepted_in_time), "{body}");
    assert_eq!(row["within_arrival"], share(on_scene_in_time), "{body}");
    assert!(
        accepted_in_time < 12,
        "the reassigned incidents missed the minute: {body}"
    );
    crew.stop().await;
    srv.stop().await;
}

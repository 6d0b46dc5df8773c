//! Floor control end to end: talkgroups through the API, real handsets (rumqttc over the
//! embedded broker) pressing push-to-talk on `ptt` and hearing `FloorAnswer`s on `down`, the
//! journal, the talk-burst log and a dispatcher cutting in.

use std::time::Duration;

use fieldlink_e2e::dispatch::{WAIT, downlink};
use fieldlink_e2e::ws::WsClient;
use fieldlink_e2e::{Options, TestServer, eventually, fix, now_ms};
use fieldlink_proto::UplinkKind;
use fieldlink_proto::v1;
use fieldlink_sim::{Handset, QoS};
use serde_json::{Value, json};

const GROUP: &str = "street-1";

async fn ptt(h: &Handset, id: &str, action: v1::ptt_message::Action) {
    let m = v1::PttMessage {
        id: id.to_owned(),
        time_ms: h.now().as_millis(),
        unit: h.unit().to_string(),
        talkgroup: GROUP.to_owned(),
        action: Some(action),
    };
    h.publish_uplink(UplinkKind::Ptt, &m, QoS::AtLeastOnce)
        .await
        .expect("ptt published");
}

fn request() -> v1::ptt_message::Action {
    v1::ptt_message::Action::Request(v1::FloorRequest { priority: 0 })
}

fn release() -> v1::ptt_message::Action {
    v1::ptt_message::Action::Release(v1::FloorRelease {})
}

/// The floor answer to request `id`.
async fn answer_to(h: &mut Handset, id: &str) -> v1::floor_answer::Answer {
    downlink(h, &format!("the floor answer to {id}"), |d| match &d.body {
        Some(v1::downlink::Body::Floor(f)) if f.request_id == id => f.answer.clone(),
        _ => None,
    })
    .await
}

async fn make_group(srv: &TestServer, busy: &str) {
    let body = json!({
        "name": "Street patrol", "mode": "arbitrated", "busy": busy,
        "units": ["u000", "u001"], "consoles": ["test admin"],
    });
    let path = format!("/api/v1/talkgroups/{GROUP}");
    let (status, v) = srv
        .send(reqwest::Method::PUT, &path, Some(&srv.admin), Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
}

/// Replays the journal's floor events and fails if two parties ever held the floor at once.
fn assert_one_holder_at_a_time(events: &[Value]) -> usize {
    let mut holder: Option<String> = None;
    let mut grants = 0;
    for e in events {
        let party = e["data"]["party"]["id"].as_str().map(str::to_owned);
        match e["kind"].as_str() {
            Some("ptt.granted") => {
                assert!(
                    holder.is_none(),
                    "granted to {party:?} while {holder:?} held it"
                );
                holder = party;
                grants += 1;
            }
            Some("ptt.released" | "ptt.revoked") => {
                assert_eq!(holder, party, "{e}");
                holder = None;
            }
            _ => {}
        }
    }
    grants
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handsets_race_for_the_floor_200_times_and_one_wins_each_round() {
    let srv = TestServer::start(Options {
        units: 2,
        // Each handset sends two messages a round, as fast as the answers come: about 25 a
        // second once the broker hands connections to rumqttd without a hop, more than the
        // default 20 a unit may send (its burst of 100 runs out near round 150, and the
        // throttle rightly drops a request). This test is about arbitration, not the limit
        // (tests/tests/flood.rs is), so the limit is raised.
        max_messages_per_s: Some(1000),
        ..Default::default()
    })
    .await;
    make_group(&srv, "deny").await;
    let (mut a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    let first_seq = srv.server.state().store.last_seq().await.expect("seq");

    for round in 0..200 {
        let (ra, rb) = (format!("a-{round}"), format!("b-{round}"));
        tokio::join!(ptt(&a, &ra, request()), ptt(&b, &rb, request()));
        let (ans_a, ans_b) = tokio::join!(answer_to(&mut a, &ra), answer_to(&mut b, &rb));
        let granted =
            |x: &v1::floor_answer::Answer| matches!(x, v1::floor_answer::Answer::Granted(_));
        assert!(
            granted(&ans_a) != granted(&ans_b),
            "round {round}: exactly one is granted: {ans_a:?} / {ans_b:?}"
        );
        let denied = if granted(&ans_a) { &ans_b } else { &ans_a };
        assert!(
            matches!(denied, v1::floor_answer::Answer::Denied(d) if d.reason == "busy"),
            "{denied:?}"
        );
        let (xa, xb) = (format!("a-{round}-up"), format!("b-{round}-up"));
        tokio::join!(ptt(&a, &xa, release()), ptt(&b, &xb, release()));
    }

    // The journal has every round, and never two holders at once.
    let events = eventually(WAIT, "200 grants and releases journalled", || async {
        let rows = (srv.server.state().store)
            .journal_since(first_seq, 10_000)
            .await
            .expect("journal");
        let floor: Vec<Value> = (rows.into_iter())
            .filter(|r| r.kind.starts_with("ptt."))
            .map(|r| json!({ "kind": r.kind, "data": r.data }))
            .collect();
        let released = floor.iter().filter(|e| e["kind"] == "ptt.released").count();
        (released == 200).then_some(floor)
    })
    .await;
    assert_eq!(assert_one_holder_at_a_time(&events), 200);

    // Each round is one burst in the log.
    let path = format!("/api/v1/talkgroups/{GROUP}/log?limit=1000");
    let (status, log) = srv.get(&path, Some(&srv.viewer)).await;
    assert_eq!(status, 200, "{log}");
    let bursts = log["bursts"].as_array().expect("bursts");
    assert_eq!(bursts.len(), 200);
    assert!(bursts.iter().all(|b| b["outcome"] == "released"), "{log}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dispatcher_cuts_in_and_the_queue_hands_over() {
    let srv = TestServer::start(Options {
        units: 2,
        ..Default::default()
    })
    .await;
    make_group(&srv, "queue").await;
    let (mut a, mut b) = (srv.handset(0).await, srv.handset(1).await);
    // B is known to be online (it reported a fix), so its going offline is a presence change.
    let here = fix(30.2741, 120.1551, now_ms());
    b.publish_fix_qos1(here).await.expect("B's fix");

    let mut room = WsClient::command_room(&srv, &srv.viewer).await;
    room.send(json!({"type": "subscribe", "channels": ["ptt"]}))
        .await;
    let snapshot = room.next_of("snapshot", WAIT).await;
    assert_eq!(
        snapshot["items"]["talkgroups"][0]["id"],
        json!(GROUP),
        "{snapshot}"
    );

    ptt(&a, "a1", request()).await;
    assert!(matches!(
        answer_to(&mut a, "a1").await,
        v1::floor_answer::Answer::Granted(_)
    ));
    ptt(&b, "b1", request()).await;
    assert!(matches!(
        answer_to(&mut b, "b1").await,
        v1::floor_answer::Answer::Queued(q) if q.position == 1
    ));

    // The command room cuts in: A is revoked, B keeps waiting.
    let floor = format!("/api/v1/talkgroups/{GROUP}/floor");
    let (status, v) = srv.post(&floor, Some(&srv.admin), json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["answer"]["kind"], json!("granted"), "{v}");
    assert_eq!(v["floor"]["holder"], json!("console:test admin"));
    let revoked = downlink(&mut a, "A's revoke", |d| match &d.body {
        Some(v1::downlink::Body::Floor(f)) => match &f.answer {
            Some(v1::floor_answer::Answer::Revoked(r)) => Some(r.reason.clone()),
            _ => None,
        },
        _ => None,
    })
    .await;
    assert_eq!(revoked, "pre-empted");
    // The command room saw it happen, in order.
    let seen = room.events_until("ptt.granted", WAIT).await;
    let granted = seen.last().expect("event");
    assert_eq!(
        granted["data"]["party"]["id"],
        json!("u000"),
        "A's grant first"
    );
    let seen = room.events_until("ptt.granted", WAIT).await;
    let kinds: Vec<&str> = seen.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"ptt.queued") && kinds.contains(&"ptt.revoked"),
        "{kinds:?}"
    );
    assert_eq!(
        seen.last().expect("event")["data"]["party"]["type"],
        json!("console")
    );

    // The console releases: B, first in the queue, is granted.
    let (status, _) = srv
        .post(&format!("{floor}/release"), Some(&srv.admin), json!({}))
        .await;
    assert_eq!(status, 200);
    let granted = downlink(&mut b, "B's grant from the queue", |d| match &d.body {
        Some(v1::downlink::Body::Floor(f)) => match &f.answer {
            Some(v1::floor_answer::Answer::Granted(g)) => Some(g.max_talk_ms),
            _ => None,
        },
        _ => None,
    })
    .await;
    assert!(granted > 0);

    // B's handset says it goes offline: it loses the floor.
    let bye = v1::StatusHeartbeat {
        online: false,
        ..Default::default()
    };
    b.publish_status(bye).await.expect("status");
    let path = format!("/api/v1/talkgroups/{GROUP}");
    eventually(
        Duration::from_secs(15),
        "the offline talker loses the floor",
        || async {
            let (_, v) = srv.get(&path, Some(&srv.viewer)).await;
            v["holder"].is_null().then_some(())
        },
    )
    .await;

    // The console takes the floor again over the command-room WebSocket, and gives it back.
    let mut console = WsClient::command_room(&srv, &srv.admin).await;
    let take =
        json!({"type": "command", "id": "f1", "op": "take_floor", "args": {"talkgroup": GROUP}});
    console.send(take).await;
    let taken = console.next_of("result", WAIT).await;
    assert_eq!(taken["data"]["answer"]["kind"], json!("granted"), "{taken}");
    assert_eq!(
        taken["data"]["floor"]["holder"],
        json!("console:test admin")
    );
    let give =
        json!({"type": "command", "id": "f2", "op": "release_floor", "args": {"talkgroup": GROUP}});
    console.send(give).await;
    let given = console.next_of("result", WAIT).await;
    assert!(given["data"]["floor"]["holder"].is_null(), "{given}");

    // Not a member, unknown group, read-only checks.
    let (status, v) = srv
        .post("/api/v1/talkgroups/nope/floor", Some(&srv.admin), json!({}))
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("unknown_talkgroup"))
    );
    let (status, v) = srv.post(&floor, Some(&srv.viewer), json!({})).await;
    assert_eq!(status, 403, "{v}");
    srv.stop().await;
}

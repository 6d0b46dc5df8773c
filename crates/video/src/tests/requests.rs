//! Remote start/stop requests: sent as an effect, fulfilled by the stream, or timed out.

use fieldlink_proto::v1;

use super::*;

fn ask(r: &mut Registry, id: &str, now: Timestamp) -> Result<Outcome, VideoError> {
    let options = StartOptions {
        max_width: 1280,
        reason: "incident inc-7".to_owned(),
        ..StartOptions::default()
    };
    r.request_start(&unit("u1"), rid(id), options, now)
}

#[test]
fn a_start_request_is_sent_and_fulfilled_by_the_stream_that_names_it() {
    let mut r = registry();
    let out = ask(&mut r, "req-1", at(0)).unwrap();
    assert_eq!(kinds(&out), ["request_sent"]);
    let [
        Effect::SendVideoRequest {
            unit: u,
            request,
            action,
        },
    ] = &out.effects[..]
    else {
        panic!("{:?}", out.effects);
    };
    assert_eq!((u.as_str(), request.as_str()), ("u1", "req-1"));
    let wire = wire::video_request(request, action);
    assert_eq!(wire.request_id, "req-1");
    let Some(v1::video_request::Action::Start(s)) = wire.action else {
        panic!("{wire:?}");
    };
    assert_eq!((s.max_width, s.max_height), (1280, 0));
    assert_eq!(r.request(&rid("req-1")).unwrap().deadline, at(30));

    let out = (r.stream_started(&unit("u1"), &sid("s1"), hd(), Some(rid("req-1")), at(4))).unwrap();
    assert_eq!(kinds(&out), ["stream_started", "request_fulfilled"]);
    assert_eq!(
        changes(&out)[1],
        VideoChange::RequestFulfilled {
            request: rid("req-1"),
            unit: unit("u1"),
            stream: sid("s1"),
        }
    );
    assert_eq!(r.pending_requests().count(), 0);
    assert_eq!(r.stream(&sid("s1")).unwrap().request_id, Some(rid("req-1")));
    assert!(
        r.tick(at(30))
            .events
            .iter()
            .all(|e| !matches!(e.change, VideoChange::RequestTimedOut { .. }))
    );
}

#[test]
fn a_stream_without_a_request_id_still_fulfils_its_units_pending_start() {
    let mut r = registry();
    ask(&mut r, "req-1", at(0)).unwrap();
    r.stream_started(&unit("u2"), &sid("s2"), hd(), None, at(1))
        .unwrap();
    assert!(
        r.request(&rid("req-1")).is_some(),
        "another unit's stream does not count"
    );
    let out = start(&mut r, at(2));
    assert_eq!(kinds(&out), ["stream_started", "request_fulfilled"]);
}

#[test]
fn an_unanswered_start_request_times_out_at_its_deadline() {
    let mut r = registry();
    ask(&mut r, "req-1", at(0)).unwrap();
    assert_eq!(r.next_deadline(), Some(at(30)));
    assert!(r.tick(at_ms(29_999)).is_empty());
    let out = r.tick(at(30));
    assert!(matches!(
        &changes(&out)[..],
        [VideoChange::RequestTimedOut { request, action: RequestAction::Start(_), .. }]
            if request.as_str() == "req-1"
    ));
    assert_eq!(r.pending_requests().count(), 0);
    // A stream arriving late is just a stream.
    assert_eq!(kinds(&start(&mut r, at(31))), ["stream_started"]);
}

#[test]
fn start_requests_are_refused_when_pointless_and_retries_are_harmless() {
    let mut r = registry();
    ask(&mut r, "req-1", at(0)).unwrap();
    assert!(ask(&mut r, "req-1", at(1)).unwrap().is_empty(), "a retry");
    assert_eq!(
        ask(&mut r, "req-2", at(1)).unwrap_err().code(),
        "request_pending"
    );
    let other = r.request_start(&unit("u2"), rid("req-1"), StartOptions::default(), at(1));
    assert_eq!(other.unwrap_err().code(), "duplicate_request");
    start(&mut r, at(2));
    assert_eq!(
        ask(&mut r, "req-3", at(3)).unwrap_err().code(),
        "already_streaming"
    );
    // Once the stream is stale, asking again makes sense.
    r.tick(at(17));
    assert_eq!(
        kinds(&ask(&mut r, "req-3", at(18)).unwrap()),
        ["request_sent"]
    );
}

#[test]
fn a_stop_request_is_fulfilled_when_the_stream_stops_or_times_out() {
    let mut r = registry();
    start(&mut r, at(0));
    let err = r
        .request_stop(&sid("nope"), rid("stop-0"), "done", at(1))
        .unwrap_err();
    assert_eq!(err.code(), "unknown_stream");
    let out = r
        .request_stop(&sid("s1"), rid("stop-1"), "done", at(1))
        .unwrap();
    let [
        Effect::SendVideoRequest {
            request, action, ..
        },
    ] = &out.effects[..]
    else {
        panic!("{:?}", out.effects);
    };
    let wire = wire::video_request(request, action);
    assert!(matches!(wire.action, Some(v1::video_request::Action::Stop(s)) if s.stream_id == "s1"));
    let out = r
        .stream_stopped(&unit("u1"), &sid("s1"), "requested", at(3))
        .unwrap();
    assert_eq!(kinds(&out), ["stream_stopped", "request_fulfilled"]);

    start(&mut r, at(10));
    r.request_stop(&sid("s1"), rid("stop-2"), "done", at(10))
        .unwrap();
    for s in (15..40).step_by(5) {
        r.keepalive(&unit("u1"), &sid("s1"), None, None, at(s))
            .unwrap();
    }
    let out = r.tick(at(40));
    assert!(matches!(
        &changes(&out)[..],
        [VideoChange::RequestTimedOut {
            action: RequestAction::Stop { .. },
            ..
        }]
    ));
}

#[test]
fn a_snapshot_restores_streams_and_request_deadlines() {
    let mut r = registry();
    start(&mut r, at(0));
    ask(&mut r, "req-9", at(1)).unwrap_err();
    r.request_start(&unit("u2"), rid("req-9"), StartOptions::default(), at(1))
        .unwrap();
    let json = serde_json::to_string(r.state()).unwrap();
    let state: RegistryState = serde_json::from_str(&json).unwrap();
    assert_eq!(&state, r.state());
    let mut back = Registry::restore(VideoConfig::default(), state);
    assert_eq!(back.next_deadline(), Some(at(15)));
    assert_eq!(
        kinds(&back.tick(at(31))),
        ["stream_stale", "request_timed_out"]
    );
}

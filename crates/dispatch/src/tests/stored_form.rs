//! The state's stored form: times are RFC 3339 strings now, and a snapshot or responder row
//! written when they were integer milliseconds still loads into the same state.

use serde_json::Value;

use super::*;

/// `value` as fieldlink wrote it before: every RFC 3339 time as its integer milliseconds.
fn with_integer_times(value: Value) -> (Value, usize) {
    match value {
        Value::String(s) => match Timestamp::parse_rfc3339(&s).filter(|_| s.ends_with('Z')) {
            Some(t) => (Value::from(t.as_millis()), 1),
            None => (Value::String(s), 0),
        },
        Value::Array(items) => {
            let (items, n): (Vec<Value>, Vec<usize>) =
                items.into_iter().map(with_integer_times).unzip();
            (Value::Array(items), n.iter().sum())
        }
        Value::Object(map) => {
            let mut n = 0;
            let map = (map.into_iter())
                .map(|(k, v)| {
                    let (v, m) = with_integer_times(v);
                    n += m;
                    (k, v)
                })
                .collect();
            (Value::Object(map), n)
        }
        other => (other, 0),
    }
}

/// A desk with an accepted order, a queued incident with its alarm, timers and a last fix.
fn busy_desk() -> Dispatcher {
    let mut d = desk();
    online(&mut d, at(0.0), &["u1"]);
    let first = incident(&mut d, at(0.0));
    let out = d
        .dispatch(at(1.0), &first, wang(), &[cand("u1", 100.0, "g1")])
        .unwrap();
    let (_, order, _) = sent(&out)[0].clone();
    d.receipt(at(5.0), &unit("u1"), &order, OrderState::Accepted, &nobody)
        .unwrap();
    let second = incident(&mut d, at(10.0));
    d.dispatch(at(11.0), &second, wang(), &[]).unwrap();
    d.gps_fix(at(12.0), &unit("u1"), SITE).unwrap();
    d
}

#[test]
fn times_are_written_as_rfc3339_strings() {
    let d = busy_desk();
    let json = serde_json::to_value(d.state()).unwrap();
    let created = &json["incidents"]["inc-1"]["created_at"];
    assert_eq!(created, &Value::from(at(0.0).to_rfc3339()), "{json}");
    assert!(created.as_str().is_some_and(|s| s.ends_with(".000Z")));
}

#[test]
fn a_snapshot_and_responder_rows_with_integer_times_still_load() {
    let d = busy_desk();
    let (old, times) = with_integer_times(serde_json::to_value(d.state()).unwrap());
    assert!(times >= 6, "the state holds times to convert: {times}");
    let restored: DeskState = serde_json::from_value(old).unwrap();
    // Responders are stored as rows of their own (below), not in the snapshot.
    let mut expected = d.state().clone();
    expected.responders.clear();
    assert_eq!(restored, expected, "the same state, read from the old form");

    let responder = &d.state().responders[&unit("u1")];
    let (old, times) = with_integer_times(serde_json::to_value(responder).unwrap());
    assert_eq!(times, 1, "the last fix's time");
    let restored: Responder = serde_json::from_value(old).unwrap();
    assert_eq!(&restored, responder);
}

//! Helpers shared by the dispatch end-to-end tests: a manual clock, two handsets placed near a
//! site, one-click dispatch, and reading downlinks.

use std::sync::Arc;
use std::time::Duration;

use fieldlink_clock::{Clock, ManualClock, Timestamp};
use fieldlink_proto::v1;
use fieldlink_sim::Handset;
use serde_json::json;

use crate::{TestServer, eventually, fix, now_ms};

/// How long a dispatch test waits for anything.
pub const WAIT: Duration = Duration::from_secs(10);
/// Where handset A stands.
pub const A: (f64, f64) = (30.2741, 120.1551);
/// Where handset B stands (about 270 m from A).
pub const B: (f64, f64) = (30.2760, 120.1570);
/// The incident site, next to A.
pub const SITE: (f64, f64) = (30.2742, 120.1552);

/// A manual clock standing at the wall clock's now.
pub fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(now_ms())))
}

/// Both handsets report a fix at the clock's time; waits until dispatch counts both available.
pub async fn place(
    srv: &TestServer,
    clock: &ManualClock,
    a: &Handset,
    b: &Handset,
    incident: &str,
) {
    let t = clock.now().as_millis();
    a.publish_fix_qos1(fix(A.0, A.1, t))
        .await
        .expect("A publishes");
    b.publish_fix_qos1(fix(B.0, B.1, t))
        .await
        .expect("B publishes");
    let path = format!("/api/v1/incidents/{incident}/recommend");
    eventually(WAIT, "both units available to dispatch", || async {
        let (status, body) = srv.get(&path, Some(&srv.viewer)).await;
        assert_eq!(status, 200, "{body}");
        let units: Vec<&str> = (body["recommendations"].as_array()?.iter())
            .filter_map(|r| r["candidate"]["unit"].as_str())
            .collect();
        (units == ["u000", "u001"]).then_some(())
    })
    .await;
}

/// One click; returns the order id, which must be for `unit`.
pub async fn one_click(srv: &TestServer, incident: &str, unit: &str) -> String {
    let path = format!("/api/v1/incidents/{incident}/dispatch");
    let (status, body) = srv.post(&path, Some(&srv.admin), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orders"][0]["unit"], json!(unit), "{body}");
    body["orders"][0]["id"]
        .as_str()
        .expect("order id")
        .to_owned()
}

/// The next downlink `pick` accepts (re-sends and other messages are skipped).
pub async fn downlink<T>(
    h: &mut Handset,
    what: &str,
    pick: impl Fn(&v1::Downlink) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let d = (h.next_downlink(left).await).unwrap_or_else(|| panic!("no downlink: {what}"));
        if let Some(v) = pick(&d) {
            return v;
        }
    }
}

/// The work order a downlink carries, if it is one.
pub fn work_order(d: &v1::Downlink) -> Option<v1::WorkOrder> {
    match &d.body {
        Some(v1::downlink::Body::Order(o)) => Some(o.clone()),
        _ => None,
    }
}

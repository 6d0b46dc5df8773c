//! A fleet against the real Mosquitto: every unit reports, fix times follow the given clock, and
//! `positions()` tells the truth a server's answers can be compared with.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fieldlink_clock::{Clock, ManualClock, Timestamp};
use fieldlink_proto::{Topic, UnitId, v1};
use fieldlink_sim::{Bbox, Fleet, FleetConfig};
use prost::Message as _;
use support::{MOSQUITTO, Observer, eventually, mosquitto_or_skip, unique_topics};

fn units(prefix: &str, n: usize) -> Vec<(UnitId, String)> {
    (0..n)
        .map(|i| {
            (
                UnitId::new(format!("{prefix}-{i:03}")).expect("valid"),
                format!("secret-{i}"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_units_at_200_ms_all_report_within_seconds() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let mut obs = Observer::start(&topics.uplink_filters()).await;
    let mut cfg = FleetConfig::new(MOSQUITTO, topics.clone(), units("u", 50));
    cfg.sealed = false; // Mosquitto: plain payloads, read by the observer
    cfg.fix_interval = Duration::from_millis(200);
    cfg.seed = 7;
    let fleet = Fleet::start(cfg).await.expect("50 handsets connect");
    assert_eq!(fleet.stats().connected, 50);

    let mut reporting = HashSet::new();
    let all = obs
        .until(Duration::from_secs(10), |p| {
            if let (Ok(Topic::Uplink { unit, .. }), Ok(report)) = (
                topics.parse(&p.topic),
                v1::GpsReport::decode(p.payload.clone()),
            ) {
                assert_eq!(report.unit, unit.as_str(), "each unit publishes as itself");
                let fix = &report.fixes[0];
                assert!(Bbox::SHANGCHENG.contains(fix.lat, fix.lon), "{fix:?}");
                reporting.insert(unit);
            }
            reporting.len() == 50
        })
        .await;
    assert!(all, "only {} of 50 units reported", reporting.len());

    let positions = fleet.positions();
    assert_eq!(positions.len(), 50);
    let stats = fleet.stats();
    assert!(stats.fixes_sent >= 50 && stats.errors == 0, "{stats:?}");
    fleet.stop().await;
}

#[tokio::test]
async fn fix_times_and_positions_follow_a_manual_clock() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let mut obs = Observer::start(&topics.uplink_filters()).await;
    let start = Timestamp::parse_rfc3339("2025-11-29T20:00:00Z").expect("valid time");
    let clock = ManualClock::new(start);
    let mut cfg = FleetConfig::new(MOSQUITTO, topics.clone(), units("m", 3));
    cfg.sealed = false;
    cfg.fix_interval = Duration::from_millis(100);
    cfg.clock = Arc::new(clock.clone());
    cfg.start_time = Some(start);
    let fleet = Fleet::start(cfg).await.expect("connects");
    let unit = UnitId::new("m-001").expect("valid");
    let gps = topics.uplink(&unit, fieldlink_proto::UplinkKind::Gps);
    let (_, route) = fleet.route(&unit).expect("a route per unit");

    let first = obs
        .next_on(&gps, Duration::from_secs(5))
        .await
        .expect("a fix");
    let first = v1::GpsReport::decode(first.payload).expect("decodes");
    assert_eq!(first.fixes[0].fix_time_ms, start.as_millis());
    assert_eq!(first.time_ms, start.as_millis());

    clock.advance(Duration::from_secs(60));
    let later = clock.now();
    let expected = route.position_at(Duration::from_secs(60));
    let mut seen = None;
    assert!(
        obs.until(Duration::from_secs(5), |p| {
            seen = (p.topic == gps)
                .then(|| v1::GpsReport::decode(p.payload.clone()).ok())
                .flatten()
                .filter(|r| r.fixes[0].fix_time_ms == later.as_millis());
            seen.is_some()
        })
        .await,
        "a fix stamped with the advanced clock arrives"
    );
    let fix = &seen.expect("seen").fixes[0];
    assert_eq!((fix.lat, fix.lon), (expected.lat, expected.lon));
    // What the fleet says it published is what went out.
    assert!(
        eventually(Duration::from_secs(5), || async {
            fleet.position(&unit).is_some_and(|p| {
                p.fix.fix_time_ms == later.as_millis() && p.fix.lat == expected.lat
            })
        })
        .await
    );
    fleet.stop().await;
}

#[tokio::test]
async fn stop_disconnects_every_unit_cleanly() {
    if !mosquitto_or_skip().await {
        return;
    }
    let topics = unique_topics();
    let mut cfg = FleetConfig::new(MOSQUITTO, topics, units("s", 5));
    cfg.sealed = false;
    cfg.fix_interval = Duration::from_millis(50);
    let fleet = Fleet::start(cfg).await.expect("connects");
    assert!(
        eventually(Duration::from_secs(5), || async {
            fleet.stats().fixes_sent >= 10
        })
        .await
    );
    let stopped = tokio::time::timeout(Duration::from_secs(5), fleet.stop()).await;
    assert!(stopped.is_ok(), "stop returns promptly");
}

//! The supervision report on a small known set.

use super::*;

/// Five incidents, one unit each (u0..u4, grid g1 except u4's in g2): accepted after
/// 10, 20, 30, 40, 70 s and on scene after 100, 120, 150, 170, 200 s.
fn five() -> Dispatcher {
    let mut d = desk();
    let accept = [10.0, 20.0, 30.0, 40.0, 70.0];
    let scene = [100.0, 120.0, 150.0, 170.0, 200.0];
    for n in 0..5 {
        let start = 1000.0 * n as f64;
        let u = format!("u{n}");
        online(&mut d, at(start), &[&u]);
        let mut s = spec(None);
        s.grid = Some(if n == 4 { "g2" } else { "g1" }.to_owned());
        let i = d.create_incident(at(start), s, wang()).unwrap().0;
        let grid = if n == 4 { "g2" } else { "g1" };
        let out = d
            .dispatch(at(start), &i, wang(), &[cand(&u, 10.0, grid)])
            .unwrap();
        let o = sent(&out)[0].1.clone();
        let un = unit(&u);
        d.receipt(
            at(start + accept[n]),
            &un,
            &o,
            OrderState::Accepted,
            &nobody,
        )
        .unwrap();
        d.receipt(at(start + scene[n]), &un, &o, OrderState::OnScene, &nobody)
            .unwrap();
        d.receipt(at(start + 300.0), &un, &o, OrderState::Resolved, &nobody)
            .unwrap();
    }
    d
}

#[test]
fn medians_p90_and_shares_by_kind() {
    let d = five();
    let r = supervision_report(d.state(), d.config(), at(0.0), at(10_000.0), GroupBy::Kind);
    assert_eq!(r.rows.len(), 1);
    let row = &r.rows[0];
    assert_eq!(
        (row.key.as_str(), row.incidents, row.orders),
        ("dispute", 5, 5)
    );
    assert_eq!(row.accept_median_s, Some(30.0));
    assert_eq!(row.accept_p90_s, Some(70.0));
    assert_eq!(row.on_scene_median_s, Some(150.0));
    assert_eq!(row.on_scene_p90_s, Some(200.0));
    assert_eq!(
        row.within_response,
        Some(0.8),
        "70 s misses the 60 s target"
    );
    assert_eq!(
        row.within_arrival,
        Some(0.8),
        "200 s misses the 180 s target"
    );
    assert_eq!(row.dispatched_by.get("dispatcher:wang"), Some(&5));
    assert_eq!(
        (
            row.reassignments,
            row.reinforcements,
            row.within_reinforcement
        ),
        (0, 0, None)
    );
}

#[test]
fn by_grid_and_unit_and_period() {
    let d = five();
    let r = supervision_report(d.state(), d.config(), at(0.0), at(10_000.0), GroupBy::Grid);
    let keys: Vec<_> = r
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.incidents))
        .collect();
    assert_eq!(keys, [("g1", 4), ("g2", 1)]);
    assert_eq!(
        r.rows[0].accept_median_s,
        Some(20.0),
        "nearest rank over 10, 20, 30, 40"
    );
    let r = supervision_report(d.state(), d.config(), at(0.0), at(10_000.0), GroupBy::Unit);
    assert_eq!(r.rows.len(), 5);
    assert_eq!(r.rows[4].within_response, Some(0.0));
    let r = supervision_report(d.state(), d.config(), at(1000.0), at(2000.0), GroupBy::Unit);
    assert_eq!(r.rows.len(), 1, "only the incident created in the period");
}

#[test]
fn reassignments_are_counted_against_the_unit_that_let_it_lapse() {
    let (mut d, _, _) = dispatched();
    d.tick(at(30.0), &offer(vec![cand("u2", 200.0, "g2")]))
        .unwrap();
    let r = supervision_report(d.state(), d.config(), at(0.0), at(100.0), GroupBy::Unit);
    let u1 = r.rows.iter().find(|r| r.key == "u1").unwrap();
    assert_eq!((u1.reassignments, u1.within_response), (1, Some(0.0)));
    let u2 = r.rows.iter().find(|r| r.key == "u2").unwrap();
    assert_eq!(u2.dispatched_by.get("system:accept_timeout"), Some(&1));
}

#[test]
fn csv_rendering() {
    let d = five();
    let r = supervision_report(d.state(), d.config(), at(0.0), at(10_000.0), GroupBy::Grid);
    let csv = r.to_csv();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("key,incidents,orders,accepted,on_scene,accept_median_s"));
    assert_eq!(lines[1].split(',').count(), lines[0].split(',').count());
    assert!(lines[1].starts_with("g1,4,4,4,4,20,40,"));
    assert!(lines[1].ends_with(",dispatcher:wang=4"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["group_by"], "grid");
    assert_eq!(percentile_s(&[1000, 2000, 3000, 4000], 0.5), Some(2.0));
    assert_eq!(percentile_s(&[], 0.9), None);
}

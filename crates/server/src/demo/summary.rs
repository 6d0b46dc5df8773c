//! The demo's figures: the live SLA line and the closing summary tables.
//!
//! Both are read from the supervision report the server computes for
//! `GET /api/v1/reports/sla` (`fieldlink_dispatch::supervision_report`), never counted a second
//! time here: the report gives each group's counts and shares of first responses within the
//! 1/3/5 targets, and the summary adds the groups up.

use std::time::Duration;

use fieldlink_dispatch::{Report, ReportRow, Targets};

use super::narrate::{seconds, target};

/// Counts of one target over all groups: met, out of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Met {
    pub met: usize,
    pub of: usize,
}

impl Met {
    /// `75 %`, or `-` when there was nothing to measure.
    fn share(self) -> String {
        if self.of == 0 {
            return "-".to_owned();
        }
        format!("{:.0} %", self.met as f64 * 100.0 / self.of as f64)
    }
}

/// Over a group's `of` samples, how many the `share` met (the report gives shares).
fn met(share: Option<f64>, of: usize) -> Met {
    let met = share.map_or(0, |s| (s * of as f64).round() as usize);
    Met { met, of }
}

/// The 1/3/5 targets over every row of a report grouped by incident (grid or kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Totals {
    pub incidents: usize,
    pub accepted: Met,
    pub on_scene: Met,
    pub reinforcements: Met,
}

/// Adds up the rows of a report grouped by grid or kind (each incident is in one row).
pub(super) fn totals(by_incident: &Report) -> Totals {
    let mut t = Totals::default();
    let add = |m: &mut Met, x: Met| {
        m.met += x.met;
        m.of += x.of;
    };
    for r in &by_incident.rows {
        t.incidents += r.incidents;
        add(&mut t.accepted, met(r.within_response, r.incidents));
        add(&mut t.on_scene, met(r.within_arrival, r.incidents));
        add(
            &mut t.reinforcements,
            met(r.within_reinforcement, r.reinforcements),
        );
    }
    t
}

/// The line printed every `--sla-every`: `SLA so far: 12 incidents; 9 accepted, 67 % within
/// 60 s ...` (shares of the incidents, as the report gives them).
pub(super) fn sla_line(by_incident: &Report, targets: Targets) -> String {
    let rows = &by_incident.rows;
    let sum = |f: fn(&ReportRow) -> usize| rows.iter().map(f).sum::<usize>();
    let t = totals(by_incident);
    let median = |m: Option<f64>| {
        m.filter(|_| rows.len() == 1).map_or(String::new(), |m| {
            format!(", median {}", seconds(Duration::from_secs_f64(m)))
        })
    };
    let first = rows.first();
    format!(
        "SLA so far: {} incidents; {} accepted, {} within {} s{}; {} on scene, {} within {} s{}; {} reassigned, {} declined.",
        t.incidents,
        sum(|r| r.accepted),
        t.accepted.share(),
        targets.response_s,
        median(first.and_then(|r| r.accept_median_s)),
        sum(|r| r.on_scene),
        t.on_scene.share(),
        targets.arrival_s,
        median(first.and_then(|r| r.on_scene_median_s)),
        sum(|r| r.reassignments),
        sum(|r| r.rejections),
    )
}

/// The closing summary over `period`: the targets, then one row per responder who had an order.
pub(super) fn render(
    period: Duration,
    by_incident: &Report,
    by_unit: &Report,
    targets: Targets,
) -> Vec<String> {
    let t = totals(by_incident);
    let mut out = vec![format!(
        "Summary of the demo ({}, incidents created since the start):",
        seconds(period)
    )];
    let row = |what: String, m: Met| vec![what, m.met.to_string(), m.of.to_string(), m.share()];
    out.extend(table(
        &["target", "met", "of", "share"],
        vec![
            row(
                format!("accepted within {}", target(targets.response_s)),
                t.accepted,
            ),
            row(
                format!("on scene within {}", target(targets.arrival_s)),
                t.on_scene,
            ),
            row(
                format!("reinforcements within {}", target(targets.reinforcement_s)),
                t.reinforcements,
            ),
        ],
    ));
    out.push(format!("{} incidents.", t.incidents));
    let responders: Vec<&ReportRow> = (by_unit.rows.iter()).filter(|r| r.orders > 0).collect();
    if responders.is_empty() {
        out.push("No responder had an order.".to_owned());
        return out;
    }
    let who = if responders.len() == 1 {
        "responder"
    } else {
        "responders"
    };
    out.push(format!(
        "{} {who} took part (accepted and on scene count first responses; median seconds from the incident's report):",
        responders.len()
    ));
    let secs = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{s:.0}"));
    let rows = (responders.into_iter())
        .map(|r| {
            vec![
                r.key.clone(),
                r.orders.to_string(),
                r.accepted.to_string(),
                r.rejections.to_string(),
                r.reassignments.to_string(),
                r.on_scene.to_string(),
                r.reinforcements.to_string(),
                secs(r.accept_median_s),
                secs(r.on_scene_median_s),
            ]
        })
        .collect();
    out.extend(table(
        &[
            "responder",
            "orders",
            "accepted",
            "declined",
            "unanswered",
            "on scene",
            "reinforcing",
            "accept s",
            "on scene s",
        ],
        rows,
    ));
    out
}

/// Aligned columns, two spaces apart and indented by two: the first left-aligned, the others
/// (figures) right-aligned.
pub(super) fn table(header: &[&str], rows: Vec<Vec<String>>) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            s.push(' ');
            s.push(' ');
            if i == 0 {
                s.push_str(cell);
                s.push_str(&pad);
            } else {
                s.push_str(&pad);
                s.push_str(cell);
            }
        }
        s.trim_end().to_owned()
    };
    let head = header.iter().map(|h| h.to_string()).collect();
    std::iter::once(line(head))
        .chain(rows.into_iter().map(line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldlink_dispatch::{GroupBy, Timestamp};

    fn report(group_by: GroupBy, rows: Vec<ReportRow>) -> Report {
        Report {
            from: Timestamp::from_millis(0),
            to: Timestamp::from_millis(1),
            group_by,
            rows,
        }
    }

    const TARGETS: Targets = Targets {
        response_s: 60,
        arrival_s: 180,
        reinforcement_s: 300,
    };

    #[test]
    fn the_summary_adds_up_the_report_and_aligns_its_columns() {
        let fire = ReportRow {
            key: "fire".into(),
            incidents: 4,
            accepted: 4,
            on_scene: 2,
            within_response: Some(0.75),
            within_arrival: Some(0.5),
            reinforcements: 2,
            within_reinforcement: Some(0.5),
            ..ReportRow::default()
        };
        let other = ReportRow {
            key: "other".into(),
            incidents: 1,
            within_response: Some(0.0),
            within_arrival: Some(0.0),
            ..ReportRow::default()
        };
        let by_kind = report(GroupBy::Kind, vec![fire, other]);
        let t = totals(&by_kind);
        assert_eq!(t.incidents, 5);
        assert_eq!(t.accepted, Met { met: 3, of: 5 });
        assert_eq!(t.on_scene, Met { met: 2, of: 5 });
        assert_eq!(t.reinforcements, Met { met: 1, of: 2 });
        let unit = ReportRow {
            key: "sim001".into(),
            incidents: 2,
            orders: 3,
            accepted: 2,
            rejections: 1,
            accept_median_s: Some(12.4),
            ..ReportRow::default()
        };
        let idle = ReportRow {
            key: "sim002".into(),
            ..ReportRow::default()
        };
        let by_unit = report(GroupBy::Unit, vec![unit, idle]);
        let lines = render(Duration::from_secs(120), &by_kind, &by_unit, TARGETS);
        let text = lines.join("\n");
        assert!(
            lines[0].starts_with("Summary of the demo (2 min,"),
            "{text}"
        );
        assert_eq!(
            lines[1],
            "  target                           met  of  share"
        );
        assert_eq!(
            lines[2],
            "  accepted within 1 minute           3   5   60 %"
        );
        assert_eq!(
            lines[4],
            "  reinforcements within 5 minutes    1   2   50 %"
        );
        assert!(
            text.contains("\n5 incidents.\n1 responder took part"),
            "{text}"
        );
        let last = lines.last().expect("a row");
        assert_eq!(
            last.split_whitespace().collect::<Vec<_>>(),
            ["sim001", "3", "2", "1", "0", "0", "0", "12", "-"],
        );
        // Every row of the responders' table is as wide as its header.
        let header = &lines[lines.len() - 2];
        assert_eq!(header.len(), last.len(), "{text}");
        assert!(!text.contains("sim002"), "{text}");
    }

    #[test]
    fn nothing_to_measure_reads_as_a_dash() {
        let lines = render(
            Duration::from_secs(5),
            &report(GroupBy::Kind, vec![]),
            &report(GroupBy::Unit, vec![]),
            TARGETS,
        );
        assert!(lines[2].ends_with("0   0      -"), "{lines:?}");
        assert_eq!(
            lines.last().map(String::as_str),
            Some("No responder had an order.")
        );
    }
}

//! The supervision report (督导考评): how fast incidents were accepted and reached, per unit,
//! grid or incident kind, measured against the 1/3/5 targets.
//!
//! A pure function over the dispatcher's state (incidents and orders carry every timestamp the
//! rules need, and each order names who dispatched it). Percentiles are nearest-rank: the median
//! of 1,2,3,4 is 2. Times are seconds.

use std::collections::{BTreeMap, BTreeSet};

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::DispatchConfig;
use crate::desk::DeskState;
use crate::model::{Incident, IncidentId};
use crate::order::{Order, OrderState};

/// How rows are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Per responder, over its orders.
    Unit,
    /// Per grid, over incidents (the first order accepted, the first responder on scene).
    Grid,
    /// Per incident kind, over incidents.
    Kind,
}

/// One group's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The unit, grid (`-` when none) or kind.
    pub key: String,
    /// Incidents involved.
    pub incidents: usize,
    /// Work orders involved.
    pub orders: usize,
    /// First responses accepted (per incident, or per order for units).
    pub accepted: usize,
    /// First responses on scene.
    pub on_scene: usize,
    /// Median time to accept, from the incident's creation.
    pub accept_median_s: Option<f64>,
    /// 90th percentile time to accept.
    pub accept_p90_s: Option<f64>,
    /// Median time to on scene, from the incident's creation.
    pub on_scene_median_s: Option<f64>,
    /// 90th percentile time to on scene.
    pub on_scene_p90_s: Option<f64>,
    /// Share of first responses accepted within the response target (0..1).
    pub within_response: Option<f64>,
    /// Share of first responses on scene within the arrival target.
    pub within_arrival: Option<f64>,
    /// Reinforcement requests (or reinforcing orders, for units).
    pub reinforcements: usize,
    /// Share of those on scene within the reinforcement target.
    pub within_reinforcement: Option<f64>,
    /// Orders reassigned after the acceptance timeout.
    pub reassignments: usize,
    /// Orders rejected.
    pub rejections: usize,
    /// Orders per dispatcher (`dispatcher:NAME`, or `system:RULE` when fieldlink chose).
    pub dispatched_by: BTreeMap<String, usize>,
}

/// The report over incidents created in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Start (inclusive).
    pub from: Timestamp,
    /// End (exclusive).
    pub to: Timestamp,
    /// Grouping.
    pub group_by: GroupBy,
    /// One row per group, ordered by key.
    pub rows: Vec<ReportRow>,
}

/// Samples for one group before they are summarised.
#[derive(Default)]
struct Acc {
    incidents: BTreeSet<IncidentId>,
    orders: Vec<Order>,
    accept: Vec<i64>,
    on_scene: Vec<i64>,
    first: usize,
    in_response: usize,
    in_arrival: usize,
    reinforcements: usize,
    in_reinforcement: usize,
}

impl Acc {
    /// One first response: created at `base`, accepted and on scene when given.
    fn first(
        &mut self,
        i: &Incident,
        acc: Option<Timestamp>,
        on: Option<Timestamp>,
        c: &DispatchConfig,
    ) {
        let t = c.targets_for(i.spec.priority);
        self.first += 1;
        if let Some(a) = acc {
            let ms = a.millis_since(i.created_at);
            self.accept.push(ms);
            self.in_response += usize::from(ms <= t.response_s as i64 * 1000);
        }
        if let Some(o) = on {
            let ms = o.millis_since(i.created_at);
            self.on_scene.push(ms);
            self.in_arrival += usize::from(ms <= t.arrival_s as i64 * 1000);
        }
    }

    /// One reinforcement: requested at `asked`, on scene when given.
    fn reinforcement(
        &mut self,
        i: &Incident,
        asked: Timestamp,
        on: Option<Timestamp>,
        c: &DispatchConfig,
    ) {
        let limit = c.targets_for(i.spec.priority).reinforcement_s as i64 * 1000;
        self.reinforcements += 1;
        let met = on.is_some_and(|on| on.millis_since(asked) <= limit);
        self.in_reinforcement += usize::from(met);
    }

    fn row(mut self, key: String) -> ReportRow {
        let share = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
        self.accept.sort_unstable();
        self.on_scene.sort_unstable();
        let mut dispatched_by = BTreeMap::new();
        for o in &self.orders {
            *dispatched_by.entry(o.dispatched_by.label()).or_insert(0) += 1;
        }
        let count = |s: OrderState| self.orders.iter().filter(|o| o.state == s).count();
        ReportRow {
            key,
            incidents: self.incidents.len(),
            orders: self.orders.len(),
            accepted: self.accept.len(),
            on_scene: self.on_scene.len(),
            accept_median_s: percentile_s(&self.accept, 0.5),
            accept_p90_s: percentile_s(&self.accept, 0.9),
            on_scene_median_s: percentile_s(&self.on_scene, 0.5),
            on_scene_p90_s: percentile_s(&self.on_scene, 0.9),
            within_response: share(self.in_response, self.first),
            within_arrival: share(self.in_arrival, self.first),
            reinforcements: self.reinforcements,
            within_reinforcement: share(self.in_reinforcement, self.reinforcements),
            reassignments: count(OrderState::Reassigned),
            rejections: count(OrderState::Rejected),
            dispatched_by,
        }
    }
}

/// Nearest-rank percentile of sorted milliseconds, in seconds.
pub fn percentile_s(sorted_ms: &[i64], q: f64) -> Option<f64> {
    if sorted_ms.is_empty() {
        return None;
    }
    let rank = (q * sorted_ms.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted_ms.len()) - 1;
    Some(sorted_ms[idx] as f64 / 1000.0)
}

/// The supervision report over incidents created in `[from, to)`.
pub fn supervision_report(
    state: &DeskState,
    config: &DispatchConfig,
    from: Timestamp,
    to: Timestamp,
    group_by: GroupBy,
) -> Report {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let in_period =
        (state.incidents.values()).filter(|i| i.created_at >= from && i.created_at < to);
    for i in in_period {
        let orders = (i.orders.iter()).filter_map(|o| state.orders.get(o));
        match group_by {
            GroupBy::Unit => {
                for o in orders {
                    let acc = groups.entry(o.unit.to_string()).or_default();
                    acc.incidents.insert(i.id.clone());
                    acc.orders.push(o.clone());
                    match o.reinforcement {
                        None => acc.first(i, o.accepted_at, o.on_scene_at, config),
                        Some(seq) => {
                            let r = i.reinforcements.iter().find(|r| r.seq == seq);
                            let asked = r.map_or(i.created_at, |r| r.requested_at);
                            acc.reinforcement(i, asked, o.on_scene_at, config);
                        }
                    }
                }
            }
            GroupBy::Grid | GroupBy::Kind => {
                let key = match group_by {
                    GroupBy::Grid => i.spec.grid.clone().unwrap_or_else(|| "-".to_owned()),
                    _ => i.spec.kind.as_str().to_owned(),
                };
                let acc = groups.entry(key).or_default();
                acc.incidents.insert(i.id.clone());
                acc.orders.extend(orders.cloned());
                acc.first(i, i.first_accepted_at, i.first_on_scene_at, config);
                for r in &i.reinforcements {
                    acc.reinforcement(i, r.requested_at, r.on_scene_at, config);
                }
            }
        }
    }
    let rows = groups.into_iter().map(|(k, acc)| acc.row(k)).collect();
    Report {
        from,
        to,
        group_by,
        rows,
    }
}

impl Report {
    /// The rows as CSV (RFC 4180, header first; empty cells for figures without samples;
    /// `dispatched_by` as `who=n` pairs joined by `;`).
    pub fn to_csv(&self) -> String {
        let mut s = String::from(
            "key,incidents,orders,accepted,on_scene,accept_median_s,accept_p90_s,\
             on_scene_median_s,on_scene_p90_s,within_response,within_arrival,reinforcements,\
             within_reinforcement,reassignments,rejections,dispatched_by\n",
        );
        let opt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
        for r in &self.rows {
            let by: Vec<String> = (r.dispatched_by.iter())
                .map(|(k, n)| format!("{k}={n}"))
                .collect();
            let cells = [
                csv_cell(&r.key),
                r.incidents.to_string(),
                r.orders.to_string(),
                r.accepted.to_string(),
                r.on_scene.to_string(),
                opt(r.accept_median_s),
                opt(r.accept_p90_s),
                opt(r.on_scene_median_s),
                opt(r.on_scene_p90_s),
                opt(r.within_response),
                opt(r.within_arrival),
                r.reinforcements.to_string(),
                opt(r.within_reinforcement),
                r.reassignments.to_string(),
                r.rejections.to_string(),
                csv_cell(&by.join(";")),
            ];
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s
    }
}

fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

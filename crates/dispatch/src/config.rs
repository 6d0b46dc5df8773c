//! [`DispatchConfig`]: targets, timeouts, arrival detection, skills and ETA speeds.
//!
//! One serde struct with documented defaults (every field may be omitted). Durations are whole
//! seconds, as a config file writes them. [`DispatchConfig::validate`] reports every problem at
//! once.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{IncidentKind, Priority};

/// The 1/3/5 targets for one priority, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Targets {
    /// First order accepted, from the incident's creation (default 60).
    pub response_s: u64,
    /// First responder on scene, from the incident's creation (default 180).
    pub arrival_s: u64,
    /// Reinforcing responder on scene, from the reinforcement request (default 300).
    pub reinforcement_s: u64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            response_s: 60,
            arrival_s: 180,
            reinforcement_s: 300,
        }
    }
}

/// Everything the dispatch core can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchConfig {
    /// Targets for priorities not listed in `targets` (default 60/180/300).
    pub default_targets: Targets,
    /// Targets per priority, overriding `default_targets` (default: none).
    pub targets: BTreeMap<Priority, Targets>,
    /// An order not accepted this long after dispatch is reassigned (default 30).
    pub accept_timeout_s: u64,
    /// A responder within this distance of the incident is "there" (default 50 m).
    pub arrival_radius_m: f64,
    /// Consecutive fixes inside the radius before on scene is declared (default 2).
    pub arrival_fixes: u32,
    /// First re-send of an order without a receipt (default 2 s); doubles each time.
    pub resend_initial_s: u64,
    /// Longest gap between re-sends (default 60 s).
    pub resend_max_s: u64,
    /// Skills a responder needs per incident kind (default: `medical` → `first_aid`).
    pub required_skills: BTreeMap<IncidentKind, Vec<String>>,
    /// An unacknowledged alarm is re-notified this often (default 30).
    pub alarm_renotify_s: u64,
    /// Travel speed per unit type, m/s, for ETAs (defaults: on foot 1.4, e-bike 4.5,
    /// motorcycle 7, car 6, other 1.4). Unknown types use `on_foot`'s.
    pub eta_speed_mps: BTreeMap<String, f64>,
    /// Streets are not straight lines: distance is multiplied by this for ETAs (default 1.3).
    pub eta_detour_factor: f64,
    /// Responders sent at once to an SOS (default 2).
    pub sos_responders: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        let speeds = [
            ("on_foot", 1.4),
            ("e_bike", 4.5),
            ("motorcycle", 7.0),
            ("car", 6.0),
            ("other", 1.4),
        ];
        DispatchConfig {
            default_targets: Targets::default(),
            targets: BTreeMap::new(),
            accept_timeout_s: 30,
            arrival_radius_m: 50.0,
            arrival_fixes: 2,
            resend_initial_s: 2,
            resend_max_s: 60,
            required_skills: BTreeMap::from([(
                IncidentKind::Medical,
                vec!["first_aid".to_owned()],
            )]),
            alarm_renotify_s: 30,
            eta_speed_mps: speeds.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            eta_detour_factor: 1.3,
            sos_responders: 2,
        }
    }
}

impl DispatchConfig {
    /// The targets for `priority`.
    pub fn targets_for(&self, priority: Priority) -> Targets {
        self.targets
            .get(&priority)
            .copied()
            .unwrap_or(self.default_targets)
    }

    /// The skills an incident of `kind` needs.
    pub fn skills_for(&self, kind: IncidentKind) -> &[String] {
        self.required_skills
            .get(&kind)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The acceptance timeout.
    pub fn accept_timeout(&self) -> Duration {
        Duration::from_secs(self.accept_timeout_s)
    }

    /// The gap before re-send number `attempt` (1-based): initial × 2^(attempt-1), capped.
    pub fn resend_gap(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_secs(
            self.resend_initial_s
                .saturating_mul(factor)
                .min(self.resend_max_s),
        )
    }

    /// Estimated travel time in seconds over `distance_m` for a unit of `unit_type`.
    pub fn eta_s(&self, distance_m: f64, unit_type: &str) -> f64 {
        let speed = self
            .eta_speed_mps
            .get(unit_type)
            .or_else(|| self.eta_speed_mps.get("on_foot"))
            .copied()
            .unwrap_or(1.4);
        distance_m * self.eta_detour_factor / speed
    }

    /// Every problem with this config, or `Ok` when there is none.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let all_targets = std::iter::once(("default", &self.default_targets)).chain(
            self.targets.iter().map(|(p, t)| match p {
                Priority::Low => ("low", t),
                Priority::Normal => ("normal", t),
                Priority::High => ("high", t),
                Priority::Critical => ("critical", t),
            }),
        );
        for (name, t) in all_targets {
            if t.response_s == 0 || t.arrival_s == 0 || t.reinforcement_s == 0 {
                problems.push(format!("targets.{name}: every target must be > 0 s"));
            }
        }
        if self.accept_timeout_s == 0 {
            problems.push("accept_timeout_s must be > 0".to_owned());
        }
        if !positive(self.arrival_radius_m) {
            problems.push("arrival_radius_m must be > 0".to_owned());
        }
        if self.arrival_fixes == 0 {
            problems.push("arrival_fixes must be >= 1".to_owned());
        }
        if self.resend_initial_s == 0 || self.resend_max_s < self.resend_initial_s {
            problems.push("resend: need 0 < resend_initial_s <= resend_max_s".to_owned());
        }
        if self.alarm_renotify_s == 0 {
            problems.push("alarm_renotify_s must be > 0".to_owned());
        }
        for (t, v) in &self.eta_speed_mps {
            if !positive(*v) {
                problems.push(format!("eta_speed_mps.{t} must be > 0"));
            }
        }
        if !(self.eta_detour_factor.is_finite() && self.eta_detour_factor >= 1.0) {
            problems.push("eta_detour_factor must be >= 1".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Finite and above zero (NaN is not).
fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

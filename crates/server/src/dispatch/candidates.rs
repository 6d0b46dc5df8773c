//! Responders near a point, as the core's [`Candidate`]s: the location tracker ranks them (nearest
//! first, online or stale, enabled units only), the credential cache adds type and skills, the
//! grid layer the grid they stand in. And the ids new records get.

use fieldlink_dispatch::{
    AlarmId, Candidate, IdGen, Incident, IncidentId, LatLon, OrderId, UnitId,
};
use fieldlink_location::Presence;
use fieldlink_store::generate_id;

use crate::state::AppState;

/// How many responders around an incident the core gets to choose from.
pub const CANDIDATES: usize = 50;

/// Up to [`CANDIDATES`] responders nearest to `at` that are not offline and whose unit is
/// enabled; availability and skills are the core's to judge.
pub fn near(state: &AppState, at: LatLon) -> Vec<Candidate> {
    let tracker = state.tracker();
    let hits = tracker.nearest(at.lat, at.lon, CANDIDATES, |u| {
        u.presence != Presence::Offline && state.credentials.unit_active(&u.unit)
    });
    hits.into_iter()
        .map(|n| {
            let record = state.credentials.unit(&n.unit);
            let grid = (tracker.get(&n.unit))
                .and_then(|s| tracker.grid_of(s.fix.lat, s.fix.lon))
                .map(|z| z.id.to_string());
            Candidate {
                unit: UnitId(n.unit.to_string()),
                distance_m: n.distance_m,
                unit_type: (record.as_ref())
                    .map_or("other", |r| r.unit_type.as_str())
                    .to_owned(),
                skills: record.map(|r| r.skills).unwrap_or_default(),
                grid,
            }
        })
        .collect()
}

/// Candidates for an incident (none when it has no location).
pub(super) fn for_incident(state: &AppState, incident: &Incident) -> Vec<Candidate> {
    (incident.spec.location)
        .map(|at| near(state, at))
        .unwrap_or_default()
}

/// The grid a point lies in, if any.
pub fn grid_at(state: &AppState, at: LatLon) -> Option<String> {
    (state.tracker().grid_of(at.lat, at.lon)).map(|z| z.id.to_string())
}

/// Random ids (`inc_…`, `wo_…`, `alm_…`, 32 random bits): unique at street scale without
/// looking at the state, so a restored core needs no counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdGen for RandomIds {
    fn incident_id(&mut self) -> IncidentId {
        IncidentId(generate_id("inc"))
    }
    fn order_id(&mut self) -> OrderId {
        OrderId(generate_id("wo"))
    }
    fn alarm_id(&mut self) -> AlarmId {
        AlarmId(generate_id("alm"))
    }
}

//! What comes from outside the floor protocol: a handset going offline, an SOS and its end, the
//! clock ([`Intercom::tick`] fires maximum talk times and SOS ends at their absolute deadlines),
//! and talk bursts reported by the handsets' own platform on `reported` groups.

use std::time::Duration;

use fieldlink_clock::Timestamp;

use crate::error::IntercomError;
use crate::intercom::Intercom;
use crate::journal::{BurstOutcome, BurstRecord, Change, DequeueReason, Outcome};
use crate::model::{Actor, FloorPriority, Mode, Party, TalkgroupId, UnitId};

impl Intercom {
    /// `party` went offline (last will, or presence timed out): it loses every floor it holds
    /// (burst outcome `offline`, no answer sent to it) and leaves every queue.
    pub fn offline(&mut self, now: Timestamp, party: &Party) -> Outcome {
        let actor = Actor::system("presence");
        let mut out = Outcome::default();
        let groups: Vec<TalkgroupId> = self.state.groups.keys().cloned().collect();
        for g in &groups {
            let floor = &self.state.groups[g].floor;
            if floor.is_held_by(party) {
                self.end_burst(now, g, BurstOutcome::Offline, &actor, &mut out);
                self.hand_over(now, g, &actor, &mut out);
            } else if floor.position(party).is_some() {
                self.dequeue(now, g, party, DequeueReason::Offline, &actor, &mut out);
            }
        }
        out
    }

    /// An SOS from `unit`: emergency priority on all its groups for `sos_emergency_s` (or until
    /// cleared). Its waiting requests move up and may pre-empt; a repeated SOS restarts the time.
    pub fn sos(&mut self, now: Timestamp, unit: &UnitId, actor: Actor) -> Outcome {
        let until = match self.config.sos_emergency_s {
            0 => None,
            s => Some(now.plus(Duration::from_secs(s))),
        };
        self.state.sos.insert(unit.clone(), until);
        let mut out = Outcome::default();
        out.event(
            now,
            &actor,
            Change::SosRaised {
                unit: unit.clone(),
                until,
            },
        );
        self.reconsider_unit(now, unit, &actor, &mut out);
        out
    }

    /// Ends `unit`'s emergency priority (the SOS was cancelled or handled). Its place and any
    /// held floor fall back to the priority it asked for; a waiting party that now outranks it
    /// takes the floor. Changes nothing if the unit is not in SOS.
    pub fn clear_sos(&mut self, now: Timestamp, unit: &UnitId, actor: Actor) -> Outcome {
        let mut out = Outcome::default();
        if self.state.sos.remove(unit).is_some() {
            let change = Change::SosCleared {
                unit: unit.clone(),
                expired: false,
            };
            out.event(now, &actor, change);
            self.reconsider_unit(now, unit, &actor, &mut out);
        }
        out
    }

    /// Fires what is due at `now`, in deadline order: floors held past their maximum talk time
    /// are revoked (burst ends at the deadline; the next in the queue is granted at `now`), and
    /// SOS priorities whose time ran out end.
    pub fn tick(&mut self, now: Timestamp) -> Outcome {
        let mut due: Vec<(Timestamp, Option<TalkgroupId>, Option<UnitId>)> = Vec::new();
        for (g, grp) in &self.state.groups {
            if let Some(h) = grp.floor.holder.as_ref().filter(|h| h.deadline <= now) {
                due.push((h.deadline, Some(g.clone()), None));
            }
        }
        for (u, until) in &self.state.sos {
            if let Some(t) = until.filter(|t| *t <= now) {
                due.push((t, None, Some(u.clone())));
            }
        }
        due.sort();
        let mut out = Outcome::default();
        for (at, g, u) in due {
            if let Some(g) = g {
                let actor = Actor::system("max_talk_time");
                self.end_burst(at, &g, BurstOutcome::RevokedMaxTime, &actor, &mut out);
                self.hand_over(now, &g, &actor, &mut out);
            } else if let Some(u) = u {
                let actor = Actor::system("sos_expiry");
                self.state.sos.remove(&u);
                out.event(
                    at,
                    &actor,
                    Change::SosCleared {
                        unit: u.clone(),
                        expired: true,
                    },
                );
                self.reconsider_unit(now, &u, &actor, &mut out);
            }
        }
        out
    }

    /// A burst that the handsets' own platform arbitrated, reported by `unit` on a `reported`
    /// group. Idempotent by `request_id`.
    pub fn report_burst(
        &mut self,
        now: Timestamp,
        unit: &UnitId,
        g: &TalkgroupId,
        request_id: Option<&str>,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Outcome, IntercomError> {
        let group = self.group(g)?;
        let party = Party::Unit(unit.clone());
        if group.spec.mode != Mode::Reported {
            let mode = group.spec.mode;
            return Err(IntercomError::WrongMode {
                group: g.clone(),
                mode,
            });
        }
        if !group.spec.has_member(&party) {
            return Err(IntercomError::NotMember {
                group: g.clone(),
                party,
            });
        }
        if end < start {
            return Err(IntercomError::InvalidBurst { start, end });
        }
        let mut out = Outcome::default();
        let key = request_id.map(|r| Self::seen_key(&party, r));
        if key.as_deref().and_then(|k| self.seen(k)).is_some() {
            return Ok(out);
        }
        let record = BurstRecord {
            group: g.clone(),
            party: party.clone(),
            request_id: request_id.map(str::to_owned),
            priority: FloorPriority::Normal,
            start,
            end,
            duration_ms: end.millis_since(start),
            outcome: BurstOutcome::Reported,
        };
        out.event(
            now,
            &party.actor(),
            Change::BurstReported {
                record: record.clone(),
            },
        );
        out.bursts.push(record);
        if let Some(k) = key {
            self.remember(k, None);
        }
        Ok(out)
    }

    /// Re-ranks every arbitrated group `unit` belongs to.
    fn reconsider_unit(&mut self, now: Timestamp, unit: &UnitId, actor: &Actor, out: &mut Outcome) {
        let groups: Vec<TalkgroupId> = (self.state.groups.values())
            .filter(|g| g.spec.mode == Mode::Arbitrated && g.spec.units.contains(unit))
            .map(|g| g.spec.id.clone())
            .collect();
        for g in &groups {
            self.reconsider(now, g, actor, out);
        }
    }
}

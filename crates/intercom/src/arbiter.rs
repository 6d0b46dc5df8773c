//! Floor request and release after 3GPP MCPTT (TS 24.380): grant when idle, pre-empt a talker of
//! lower rank, otherwise deny or queue as the group says; on release the next in the queue gets
//! the floor. Both are idempotent by request id.
//!
//! A retried request changes nothing and repeats the party's standing: `granted` (time left) if
//! it holds the floor, `queued` (position) if it waits, the same denial if it was denied. A
//! retried release changes nothing, so a late duplicate cannot release a later grant. A new
//! press (new id) by a party already talking or waiting repeats its standing, and raises its
//! priority if the new press asks for more.

use fieldlink_clock::Timestamp;

use crate::error::IntercomError;
use crate::floor::Waiting;
use crate::intercom::Intercom;
use crate::journal::{Answer, BurstOutcome, Change, DenyReason, DequeueReason, Effect, Outcome};
use crate::model::{BusyPolicy, FloorPriority, Mode, Party, TalkgroupId};

impl Intercom {
    /// `party` asks for the floor of `g` (push-to-talk pressed), at `priority`
    /// (`FLOOR_PRIORITY_UNSPECIFIED` = normal). The answer to the requester is among the effects.
    pub fn request(
        &mut self,
        now: Timestamp,
        party: Party,
        g: &TalkgroupId,
        priority: FloorPriority,
        request_id: Option<&str>,
    ) -> Result<Outcome, IntercomError> {
        self.check(g, &party)?;
        let key = request_id.map(|r| Self::seen_key(&party, r));
        if let Some(denial) = key.as_deref().and_then(|k| self.seen(k)) {
            return Ok(self.standing(now, g, &party, request_id, denial));
        }
        let actor = party.actor();
        let mut out = Outcome::default();
        let group = &self.state.groups[g];
        let floor = &group.floor;
        if floor.is_held_by(&party) || floor.position(&party).is_some() {
            let out = self.press_again(now, g, &party, priority, request_id);
            if let Some(k) = key {
                self.remember(k, None);
            }
            return Ok(out);
        }
        let rank = self.rank(&party, priority);
        let w = Waiting {
            party: party.clone(),
            priority,
            request_id: request_id.map(str::to_owned),
            since: now,
            seq: self.state.next_seq,
        };
        let mut denial = None;
        match &floor.holder {
            None => self.grant(now, g, w, &actor, &mut out),
            Some(h) if rank > self.rank(&h.party, h.priority) => {
                self.end_burst(now, g, BurstOutcome::PreEmpted, &actor, &mut out);
                self.grant(now, g, w, &actor, &mut out);
            }
            Some(h) => {
                let busy = group.spec.busy.unwrap_or(self.config.busy);
                let reason = match busy {
                    BusyPolicy::Deny => Some(DenyReason::Busy),
                    BusyPolicy::Queue if floor.queue.len() >= self.config.max_queue => {
                        Some(DenyReason::QueueFull)
                    }
                    BusyPolicy::Queue => None,
                };
                if let Some(reason) = reason {
                    let holder = Some(h.party.clone());
                    out.event(
                        now,
                        &actor,
                        Change::Denied {
                            group: g.clone(),
                            party: party.clone(),
                            priority: rank.priority,
                            request_id: w.request_id.clone(),
                            reason,
                            holder: holder.clone(),
                        },
                    );
                    let answer = Answer::Denied { reason, holder };
                    out.send(&party, g, request_id, answer.clone());
                    denial = Some(answer);
                } else {
                    self.enqueue(now, g, w, rank.priority, &mut out);
                }
            }
        }
        if let Some(k) = key {
            self.remember(k, denial);
        }
        Ok(out)
    }

    /// `party` gives the floor of `g` back (push-to-talk released), or stops waiting for it.
    /// Releasing a floor one neither holds nor waits for changes nothing.
    pub fn release(
        &mut self,
        now: Timestamp,
        party: Party,
        g: &TalkgroupId,
        request_id: Option<&str>,
    ) -> Result<Outcome, IntercomError> {
        self.group(g)?;
        let key = request_id.map(|r| Self::seen_key(&party, r));
        let mut out = Outcome::default();
        if key.as_deref().and_then(|k| self.seen(k)).is_some() {
            return Ok(out);
        }
        let actor = party.actor();
        let floor = &self.state.groups[g].floor;
        if floor.is_held_by(&party) {
            self.end_burst(now, g, BurstOutcome::Released, &actor, &mut out);
            let rid = request_id.map(str::to_owned);
            out.event(
                now,
                &actor,
                Change::Released {
                    group: g.clone(),
                    party,
                    request_id: rid,
                },
            );
            self.hand_over(now, g, &actor, &mut out);
        } else if floor.position(&party).is_some() {
            self.dequeue(now, g, &party, DequeueReason::Cancelled, &actor, &mut out);
        }
        if let Some(k) = key {
            self.remember(k, None);
        }
        Ok(out)
    }

    /// The group exists, is arbitrated, and `party` is a member.
    fn check(&self, g: &TalkgroupId, party: &Party) -> Result<(), IntercomError> {
        let group = self.group(g)?;
        if group.spec.mode != Mode::Arbitrated {
            let mode = group.spec.mode;
            return Err(IntercomError::WrongMode {
                group: g.clone(),
                mode,
            });
        }
        if !group.spec.has_member(party) {
            let party = party.clone();
            return Err(IntercomError::NotMember {
                group: g.clone(),
                party,
            });
        }
        Ok(())
    }

    /// Puts `w` in the queue at its rank, journals it, and tells everyone whose place moved.
    fn enqueue(
        &mut self,
        now: Timestamp,
        g: &TalkgroupId,
        w: Waiting,
        p: FloorPriority,
        out: &mut Outcome,
    ) {
        let before = self.state.groups[g].floor.order();
        let (party, request_id) = (w.party.clone(), w.request_id.clone());
        self.state.next_seq += 1;
        self.floor_mut(g).queue.push(w);
        self.sort_queue(g);
        let position = self.state.groups[g].floor.position(&party).unwrap_or(0);
        let change = Change::Queued {
            group: g.clone(),
            party: party.clone(),
            priority: p,
            request_id,
            position,
        };
        out.event(now, &party.actor(), change);
        self.announce(g, &before, out);
    }

    /// Takes `party` out of the queue, journals it, and tells those behind their new places.
    pub(crate) fn dequeue(
        &mut self,
        now: Timestamp,
        g: &TalkgroupId,
        party: &Party,
        reason: DequeueReason,
        actor: &crate::Actor,
        out: &mut Outcome,
    ) {
        let before = self.state.groups[g].floor.order();
        self.floor_mut(g).queue.retain(|w| &w.party != party);
        let change = Change::Dequeued {
            group: g.clone(),
            party: party.clone(),
            reason,
        };
        out.event(now, actor, change);
        self.announce(g, &before, out);
    }

    /// A new press by a party already talking or waiting: a higher priority raises its claim
    /// (a waiting party is re-queued, journalled, and may pre-empt); then its standing is
    /// repeated unless the re-ranking already told it.
    fn press_again(
        &mut self,
        now: Timestamp,
        g: &TalkgroupId,
        party: &Party,
        priority: FloorPriority,
        rid: Option<&str>,
    ) -> Outcome {
        let mut out = Outcome::default();
        let floor = self.floor_mut(g);
        if let Some(h) = floor.holder.as_mut().filter(|h| &h.party == party) {
            h.priority = h.priority.max(priority);
        } else if let Some(w) = floor
            .queue
            .iter_mut()
            .find(|w| &w.party == party && w.priority < priority)
        {
            w.priority = priority;
            w.request_id = rid.map(str::to_owned);
            let actor = party.actor();
            self.reconsider(now, g, &actor, &mut out);
            if let Some(position) = self.state.groups[g].floor.position(party) {
                let priority = self.rank(party, priority).priority;
                let request_id = rid.map(str::to_owned);
                let change = Change::Queued {
                    group: g.clone(),
                    party: party.clone(),
                    priority,
                    request_id,
                    position,
                };
                out.event(now, &actor, change);
            }
        }
        let told = out
            .effects
            .iter()
            .any(|Effect::Floor { to, .. }| to == party);
        if !told {
            let standing = self.standing(now, g, party, rid, None);
            out.effects.extend(standing.effects);
        }
        out
    }

    /// The answer a repeated request gets: no events, one effect at most.
    fn standing(
        &self,
        now: Timestamp,
        g: &TalkgroupId,
        party: &Party,
        rid: Option<&str>,
        denial: Option<Answer>,
    ) -> Outcome {
        let mut out = Outcome::default();
        let floor = &self.state.groups[g].floor;
        let answer = match (&floor.holder, floor.position(party)) {
            (Some(h), _) if &h.party == party => Some(Answer::Granted {
                max_talk_ms: h.deadline.millis_since(now).max(0),
            }),
            (_, Some(position)) => Some(Answer::Queued { position }),
            _ => denial,
        };
        if let Some(a) = answer {
            out.send(party, g, rid, a);
        }
        out
    }
}

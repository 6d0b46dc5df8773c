//! One talkgroup's floor ([`Floor`]: the holder and the queue) and the moves every command is
//! built from: grant, end a burst, hand over to the queue, and reconsider after ranks change.
//!
//! Invariants, kept by these moves alone: at most one holder per group (the holder is an
//! `Option`); the queue is non-empty only while someone holds the floor; the queue is sorted by
//! [`Rank`] (highest first), then by arrival; the head of the queue never outranks the holder
//! (it would have pre-empted). Ranks are computed, not stored, so an SOS that starts or ends
//! re-orders everything at once.

use std::cmp::Reverse;

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::intercom::Intercom;
use crate::journal::{Answer, BurstOutcome, BurstRecord, Change, Outcome, RevokeReason};
use crate::model::{Actor, FloorPriority, Party, TalkgroupId};

/// Who holds the floor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The talker.
    pub party: Party,
    /// The priority it asked for (an SOS may raise its effective rank).
    pub priority: FloorPriority,
    /// The request that won the floor.
    pub request_id: Option<String>,
    /// Granted at.
    pub since: Timestamp,
    /// Absolute maximum-talk-time deadline: kept across restarts.
    pub deadline: Timestamp,
}

/// A party waiting for the floor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The party.
    pub party: Party,
    /// The priority it asked for.
    pub priority: FloorPriority,
    /// Its request, echoed in the grant.
    pub request_id: Option<String>,
    /// Queued at.
    pub since: Timestamp,
    /// Arrival order (ties within a rank go first come, first served).
    pub seq: u64,
}

/// One talkgroup's floor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// The talker, if any.
    pub holder: Option<Holder>,
    /// Waiting parties, next first.
    pub queue: Vec<Waiting>,
}

impl Floor {
    /// The 1-based queue position of `party`.
    pub fn position(&self, party: &Party) -> Option<u32> {
        let i = self.queue.iter().position(|w| &w.party == party)?;
        Some(i as u32 + 1)
    }

    /// Whether `party` holds the floor.
    pub fn is_held_by(&self, party: &Party) -> bool {
        self.holder.as_ref().is_some_and(|h| &h.party == party)
    }

    /// Nobody holds the floor and nobody waits.
    pub fn is_free(&self) -> bool {
        self.holder.is_none() && self.queue.is_empty()
    }

    pub(crate) fn order(&self) -> Vec<Party> {
        self.queue.iter().map(|w| w.party.clone()).collect()
    }
}

/// How strongly a party claims the floor: priority level first, then the dispatcher's precedence
/// over responders (when configured). Higher wins; a strictly higher rank pre-empts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rank {
    /// The effective priority (emergency while the unit is in SOS).
    pub priority: FloorPriority,
    /// A console with dispatcher precedence.
    pub dispatcher: bool,
}

impl Intercom {
    /// Gives the floor to `party` (the floor must be free of a holder).
    pub(crate) fn grant(
        &mut self,
        now: Timestamp,
        g: &TalkgroupId,
        w: Waiting,
        actor: &Actor,
        out: &mut Outcome,
    ) {
        let spec = &self.state.groups[g].spec;
        let max_talk_s = spec.max_talk_s.unwrap_or(self.config.max_talk_s);
        let deadline = now.plus(std::time::Duration::from_secs(max_talk_s));
        let priority = self.rank(&w.party, w.priority).priority;
        let rid = w.request_id.clone();
        out.event(
            now,
            actor,
            Change::Granted {
                group: g.clone(),
                party: w.party.clone(),
                priority,
                request_id: rid.clone(),
                deadline,
            },
        );
        out.send(
            &w.party,
            g,
            rid.as_deref(),
            Answer::Granted {
                max_talk_ms: deadline.millis_since(now),
            },
        );
        let holder = Holder {
            party: w.party,
            priority: w.priority,
            request_id: rid,
            since: now,
            deadline,
        };
        self.floor_mut(g).holder = Some(holder);
    }

    /// Takes the floor from its holder, logs the burst, and for a revoke journals it and tells
    /// the talker (an offline handset is not told). Returns the old holder.
    pub(crate) fn end_burst(
        &mut self,
        end: Timestamp,
        g: &TalkgroupId,
        outcome: BurstOutcome,
        actor: &Actor,
        out: &mut Outcome,
    ) -> Option<Holder> {
        let h = self.floor_mut(g).holder.take()?;
        let priority = self.rank(&h.party, h.priority).priority;
        out.bursts.push(BurstRecord {
            group: g.clone(),
            party: h.party.clone(),
            request_id: h.request_id.clone(),
            priority,
            start: h.since,
            end,
            duration_ms: end.millis_since(h.since),
            outcome,
        });
        let reason = match outcome {
            BurstOutcome::PreEmpted => RevokeReason::PreEmpted,
            BurstOutcome::RevokedMaxTime => RevokeReason::MaxTalkTime,
            BurstOutcome::Offline => RevokeReason::Offline,
            BurstOutcome::Released | BurstOutcome::Reported => return Some(h),
        };
        let party = h.party.clone();
        out.event(
            end,
            actor,
            Change::Revoked {
                group: g.clone(),
                party,
                reason,
            },
        );
        if reason != RevokeReason::Offline {
            out.send(
                &h.party,
                g,
                h.request_id.as_deref(),
                Answer::Revoked { reason },
            );
        }
        Some(h)
    }

    /// After the holder left: the next in the queue gets the floor, or the floor is idle and
    /// every member handset is told so (consoles follow the journal).
    pub(crate) fn hand_over(
        &mut self,
        now: Timestamp,
        g: &TalkgroupId,
        actor: &Actor,
        out: &mut Outcome,
    ) {
        let before = self.state.groups[g].floor.order();
        if before.is_empty() {
            out.event(now, actor, Change::Idle { group: g.clone() });
            for u in &self.state.groups[g].spec.units {
                out.send(&Party::Unit(u.clone()), g, None, Answer::Idle);
            }
            return;
        }
        let next = self.floor_mut(g).queue.remove(0);
        self.grant(now, g, next, actor, out);
        self.announce(g, &before, out);
    }

    /// After ranks changed (an SOS) or the queue moved: re-sort, fill an empty floor, and let a
    /// head that now outranks the holder pre-empt it.
    pub(crate) fn reconsider(
        &mut self,
        now: Timestamp,
        g: &TalkgroupId,
        actor: &Actor,
        out: &mut Outcome,
    ) {
        let before = self.state.groups[g].floor.order();
        self.sort_queue(g);
        let floor = &self.state.groups[g].floor;
        let Some(head) = floor.queue.first() else {
            return;
        };
        let take = match &floor.holder {
            None => true,
            Some(h) => self.rank(&head.party, head.priority) > self.rank(&h.party, h.priority),
        };
        if take {
            self.end_burst(now, g, BurstOutcome::PreEmpted, actor, out);
            let next = self.floor_mut(g).queue.remove(0);
            self.grant(now, g, next, actor, out);
        }
        self.announce(g, &before, out);
    }

    /// Sorts the queue: highest rank first, then first come.
    pub(crate) fn sort_queue(&mut self, g: &TalkgroupId) {
        let mut q = std::mem::take(&mut self.floor_mut(g).queue);
        q.sort_by_cached_key(|w| (Reverse(self.rank(&w.party, w.priority)), w.seq));
        self.floor_mut(g).queue = q;
    }

    /// Tells every waiting party whose position differs from `before` (or is new) its place.
    pub(crate) fn announce(&self, g: &TalkgroupId, before: &[Party], out: &mut Outcome) {
        for (i, w) in self.state.groups[g].floor.queue.iter().enumerate() {
            if before.get(i) != Some(&w.party) {
                let position = i as u32 + 1;
                out.send(
                    &w.party,
                    g,
                    w.request_id.as_deref(),
                    Answer::Queued { position },
                );
            }
        }
    }

    pub(crate) fn floor_mut(&mut self, g: &TalkgroupId) -> &mut Floor {
        &mut self
            .state
            .groups
            .get_mut(g)
            .expect("caller checked the group")
            .floor
    }
}

//! [`Intercom`]: the floor-control state machine, its serializable [`IntercomState`], accessors,
//! talkgroup management and the memory of request ids that makes retries harmless.
//!
//! In the style of rumqttc's `state.rs`: methods just modify the state and return what should
//! happen ([`Outcome`]) without doing any I/O. Time comes in as `now`; request ids come from the
//! handsets and consoles. A refused command changes nothing. Floor commands live in `arbiter`,
//! presence, SOS, timers and reported bursts in `field`.

use std::collections::{BTreeMap, VecDeque};

use fieldlink_clock::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::IntercomConfig;
use crate::error::IntercomError;
use crate::floor::{Floor, Rank};
use crate::journal::{Answer, Change, Outcome};
use crate::model::{Actor, FloorPriority, Party, Talkgroup, TalkgroupId, UnitId};

/// A talkgroup and its floor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The definition.
    pub spec: Talkgroup,
    /// The floor (always free on a `reported` group).
    pub floor: Floor,
}

/// Request ids already answered, oldest first, bounded by `request_memory`. For a denied
/// request the answer is kept, so a retry can repeat it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// Keys (`party/request id`) in the order they were first seen.
    pub order: VecDeque<String>,
    /// Key → the denial to repeat, if the first answer was one.
    pub answers: BTreeMap<String, Option<Answer>>,
}

/// Everything the intercom knows: serialize it to survive a restart ([`Intercom::restore`]).
/// Talk-time and SOS deadlines are absolute instants, so they fire at their original times.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntercomState {
    /// Talkgroups by id.
    pub groups: BTreeMap<TalkgroupId, Group>,
    /// Units in SOS → until when (`None` = until cleared).
    pub sos: BTreeMap<UnitId, Option<Timestamp>>,
    /// Answered request ids.
    pub seen: Seen,
    /// The next queue arrival number.
    pub next_seq: u64,
}

/// The intercom core.
#[derive(Debug)]
pub struct Intercom {
    pub(crate) config: IntercomConfig,
    pub(crate) state: IntercomState,
}

impl Intercom {
    /// An intercom with no talkgroups (add them with [`save_group`](Self::save_group)).
    pub fn new(config: IntercomConfig) -> Self {
        Self::restore(config, IntercomState::default())
    }

    /// An intercom resumed from a snapshot; its deadlines keep their instants.
    pub fn restore(config: IntercomConfig, state: IntercomState) -> Self {
        Intercom { config, state }
    }

    /// The state, to persist.
    pub fn state(&self) -> &IntercomState {
        &self.state
    }

    /// The config.
    pub fn config(&self) -> &IntercomConfig {
        &self.config
    }

    /// A talkgroup and its floor.
    pub fn group(&self, g: &TalkgroupId) -> Result<&Group, IntercomError> {
        (self.state.groups.get(g)).ok_or_else(|| IntercomError::UnknownGroup(g.clone()))
    }

    /// Who holds the floor of `g`.
    pub fn holder(&self, g: &TalkgroupId) -> Option<&Party> {
        let h = self.state.groups.get(g)?.floor.holder.as_ref()?;
        Some(&h.party)
    }

    /// Who waits for the floor of `g`, next first.
    pub fn queue(&self, g: &TalkgroupId) -> Vec<Party> {
        (self.state.groups.get(g)).map_or_else(Vec::new, |grp| grp.floor.order())
    }

    /// Whether `unit` is in SOS (emergency priority on all its groups).
    pub fn in_sos(&self, unit: &UnitId) -> bool {
        self.state.sos.contains_key(unit)
    }

    /// The earliest pending deadline (a maximum talk time or an SOS end): call
    /// [`tick`](Self::tick) then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let talk = self
            .state
            .groups
            .values()
            .filter_map(|g| g.floor.holder.as_ref());
        let sos = self.state.sos.values().flatten().copied();
        talk.map(|h| h.deadline).chain(sos).min()
    }

    /// The rank `party` claims the floor with when it asked at `requested`.
    pub fn rank(&self, party: &Party, requested: FloorPriority) -> Rank {
        match party {
            Party::Unit(u) if self.state.sos.contains_key(u) => Rank {
                priority: FloorPriority::Emergency,
                dispatcher: false,
            },
            Party::Unit(_) => Rank {
                priority: requested,
                dispatcher: false,
            },
            Party::Console(_) => Rank {
                priority: requested,
                dispatcher: self.config.dispatcher_precedence,
            },
        }
    }

    /// Creates or changes a talkgroup (config load or API). Refused with
    /// [`IntercomError::GroupInUse`] when it would change the mode of a group whose floor is in
    /// use, or drop a member who holds or waits for the floor.
    pub fn save_group(
        &mut self,
        now: Timestamp,
        spec: Talkgroup,
        actor: Actor,
    ) -> Result<Outcome, IntercomError> {
        let mut problems = Vec::new();
        if spec.id.as_str().is_empty() {
            problems.push("a talkgroup needs an id".to_owned());
        }
        if spec.max_talk_s == Some(0) {
            problems.push(format!(
                "talkgroup {}: max_talk_s must be at least 1",
                spec.id
            ));
        }
        if !problems.is_empty() {
            return Err(IntercomError::InvalidGroup(problems));
        }
        let floor = match self.state.groups.get(&spec.id) {
            None => Floor::default(),
            Some(old) => {
                let f = &old.floor;
                let mut active = f
                    .holder
                    .iter()
                    .map(|h| &h.party)
                    .chain(f.queue.iter().map(|w| &w.party));
                let mode_change = old.spec.mode != spec.mode && !f.is_free();
                if mode_change || active.any(|p| !spec.has_member(p)) {
                    return Err(IntercomError::GroupInUse(spec.id));
                }
                old.floor.clone()
            }
        };
        let mut out = Outcome::default();
        out.event(
            now,
            &actor,
            Change::GroupSaved {
                group: Box::new(spec.clone()),
            },
        );
        self.state
            .groups
            .insert(spec.id.clone(), Group { spec, floor });
        Ok(out)
    }

    /// Removes a talkgroup; refused while someone holds or waits for its floor.
    pub fn remove_group(
        &mut self,
        now: Timestamp,
        g: &TalkgroupId,
        actor: Actor,
    ) -> Result<Outcome, IntercomError> {
        if !self.group(g)?.floor.is_free() {
            return Err(IntercomError::GroupInUse(g.clone()));
        }
        self.state.groups.remove(g);
        let mut out = Outcome::default();
        out.event(now, &actor, Change::GroupRemoved { group: g.clone() });
        Ok(out)
    }

    /// The key a request id is remembered under; ids are unique per sender.
    pub(crate) fn seen_key(party: &Party, request_id: &str) -> String {
        format!("{party}/{request_id}")
    }

    /// Whether the request was answered already, and the denial to repeat if it was denied.
    pub(crate) fn seen(&self, key: &str) -> Option<Option<Answer>> {
        self.state.seen.answers.get(key).cloned()
    }

    /// Remembers a request id, forgetting the oldest beyond `request_memory`.
    pub(crate) fn remember(&mut self, key: String, denial: Option<Answer>) {
        let seen = &mut self.state.seen;
        if seen.answers.insert(key.clone(), denial).is_none() {
            seen.order.push_back(key);
        }
        while seen.order.len() > self.config.request_memory.max(1) {
            if let Some(old) = seen.order.pop_front() {
                seen.answers.remove(&old);
            }
        }
    }
}

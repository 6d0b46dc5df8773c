//! Undoing a command: a [`Checkpoint`] taken before it, and the responders it changed.
//!
//! The caller commits each command's outcome to its store and must put the core back when the
//! commit fails. Cloning the whole [`DeskState`] per command is what that used to cost, and
//! with 100k responders the clone (and the snapshot that went with it) dominated a dispatch
//! (`crates/server/benches/dispatch.rs`). So a checkpoint clones only incidents, orders, alarms,
//! the queue and the timers, and the responders are covered by an undo log: the first time a
//! command touches a responder, its previous record is kept.
//!
//! The same log names the responders whose durable record (duty, presence, current order)
//! changed, which the caller persists row by row: responders are not in the snapshot.

use std::collections::{BTreeMap, BTreeSet};

use crate::desk::{DeskState, Dispatcher};
use crate::model::UnitId;
use crate::status::Responder;

/// The core as it was before a command, minus the responders (see the module doc).
#[derive(Debug)]
pub struct Checkpoint {
    state: DeskState,
}

impl Dispatcher {
    /// Starts recording: call before a command, then [`rollback`](Self::rollback) or
    /// [`keep`](Self::keep) (with [`changed_responders`](Self::changed_responders) in between to
    /// learn what to persist).
    pub fn checkpoint(&mut self) -> Checkpoint {
        self.undo = Some(BTreeMap::new());
        Checkpoint {
            state: self.state.without_responders(),
        }
    }

    /// Puts the core back as it was at `checkpoint`.
    pub fn rollback(&mut self, checkpoint: Checkpoint) {
        let undo = self.undo.take().unwrap_or_default();
        let mut responders = std::mem::take(&mut self.state.responders);
        for (unit, before) in undo {
            match before {
                Some(r) => responders.insert(unit, r),
                None => responders.remove(&unit),
            };
        }
        self.state = checkpoint.state;
        self.state.responders = responders;
    }

    /// The responders whose durable record (duty, presence, current order) the command changed
    /// so far: the rows to persist. A new last fix alone does not count (the location tracker
    /// owns positions).
    pub fn changed_responders(&self) -> BTreeSet<UnitId> {
        let Some(undo) = &self.undo else {
            return BTreeSet::new();
        };
        (undo.iter())
            .filter(|(unit, before)| {
                let after = self.state.responders.get(*unit);
                match (before, after) {
                    (Some(b), Some(a)) => !b.same_record(a),
                    (None, Some(a)) => !a.same_record(&Responder::new((*unit).clone())),
                    _ => true,
                }
            })
            .map(|(unit, _)| unit.clone())
            .collect()
    }

    /// Keeps what the command did and stops recording.
    pub fn keep(&mut self, checkpoint: Checkpoint) {
        drop(checkpoint);
        self.undo = None;
    }

    /// The responder's record to change, created on first sight; remembered for undo.
    pub(crate) fn responder_mut(&mut self, unit: &UnitId) -> &mut Responder {
        self.remember(unit);
        (self.state.responders.entry(unit.clone())).or_insert_with(|| Responder::new(unit.clone()))
    }

    /// The responder's record to change, if it exists; remembered for undo.
    pub(crate) fn existing_responder_mut(&mut self, unit: &UnitId) -> Option<&mut Responder> {
        self.remember(unit);
        self.state.responders.get_mut(unit)
    }

    fn remember(&mut self, unit: &UnitId) {
        if let Some(undo) = &mut self.undo
            && !undo.contains_key(unit)
        {
            undo.insert(unit.clone(), self.state.responders.get(unit).cloned());
        }
    }
}

impl DeskState {
    /// Everything but the responders (cloned).
    pub fn without_responders(&self) -> DeskState {
        DeskState {
            incidents: self.incidents.clone(),
            orders: self.orders.clone(),
            alarms: self.alarms.clone(),
            responders: BTreeMap::new(),
            requests: self.requests.clone(),
            queue: self.queue.clone(),
            timers: self.timers.clone(),
        }
    }
}

//! The replay check for sealed uplinks: per unit, the newest counter accepted so far.
//!
//! A sealed payload proves who sealed it, not when: anyone who saw it on the broker could publish
//! the same bytes again. So the pipeline accepts a sealed message only when its counter is newer
//! than the last one it accepted from that unit on that channel ([`Freshness`]). Handsets count in
//! microseconds since the epoch, made strictly increasing, so a restarted handset needs no memory.
//!
//! The marks must outlive fieldlink's own restart, or every message seen before it could be
//! replayed once after it: the server writes the changed marks with each position flush
//! ([`ReplayMarks::take_changed`]) and hands the stored ones back at start
//! ([`ReplayMarks::restore`]). A crash loses at most the marks of the last flush interval, so a
//! message sealed in that interval could be replayed once after the restart (docs/security.md).
//!
//! A duplicate delivery (a QoS 1 retransmission) is refused the same way, which is right: the
//! first copy was accepted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use fieldlink_proto::UnitId;

use crate::decode::Freshness;

/// Which counter a mark is for: fieldlink's seal counter, or OwnTracks' `tst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Sealed fieldlink protobuf payloads ([`Freshness::Counter`]).
    Sealed,
    /// Sealed OwnTracks locations ([`Freshness::OwnTracksTst`]).
    OwnTracks,
    /// Sealed offline notices, last wills mostly ([`Freshness::Offline`]).
    Offline,
}

impl Channel {
    /// The name kept in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sealed => "sealed",
            Channel::OwnTracks => "owntracks",
            Channel::Offline => "offline",
        }
    }

    /// Back from [`Channel::as_str`].
    pub fn parse(name: &str) -> Option<Channel> {
        match name {
            "sealed" => Some(Channel::Sealed),
            "owntracks" => Some(Channel::OwnTracks),
            "offline" => Some(Channel::Offline),
            _ => None,
        }
    }
}

/// One unit's newest accepted counter on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The unit.
    pub unit: UnitId,
    /// The channel.
    pub channel: Channel,
    /// The newest counter accepted.
    pub last: u64,
}

#[derive(Debug, Default)]
struct Marks {
    last: HashMap<(UnitId, Channel), u64>,
    changed: HashSet<(UnitId, Channel)>,
}

/// The marks, shared by the pipeline (which checks) and the server (which persists). Cheap to
/// clone.
#[derive(Debug, Clone, Default)]
pub struct ReplayMarks(Arc<Mutex<Marks>>);

impl ReplayMarks {
    /// Marks as the store kept them.
    pub fn restore(marks: impl IntoIterator<Item = Mark>) -> ReplayMarks {
        let last = marks
            .into_iter()
            .map(|m| ((m.unit, m.channel), m.last))
            .collect();
        ReplayMarks(Arc::new(Mutex::new(Marks {
            last,
            changed: HashSet::new(),
        })))
    }

    /// Accepts `freshness` from `unit` when it is newer than every one accepted before on its
    /// channel; otherwise returns the last one accepted.
    pub fn accept(&self, unit: &UnitId, freshness: Freshness) -> Result<(), u64> {
        let (channel, counter) = match freshness {
            Freshness::Counter(c) => (Channel::Sealed, c),
            Freshness::OwnTracksTst(t) => (Channel::OwnTracks, t),
            Freshness::Offline(c) => (Channel::Offline, c),
        };
        let mut marks = self.lock();
        let key = (unit.clone(), channel);
        let last = marks.last.get(&key).copied().unwrap_or(0);
        if counter <= last {
            return Err(last);
        }
        marks.last.insert(key.clone(), counter);
        marks.changed.insert(key);
        Ok(())
    }

    /// The marks changed since the last call, to be written to the store. When the write fails,
    /// hand them back with [`ReplayMarks::put_back`].
    pub fn take_changed(&self) -> Vec<Mark> {
        let mut marks = self.lock();
        let changed = std::mem::take(&mut marks.changed);
        changed
            .into_iter()
            .map(|key| Mark {
                last: marks.last[&key],
                unit: key.0,
                channel: key.1,
            })
            .collect()
    }

    /// Marks whose write failed: they are written again with the next flush.
    pub fn put_back(&self, failed: Vec<Mark>) {
        let mut marks = self.lock();
        for m in failed {
            marks.changed.insert((m.unit, m.channel));
        }
    }

    /// Units with a mark (for metrics and tests).
    pub fn len(&self) -> usize {
        self.lock().last.len()
    }

    /// True when no mark is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        // Plain data: a panic elsewhere while holding the lock leaves it usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str) -> UnitId {
        UnitId::new(id).expect("a valid unit id")
    }

    #[test]
    fn a_counter_is_accepted_once_and_only_when_newer_per_unit_and_channel() {
        let marks = ReplayMarks::default();
        let (a, b) = (unit("a"), unit("b"));
        assert_eq!(marks.accept(&a, Freshness::Counter(10)), Ok(()));
        assert_eq!(marks.accept(&a, Freshness::Counter(10)), Err(10));
        assert_eq!(marks.accept(&a, Freshness::Counter(9)), Err(10));
        assert_eq!(marks.accept(&b, Freshness::Counter(10)), Ok(()));
        assert_eq!(marks.accept(&a, Freshness::OwnTracksTst(5)), Ok(()));
        assert_eq!(marks.accept(&a, Freshness::Counter(11)), Ok(()));
        assert_eq!(marks.accept(&a, Freshness::Counter(0)), Err(11));
    }

    #[test]
    fn changed_marks_are_taken_once_put_back_on_failure_and_restored_after_a_restart() {
        let marks = ReplayMarks::default();
        let a = unit("a");
        marks.accept(&a, Freshness::Counter(7)).expect("new");
        marks.accept(&a, Freshness::Counter(8)).expect("newer");
        let taken = marks.take_changed();
        assert_eq!(
            taken,
            vec![Mark {
                unit: a.clone(),
                channel: Channel::Sealed,
                last: 8
            }]
        );
        assert!(marks.take_changed().is_empty());
        marks.put_back(taken.clone());
        assert_eq!(marks.take_changed(), taken);

        let restarted = ReplayMarks::restore(taken);
        assert_eq!(restarted.accept(&a, Freshness::Counter(8)), Err(8));
        assert_eq!(restarted.accept(&a, Freshness::Counter(9)), Ok(()));
    }
}

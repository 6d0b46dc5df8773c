//! [`IdGen`]: ids come from the caller, so tests are deterministic and production can use the
//! store's ids.

use std::fmt;

use crate::model::{AlarmId, IncidentId, OrderId};

/// Where new ids come from. Production uses unique ids (UUIDs, or the store's sequences); tests
/// use [`SeqIds`]. After a restore the generator must not repeat ids already in the state.
pub trait IdGen: fmt::Debug + Send {
    /// A fresh incident id.
    fn incident_id(&mut self) -> IncidentId;
    /// A fresh order id.
    fn order_id(&mut self) -> OrderId;
    /// A fresh alarm id.
    fn alarm_id(&mut self) -> AlarmId;
}

/// Deterministic ids `inc-N`, `ord-N`, `alm-N` from one counter.
#[derive(Clone, Debug, Default)]
pub struct SeqIds {
    next: u64,
}

impl SeqIds {
    /// Ids starting at `n` (after a restore, pick `n` past every id in the snapshot).
    pub fn starting_at(n: u64) -> Self {
        SeqIds { next: n }
    }

    fn bump(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl IdGen for SeqIds {
    fn incident_id(&mut self) -> IncidentId {
        IncidentId(format!("inc-{}", self.bump()))
    }
    fn order_id(&mut self) -> OrderId {
        OrderId(format!("ord-{}", self.bump()))
    }
    fn alarm_id(&mut self) -> AlarmId {
        AlarmId(format!("alm-{}", self.bump()))
    }
}

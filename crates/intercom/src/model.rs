//! The records intercom reasons about: ids, parties, actors, floor priorities and talkgroups.
//!
//! Plain data, serde-serializable. Priority names match `proto/fieldlink/v1/common.proto`
//! (`FloorPriority`) in `snake_case`. Floor state lives in `floor.rs`, journal types in
//! `journal.rs`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A responder's unit id (the handset's identity, as in the MQTT topic).
    UnitId
);
id_type!(
    /// A dispatcher console in the command room (its session's dispatcher or seat name).
    ConsoleId
);
id_type!(
    /// A talkgroup's id (`PttMessage.talkgroup`, `FloorAnswer.talkgroup`).
    TalkgroupId
);

/// Who can hold or ask for the floor: a handset or a dispatcher console.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Party {
    /// A responder's handset; its answers go on `fl/v1/u/{unit}/down`.
    Unit(UnitId),
    /// A dispatcher console; its answers go on its WebSocket session.
    Console(ConsoleId),
}

impl Party {
    /// A unit party.
    pub fn unit(id: &str) -> Self {
        Party::Unit(UnitId::from(id))
    }

    /// A console party.
    pub fn console(id: &str) -> Self {
        Party::Console(ConsoleId::from(id))
    }

    /// The actor this party is in the journal.
    pub fn actor(&self) -> Actor {
        match self {
            Party::Unit(u) => Actor::Unit(u.clone()),
            Party::Console(c) => Actor::Dispatcher(c.clone()),
        }
    }
}

impl fmt::Display for Party {
    /// `unit:ID` or `console:ID`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Unit(u) => write!(f, "unit:{u}"),
            Party::Console(c) => write!(f, "console:{c}"),
        }
    }
}

/// Who caused a state change: every journal event names one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Actor {
    /// A responder, through its handset.
    Unit(UnitId),
    /// A dispatcher, through a console or the HTTP API (named by the console id; same JSON
    /// shape as dispatch's `Actor::Dispatcher`).
    Dispatcher(ConsoleId),
    /// fieldlink itself, naming the rule that fired (`max_talk_time`, `presence`, `sos_expiry`).
    System(String),
}

impl Actor {
    /// A system actor for `rule`.
    pub fn system(rule: &str) -> Self {
        Actor::System(rule.to_owned())
    }
}

/// Floor priority after 3GPP MCPTT: emergency pre-empts imminent peril pre-empts normal.
/// `FLOOR_PRIORITY_UNSPECIFIED` on the wire is read as [`FloorPriority::Normal`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FloorPriority {
    /// Ordinary talk.
    #[default]
    Normal,
    /// A life may be at risk.
    ImminentPeril,
    /// An emergency (a unit in SOS is raised to this on all its groups).
    Emergency,
}

/// Who arbitrates a talkgroup's floor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// fieldlink is the floor arbiter: handsets ask before they talk.
    #[default]
    Arbitrated,
    /// The handsets' own push-to-talk platform arbitrates; fieldlink logs the bursts reported.
    Reported,
}

impl Mode {
    /// The name the API and config files use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Arbitrated => "arbitrated",
            Mode::Reported => "reported",
        }
    }
}

/// What an arbitrated group does with a request while the floor is taken by someone of equal
/// or higher rank.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyPolicy {
    /// Answer `denied`; the user presses again later.
    Deny,
    /// Answer `queued` with a position; the floor is granted when it is this party's turn.
    #[default]
    Queue,
}

/// A talkgroup as configured (config file or API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Talkgroup {
    /// Its id.
    pub id: TalkgroupId,
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// Arbitrated by fieldlink or reported by the handsets' platform.
    #[serde(default)]
    pub mode: Mode,
    /// Busy policy; the config default when absent.
    #[serde(default)]
    pub busy: Option<BusyPolicy>,
    /// Maximum talk time in seconds; the config default when absent.
    #[serde(default)]
    pub max_talk_s: Option<u64>,
    /// Member handsets.
    #[serde(default)]
    pub units: BTreeSet<UnitId>,
    /// Member dispatcher consoles.
    #[serde(default)]
    pub consoles: BTreeSet<ConsoleId>,
}

impl Talkgroup {
    /// Whether `party` is a member.
    pub fn has_member(&self, party: &Party) -> bool {
        match party {
            Party::Unit(u) => self.units.contains(u),
            Party::Console(c) => self.consoles.contains(c),
        }
    }
}

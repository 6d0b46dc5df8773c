//! Unit tests of the intercom core on a manual timeline (plain `Timestamp`s; default config: 60 s
//! talk time, 600 s SOS, dispatcher precedence, queue of 8), and the helpers they share.
//!
//! The groups every test starts with: `g1` (arbitrated, queue; units a b c d, console `desk`),
//! `g2` (arbitrated, deny; units a b, console `desk`), `r1` (reported; units a b).

mod field;
mod floor;
mod priority;
mod race;

use crate::*;

/// The start of every test's timeline.
pub(crate) const T0: i64 = 1_800_000_000_000;

/// `T0` + `s` seconds.
pub(crate) fn at(s: f64) -> Timestamp {
    Timestamp::from_millis(T0 + (s * 1000.0).round() as i64)
}

pub(crate) fn u(s: &str) -> Party {
    Party::unit(s)
}

pub(crate) fn desk() -> Party {
    Party::console("desk")
}

pub(crate) fn tg(s: &str) -> TalkgroupId {
    TalkgroupId::from(s)
}

pub(crate) fn group(id: &str, mode: Mode, busy: BusyPolicy, units: &[&str]) -> Talkgroup {
    Talkgroup {
        id: tg(id),
        name: id.to_uppercase(),
        mode,
        busy: Some(busy),
        max_talk_s: None,
        units: units.iter().map(|s| UnitId::from(*s)).collect(),
        consoles: [ConsoleId::from("desk")].into_iter().collect(),
    }
}

/// An intercom with `config` and the three standard groups.
pub(crate) fn intercom_with(config: IntercomConfig) -> Intercom {
    let mut ic = Intercom::new(config);
    let sys = Actor::system("config");
    let groups = [
        group(
            "g1",
            Mode::Arbitrated,
            BusyPolicy::Queue,
            &["a", "b", "c", "d"],
        ),
        group("g2", Mode::Arbitrated, BusyPolicy::Deny, &["a", "b"]),
        group("r1", Mode::Reported, BusyPolicy::Queue, &["a", "b"]),
    ];
    for g in groups {
        ic.save_group(at(0.0), g, sys.clone()).unwrap();
    }
    ic
}

pub(crate) fn intercom() -> Intercom {
    intercom_with(IntercomConfig::default())
}

/// A normal-priority request.
pub(crate) fn press(ic: &mut Intercom, t: f64, p: &Party, g: &str, rid: &str) -> Outcome {
    (ic.request(at(t), p.clone(), &tg(g), FloorPriority::Normal, Some(rid))).unwrap()
}

/// A release.
pub(crate) fn let_go(ic: &mut Intercom, t: f64, p: &Party, g: &str, rid: &str) -> Outcome {
    ic.release(at(t), p.clone(), &tg(g), Some(rid)).unwrap()
}

/// The answers `out` sends to `p`, in order.
pub(crate) fn answers(out: &Outcome, p: &Party) -> Vec<Answer> {
    (out.effects.iter())
        .map(|Effect::Floor { to, answer, .. }| (to, answer))
        .filter(|(to, _)| *to == p)
        .map(|(_, a)| a.clone())
        .collect()
}

/// The journal changes of `out`, in order.
pub(crate) fn changes(out: &Outcome) -> Vec<Change> {
    out.events.iter().map(|e| e.change.clone()).collect()
}

pub(crate) fn granted(ms: i64) -> Answer {
    Answer::Granted { max_talk_ms: ms }
}

pub(crate) fn queued(position: u32) -> Answer {
    Answer::Queued { position }
}

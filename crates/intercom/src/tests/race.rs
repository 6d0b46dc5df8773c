//! Property-style: two handsets race for the floor 200 rounds, their request and release
//! interleaved at random (a seeded tiny RNG), with retries and ticks mixed in. Replaying the
//! journal must never show two holders at once, and the core must agree with the replay.

use super::*;

/// SplitMix64: tiny, seedable, good enough to shuffle.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Applies `out`'s journal to the replayed holder, failing on a second holder.
fn replay(holder: &mut Option<Party>, out: &Outcome) {
    for e in &out.events {
        match &e.change {
            Change::Granted { party, .. } => {
                assert_eq!(
                    *holder, None,
                    "{party} granted while {holder:?} holds: {e:?}"
                );
                *holder = Some(party.clone());
            }
            Change::Released { party, .. } | Change::Revoked { party, .. } => {
                assert_eq!(
                    holder.as_ref(),
                    Some(party),
                    "{party} left a floor it did not hold"
                );
                *holder = None;
            }
            _ => {}
        }
    }
}

fn race(seed: u64, g: &str) -> (u32, u32) {
    let mut rng = Rng(seed);
    let mut ic = intercom();
    let (group, parties) = (tg(g), [u("a"), u("b")]);
    let mut holder = None;
    let (mut t, mut grants, mut denials) = (0.0, 0, 0);
    for round in 0..200 {
        // Each party does request then release; the interleaving of the four steps is random.
        let mut steps = [0usize, 0usize];
        while steps != [2, 2] {
            let who = rng.below(2) as usize;
            if steps[who] == 2 {
                continue;
            }
            t += 0.001 * (1 + rng.below(50_000)) as f64;
            let p = &parties[who];
            let rid = format!("{round}-{who}-{}", steps[who]);
            let out = if steps[who] == 0 {
                press(&mut ic, t, p, g, &rid)
            } else {
                let_go(&mut ic, t, p, g, &rid)
            };
            replay(&mut holder, &out);
            grants += answers(&out, p)
                .iter()
                .filter(|a| matches!(a, Answer::Granted { .. }))
                .count() as u32;
            denials += changes(&out)
                .iter()
                .filter(|c| matches!(c, Change::Denied { .. }))
                .count() as u32;
            if rng.below(4) == 0 {
                // A duplicate of the step just taken: must change nothing.
                let dup = if steps[who] == 0 {
                    press(&mut ic, t, p, g, &rid)
                } else {
                    let_go(&mut ic, t, p, g, &rid)
                };
                assert!(
                    dup.events.is_empty() && dup.bursts.is_empty(),
                    "retry changed state: {dup:?}"
                );
            }
            if rng.below(8) == 0 {
                replay(&mut holder, &ic.tick(at(t)));
            }
            steps[who] += 1;
            assert_eq!(
                ic.holder(&group),
                holder.as_ref(),
                "core and journal disagree"
            );
        }
        assert_eq!(
            holder, None,
            "both released, so the floor is idle after round {round}"
        );
        assert!(ic.group(&group).unwrap().floor.is_free());
    }
    (grants, denials)
}

#[test]
fn two_units_racing_never_hold_the_floor_together() {
    for seed in [1, 7, 42, 2026, 0xF1E1D] {
        let (grants, denials) = race(seed, "g1");
        assert_eq!(denials, 0, "a queue group never denies two parties");
        assert!(
            grants >= 200,
            "seed {seed}: at least one grant per round, got {grants}"
        );
        let (grants, denials) = race(seed, "g2");
        assert!(
            denials > 0 && grants >= 200,
            "seed {seed}: {grants} grants, {denials} denials"
        );
    }
}

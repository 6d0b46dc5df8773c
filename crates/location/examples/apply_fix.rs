//! The whole fix path, for instruction counts: builds a tracker of `UNITS` units, then applies
//! `FIXES` small moves of random units through `Tracker::apply_fix`, as `benches/index.rs` does.
//!
//! Run under callgrind twice, with `FIXES` = 0 and, say, 2000000, and divide the difference in
//! instructions by the fixes (the wall clock of a shared machine is too noisy for small gains):
//!
//! ```text
//! cargo build --release -p fieldlink-location --example apply_fix
//! valgrind --tool=callgrind target/release/examples/apply_fix 100000 2000000
//! ```
//!
//! A third argument of 1 registers a profile for every unit first (as the server does).

use std::hint::black_box;

use fieldlink_location::{Fix, LocationConfig, Timestamp, Tracker};

/// xorshift64*: the same reproducible workload as the bench, without an RNG dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let units = args.next().and_then(Result::ok).unwrap_or(100_000);
    let fixes = args.next().and_then(Result::ok).unwrap_or(2_000_000);
    // A third argument of 1 registers a profile for every unit, as the server does.
    let profiles = args.next().and_then(Result::ok).unwrap_or(0) == 1;

    let mut rng = Rng(0x5EED ^ units as u64);
    let points: Vec<(f64, f64)> = (0..units)
        .map(|_| (rng.range(31.13, 31.31), rng.range(121.37, 121.58)))
        .collect();
    // Moves by up to ~20 m around each unit's start, replayed in a loop (made before the fixes
    // so that the run with FIXES = 0 pays for everything but the fixes).
    let moves: Vec<(u32, f64, f64)> = (0..1 << 16)
        .map(|_| {
            let slot = (rng.next() % units as u64) as u32;
            let (lat, lon) = points[slot as usize];
            let (dlat, dlon) = (rng.range(-2e-4, 2e-4), rng.range(-2e-4, 2e-4));
            (slot, lat + dlat, lon + dlon)
        })
        .collect();
    let names: Vec<String> = (0..units).map(|i| format!("unit-{i:07}")).collect();

    let config = LocationConfig::default();
    let mut tracker = Tracker::new(config.clone());
    if profiles {
        for (i, name) in names.iter().enumerate() {
            let unit_type = if i % 2 == 0 { "on_foot" } else { "car" };
            tracker.set_profile(name, config.profile(unit_type));
        }
    }
    let mut now = 1_764_446_400_000i64;
    let t0 = Timestamp::from_millis(now);
    for (name, &(lat, lon)) in names.iter().zip(&points) {
        tracker.apply_fix(name, Fix::new(t0, lat, lon), t0);
    }

    let mut latest = 0usize;
    for &(slot, lat, lon) in moves.iter().cycle().take(fixes) {
        now += 1;
        let t = Timestamp::from_millis(now);
        let outcome = tracker.apply_fix(&names[slot as usize], Fix::new(t, lat, lon), t);
        latest += usize::from(black_box(outcome).latest_updated);
    }
    println!("units {units}, fixes {fixes}, latest updated {latest}");
}

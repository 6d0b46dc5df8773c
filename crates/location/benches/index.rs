//! Spatial index benchmark: the chosen grid beside the R-tree it beat and a brute-force scan,
//! at 10k, 100k and 1M units over a ~20 km square of Shanghai, plus the tracker's full fix path.
//!
//! Measures position updates per second (batches of 1,024 small moves of random units, as fixes
//! arrive), nearest-5 latency (all units, and only 1 unit in 100 accepted by the predicate),
//! radius-500 m latency, and memory per unit: printed before the timings, both from the
//! structures' own accounting and from the process's resident-set growth while building them
//! (no counting allocator: the workspace forbids `unsafe`).
//!
//! Run: `cargo bench -p fieldlink-location` (about three minutes on two cores).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fieldlink_location::index::{GridIndex, RTreeIndex, ScanIndex, SpatialIndex};
use fieldlink_location::{Fix, LocationConfig, Timestamp, Tracker};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const BATCH: usize = 1_024;
const CELL_M: f64 = 250.0;

/// xorshift64*: reproducible points without an RNG dependency.
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

struct Workload {
    points: Vec<(f64, f64)>,
    /// Moves of random units by up to ~20 m around their start, replayed in a loop.
    moves: Vec<(u32, f64, f64)>,
    queries: Vec<(f64, f64)>,
}

fn workload(n: usize) -> Workload {
    let mut rng = Rng(0x5EED ^ n as u64);
    let points: Vec<_> = (0..n)
        .map(|_| (rng.range(31.13, 31.31), rng.range(121.37, 121.58)))
        .collect();
    let moves = (0..1 << 16)
        .map(|_| {
            let slot = (rng.next() % n as u64) as u32;
            let (lat, lon) = points[slot as usize];
            (
                slot,
                lat + rng.range(-2e-4, 2e-4),
                lon + rng.range(-2e-4, 2e-4),
            )
        })
        .collect();
    let queries = (0..4_096)
        .map(|_| (rng.range(31.14, 31.30), rng.range(121.38, 121.57)))
        .collect();
    Workload {
        points,
        moves,
        queries,
    }
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn build(kind: &str, w: &Workload) -> Box<dyn SpatialIndex> {
    let indexed = w
        .points
        .iter()
        .enumerate()
        .map(|(i, &(la, lo))| (i as u32, la, lo));
    let mut index: Box<dyn SpatialIndex> = match kind {
        "rtree" => return Box::new(RTreeIndex::bulk_load(indexed)),
        "scan" => Box::new(ScanIndex::new()),
        _ => Box::new(GridIndex::new(
            kind.trim_start_matches("grid").parse().unwrap_or(CELL_M),
        )),
    };
    for (slot, lat, lon) in indexed {
        index.upsert(slot, lat, lon);
    }
    index
}

fn build_tracker(w: &Workload) -> (Tracker, Vec<String>) {
    let names: Vec<String> = (0..w.points.len())
        .map(|i| format!("unit-{i:07}"))
        .collect();
    let mut tracker = Tracker::new(LocationConfig::default());
    let t0 = Timestamp::from_millis(1_764_446_400_000);
    for (name, &(lat, lon)) in names.iter().zip(&w.points) {
        tracker.apply_fix(name, Fix::new(t0, lat, lon), t0);
    }
    (tracker, names)
}

fn memory_report(w: &Workload) {
    let n = w.points.len();
    for kind in ["grid", "rtree", "scan"] {
        let before = resident_bytes();
        let index = build(kind, w);
        let rss = resident_bytes().saturating_sub(before);
        eprintln!(
            "memory n={n:>7} {kind:<8} own accounting {:>5.0} B/unit, RSS growth {:>5.0} B/unit",
            index.heap_bytes() as f64 / n as f64,
            rss as f64 / n as f64
        );
        drop(index);
    }
    let before = resident_bytes();
    let (tracker, names) = build_tracker(w);
    let rss = resident_bytes().saturating_sub(before);
    let name_bytes: usize = names.iter().map(|s| s.capacity() + 24).sum();
    eprintln!(
        "memory n={n:>7} tracker  RSS growth {:>5.0} B/unit (including the bench's own names, {:.0} B/unit)",
        rss as f64 / n as f64,
        name_bytes as f64 / n as f64
    );
    drop(tracker);
}

fn indexes(c: &mut Criterion) {
    for n in SIZES {
        let w = workload(n);
        memory_report(&w);
        let mut group = c.benchmark_group(format!("n={n}"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(1));
        for kind in ["grid", "rtree", "scan"] {
            let mut index = build(kind, &w);
            let mut cursor = 0;
            group.throughput(Throughput::Elements(BATCH as u64));
            group.bench_function(BenchmarkId::new("update", kind), |b| {
                b.iter(|| {
                    for &(slot, lat, lon) in &w.moves[cursor..cursor + BATCH] {
                        index.upsert(slot, lat, lon);
                    }
                    cursor = (cursor + BATCH) % w.moves.len();
                })
            });
            group.throughput(Throughput::Elements(1));
            let mut q = w.queries.iter().cycle();
            group.bench_function(BenchmarkId::new("nearest5", kind), |b| {
                b.iter(|| {
                    let &(lat, lon) = q.next().unwrap();
                    black_box(index.nearest(lat, lon, 5, &mut |_| true))
                })
            });
            group.bench_function(BenchmarkId::new("nearest5_1pct", kind), |b| {
                b.iter(|| {
                    let &(lat, lon) = q.next().unwrap();
                    black_box(index.nearest(lat, lon, 5, &mut |s| s % 100 == 0))
                })
            });
            group.bench_function(BenchmarkId::new("radius500", kind), |b| {
                b.iter(|| {
                    let &(lat, lon) = q.next().unwrap();
                    black_box(index.within_radius(lat, lon, 500.0))
                })
            });
        }
        tracker_path(&mut group, &w);
        group.finish();
    }
}

/// The whole fix path: id lookup, filters, presence, index move, zone check, history record.
fn tracker_path(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    w: &Workload,
) {
    let (mut tracker, names) = build_tracker(w);
    let mut now = 1_764_446_400_000i64;
    let mut cursor = 0;
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::new("apply_fix", "tracker"), |b| {
        b.iter(|| {
            for &(slot, lat, lon) in &w.moves[cursor..cursor + BATCH] {
                now += 1;
                let t = Timestamp::from_millis(now);
                black_box(tracker.apply_fix(&names[slot as usize], Fix::new(t, lat, lon), t));
            }
            cursor = (cursor + BATCH) % w.moves.len();
        })
    });
}

/// The cell size, chosen by measurement at 100k units.
fn cell_sizes(c: &mut Criterion) {
    let w = workload(100_000);
    let mut group = c.benchmark_group("cell_m n=100000");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    for cell in ["grid100", "grid250", "grid500", "grid1000"] {
        let index = build(cell, &w);
        let mut q = w.queries.iter().cycle();
        group.bench_function(BenchmarkId::new("nearest5", cell), |b| {
            b.iter(|| {
                let &(lat, lon) = q.next().unwrap();
                black_box(index.nearest(lat, lon, 5, &mut |_| true))
            })
        });
        group.bench_function(BenchmarkId::new("radius500", cell), |b| {
            b.iter(|| {
                let &(lat, lon) = q.next().unwrap();
                black_box(index.within_radius(lat, lon, 500.0))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, indexes, cell_sizes);
criterion_main!(benches);

//! Per-message cost of the ingest hot path, in one run so the figures compare:
//! (a) prost decode of a 1-fix `GpsReport` alone, (b) `Decoder::decode` (topic, limits, unit
//! directory, decode, validation), (c) (b) plus updating a latest-position map.
//!
//! (c) uses a `HashMap<UnitId, (lat, lon, fix_time)>` stand-in for the location crate's
//! tracker, which did not compile when this was written; swap in `Tracker::apply_fix` then.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fieldlink_ingest::{Decoder, Limits, Uplink};
use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use prost::Message;

fn payload() -> Vec<u8> {
    v1::GpsReport {
        id: "p7-000123".into(),
        time_ms: 1_764_446_400_000,
        unit: "p7".into(),
        fixes: vec![v1::GpsFix {
            fix_time_ms: 1_764_446_399_000,
            lat: 30.2596,
            lon: 120.1772,
            alt_m: Some(12.5),
            accuracy_m: Some(4.0),
            speed_mps: Some(1.4),
            heading_deg: Some(87.0),
            satellites: 11,
            source: v1::FixSource::Gnss as i32,
            battery_pct: Some(76.0),
            seq: 123,
        }],
        buffered: false,
    }
    .encode_to_vec()
}

fn bench(c: &mut Criterion) {
    let payload = payload();
    let topics = Topics::default();
    let units: HashSet<UnitId> = (0..1000)
        .map(|i| UnitId::new(format!("u{i}")).expect("valid"))
        .chain([UnitId::new("p7").expect("valid")])
        .collect();
    let topic = topics.uplink(&UnitId::new("p7").expect("valid"), UplinkKind::Gps);
    let decoder = Decoder::new(topics, Limits::default());

    let mut group = c.benchmark_group("ingest_one_fix");
    group.throughput(Throughput::Elements(1));
    group.bench_function("a_prost_decode", |b| {
        b.iter(|| v1::GpsReport::decode(black_box(payload.as_slice())).expect("decodes"))
    });
    group.bench_function("b_decode_validate", |b| {
        b.iter(|| {
            decoder
                .decode(black_box(&topic), black_box(&payload), &units)
                .expect("valid")
        })
    });
    let mut latest: HashMap<UnitId, (f64, f64, i64)> = HashMap::new();
    group.bench_function("c_decode_validate_update", |b| {
        b.iter(|| {
            let env = decoder
                .decode(black_box(&topic), black_box(&payload), &units)
                .expect("valid");
            if let Uplink::Gps(report) = env.message {
                if let Some(f) = report.fixes.last() {
                    let slot = latest.entry(env.unit).or_insert((0.0, 0.0, i64::MIN));
                    if f.fix_time_ms >= slot.2 {
                        *slot = (f.lat, f.lon, f.fix_time_ms);
                    }
                }
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);

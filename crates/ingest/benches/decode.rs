//! Per-message cost of the ingest hot path, in one run so the figures compare:
//! (a) prost decode of a 1-fix `GpsReport` alone, (b) `Decoder::decode` (topic, limits, unit
//! directory, decode, validation) of a plain payload, (b2) the same payload sealed (as every
//! payload on the embedded broker is: `Sealing::Required`, the key looked up per message, the
//! XChaCha20-Poly1305 open), so b2 − b is what sealing costs, (c) (b) plus `Tracker::apply_fix`
//! of the location core (filters, latest position, presence, spatial index) for a tracker
//! holding 10k units.
//!
//! In (c) each iteration moves the fix one step forward in time and about a metre north, so the
//! update path is measured (a repeated fix time would be rejected as a duplicate instead).

use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fieldlink_clock::Timestamp;
use fieldlink_ingest::{Decoder, Limits, Sealing, Uplink};
use fieldlink_location::{Fix, FixSource, LocationConfig, Tracker};
use fieldlink_proto::{Topics, UnitId, UplinkKind, v1};
use fieldlink_seal::SealKey;
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
    let decoder = Decoder::new(topics.clone(), Limits::default());
    // The same directory with a key per unit, as the server's credential cache holds them.
    let keyed: HashMap<UnitId, SealKey> = units
        .iter()
        .map(|u| (u.clone(), SealKey::derive(&format!("secret-of-{u}"))))
        .collect();
    let p7_key = SealKey::derive("secret-of-p7");
    let sealed = fieldlink_seal::seal(&p7_key, UplinkKind::Gps.as_str(), 1, [7; 16], &payload);
    let sealed_decoder = Decoder::new(topics, Limits::default()).with_sealing(Sealing::Required);

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
    group.bench_function("b2_open_decode_validate", |b| {
        b.iter(|| {
            sealed_decoder
                .decode(black_box(&topic), black_box(&sealed), &keyed)
                .expect("valid")
        })
    });
    let mut tracker = Tracker::new(LocationConfig::default());
    let t0 = 1_764_446_399_000_i64;
    for i in 0..10_000 {
        let fix = Fix::new(
            Timestamp::from_millis(t0),
            30.22 + f64::from(i % 100) * 0.0008,
            120.15 + f64::from(i / 100) * 0.0006,
        );
        tracker.apply_fix(&format!("u{i}"), fix, Timestamp::from_millis(t0));
    }
    let mut step = 0_i64;
    group.bench_function("c_decode_validate_update", |b| {
        b.iter(|| {
            let env = decoder
                .decode(black_box(&topic), black_box(&payload), &units)
                .expect("valid");
            if let Uplink::Gps(report) = env.message {
                for f in &report.fixes {
                    step += 1;
                    let fix_time = Timestamp::from_millis(f.fix_time_ms + step * 1000);
                    let fix = Fix {
                        fix_time,
                        // A triangle wave: back and forth, never a jump.
                        lat: f.lat + ((step % 2000) - 1000).abs() as f64 * 1e-5,
                        lon: f.lon,
                        alt_m: f.alt_m,
                        accuracy_m: f.accuracy_m,
                        speed_mps: f.speed_mps,
                        heading_deg: f.heading_deg,
                        battery_pct: f.battery_pct,
                        satellites: f.satellites,
                        source: FixSource::Native,
                        seq: f.seq,
                    };
                    black_box(tracker.apply_fix(env.unit.as_str(), fix, fixed_now(fix_time)));
                }
            }
        })
    });
    group.finish();
}

/// The server receives a fix a moment after it was taken.
fn fixed_now(fix_time: Timestamp) -> Timestamp {
    fix_time.plus(std::time::Duration::from_millis(300))
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

//! The range checks of decoded messages: finite numbers within their documented ranges
//! (`proto/fieldlink/v1/uplink.proto`, the OwnTracks booklet). Nothing here judges plausibility.

use fieldlink_proto::UnitId;
use fieldlink_proto::owntracks;
use fieldlink_proto::v1;

use super::Rejection;

pub(super) fn check_unit(payload_unit: &str, topic_unit: &UnitId) -> Result<(), Rejection> {
    if payload_unit.is_empty() || payload_unit == topic_unit.as_str() {
        Ok(())
    } else {
        Err(Rejection::UnitMismatch {
            topic_unit: topic_unit.clone(),
            payload_unit: super::rejection::clip(payload_unit),
        })
    }
}

pub(super) fn check_gps(report: &v1::GpsReport, max_batch: usize) -> Result<(), Rejection> {
    match report.fixes.len() {
        0 => return Err(Rejection::EmptyBatch),
        n if n > max_batch => {
            return Err(Rejection::BatchTooLarge {
                count: n,
                max: max_batch,
            });
        }
        _ => {}
    }
    report.fixes.iter().try_for_each(check_fix)
}

pub(super) fn check_status(m: &v1::StatusHeartbeat) -> Result<(), Rejection> {
    opt(m.battery_pct, "battery_pct", BATTERY)
}

pub(super) fn check_sos(m: &v1::Sos) -> Result<(), Rejection> {
    m.position.as_ref().map_or(Ok(()), check_fix)
}

pub(super) fn check_ack(m: &v1::Ack) -> Result<(), Rejection> {
    match &m.receipt {
        Some(v1::ack::Receipt::Order(order)) => order.position.as_ref().map_or(Ok(()), check_fix),
        _ => Ok(()),
    }
}

pub(super) fn check_report(m: &v1::Report) -> Result<(), Rejection> {
    match &m.body {
        Some(v1::report::Body::FieldReport(r)) => match &r.position {
            Some(p) => {
                lat_lon(p.lat, p.lon)?;
                opt(p.alt_m, "alt_m", FINITE)?;
                opt(p.accuracy_m, "accuracy_m", NON_NEGATIVE)
            }
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

pub(super) fn check_owntracks(l: &owntracks::Location) -> Result<(), Rejection> {
    lat_lon(l.lat, l.lon)?;
    opt(l.acc, "acc", NON_NEGATIVE)?;
    opt(l.alt, "alt", FINITE)?;
    opt(l.vac, "vac", NON_NEGATIVE)?;
    opt(l.vel, "vel", NON_NEGATIVE)?;
    opt(l.cog, "cog", HEADING)?;
    opt(l.batt, "batt", BATTERY)
}

fn check_fix(f: &v1::GpsFix) -> Result<(), Rejection> {
    lat_lon(f.lat, f.lon)?;
    opt(f.alt_m, "alt_m", FINITE)?;
    opt(f.accuracy_m, "accuracy_m", NON_NEGATIVE)?;
    opt(f.speed_mps, "speed_mps", NON_NEGATIVE)?;
    opt(f.heading_deg, "heading_deg", HEADING)?;
    opt(f.battery_pct, "battery_pct", BATTERY)
}

fn lat_lon(lat: f64, lon: f64) -> Result<(), Rejection> {
    // `contains` is false for NaN, and the ranges are finite, so this also refuses ±inf.
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
        Ok(())
    } else {
        Err(Rejection::BadCoordinates { lat, lon })
    }
}

/// A range rule: the check and its description in words.
type Rule = (fn(f64) -> bool, &'static str);

const FINITE: Rule = (f64::is_finite, "a finite number");
const NON_NEGATIVE: Rule = (|v| v.is_finite() && v >= 0.0, "a finite number >= 0");
const HEADING: Rule = (|v| (0.0..=360.0).contains(&v), "0..=360 degrees");
const BATTERY: Rule = (|v| (0.0..=100.0).contains(&v), "0..=100 percent");

fn opt<T: Into<f64>>(value: Option<T>, field: &'static str, rule: Rule) -> Result<(), Rejection> {
    match value.map(Into::into) {
        Some(v) if !(rule.0)(v) => Err(Rejection::BadValue {
            field,
            value: v,
            expected: rule.1,
        }),
        _ => Ok(()),
    }
}

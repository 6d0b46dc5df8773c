//! What happens to a decoded uplink: the path from ingest into the location core.
//!
//! Runs as one task reading ingest's bounded `Received` channel. A GPS fix goes through the
//! location core (filters, latest position, presence, the geofences and grids it is in) under a
//! brief lock, its zone events are logged and counted (`crate::zones`), and it is queued for the
//! store (history always, flagged when filtered; the latest-position snapshot when it became the
//! latest). Heartbeats keep a unit present; last wills (MQTT or OwnTracks) mark it offline.
//! Dispatch hears of accepted fixes, presence changes, work-order receipts, duty reports, SOS and
//! field reports through its bounded input queue (`crate::dispatch`), never waiting here. The
//! other kinds (PTT, video) are counted by ingest and handled by the crates later issues add.
//!
//! An SOS *cancel* (`Sos.cancel = true`) is logged and not acted on: the core has no command to
//! withdraw an SOS, so the command room closes the incident and acknowledges the alarm.

use fieldlink_clock::Timestamp;
use fieldlink_ingest::{Received, Uplink};
use fieldlink_location::{Fix, FixOutcome, FixSource};
use fieldlink_proto::{owntracks, v1};
use fieldlink_store::TrackRow;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use fieldlink_dispatch::{IncidentSource, LatLon, NewIncident, OrderId, UnitId as DUnit};

use crate::dispatch::{self, Input};
use crate::intercom::PttInput;
use crate::metrics::OutcomeLabel;
use crate::persist::PendingWrites;
use crate::state::AppState;

/// Applies every received uplink until the channel closes or `shutdown` fires.
pub async fn run(
    mut received: mpsc::Receiver<Received>,
    state: AppState,
    pending: PendingWrites,
    shutdown: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            item = received.recv() => item,
            () = shutdown.cancelled() => None,
        };
        let Some(item) = item else { break };
        apply(&state, &pending, item);
    }
}

/// Applies one uplink.
pub fn apply(state: &AppState, pending: &PendingWrites, item: Received) {
    let unit = item.envelope.unit.as_str();
    let now = item.received_at;
    match item.envelope.message {
        Uplink::Gps(report) => {
            for fix in &report.fixes {
                apply_fix(state, pending, unit, fix_from_proto(fix), now);
            }
        }
        Uplink::OwnTracksLocation { location, .. } => {
            apply_fix(state, pending, unit, fix_from_owntracks(&location), now);
        }
        Uplink::Status(status) if !status.online => mark_offline(state, unit, now),
        Uplink::OwnTracksLwt { .. } => mark_offline(state, unit, now),
        Uplink::Ack(ack) => {
            seen(state, unit, now);
            if let Some(v1::ack::Receipt::Order(r)) = &ack.receipt {
                order_receipt(state, unit, r);
            }
        }
        Uplink::Report(report) => {
            seen(state, unit, now);
            match &report.body {
                Some(v1::report::Body::Duty(d)) => match dispatch::duty_from_proto(d.status) {
                    Some(duty) => state.dispatch.input(Input::Duty {
                        unit: DUnit(unit.to_owned()),
                        duty,
                    }),
                    None => tracing::info!(unit, "duty report without a status ignored"),
                },
                Some(v1::report::Body::FieldReport(f)) => field_report(state, unit, &report.id, f),
                None => tracing::info!(unit, "report without a body ignored"),
            }
        }
        Uplink::Sos(sos) => {
            seen(state, unit, now);
            if sos.cancel {
                tracing::warn!(
                    unit,
                    sos = %sos.id,
                    "SOS cancelled from the handset: dispatch cannot withdraw an SOS; the command room closes its incident"
                );
            } else {
                state.intercom.input(PttInput::Sos(unit.to_owned()));
                let position = (sos.position.as_ref()).and_then(|f| valid(f.lat, f.lon));
                state.dispatch.input_must_arrive(Input::Sos {
                    unit: DUnit(unit.to_owned()),
                    request_id: request_id("sos", unit, &sos.id),
                    position,
                });
            }
        }
        Uplink::Ptt(mut m) => {
            seen(state, unit, now);
            // The topic names the sender (the decoder checked the payload agrees).
            m.unit = unit.to_owned();
            state.intercom.input(PttInput::Message(m));
        }
        Uplink::Video(m) => {
            seen(state, unit, now);
            (state.video).input(crate::video::VideoInput::Message(
                unit.to_owned(),
                Box::new(m),
            ));
        }
        _ => seen(state, unit, now),
    }
}

/// A message other than a fix: the unit is alive.
fn seen(state: &AppState, unit: &str, now: Timestamp) {
    if let Some(event) = state.tracker().seen(unit, now) {
        dispatch::presence_changed(state, &event);
        tracing::info!(unit, from = %event.from.as_str(), to = %event.to.as_str(), "presence changed");
    }
}

/// A position inside WGS-84 bounds.
fn valid(lat: f64, lon: f64) -> Option<LatLon> {
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
        .then_some(LatLon { lat, lon })
}

/// `{what}:{unit}:{message id}` (none without an id): a re-sent message creates nothing twice.
fn request_id(what: &str, unit: &str, id: &str) -> Option<String> {
    (!id.is_empty() && id.len() <= 150).then(|| format!("{what}:{unit}:{id}"))
}

/// A field report becomes an incident at the reported position, else where the unit is.
fn field_report(state: &AppState, unit: &str, id: &str, f: &v1::FieldReport) {
    let reported = (f.position.as_ref()).and_then(|p| valid(p.lat, p.lon));
    let location =
        reported.or_else(|| (state.tracker().get(unit)).and_then(|s| valid(s.fix.lat, s.fix.lon)));
    let mut description = f.text.clone();
    for url in &f.media_urls {
        description.push_str(if description.is_empty() { "" } else { "\n" });
        description.push_str(url);
    }
    let spec = NewIncident {
        request_id: request_id("report", unit, id),
        kind: dispatch::kind_from_proto(f.kind),
        priority: dispatch::priority_from_proto(f.priority),
        location,
        grid: location.and_then(|at| dispatch::grid_at(state, at)),
        description,
        source: IncidentSource::FieldReport(DUnit(unit.to_owned())),
    };
    state.dispatch.input_must_arrive(Input::FieldReport {
        unit: DUnit(unit.to_owned()),
        spec,
    });
}

/// A work-order receipt goes to dispatch (queued: the uplink path never waits for a commit).
fn order_receipt(state: &AppState, unit: &str, r: &v1::OrderReceipt) {
    match dispatch::order_state_from_proto(r.state) {
        Some(s) => state.dispatch.input(Input::Receipt {
            unit: DUnit(unit.to_owned()),
            order: OrderId(r.order_id.clone()),
            state: s,
        }),
        None => tracing::info!(unit, order = %r.order_id, "order receipt without a state ignored"),
    }
}

fn apply_fix(state: &AppState, pending: &PendingWrites, unit: &str, fix: Fix, now: Timestamp) {
    let outcome: FixOutcome = state.tracker().apply_fix(unit, fix, now);
    let label = match (&outcome.rejected, outcome.latest_updated) {
        (Some(reason), _) => reason.as_str(),
        (None, true) => "accepted",
        (None, false) => "out_of_order",
    };
    state
        .metrics
        .fixes
        .get_or_create(&OutcomeLabel { outcome: label })
        .inc();
    if let Some(event) = &outcome.presence {
        dispatch::presence_changed(state, event);
        tracing::info!(unit, from = %event.from.as_str(), to = %event.to.as_str(), "presence changed");
    }
    crate::zones::record_events(state, &outcome.zone_events);
    if outcome.latest_updated {
        (state.metrics.fix_index_latency)
            .observe(fix.fix_time.as_millis(), state.clock.now().as_millis());
        crate::push::position(state, unit, &fix, None);
        state.dispatch.input(Input::Fix {
            unit: DUnit(unit.to_owned()),
            at: LatLon {
                lat: fix.lat,
                lon: fix.lon,
            },
        });
    }
    let row = track_row(
        unit,
        &fix,
        now,
        outcome.rejected.map(|r| r.as_str().to_owned()),
    );
    pending.push(row, outcome.latest_updated);
}

fn mark_offline(state: &AppState, unit: &str, now: Timestamp) {
    if let Some(event) = state.tracker().mark_offline(unit, now) {
        dispatch::presence_changed(state, &event);
        tracing::info!(unit, from = %event.from.as_str(), "unit went offline (last will)");
    }
}

/// A protobuf fix as the location core's [`Fix`].
pub fn fix_from_proto(f: &v1::GpsFix) -> Fix {
    Fix {
        fix_time: Timestamp::from_millis(f.fix_time_ms),
        lat: f.lat,
        lon: f.lon,
        alt_m: f.alt_m,
        accuracy_m: f.accuracy_m,
        speed_mps: f.speed_mps,
        heading_deg: f.heading_deg,
        battery_pct: f.battery_pct,
        satellites: f.satellites,
        source: FixSource::Native,
        seq: f.seq,
    }
}

/// An OwnTracks location as the location core's [`Fix`] (`vel` km/h becomes m/s).
pub fn fix_from_owntracks(l: &owntracks::Location) -> Fix {
    Fix {
        fix_time: Timestamp::from_secs(l.tst),
        lat: l.lat,
        lon: l.lon,
        alt_m: l.alt,
        accuracy_m: l.acc.map(|a| a as f32),
        speed_mps: l.speed_mps().map(|v| v as f32),
        heading_deg: l.cog.map(|c| c as f32),
        battery_pct: l.batt.map(|b| b as f32),
        satellites: 0,
        source: FixSource::OwnTracks,
        seq: 0,
    }
}

fn track_row(unit: &str, fix: &Fix, received_at: Timestamp, flag: Option<String>) -> TrackRow {
    TrackRow {
        unit: unit.to_owned(),
        fix_time: fix.fix_time,
        received_at,
        lat: fix.lat,
        lon: fix.lon,
        alt_m: fix.alt_m,
        accuracy_m: fix.accuracy_m,
        speed_mps: fix.speed_mps,
        heading_deg: fix.heading_deg,
        battery_pct: fix.battery_pct,
        source: source_name(fix.source).to_owned(),
        flag,
    }
}

/// The stored name of a fix source.
pub fn source_name(source: FixSource) -> &'static str {
    match source {
        FixSource::Native => "native",
        FixSource::OwnTracks => "owntracks",
    }
}

/// The stored name back to a fix source.
pub fn source_from_name(name: &str) -> FixSource {
    match name {
        "owntracks" => FixSource::OwnTracks,
        _ => FixSource::Native,
    }
}

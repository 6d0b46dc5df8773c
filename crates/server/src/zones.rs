//! Geofences and grids in the server: where they come from, what the core does not keep about
//! them, and what happens when a unit enters or leaves one.
//!
//! The geometry and the enter/exit rule live in the location core, inside the [`Tracker`] (it runs
//! `Zones::update` under its own lock for every fix that becomes a unit's latest, and keeps the
//! areas each unit is in). This module owns the rest: the [`ZoneBook`] (members of grids, and
//! whether an area came from the API, and so the store, or from a read-only file of the config),
//! loading both sources at start, the mapping to and from [`ZoneRecord`], the API's body format
//! (a GeoJSON Feature, see `parse.rs`) and the log lines and metric of zone events.
//!
//! Geofence rules: a geofence with `properties.alarm_on` (`enter`, `exit`, `both`; kept in the
//! book and, for stored areas, in the zones table's `alarm_on` column) raises a `geofence` alarm
//! through the dispatch core when a unit's zone event matches ([`record_events`] queues it as a
//! dispatch input, so the uplink path never waits for the commit).
//!
//! Lock order: the tracker before the book; most callers take one, copy, and let go.
//!
//! [`Tracker`]: fieldlink_location::Tracker

mod parse;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fieldlink_clock::Timestamp;
use fieldlink_location::{Shape, Zone, ZoneEvent, ZoneKind, Zones};
use fieldlink_store::ZoneRecord;
use serde_json::{Value, json};

pub use parse::{AlarmOn, Invalid, parse_feature};

use crate::config::ZonesConfig;
use crate::metrics::ZoneEventLabel;
use crate::state::AppState;

/// Where an area came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Created through the API and kept in the store.
    Api {
        /// First stored.
        created_at: Timestamp,
        /// Last stored.
        updated_at: Timestamp,
    },
    /// Loaded from a GeoJSON file of the config: read-only.
    File(PathBuf),
}

/// What the server knows about an area beyond its geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneMeta {
    /// Unit ids; for a grid, the responders who belong to it.
    pub members: Vec<String>,
    /// API (stored) or file (read-only).
    pub origin: Origin,
    /// Geofences: which crossings raise an alarm.
    pub alarm_on: Option<AlarmOn>,
}

/// Members and origin of every area, by id. The geometry is in the tracker.
#[derive(Debug, Default)]
pub struct ZoneBook(HashMap<String, ZoneMeta>);

impl ZoneBook {
    /// The area's metadata.
    pub fn get(&self, id: &str) -> Option<&ZoneMeta> {
        self.0.get(id)
    }

    /// Adds or replaces an area's metadata.
    pub fn insert(&mut self, id: &str, meta: ZoneMeta) {
        self.0.insert(id.to_owned(), meta);
    }

    /// Forgets an area.
    pub fn remove(&mut self, id: &str) -> Option<ZoneMeta> {
        self.0.remove(id)
    }
}

/// The store's kind of a core kind.
pub fn stored_kind(kind: ZoneKind) -> fieldlink_store::ZoneKind {
    match kind {
        ZoneKind::Geofence => fieldlink_store::ZoneKind::Geofence,
        ZoneKind::Grid => fieldlink_store::ZoneKind::Grid,
    }
}

/// The core's kind of a stored kind.
pub fn core_kind(kind: fieldlink_store::ZoneKind) -> ZoneKind {
    match kind {
        fieldlink_store::ZoneKind::Geofence => ZoneKind::Geofence,
        fieldlink_store::ZoneKind::Grid => ZoneKind::Grid,
    }
}

/// `grid` or `geofence`.
pub fn kind_name(kind: ZoneKind) -> &'static str {
    stored_kind(kind).as_str()
}

/// An area as a store record (the geometry as GeoJSON text, WGS-84).
pub fn to_record(
    zone: &Zone,
    members: &[String],
    alarm_on: Option<AlarmOn>,
    now: Timestamp,
) -> ZoneRecord {
    let feature = zone.to_geojson();
    let radius_m = match zone.shape {
        Shape::Circle { radius_m, .. } => Some(radius_m),
        Shape::Polygon(_) => None,
    };
    ZoneRecord {
        id: zone.id.to_string(),
        kind: stored_kind(zone.kind),
        name: zone.name.clone(),
        geometry: feature["geometry"].to_string(),
        radius_m,
        members: members.to_vec(),
        created_at: now,
        updated_at: now,
        alarm_on: alarm_on.map(|a| a.as_str().to_owned()),
    }
}

/// A stored record back to an area, through the same GeoJSON reader as files and the API.
pub fn from_record(r: &ZoneRecord) -> Result<Zone, String> {
    let geometry: Value = serde_json::from_str(&r.geometry).map_err(|e| e.to_string())?;
    let mut properties = json!({ "name": r.name, "kind": r.kind.as_str() });
    if let Some(radius) = r.radius_m {
        properties["radius_m"] = json!(radius);
    }
    let feature =
        json!({ "type": "Feature", "id": r.id, "geometry": geometry, "properties": properties });
    let mut zones =
        Zones::parse_geojson(&feature.to_string(), core_kind(r.kind)).map_err(|e| e.to_string())?;
    zones.pop().ok_or_else(|| "no area".to_owned())
}

/// An area as the API shows it: its GeoJSON Feature, with members, origin and times added to
/// the properties.
pub fn feature(zone: &Zone, meta: Option<&ZoneMeta>) -> Value {
    let mut f = zone.to_geojson();
    let props = &mut f["properties"];
    let members = meta.map(|m| m.members.clone()).unwrap_or_default();
    props["members"] = json!(members);
    if let Some(a) = meta.and_then(|m| m.alarm_on) {
        props["alarm_on"] = json!(a.as_str());
    }
    match meta.map(|m| &m.origin) {
        Some(Origin::Api {
            created_at,
            updated_at,
        }) => {
            props["source"] = json!("api");
            props["created_at"] = json!(created_at.to_rfc3339());
            props["updated_at"] = json!(updated_at.to_rfc3339());
        }
        Some(Origin::File(path)) => {
            props["source"] = json!("file");
            props["file"] = json!(path.display().to_string());
        }
        None => {}
    }
    f
}

/// Loads the stored areas, then the config's files (a file's area replaces a stored one with
/// its id, with a warning), into the tracker and the book. Call before the positions are
/// restored, so restored units know the areas they are in. Returns (stored, from files).
pub async fn load(state: &AppState, config: &ZonesConfig) -> Result<(usize, usize)> {
    let records = state
        .store
        .list_zones(None)
        .await
        .context("cannot read the geofences and grids from the store")?;
    let mut loaded: Vec<(Zone, ZoneMeta)> = Vec::new();
    for r in &records {
        match from_record(r) {
            Ok(zone) => loaded.push((
                zone,
                ZoneMeta {
                    members: r.members.clone(),
                    origin: Origin::Api {
                        created_at: r.created_at,
                        updated_at: r.updated_at,
                    },
                    alarm_on: stored_alarm_on(r),
                },
            )),
            // One unreadable row must not keep the command room dark: skip it, loudly.
            Err(e) => {
                tracing::error!(zone = %r.id, error = %e, "stored zone is unreadable; skipped")
            }
        }
    }
    let stored = loaded.len();
    let mut from_files = 0;
    for (files, kind) in [
        (&config.geofence_files, ZoneKind::Geofence),
        (&config.grid_files, ZoneKind::Grid),
    ] {
        for path in files {
            for (zone, members, alarm_on) in read_file(path, kind)? {
                if let Some(i) = loaded.iter().position(|(z, _)| z.id == zone.id) {
                    tracing::warn!(zone = %zone.id, file = %path.display(), "a zone from a file replaces the stored zone with the same id");
                    loaded.remove(i);
                }
                let origin = Origin::File(path.clone());
                let meta = ZoneMeta {
                    members,
                    origin,
                    alarm_on,
                };
                loaded.push((zone, meta));
                from_files += 1;
            }
        }
    }
    let mut tracker = state.tracker();
    let mut book = state.zone_book();
    for (zone, meta) in loaded {
        book.insert(&zone.id, meta);
        tracker.upsert_zone(zone);
    }
    Ok((stored, from_files))
}

/// A stored `alarm_on`; an unknown value (written by hand) is logged and ignored.
fn stored_alarm_on(r: &ZoneRecord) -> Option<AlarmOn> {
    let raw = r.alarm_on.as_deref()?;
    let a = AlarmOn::from_name(raw);
    if a.is_none() {
        tracing::error!(zone = %r.id, alarm_on = raw, "stored alarm_on is unknown; no alarm");
    }
    a
}

type FileArea = (Zone, Vec<String>, Option<AlarmOn>);

/// The areas of one GeoJSON file, with the members and the alarm rule their features list (an
/// invalid `alarm_on` refuses the file, as invalid geometry does).
fn read_file(path: &Path, kind: ZoneKind) -> Result<Vec<FileArea>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the zones file {}", path.display()))?;
    let zones = Zones::parse_geojson(&text, kind)
        .with_context(|| format!("the zones file {} is not usable", path.display()))?;
    let doc: Value = serde_json::from_str(&text)?;
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    let mut rules: HashMap<String, AlarmOn> = HashMap::new();
    let features = match doc["type"].as_str() {
        Some("Feature") => vec![doc.clone()],
        _ => doc["features"].as_array().cloned().unwrap_or_default(),
    };
    for f in &features {
        let props = &f["properties"];
        let id = match f.get("id").or_else(|| props.get("id")) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => continue,
        };
        let list = props["members"].as_array().map(|m| {
            m.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        });
        let rule = parse::alarm_on(props.get("alarm_on"), kind).map_err(|e| {
            anyhow::anyhow!("the zones file {}: {id}: {}", path.display(), e.message)
        })?;
        if let Some(rule) = rule {
            rules.insert(id.clone(), rule);
        }
        members.insert(id, list.unwrap_or_default());
    }
    Ok(zones
        .into_iter()
        .map(|z| {
            let m = members.remove(&*z.id).unwrap_or_default();
            let rule = rules.remove(&*z.id);
            (z, m, rule)
        })
        .collect())
}

/// Logs and counts the enter and exit events of one fix, and queues a geofence alarm for each
/// that matches its geofence's `alarm_on`. Call without holding the tracker (takes the book).
pub fn record_events(state: &AppState, events: &[ZoneEvent]) {
    for e in events {
        let event = if e.entered { "enter" } else { "exit" };
        if e.kind == ZoneKind::Geofence {
            geofence_rule(state, e);
        }
        state
            .metrics
            .zone_events
            .get_or_create(&ZoneEventLabel { kind: event })
            .inc();
        tracing::info!(unit = %e.unit, zone = %e.zone, zone_kind = kind_name(e.kind), event, at = %e.at.to_rfc3339(), "zone {event}");
    }
}

/// Queues a `geofence` alarm when the event's geofence alarms on it.
fn geofence_rule(state: &AppState, e: &ZoneEvent) {
    let fires = (state.zone_book().get(&e.zone))
        .and_then(|m| m.alarm_on)
        .is_some_and(|a| a.fires(e.entered));
    if !fires {
        return;
    }
    let name = (state.tracker().zones().get(&e.zone))
        .map(|z| z.name.clone())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| e.zone.to_string());
    let verb = if e.entered { "entered" } else { "left" };
    state
        .dispatch
        .input_must_arrive(crate::dispatch::Input::GeofenceAlarm {
            unit: fieldlink_dispatch::UnitId(e.unit.to_string()),
            zone: e.zone.to_string(),
            entered: e.entered,
            message: format!("{} {verb} {name}", e.unit),
        });
}

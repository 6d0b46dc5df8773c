//! Shared position batches: the hub coalesces fixes into one map (latest per unit), and once per
//! `position_tick_ms` its ticker turns that map into one [`PositionBatch`], serialised once per
//! coordinate system in use, that every positions-subscribed session shares.
//!
//! A session keeps at most its newest batch not yet written plus, when it fell behind, the
//! per-unit latest of the older ones ([`Pending`]); its writer selects what its filter lets
//! through and concatenates the pre-serialised fragments into the `positions` frame.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use fieldlink_clock::Timestamp;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::filter::{Coords, Filter};
use crate::protocol::{PositionUpdate, ServerMessage};
use crate::wire::Protocol;

/// One unit's latest position within a batch, with its JSON form per coordinate system.
#[derive(Debug)]
pub(crate) struct BatchEntry {
    /// The update as given to the hub (WGS-84).
    pub update: PositionUpdate,
    /// The JSON object of the update in `[Wgs84, Gcj02]`, built once when first needed.
    json: [OnceLock<Box<str>>; 2],
}

fn coords_index(coords: Coords) -> usize {
    match coords {
        Coords::Wgs84 => 0,
        Coords::Gcj02 => 1,
    }
}

impl BatchEntry {
    pub fn new(update: PositionUpdate) -> BatchEntry {
        BatchEntry {
            update,
            json: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The update in `coords`.
    pub fn converted(&self, coords: Coords) -> PositionUpdate {
        let mut p = self.update.clone();
        (p.lat, p.lon) = coords.convert(p.lat, p.lon);
        p
    }

    /// The JSON object of the update in `coords` (serialised once, shared by every session).
    pub fn json(&self, coords: Coords) -> &str {
        self.json[coords_index(coords)].get_or_init(|| {
            let text = match coords {
                Coords::Wgs84 => serde_json::to_string(&self.update),
                Coords::Gcj02 => serde_json::to_string(&self.converted(coords)),
            };
            // Serialising a PositionUpdate cannot fail (no maps, finite or null numbers).
            text.unwrap_or_else(|_| "null".to_owned()).into_boxed_str()
        })
    }

    fn matches(&self, filter: &Filter) -> bool {
        let p = &self.update;
        filter.matches(Some(&p.unit), Some((p.lat, p.lon)), p.grid.as_deref())
    }
}

/// The positions of one tick, sorted by unit, shared by every session.
#[derive(Debug)]
pub(crate) struct PositionBatch {
    /// When the batch was made, ms since the epoch.
    pub at_ms: i64,
    /// One entry per unit, sorted by unit.
    pub entries: Vec<Arc<BatchEntry>>,
    /// The whole batch as JSON `positions` messages (several when large) per coordinate system,
    /// for the sessions without a filter: built once per tick.
    whole: [OnceLock<Vec<Utf8Bytes>>; 2],
}

impl PositionBatch {
    /// A batch of `updates` (one per unit), serialised now in each of `coords_in_use`.
    pub fn new(
        at_ms: i64,
        updates: impl IntoIterator<Item = PositionUpdate>,
        coords_in_use: &[Coords],
    ) -> PositionBatch {
        let mut entries: Vec<Arc<BatchEntry>> = updates
            .into_iter()
            .map(|u| Arc::new(BatchEntry::new(u)))
            .collect();
        entries.sort_by(|a, b| a.update.unit.cmp(&b.update.unit));
        for entry in &entries {
            for &coords in coords_in_use {
                entry.json(coords);
            }
        }
        PositionBatch {
            at_ms,
            entries,
            whole: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The whole batch as JSON messages in `coords`, each under `max_bytes` (a constant of the
    /// hub's config, so caching the split is sound).
    fn whole_json(&self, coords: Coords, max_bytes: usize) -> Vec<Utf8Bytes> {
        self.whole[coords_index(coords)]
            .get_or_init(|| {
                (runs(&self.entries, coords, max_bytes).into_iter())
                    .map(|run| json_frame(self.at_ms, run.iter(), coords).into())
                    .collect()
            })
            .clone()
    }
}

/// Splits `entries` into runs whose `positions` message stays under `max_bytes` (a run holds
/// at least one entry). tungstenite refuses a message larger than its write buffer's bound, and
/// 10k units make a batch of about 1 MB.
fn runs(entries: &[Arc<BatchEntry>], coords: Coords, max_bytes: usize) -> Vec<&[Arc<BatchEntry>]> {
    const ENVELOPE: usize = 64;
    let mut out = Vec::new();
    let (mut start, mut size) = (0, ENVELOPE);
    for (i, e) in entries.iter().enumerate() {
        let n = e.json(coords).len() + 1;
        if i > start && size + n > max_bytes {
            out.push(&entries[start..i]);
            (start, size) = (i, ENVELOPE);
        }
        size += n;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// `{"type":"positions","at":..,"at_ms":..,"units":[..]}` from pre-serialised fragments: the same bytes
/// as `serde_json::to_string(&ServerMessage::Positions { .. })`.
fn json_frame<'a>(
    at_ms: i64,
    entries: impl Iterator<Item = &'a Arc<BatchEntry>> + Clone,
    coords: Coords,
) -> String {
    let len: usize = entries.clone().map(|e| e.json(coords).len() + 1).sum();
    let mut out = String::with_capacity(len + 64);
    out.push_str(r#"{"type":"positions","at":""#);
    out.push_str(&Timestamp::from_millis(at_ms).to_rfc3339());
    out.push_str(r#"","at_ms":"#);
    out.push_str(&at_ms.to_string());
    out.push_str(r#","units":["#);
    for (i, e) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(e.json(coords));
    }
    out.push_str("]}");
    out
}

/// A batch entry keyed by its unit (no `String` key to allocate when merging batches).
#[derive(Debug, Clone)]
struct ByUnit(Arc<BatchEntry>);

impl PartialEq for ByUnit {
    fn eq(&self, other: &Self) -> bool {
        self.0.update.unit == other.0.update.unit
    }
}

impl Eq for ByUnit {}

impl Hash for ByUnit {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that `Borrow<str>` lookups agree.
        self.0.update.unit.as_str().hash(state);
    }
}

impl Borrow<str> for ByUnit {
    fn borrow(&self) -> &str {
        &self.0.update.unit
    }
}

/// What a session has not written yet: at most the newest batch, plus the per-unit latest of the
/// older batches it did not take in time (already filtered).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    latest: Option<Arc<PositionBatch>>,
    older: HashSet<ByUnit>,
    older_at_ms: i64,
}

// `ByUnit` hashes by the unit, which never changes; the `OnceLock`s inside only cache its JSON.
#[allow(clippy::mutable_key_type)]
impl Pending {
    /// Offers a new batch; an untaken previous batch is folded into `older` through `filter`.
    pub fn offer(&mut self, batch: Arc<PositionBatch>, filter: &Filter) {
        if let Some(prev) = self.latest.replace(batch) {
            self.older_at_ms = prev.at_ms;
            for entry in prev.entries.iter().filter(|e| e.matches(filter)) {
                self.older.replace(ByUnit(Arc::clone(entry)));
            }
        }
    }

    pub fn clear(&mut self) {
        *self = Pending::default();
    }

    /// Takes what is pending, leaving nothing.
    pub fn take(&mut self) -> Pending {
        std::mem::take(self)
    }

    /// The `positions` frames of what was pending, for a session with `filter` speaking
    /// `protocol`, each under `max_bytes` (one frame unless the batch is large); none when
    /// nothing passes.
    pub fn frames(self, filter: &Filter, protocol: Protocol, max_bytes: usize) -> Vec<Message> {
        let coords = filter.coords;
        let unfiltered = filter.bbox.is_none() && filter.grid.is_none() && filter.units.is_none();
        let at_ms = self.latest.as_ref().map_or(self.older_at_ms, |b| b.at_ms);
        let selected: Vec<Arc<BatchEntry>> = match self.latest {
            Some(batch) if self.older.is_empty() => {
                if unfiltered && protocol == Protocol::Json {
                    return (batch.whole_json(coords, max_bytes).into_iter())
                        .map(Message::Text)
                        .collect();
                }
                batch
                    .entries
                    .iter()
                    .filter(|e| unfiltered || e.matches(filter))
                    .cloned()
                    .collect()
            }
            latest => {
                let mut merged = self.older;
                if let Some(batch) = latest {
                    for entry in batch.entries.iter().filter(|e| e.matches(filter)) {
                        merged.replace(ByUnit(Arc::clone(entry)));
                    }
                }
                let mut v: Vec<Arc<BatchEntry>> = merged.into_iter().map(|e| e.0).collect();
                v.sort_by(|a, b| a.update.unit.cmp(&b.update.unit));
                v
            }
        };
        (runs(&selected, coords, max_bytes).into_iter())
            .map(|run| match protocol {
                Protocol::Json => Message::text(json_frame(at_ms, run.iter(), coords)),
                Protocol::Proto => protocol.encode(&ServerMessage::Positions {
                    at: Timestamp::from_millis(at_ms),
                    at_ms,
                    units: run.iter().map(|e| e.converted(coords)).collect(),
                }),
            })
            .collect()
    }

    /// The single frame of a small batch (tests).
    #[cfg(test)]
    fn frame(self, filter: &Filter, protocol: Protocol) -> Option<Message> {
        let mut frames = self.frames(filter, protocol, usize::MAX);
        assert!(frames.len() <= 1, "one frame without a size bound");
        frames.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(unit: &str, lat: f64, lon: f64) -> PositionUpdate {
        PositionUpdate {
            unit: unit.into(),
            lat,
            lon,
            at: Timestamp::from_millis(7),
            at_ms: 7,
            speed: Some(1.5),
            heading: None,
            accuracy: Some(3.0),
            status: Some("available".into()),
            grid: Some("g1".into()),
        }
    }

    fn text(msg: Option<Message>) -> String {
        match msg {
            Some(Message::Text(t)) => t.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn frames_are_byte_identical_to_serde() {
        let updates = vec![update("u2", 39.5, 116.5), update("u1", 10.0, 20.0)];
        for coords in [Coords::Wgs84, Coords::Gcj02] {
            let batch = Arc::new(PositionBatch::new(42, updates.clone(), &[Coords::Wgs84]));
            let mut expected_units: Vec<PositionUpdate> = updates
                .iter()
                .map(|u| BatchEntry::new(u.clone()).converted(coords))
                .collect();
            expected_units.sort_by(|a, b| a.unit.cmp(&b.unit));
            let expected = serde_json::to_string(&ServerMessage::Positions {
                at: Timestamp::from_millis(42),
                at_ms: 42,
                units: expected_units,
            })
            .expect("json");
            let filter = Filter {
                coords,
                ..Filter::default()
            };
            let mut pending = Pending::default();
            pending.offer(batch.clone(), &filter);
            assert_eq!(
                text(pending.take().frame(&filter, Protocol::Json)),
                expected
            );
            // Through the filtered path too.
            let filtered = Filter {
                bbox: Some([-180.0, -90.0, 180.0, 90.0]),
                coords,
                ..Filter::default()
            };
            let mut pending = Pending::default();
            pending.offer(batch, &filtered);
            assert_eq!(
                text(pending.take().frame(&filtered, Protocol::Json)),
                expected
            );
        }
    }

    #[test]
    fn a_large_batch_is_split_under_the_bound_and_loses_nothing() {
        let updates: Vec<PositionUpdate> = (0..2000)
            .map(|i| update(&format!("u{i:05}"), 30.0, 120.0))
            .collect();
        let batch = Arc::new(PositionBatch::new(9, updates, &[Coords::Wgs84]));
        for filter in [
            Filter::default(),
            Filter {
                bbox: Some([-180.0, -90.0, 180.0, 90.0]),
                ..Filter::default()
            },
        ] {
            let mut pending = Pending::default();
            pending.offer(batch.clone(), &filter);
            let frames = pending.take().frames(&filter, Protocol::Json, 16 * 1024);
            assert!(frames.len() > 5, "{} frames", frames.len());
            let mut units = Vec::new();
            for f in frames {
                let Message::Text(t) = f else {
                    panic!("text frames")
                };
                assert!(t.len() <= 16 * 1024, "{} bytes", t.len());
                let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
                assert_eq!(v["at_ms"], 9);
                for u in v["units"].as_array().expect("units") {
                    units.push(u["unit"].as_str().unwrap_or_default().to_owned());
                }
            }
            let want: Vec<String> = (0..2000).map(|i| format!("u{i:05}")).collect();
            assert_eq!(units, want, "every unit once, in order");
        }
    }

    #[test]
    fn a_slow_session_keeps_the_latest_per_unit_of_every_batch() {
        let filter = Filter::default();
        let mut pending = Pending::default();
        for (i, units) in [vec!["a", "b"], vec!["b", "c"], vec!["c"]]
            .into_iter()
            .enumerate()
        {
            let lat = i as f64;
            let batch = PositionBatch::new(
                i as i64,
                units.into_iter().map(|u| update(u, lat, 0.0)),
                &[Coords::Wgs84],
            );
            pending.offer(Arc::new(batch), &filter);
        }
        let json: serde_json::Value =
            serde_json::from_str(&text(pending.take().frame(&filter, Protocol::Json)))
                .expect("json");
        assert_eq!(json["at_ms"], 2);
        assert_eq!(json["at"], "1970-01-01T00:00:00.002Z");
        let got: Vec<(String, f64)> = json["units"]
            .as_array()
            .expect("units")
            .iter()
            .map(|u| {
                (
                    u["unit"].as_str().unwrap_or_default().to_owned(),
                    u["lat"].as_f64().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![("a".into(), 0.0), ("b".into(), 1.0), ("c".into(), 2.0)]
        );
        assert!(pending.take().frame(&filter, Protocol::Json).is_none());
    }
}

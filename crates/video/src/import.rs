//! Fixed cameras from files: GeoJSON (`geojson`) and CSV (`csv`), into validated [`Camera`]s.
//!
//! Every problem in a file is reported at once, each naming where (the feature's index and id,
//! or the CSV line) and the field. Coordinates are converted to WGS-84 from the file's
//! [`CoordSystem`] (inventories exported from Chinese map tools are often GCJ-02).

mod csv;
mod geojson;

use std::collections::BTreeMap;
use std::fmt;

use fieldlink_location::CoordSystem;
use thiserror::Error;

use crate::model::{Camera, Gb28181Id};

pub use self::csv::{CSV_HEADER, cameras_from_csv};
pub use self::geojson::cameras_from_geojson;

/// Where in a file a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportAt {
    /// The document as a whole (not JSON, not a FeatureCollection, a bad header).
    File,
    /// A GeoJSON feature: its index in `features` and, when it has one, its id.
    Feature {
        /// 0-based index in `features`.
        index: usize,
        /// The feature's id, when it has one.
        id: Option<String>,
    },
    /// A CSV line, 1-based (the header is line 1).
    Line(usize),
}

impl fmt::Display for ImportAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportAt::File => f.write_str("file"),
            ImportAt::Feature { index, id: None } => write!(f, "feature {index}"),
            ImportAt::Feature {
                index,
                id: Some(id),
            } => write!(f, "feature {index} ({id})"),
            ImportAt::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// One problem in a camera file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{at}: {field}: {message}")]
pub struct ImportError {
    /// Where.
    pub at: ImportAt,
    /// The field, as the file names it (`properties.name`, `lat`, `geometry`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in a camera file (never empty).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{} problem(s) in camera file: {}", .0.len(), join(.0))]
pub struct ImportErrors(pub Vec<ImportError>);

fn join(errors: &[ImportError]) -> String {
    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// Collects problems while a file is read.
#[derive(Debug, Default)]
struct Problems {
    errors: Vec<ImportError>,
    /// Camera id → where it was first seen, to report duplicates.
    seen: BTreeMap<String, ImportAt>,
}

impl Problems {
    fn push(&mut self, at: &ImportAt, field: &str, message: impl Into<String>) {
        self.errors.push(ImportError {
            at: at.clone(),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Validates a camera read at `at` (its fields named by `name_of`), converts its position
    /// to WGS-84, and keeps it when it is fine and its id is new.
    fn finish(
        &mut self,
        at: &ImportAt,
        mut camera: Camera,
        coords: CoordSystem,
        name_of: impl Fn(&str) -> String,
        out: &mut Vec<Camera>,
    ) {
        let problems = camera.problems();
        for (field, message) in &problems {
            self.push(at, &name_of(field), message.as_str());
        }
        if let Some(first) = self.seen.get(camera.id.as_str()) {
            let message = format!("duplicate id {:?} (first at {first})", camera.id.as_str());
            self.push(at, &name_of("id"), message);
            return;
        }
        self.seen.insert(camera.id.0.clone(), at.clone());
        if problems.is_empty() {
            (camera.lat, camera.lon) = coords.to_wgs84(camera.lat, camera.lon);
            out.push(camera);
        }
    }

    fn into_result(self, cameras: Vec<Camera>) -> Result<Vec<Camera>, ImportErrors> {
        if self.errors.is_empty() {
            Ok(cameras)
        } else {
            Err(ImportErrors(self.errors))
        }
    }
}

/// The GB/T 28181 address from its two optional fields: both or neither.
fn gb28181(
    p: &mut Problems,
    at: &ImportAt,
    names: [&str; 2],
    device: Option<&str>,
    channel: Option<&str>,
) -> Option<Gb28181Id> {
    let none = |s: Option<&str>| s.is_none_or(|s| s.trim().is_empty());
    match (none(device), none(channel)) {
        (true, true) => None,
        (false, false) => Some(Gb28181Id {
            device_id: device.unwrap_or_default().trim().to_owned(),
            channel_id: channel.unwrap_or_default().trim().to_owned(),
        }),
        (device_missing, _) => {
            let (missing, given) = if device_missing {
                (names[0], names[1])
            } else {
                (names[1], names[0])
            };
            p.push(at, missing, format!("is missing while {given} is set"));
            None
        }
    }
}

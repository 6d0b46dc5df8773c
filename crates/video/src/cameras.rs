//! Fixed cameras (checkpoints): added and removed one by one through the API, or imported from
//! a file (`config/cameras*.geojson` or `.csv`, parsed by the `import` module).
//!
//! An API change is one event per camera. An import is one `cameras_imported` event with its
//! counts, not one per checkpoint (a street has 1,562 of them, and each boot re-imports them);
//! it adds and updates, and never removes a camera the file does not list (those may come from
//! the API).

use fieldlink_clock::Timestamp;

use crate::error::VideoError;
use crate::event::{Outcome, VideoChange};
use crate::model::{Camera, CameraId};
use crate::registry::Registry;

impl Registry {
    /// One camera.
    pub fn camera(&self, id: &CameraId) -> Option<&Camera> {
        self.state.cameras.get(id)
    }

    /// All cameras, by id.
    pub fn cameras(&self) -> impl Iterator<Item = &Camera> {
        self.state.cameras.values()
    }

    /// Adds a camera (API). Refused when it is invalid or its id exists.
    pub fn add_camera(&mut self, camera: Camera, now: Timestamp) -> Result<Outcome, VideoError> {
        check(&camera)?;
        if self.state.cameras.contains_key(&camera.id) {
            return Err(VideoError::CameraExists(camera.id));
        }
        let mut out = Outcome::default();
        let change = VideoChange::CameraAdded {
            camera: Box::new(camera.clone()),
        };
        out.event(now, change);
        self.state.cameras.insert(camera.id.clone(), camera);
        Ok(out)
    }

    /// Removes a camera (API).
    pub fn remove_camera(&mut self, id: &CameraId, now: Timestamp) -> Result<Outcome, VideoError> {
        if self.state.cameras.remove(id).is_none() {
            return Err(VideoError::UnknownCamera(id.clone()));
        }
        let mut out = Outcome::default();
        out.event(now, VideoChange::CameraRemoved { camera: id.clone() });
        Ok(out)
    }

    /// Adds or updates the cameras of one file (`source` names it in the event). All or
    /// nothing: refused, changing nothing, when any camera is invalid.
    pub fn import_cameras(
        &mut self,
        source: &str,
        cameras: Vec<Camera>,
        now: Timestamp,
    ) -> Result<Outcome, VideoError> {
        cameras.iter().try_for_each(check)?;
        let (mut added, mut updated, mut unchanged) = (0, 0, 0);
        for c in cameras {
            match self.state.cameras.get(&c.id) {
                None => added += 1,
                Some(old) if *old == c => unchanged += 1,
                Some(_) => updated += 1,
            }
            self.state.cameras.insert(c.id.clone(), c);
        }
        let mut out = Outcome::default();
        let change = VideoChange::CamerasImported {
            source: source.to_owned(),
            added,
            updated,
            unchanged,
        };
        out.event(now, change);
        Ok(out)
    }
}

fn check(camera: &Camera) -> Result<(), VideoError> {
    let problems = camera.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        let id = camera.id.clone();
        Err(VideoError::InvalidCamera { id, problems })
    }
}

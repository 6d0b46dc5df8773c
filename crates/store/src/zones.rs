//! Geofences and grids managed through the API: one row per area, the geometry as GeoJSON text.
//!
//! The store neither parses nor checks the geometry (the server does, with the location crate,
//! before it calls [`Store::put_zone`]). Ids are unique across both kinds: putting a grid with
//! the id of a geofence replaces the geofence, so callers check the kind first when it matters.

use crate::rows::{ZoneRaw, zone_columns};
use crate::{Store, StoreError, ZoneKind, ZoneRecord, with_pool};

impl Store {
    /// Stores an area, replacing the one with its id. A replaced area keeps its `created_at`;
    /// everything else, `updated_at` included, comes from `zone`. Returns the area as stored.
    pub async fn put_zone(&self, zone: &ZoneRecord) -> Result<ZoneRecord, StoreError> {
        let members =
            serde_json::to_string(&zone.members).expect("a list of strings is valid JSON");
        let sql = concat!(
            "INSERT INTO zones (",
            zone_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             geometry = excluded.geometry, radius_m = excluded.radius_m, \
             members = excluded.members, updated_at = excluded.updated_at, \
             alarm_on = excluded.alarm_on \
             RETURNING ",
            zone_columns!()
        );
        let raw: ZoneRaw = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(&zone.id)
                .bind(zone.kind.as_str())
                .bind(&zone.name)
                .bind(&zone.geometry)
                .bind(zone.radius_m)
                .bind(&members)
                .bind(zone.created_at.as_millis())
                .bind(zone.updated_at.as_millis())
                .bind(zone.alarm_on.as_deref())
                .fetch_one(p)
                .await
        })
        .map_err(StoreError::db(format!("saving {} {}", zone.kind, zone.id)))?;
        ZoneRecord::try_from(raw)
    }

    /// Stores a new area; [`StoreError::AlreadyExists`] when any area has its id (the check and
    /// the write are one statement, so two concurrent creations cannot both succeed).
    pub async fn create_zone(&self, zone: &ZoneRecord) -> Result<ZoneRecord, StoreError> {
        let members =
            serde_json::to_string(&zone.members).expect("a list of strings is valid JSON");
        let sql = concat!(
            "INSERT INTO zones (",
            zone_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            zone_columns!()
        );
        let raw: ZoneRaw = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(&zone.id)
                .bind(zone.kind.as_str())
                .bind(&zone.name)
                .bind(&zone.geometry)
                .bind(zone.radius_m)
                .bind(&members)
                .bind(zone.created_at.as_millis())
                .bind(zone.updated_at.as_millis())
                .bind(zone.alarm_on.as_deref())
                .fetch_one(p)
                .await
        })
        .map_err(StoreError::insert("zone", &zone.id))?;
        ZoneRecord::try_from(raw)
    }

    /// The area with this id, of either kind.
    pub async fn get_zone(&self, id: &str) -> Result<Option<ZoneRecord>, StoreError> {
        let sql = concat!("SELECT ", zone_columns!(), " FROM zones WHERE id = $1");
        let raw: Option<ZoneRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql).bind(id).fetch_optional(p).await
        })
        .map_err(StoreError::db(format!("reading zone {id}")))?;
        raw.map(ZoneRecord::try_from).transpose()
    }

    /// Every area of `kind` (both kinds with `None`), ordered by id.
    pub async fn list_zones(&self, kind: Option<ZoneKind>) -> Result<Vec<ZoneRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            zone_columns!(),
            " FROM zones WHERE ($1 IS NULL OR kind = $1) ORDER BY id"
        );
        let kind = kind.map(ZoneKind::as_str);
        let raw: Vec<ZoneRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql).bind(kind).fetch_all(p).await
        })
        .map_err(StoreError::db("listing zones"))?;
        raw.into_iter().map(ZoneRecord::try_from).collect()
    }

    /// Deletes an area. [`StoreError::NotFound`] when there is no area with this id.
    pub async fn delete_zone(&self, id: &str) -> Result<(), StoreError> {
        let done = with_pool!(self, |p| {
            sqlx::query("DELETE FROM zones WHERE id = $1")
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StoreError::db(format!("deleting zone {id}")))?;
        if done == 0 {
            return Err(StoreError::NotFound {
                what: "zone",
                id: id.to_owned(),
            });
        }
        Ok(())
    }
}

//! Where units are and were: the latest-position snapshot and the track history.
//!
//! Both are written in batches, one transaction per call, as multi-row `INSERT`s of at most
//! [`CHUNK_ROWS`] rows. Full chunks share one SQL text, so each pooled connection prepares it
//! once and reuses it. The last, partial chunk of a batch has a text of its own for each row
//! count, so it is prepared, run and finalized, not kept in the connection's statement cache:
//! cached, every new count stayed prepared (a few hundred KiB in SQLite each, up to sqlx's 100
//! per connection), which the load bench's soak showed as RSS creeping for minutes
//! (docs/benchmarks.md, "Soak"). What to write and when (coalescing, the location filter) is
//! the location crate's decision; this module keeps what it is given.

use std::collections::BTreeMap;

use fieldlink_clock::Timestamp;
use sqlx::QueryBuilder;

use crate::rows::{PositionRaw, TrackRaw, position_columns};
use crate::{PositionRow, Store, StoreError, TrackRow, with_pool};

/// Rows per `INSERT` statement: 12 parameters a row stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters, and a statement this size amortises the round trip.
pub(crate) const CHUNK_ROWS: usize = 500;

/// Whether a chunk has the one shared SQL text of a full chunk, worth keeping prepared (see the
/// module doc).
fn is_full<T>(chunk: &[T]) -> bool {
    chunk.len() == CHUNK_ROWS
}

/// Binds the columns of [`position_columns!`] from a [`PositionRow`] or a [`TrackRow`] (they share
/// those fields).
macro_rules! bind_position {
    ($b:ident, $r:ident) => {
        $b.push_bind($r.unit.as_str())
            .push_bind($r.fix_time.as_millis())
            .push_bind($r.received_at.as_millis())
            .push_bind($r.lat)
            .push_bind($r.lon)
            .push_bind($r.alt_m)
            .push_bind($r.accuracy_m)
            .push_bind($r.speed_mps)
            .push_bind($r.heading_deg)
            .push_bind($r.battery_pct)
            .push_bind($r.source.as_str())
    };
}

impl Store {
    /// Stores the latest position of each unit in `rows`, in one transaction. A stored position
    /// is only replaced by one with a strictly newer `fix_time`, so a late, buffered fix never
    /// moves a unit back. Within `rows`, the newest fix per unit wins.
    pub async fn upsert_latest_positions(&self, rows: &[PositionRow]) -> Result<(), StoreError> {
        // One row per unit (PostgreSQL refuses to update a row twice in one statement), in unit
        // order so that concurrent batches lock rows in the same order and cannot deadlock.
        let mut newest: BTreeMap<&str, &PositionRow> = BTreeMap::new();
        for r in rows {
            let slot = newest.entry(r.unit.as_str()).or_insert(r);
            if r.fix_time > slot.fix_time {
                *slot = r;
            }
        }
        if newest.is_empty() {
            return Ok(());
        }
        let newest: Vec<&PositionRow> = newest.into_values().collect();
        with_pool!(self, |p, Db| {
            async {
                let mut tx = p.begin().await?;
                for chunk in newest.chunks(CHUNK_ROWS) {
                    let mut qb = QueryBuilder::<Db>::new(concat!(
                        "INSERT INTO latest_positions (",
                        position_columns!(),
                        ") "
                    ));
                    qb.push_values(chunk, |mut b, r| {
                        bind_position!(b, r);
                    });
                    qb.push(
                        " ON CONFLICT (unit) DO UPDATE SET fix_time = excluded.fix_time, \
                         received_at = excluded.received_at, lat = excluded.lat, \
                         lon = excluded.lon, alt_m = excluded.alt_m, \
                         accuracy_m = excluded.accuracy_m, speed_mps = excluded.speed_mps, \
                         heading_deg = excluded.heading_deg, battery_pct = excluded.battery_pct, \
                         source = excluded.source \
                         WHERE excluded.fix_time > latest_positions.fix_time",
                    );
                    qb.build()
                        .persistent(is_full(chunk))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(StoreError::db(format!(
            "saving the latest positions of {} units",
            newest.len()
        )))
    }

    /// Every stored latest position, ordered by unit: the picture to rebuild after a restart.
    pub async fn load_latest_positions(&self) -> Result<Vec<PositionRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            position_columns!(),
            " FROM latest_positions ORDER BY unit"
        );
        let raw: Vec<PositionRaw> = with_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)
            .map_err(StoreError::db("loading the latest positions"))?;
        Ok(raw.into_iter().map(PositionRow::from).collect())
    }

    /// Appends fixes to the track history, in one transaction. A fix already stored (same unit,
    /// same `fix_time`: a handset re-sending its buffer) is skipped, so retries are harmless.
    pub async fn append_track(&self, rows: &[TrackRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        with_pool!(self, |p, Db| {
            async {
                let mut tx = p.begin().await?;
                for chunk in rows.chunks(CHUNK_ROWS) {
                    let mut qb = QueryBuilder::<Db>::new(concat!(
                        "INSERT INTO track (",
                        position_columns!(),
                        ", flag) "
                    ));
                    qb.push_values(chunk, |mut b, r| {
                        bind_position!(b, r).push_bind(r.flag.as_deref());
                    });
                    qb.push(" ON CONFLICT (unit, fix_time) DO NOTHING");
                    qb.build()
                        .persistent(is_full(chunk))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(StoreError::db(format!(
            "appending {} fixes to the track history",
            rows.len()
        )))
    }

    /// The fixes of `unit` with `from <= fix_time <= to`, oldest first, at most `limit` of them.
    /// Fixes the location filter flagged are left out unless `include_flagged`.
    pub async fn track(
        &self,
        unit: &str,
        from: Timestamp,
        to: Timestamp,
        include_flagged: bool,
        limit: u32,
    ) -> Result<Vec<TrackRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            position_columns!(),
            ", flag FROM track WHERE unit = $1 AND fix_time >= $2 AND fix_time <= $3 \
             AND ($4 OR flag IS NULL) ORDER BY fix_time LIMIT $5"
        );
        let raw: Vec<TrackRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(unit)
                .bind(from.as_millis())
                .bind(to.as_millis())
                .bind(include_flagged)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db(format!("reading the track of unit {unit}")))?;
        Ok(raw.into_iter().map(TrackRow::from).collect())
    }

    /// Deletes track fixes with `fix_time` before `older_than` (retention); returns how many.
    pub async fn prune_track(&self, older_than: Timestamp) -> Result<u64, StoreError> {
        with_pool!(self, |p| {
            sqlx::query("DELETE FROM track WHERE fix_time < $1")
                .bind(older_than.as_millis())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(StoreError::db(format!(
            "deleting track history older than {older_than}"
        )))
    }
}

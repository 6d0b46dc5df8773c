//! Reading back what dispatch wrote: the journal (resume by sequence number, ranges for the
//! supervision report), single records and filtered lists for the HTTP queries, and
//! [`Store::load_dispatch_state`], the picture the dispatch core is rebuilt from at restart.
//!
//! Lists are ordered by creation time, then id, so pages and tests are deterministic. Writes go
//! through [`Store::commit`] only (`journal.rs`).

use fieldlink_clock::Timestamp;

use crate::dispatch_rows::{
    AlarmRaw, EventRaw, IncidentRaw, OrderRaw, TimerRaw, alarm_columns, event_columns,
    incident_columns, order_columns, parse_json, timer_columns,
};
use crate::{
    AlarmRow, Backend, DispatchSnapshot, DispatchState, EventRow, IncidentRow, OrderRow, Store,
    StoreError, TimerRow,
};

/// Runs a query with its parameters bound in order and converts the raw rows it returns.
macro_rules! fetch_rows {
    ($store:expr, $raw:ty, $sql:expr, [$($arg:expr),*], $action:expr) => {{
        let raw: Vec<$raw> = with_pool!($store, |p| {
            sqlx::query_as($sql)$(.bind($arg))*.fetch_all(p).await
        })
        .map_err(StoreError::db($action))?;
        raw.into_iter().map(TryFrom::try_from).collect::<Result<Vec<_>, StoreError>>()
    }};
}

/// The snapshot row (data, last seq, when) and the responder rows (unit, data), as read together.
type SnapshotRaw = (Option<(String, i64, i64)>, Vec<(String, String)>);

/// The raw parts of [`DispatchState`], as read in one snapshot.
type StateRaw = (
    Vec<IncidentRaw>,
    Vec<OrderRaw>,
    Vec<AlarmRaw>,
    Vec<TimerRaw>,
    Option<i64>,
);

impl Store {
    /// Journal events with `seq > after_seq`, in sequence order, at most `limit`: what a client
    /// that last saw `after_seq` missed. Pass the last `seq` returned to page on.
    pub async fn journal_since(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2"
        );
        let raw: Vec<EventRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db(format!(
            "reading the journal after {after_seq}"
        )))?;
        raw.into_iter().map(EventRow::try_from).collect()
    }

    /// The newest journal sequence number, 0 when the journal is empty.
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = with_pool!(self, |p| {
            sqlx::query_scalar("SELECT MAX(seq) FROM journal")
                .fetch_one(p)
                .await
        })
        .map_err(StoreError::db("reading the last journal sequence number"))?;
        Ok(seq.unwrap_or(0))
    }

    /// Journal events with `from <= at <= to`, in sequence order (the supervision report).
    pub async fn journal_range(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM journal WHERE at_ms >= $1 AND at_ms <= $2 ORDER BY seq"
        );
        let raw: Vec<EventRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(from.as_millis())
                .bind(to.as_millis())
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db(format!(
            "reading the journal from {from} to {to}"
        )))?;
        raw.into_iter().map(EventRow::try_from).collect()
    }

    /// The incident with this id, if any.
    pub async fn get_incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE id = $1"
        );
        let mut rows = fetch_rows!(
            self,
            IncidentRaw,
            sql,
            [id],
            format!("reading incident {id}")
        )?;
        Ok(rows.pop())
    }

    /// Incidents, oldest first, optionally only those with this `status` and/or in this `grid`.
    pub async fn list_incidents(
        &self,
        status: Option<&str>,
        grid: Option<&str>,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR grid = $2) \
             ORDER BY created_at_ms, id"
        );
        fetch_rows!(self, IncidentRaw, sql, [status, grid], "listing incidents")
    }

    /// The work order with this id, if any.
    pub async fn get_order(&self, id: &str) -> Result<Option<OrderRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            order_columns!(),
            " FROM work_orders WHERE id = $1"
        );
        let mut rows = fetch_rows!(
            self,
            OrderRaw,
            sql,
            [id],
            format!("reading work order {id}")
        )?;
        Ok(rows.pop())
    }

    /// Every work order of an incident, closed ones included, oldest first.
    pub async fn orders_of_incident(&self, incident_id: &str) -> Result<Vec<OrderRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            order_columns!(),
            " FROM work_orders WHERE incident_id = $1 ORDER BY created_at_ms, id"
        );
        let action = format!("listing the work orders of incident {incident_id}");
        fetch_rows!(self, OrderRaw, sql, [incident_id], action)
    }

    /// The open work orders assigned to a unit, oldest first.
    pub async fn open_orders_of_unit(&self, unit: &str) -> Result<Vec<OrderRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            order_columns!(),
            " FROM work_orders WHERE unit = $1 AND open ORDER BY created_at_ms, id"
        );
        let action = format!("listing the open work orders of unit {unit}");
        fetch_rows!(self, OrderRaw, sql, [unit], action)
    }

    /// Alarms, oldest first, optionally only those in this `state`.
    pub async fn list_alarms(&self, state: Option<&str>) -> Result<Vec<AlarmRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            alarm_columns!(),
            " FROM alarms WHERE ($1 IS NULL OR state = $1) ORDER BY created_at_ms, id"
        );
        fetch_rows!(self, AlarmRaw, sql, [state], "listing alarms")
    }

    /// Every open incident, work order and alarm, every timer (soonest first, with its original
    /// deadline, leases ignored) and the last journal sequence number: what the dispatch core is
    /// rebuilt from at restart. Timers already past due should fire at once.
    ///
    /// Read in one snapshot (a repeatable-read transaction on PostgreSQL, one read transaction
    /// on SQLite), so the parts are consistent with each other and with `last_seq`.
    pub async fn load_dispatch_state(&self) -> Result<DispatchState, StoreError> {
        let incidents = concat!(
            "SELECT ",
            incident_columns!(),
            " FROM incidents WHERE open ORDER BY created_at_ms, id"
        );
        let orders = concat!(
            "SELECT ",
            order_columns!(),
            " FROM work_orders WHERE open ORDER BY created_at_ms, id"
        );
        let alarms = concat!(
            "SELECT ",
            alarm_columns!(),
            " FROM alarms WHERE open ORDER BY created_at_ms, id"
        );
        let timers = concat!(
            "SELECT ",
            timer_columns!(),
            " FROM timers ORDER BY due_ms, id"
        );
        let begin = match self.backend() {
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            Backend::Sqlite => "BEGIN",
        };
        let (i, o, a, t, last): StateRaw = with_pool!(self, |p| {
            async {
                let mut tx = p.begin_with(begin).await?;
                let i = sqlx::query_as(incidents).fetch_all(&mut *tx).await?;
                let o = sqlx::query_as(orders).fetch_all(&mut *tx).await?;
                let a = sqlx::query_as(alarms).fetch_all(&mut *tx).await?;
                let t = sqlx::query_as(timers).fetch_all(&mut *tx).await?;
                let last = sqlx::query_scalar("SELECT MAX(seq) FROM journal")
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((i, o, a, t, last))
            }
            .await
        })
        .map_err(StoreError::db("loading the dispatch state"))?;
        Ok(DispatchState {
            incidents: i
                .into_iter()
                .map(IncidentRow::try_from)
                .collect::<Result<_, _>>()?,
            orders: o
                .into_iter()
                .map(OrderRow::try_from)
                .collect::<Result<_, _>>()?,
            alarms: a
                .into_iter()
                .map(AlarmRow::try_from)
                .collect::<Result<_, _>>()?,
            timers: t
                .into_iter()
                .map(TimerRow::try_from)
                .collect::<Result<_, _>>()?,
            last_seq: last.unwrap_or(0),
        })
    }

    /// The dispatch core's state as the last commit with a snapshot left it, with every
    /// responder record, or `None` before the first commit.
    ///
    /// On PostgreSQL the read first takes the commit lock. A process killed right after sending
    /// COMMIT leaves a transaction that the server still completes while holding that lock; a
    /// restarted process that read the snapshot without waiting would miss it, and its own next
    /// commit would overwrite the snapshot without it (seen in `tests/durability.rs`: an
    /// incident present in its table but lost to the running system).
    pub async fn load_dispatch_snapshot(&self) -> Result<Option<DispatchSnapshot>, StoreError> {
        const READ: &str =
            "SELECT data, last_seq, updated_at_ms FROM dispatch_snapshot WHERE id = 1";
        const RESPONDERS: &str = "SELECT unit, data FROM dispatch_responders ORDER BY unit";
        let pg = self.backend() == Backend::Postgres;
        let (row, responders): SnapshotRaw = with_pool!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                if pg {
                    sqlx::query(crate::journal::PG_COMMIT_LOCK)
                        .execute(&mut *tx)
                        .await?;
                }
                let row = sqlx::query_as(READ).fetch_optional(&mut *tx).await?;
                let responders = sqlx::query_as(RESPONDERS).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((row, responders))
            }
            .await
        })
        .map_err(StoreError::db("loading the dispatch snapshot"))?;
        row.map(|(data, last_seq, at)| {
            Ok(DispatchSnapshot {
                data: parse_json("dispatch snapshot", "1", &data)?,
                responders: (responders.iter())
                    .map(|(unit, data)| parse_json("responder", unit, data))
                    .collect::<Result<_, _>>()?,
                last_seq,
                updated_at: Timestamp::from_millis(at),
            })
        })
        .transpose()
    }
}

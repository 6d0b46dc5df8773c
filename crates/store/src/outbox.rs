//! Delivery bookkeeping outside [`Store::commit`]: the outbox retry loop, claiming due timers, and
//! pruning old idempotency records.
//!
//! Two ways to work the outbox and the timers:
//!
//! - One instance (the default): [`Store::due_outbox`] then [`Store::mark_outbox_attempt`] per
//!   send; timers come from [`Store::load_dispatch_state`] at start and live in the core.
//! - Several instances on PostgreSQL: [`Store::claim_due_outbox`] and [`Store::claim_due_timers`]
//!   pick due rows with `FOR UPDATE SKIP LOCKED` and stamp them in the same statement (the next
//!   attempt time, or a lease), so concurrent callers get disjoint rows and a claim outlives its
//!   transaction; when the claiming instance dies, the rows become due again after the retry time
//!   or lease. SQLite has one writer at a time, so the same statement without the locking clause
//!   gives the same guarantee there.
//!
//! Finishing a message or a timer happens in the commit that handles it (`outbox_done`,
//! `timers_cleared`), together with the state it changes.

use fieldlink_clock::Timestamp;

use crate::dispatch_rows::{OutboxRaw, TimerRaw, outbox_columns, timer_columns};
use crate::{Backend, OutboxRow, Store, StoreError, TimerRow};

/// Claims due outbox rows; `$1` now, `$2` retry at, `$3` limit; `$lock` is the locking clause of the sub-select.
macro_rules! claim_outbox_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = $2 WHERE id IN \
             (SELECT id FROM outbox WHERE done_at_ms IS NULL AND next_attempt_ms <= $1 \
             ORDER BY next_attempt_ms, id LIMIT $3",
            $lock,
            ") RETURNING ",
            outbox_columns!()
        )
    };
}

/// Claims due timers; `$1` now, `$2` lease until, `$3` limit.
macro_rules! claim_timers_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE timers SET claimed_until_ms = $2 WHERE id IN \
             (SELECT id FROM timers WHERE due_ms <= $1 \
             AND (claimed_until_ms IS NULL OR claimed_until_ms <= $1) \
             ORDER BY due_ms, id LIMIT $3",
            $lock,
            ") RETURNING ",
            timer_columns!()
        )
    };
}

impl Store {
    /// Outbound messages not done whose next attempt is at or before `now`, oldest attempt
    /// first, at most `limit`. Reading does not claim them (see [`Store::claim_due_outbox`]).
    pub async fn due_outbox(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = concat!(
            "SELECT ",
            outbox_columns!(),
            " FROM outbox WHERE done_at_ms IS NULL AND next_attempt_ms <= $1 \
             ORDER BY next_attempt_ms, id LIMIT $2"
        );
        let raw: Vec<OutboxRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(now.as_millis())
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db("reading the due outbox"))?;
        Ok(raw.into_iter().map(OutboxRow::from).collect())
    }

    /// The outbound message with this id, done or not, if any.
    pub async fn get_outbox(&self, id: &str) -> Result<Option<OutboxRow>, StoreError> {
        let sql = concat!("SELECT ", outbox_columns!(), " FROM outbox WHERE id = $1");
        let raw: Option<OutboxRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql).bind(id).fetch_optional(p).await
        })
        .map_err(StoreError::db(format!("reading outbox entry {id}")))?;
        Ok(raw.map(OutboxRow::from))
    }

    /// Records one send attempt of a message and when to try again.
    /// [`StoreError::NotFound`] when there is no such message.
    pub async fn mark_outbox_attempt(
        &self,
        id: &str,
        next_attempt: Timestamp,
    ) -> Result<(), StoreError> {
        let rows = with_pool!(self, |p| {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = $1 WHERE id = $2",
            )
            .bind(next_attempt.as_millis())
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(StoreError::db(format!(
            "recording an attempt of outbox entry {id}"
        )))?;
        if rows == 0 {
            return Err(StoreError::NotFound {
                what: "outbox entry",
                id: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Claims up to `limit` due messages (as [`Store::due_outbox`]) and records an attempt of
    /// each in the same statement: `attempts` + 1 and the next attempt at `retry_at`. The rows
    /// returned carry the new values. Concurrent callers, on any instance, never get the same
    /// message before its `retry_at`. Order: oldest due first.
    pub async fn claim_due_outbox(
        &self,
        now: Timestamp,
        retry_at: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => claim_outbox_sql!(" FOR UPDATE SKIP LOCKED"),
            Backend::Sqlite => claim_outbox_sql!(""),
        };
        let raw: Vec<OutboxRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(now.as_millis())
                .bind(retry_at.as_millis())
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db("claiming due outbox entries"))?;
        // RETURNING gives no order guarantee.
        let mut rows: Vec<OutboxRow> = raw.into_iter().map(OutboxRow::from).collect();
        rows.sort_by(|a, b| {
            (a.entry.created_at, &a.entry.id).cmp(&(b.entry.created_at, &b.entry.id))
        });
        Ok(rows)
    }

    /// Claims up to `limit` timers due at `now` that no one holds a live lease on, leasing them
    /// until `lease_until`, soonest first. The claimer fires them and clears them in the commit
    /// that handles them (`ChangeSet::timers_cleared`); if it dies first, they are claimable
    /// again once the lease runs out. Re-arming a timer (`timers_set`) drops its lease.
    ///
    /// On PostgreSQL this uses `FOR UPDATE SKIP LOCKED`, so instances claiming at the same time
    /// get disjoint timers without waiting for each other.
    pub async fn claim_due_timers(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<TimerRow>, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => claim_timers_sql!(" FOR UPDATE SKIP LOCKED"),
            Backend::Sqlite => claim_timers_sql!(""),
        };
        let raw: Vec<TimerRaw> = with_pool!(self, |p| {
            sqlx::query_as(sql)
                .bind(now.as_millis())
                .bind(lease_until.as_millis())
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db("claiming due timers"))?;
        let mut timers = raw
            .into_iter()
            .map(TimerRow::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        timers.sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));
        Ok(timers)
    }

    /// Deletes idempotency records created before `older_than` (a retry after that window is
    /// treated as a new request) and outbox messages done before it; returns how many rows went.
    pub async fn prune_dispatch(&self, older_than: Timestamp) -> Result<u64, StoreError> {
        let ms = older_than.as_millis();
        with_pool!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let a = sqlx::query("DELETE FROM requests WHERE created_at_ms < $1")
                    .bind(ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let b = sqlx::query("DELETE FROM outbox WHERE done_at_ms < $1")
                    .bind(ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(a + b)
            }
            .await
        })
        .map_err(StoreError::db(format!(
            "pruning requests and outbox older than {older_than}"
        )))
    }
}

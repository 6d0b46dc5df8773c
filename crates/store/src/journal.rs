//! The one write path of dispatch: [`Store::commit`]. The reads are in `dispatch_reads.rs`.
//!
//! A [`ChangeSet`] (journal events, snapshots, outbox, timers, the request's result) is written in
//! one transaction, so an acknowledged work order and its outbox entry exist together or not at
//! all; on SQLite `synchronous=FULL` makes the commit survive a power cut.
//!
//! Idempotency uses the primary key of `requests` inside the transaction (`INSERT ... ON
//! CONFLICT DO NOTHING`): of any number of concurrent commits with one request id, exactly one
//! writes, and the others see its row and return its result.
//!
//! Ordering: SQLite has one writer at a time (`BEGIN IMMEDIATE`). On PostgreSQL a `BIGSERIAL` is
//! handed out before commit, so two transactions could become visible out of sequence order and a
//! client resuming "after seq N" would miss the slower one. Every commit therefore takes a
//! transaction-scoped advisory lock (one per schema) first: commits are serialised, sequence
//! numbers become visible in increasing order (across instances too), and no two commits can
//! deadlock on rows. Gaps (rolled-back commits) are possible on both backends; readers must not
//! assume consecutive numbers.

use crate::dispatch_rows::{json_text, parse_json};
use crate::{Backend, ChangeSet, Committed, Store, StoreError};

/// The PostgreSQL advisory lock every commit holds until it ends: a fixed class ("flj\0") and
/// the schema, so tenants in other schemas do not wait for each other.
pub(crate) const PG_COMMIT_LOCK: &str =
    "SELECT 1 FROM pg_advisory_xact_lock(1718381056, hashtext(current_schema()))";

/// The `INSERT` of each snapshot table (`$1..` in column order) as a macro, so that `concat!`
/// can build both the plain insert (a new row: a taken id fails) and the upsert.
macro_rules! incident_insert {
    () => {
        "INSERT INTO incidents (id, status, grid, open, created_at_ms, updated_at_ms, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
}
macro_rules! order_insert {
    () => {
        "INSERT INTO work_orders (id, incident_id, unit, state, open, created_at_ms, \
         updated_at_ms, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    };
}
macro_rules! alarm_insert {
    () => {
        "INSERT INTO alarms (id, kind, state, open, created_at_ms, updated_at_ms, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
}

/// `(insert, upsert)` per snapshot table.
const INCIDENT_SQL: (&str, &str) = (
    incident_insert!(),
    concat!(
        incident_insert!(),
        " ON CONFLICT (id) DO UPDATE SET status = excluded.status, grid = excluded.grid, \
         open = excluded.open, created_at_ms = excluded.created_at_ms, \
         updated_at_ms = excluded.updated_at_ms, data = excluded.data"
    ),
);
const ORDER_SQL: (&str, &str) = (
    order_insert!(),
    concat!(
        order_insert!(),
        " ON CONFLICT (id) DO UPDATE SET incident_id = excluded.incident_id, \
         unit = excluded.unit, state = excluded.state, open = excluded.open, \
         created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms, \
         data = excluded.data"
    ),
);
const ALARM_SQL: (&str, &str) = (
    alarm_insert!(),
    concat!(
        alarm_insert!(),
        " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, \
         open = excluded.open, created_at_ms = excluded.created_at_ms, \
         updated_at_ms = excluded.updated_at_ms, data = excluded.data"
    ),
);

/// The plain insert for a row marked new, the upsert otherwise.
fn pick(sql: (&'static str, &'static str), new: bool) -> &'static str {
    if new { sql.0 } else { sql.1 }
}

impl Store {
    /// Writes everything in `change` in one transaction and returns the journal sequence numbers
    /// of its events ([`Committed::Written`]). When `change.request` names a request id that was
    /// committed before, nothing is written and its first result comes back
    /// ([`Committed::Replayed`]), also under concurrent calls.
    ///
    /// Any failure writes nothing: [`StoreError::AlreadyExists`] for a snapshot marked `new` whose
    /// id exists, or an outbox id that exists; [`StoreError::Database`] otherwise.
    pub async fn commit(&self, change: &ChangeSet) -> Result<Committed, StoreError> {
        if change.is_empty() {
            return Ok(Committed::Written(Vec::new()));
        }
        let pg = self.backend() == Backend::Postgres;
        let ctx = match &change.request {
            Some((id, _)) => format!("committing request {id}"),
            None => format!("committing {} journal events", change.events.len()),
        };
        let db = || StoreError::db(ctx.clone());
        with_pool!(self, |p| {
            async {
                let begin = if pg { "BEGIN" } else { "BEGIN IMMEDIATE" };
                let mut tx = p.begin_with(begin).await.map_err(db())?;
                if pg {
                    sqlx::query(PG_COMMIT_LOCK)
                        .execute(&mut *tx)
                        .await
                        .map_err(db())?;
                }
                if let Some((id, result)) = &change.request {
                    let fresh = sqlx::query(
                        "INSERT INTO requests (request_id, result, created_at_ms) \
                         VALUES ($1, $2, $3) ON CONFLICT (request_id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(json_text(result))
                    .bind(change.at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db())?
                    .rows_affected();
                    if fresh == 0 {
                        let first: String =
                            sqlx::query_scalar("SELECT result FROM requests WHERE request_id = $1")
                                .bind(id)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(db())?;
                        tx.rollback().await.map_err(db())?;
                        return Ok(Committed::Replayed(parse_json("request", id, &first)?));
                    }
                }
                let mut seqs = Vec::with_capacity(change.events.len());
                for e in &change.events {
                    let seq: i64 = sqlx::query_scalar(
                        "INSERT INTO journal (at_ms, kind, subject, actor, data) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                    )
                    .bind(e.at.as_millis())
                    .bind(&e.kind)
                    .bind(&e.subject)
                    .bind(&e.actor)
                    .bind(json_text(&e.data))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db())?;
                    seqs.push(seq);
                }
                for r in &change.incidents {
                    sqlx::query(pick(INCIDENT_SQL, r.new))
                        .bind(&r.id)
                        .bind(&r.status)
                        .bind(r.grid.as_deref())
                        .bind(r.open)
                        .bind(r.created_at.as_millis())
                        .bind(r.updated_at.as_millis())
                        .bind(json_text(&r.data))
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::insert("incident", &r.id))?;
                }
                for r in &change.orders {
                    sqlx::query(pick(ORDER_SQL, r.new))
                        .bind(&r.id)
                        .bind(&r.incident_id)
                        .bind(&r.unit)
                        .bind(&r.state)
                        .bind(r.open)
                        .bind(r.created_at.as_millis())
                        .bind(r.updated_at.as_millis())
                        .bind(json_text(&r.data))
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::insert("work order", &r.id))?;
                }
                for r in &change.alarms {
                    sqlx::query(pick(ALARM_SQL, r.new))
                        .bind(&r.id)
                        .bind(&r.kind)
                        .bind(&r.state)
                        .bind(r.open)
                        .bind(r.created_at.as_millis())
                        .bind(r.updated_at.as_millis())
                        .bind(json_text(&r.data))
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::insert("alarm", &r.id))?;
                }
                for o in &change.outbox {
                    sqlx::query(
                        "INSERT INTO outbox (id, unit, key, payload, created_at_ms, \
                         next_attempt_ms, attempts) VALUES ($1, $2, $3, $4, $5, $6, 0)",
                    )
                    .bind(&o.id)
                    .bind(&o.unit)
                    .bind(&o.key)
                    .bind(&o.payload)
                    .bind(o.created_at.as_millis())
                    .bind(o.next_attempt.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::insert("outbox entry", &o.id))?;
                }
                for (id, at) in &change.outbox_done {
                    sqlx::query(
                        "UPDATE outbox SET done_at_ms = $1 WHERE id = $2 AND done_at_ms IS NULL",
                    )
                    .bind(at.as_millis())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db())?;
                }
                for id in &change.timers_cleared {
                    sqlx::query("DELETE FROM timers WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db())?;
                }
                for t in &change.timers_set {
                    sqlx::query(
                        "INSERT INTO timers (id, due_ms, kind, subject, data, claimed_until_ms) \
                         VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (id) DO UPDATE SET \
                         due_ms = excluded.due_ms, kind = excluded.kind, \
                         subject = excluded.subject, data = excluded.data, \
                         claimed_until_ms = NULL",
                    )
                    .bind(&t.id)
                    .bind(t.due.as_millis())
                    .bind(&t.kind)
                    .bind(&t.subject)
                    .bind(json_text(&t.data))
                    .execute(&mut *tx)
                    .await
                    .map_err(db())?;
                }
                for (unit, data) in &change.responders {
                    sqlx::query(
                        "INSERT INTO dispatch_responders (unit, data, updated_at_ms) \
                         VALUES ($1, $2, $3) ON CONFLICT (unit) DO UPDATE SET \
                         data = excluded.data, updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(unit)
                    .bind(json_text(data))
                    .bind(change.at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::insert("responder", unit))?;
                }
                for (id, data) in &change.talkgroups_saved {
                    sqlx::query(
                        "INSERT INTO talkgroups (id, data, updated_at_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                         updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(id)
                    .bind(json_text(data))
                    .bind(change.at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::insert("talkgroup", id))?;
                }
                for id in &change.talkgroups_removed {
                    sqlx::query("DELETE FROM talkgroups WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db())?;
                }
                for (id, data) in &change.cameras_saved {
                    sqlx::query(
                        "INSERT INTO cameras (id, data, updated_at_ms) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                         updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(id)
                    .bind(json_text(data))
                    .bind(change.at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::insert("camera", id))?;
                }
                for id in &change.cameras_removed {
                    sqlx::query("DELETE FROM cameras WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db())?;
                }
                for b in &change.bursts {
                    sqlx::query(
                        "INSERT INTO talk_bursts (talkgroup, party, start_ms, end_ms, \
                         duration_ms, outcome, data) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&b.talkgroup)
                    .bind(&b.party)
                    .bind(b.start.as_millis())
                    .bind(b.end.as_millis())
                    .bind(b.duration_ms)
                    .bind(&b.outcome)
                    .bind(json_text(&b.data))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::insert("talk burst", &b.talkgroup))?;
                }
                if let Some(snapshot) = &change.snapshot {
                    sqlx::query(
                        "INSERT INTO dispatch_snapshot (id, data, last_seq, updated_at_ms) \
                         VALUES (1, $1, COALESCE($2, (SELECT MAX(seq) FROM journal), 0), $3) \
                         ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                         last_seq = excluded.last_seq, updated_at_ms = excluded.updated_at_ms",
                    )
                    .bind(json_text(snapshot))
                    .bind(seqs.last().copied())
                    .bind(change.at.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db())?;
                }
                tx.commit().await.map_err(db())?;
                Ok(Committed::Written(seqs))
            }
            .await
        })
    }
}

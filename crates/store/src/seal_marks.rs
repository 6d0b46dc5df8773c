//! Replay marks of sealed payloads (docs/security.md): per unit and channel, the newest counter
//! the server accepted, written with each position flush and read back at start, so a message
//! seen before a restart cannot be replayed after it.

use std::collections::BTreeMap;

use sqlx::QueryBuilder;

use crate::{Store, StoreError, with_pool};

/// Rows per INSERT statement (3 binds each, well under both backends' bind limits).
const CHUNK_ROWS: usize = 1000;

/// One unit's newest accepted counter on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealMark {
    /// The unit.
    pub unit: String,
    /// `sealed` (fieldlink's counter), `offline` (last wills) or `owntracks` (a location's `tst`).
    pub channel: String,
    /// The newest counter accepted.
    pub last: u64,
}

impl Store {
    /// Raises the stored marks to `marks` (a mark never goes down, so an older write landing
    /// late changes nothing).
    pub async fn save_seal_marks(&self, marks: &[SealMark]) -> Result<(), StoreError> {
        // One row per key, in key order so that concurrent writers lock rows alike.
        let mut newest: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for m in marks {
            let slot = newest.entry((&m.unit, &m.channel)).or_default();
            *slot = (*slot).max(m.last);
        }
        if newest.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = newest.into_iter().collect();
        with_pool!(self, |p, Db| {
            async {
                let mut tx = p.begin().await?;
                for chunk in rows.chunks(CHUNK_ROWS) {
                    let mut qb = QueryBuilder::<Db>::new(
                        "INSERT INTO seal_marks (unit_id, channel, last_counter) ",
                    );
                    qb.push_values(chunk, |mut b, ((unit, channel), last)| {
                        // Microseconds since the epoch fit an i64 until the year 294,247.
                        b.push_bind(*unit)
                            .push_bind(*channel)
                            .push_bind(i64::try_from(*last).unwrap_or(i64::MAX));
                    });
                    qb.push(
                        " ON CONFLICT (unit_id, channel) DO UPDATE \
                         SET last_counter = excluded.last_counter \
                         WHERE excluded.last_counter > seal_marks.last_counter",
                    );
                    // Only full chunks share a SQL text worth caching: a partial one has a
                    // text per row count (see `positions.rs`).
                    qb.build()
                        .persistent(chunk.len() == CHUNK_ROWS)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(StoreError::db(format!(
            "saving the replay marks of {} units",
            rows.len()
        )))
    }

    /// Every stored mark.
    pub async fn load_seal_marks(&self) -> Result<Vec<SealMark>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT unit_id, channel, last_counter FROM seal_marks")
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db("reading the replay marks"))?;
        Ok(rows
            .into_iter()
            .map(|(unit, channel, last)| SealMark {
                unit,
                channel,
                last: u64::try_from(last).unwrap_or(0),
            })
            .collect())
    }
}

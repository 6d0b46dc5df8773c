//! Reading back what the intercom and the video registry wrote: the talkgroups and fixed cameras
//! made through the API, and the talk-burst log of one talkgroup. Writes go through
//! [`Store::commit`] (`journal.rs`).

use fieldlink_clock::Timestamp;
use serde_json::Value;

use crate::dispatch_rows::parse_json;
use crate::{BurstRow, Store, StoreError};

/// A raw `talk_bursts` row.
type BurstRaw = (String, String, i64, i64, i64, String, String);

impl Store {
    /// Every stored talkgroup definition (JSON the intercom core owns), by id.
    pub async fn load_talkgroups(&self) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, data FROM talkgroups ORDER BY id")
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db("loading the talkgroups"))?;
        (rows.iter())
            .map(|(id, data)| parse_json("talkgroup", id, data))
            .collect()
    }

    /// Every fixed camera added through the API (JSON the video core owns), by id.
    pub async fn load_cameras(&self) -> Result<Vec<Value>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, |p| {
            sqlx::query_as("SELECT id, data FROM cameras ORDER BY id")
                .fetch_all(p)
                .await
        })
        .map_err(StoreError::db("loading the cameras"))?;
        (rows.iter())
            .map(|(id, data)| parse_json("camera", id, data))
            .collect()
    }

    /// The talk bursts of `talkgroup` that started in `[from, to)`, oldest first, at most
    /// `limit`.
    pub async fn talk_bursts(
        &self,
        talkgroup: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<BurstRow>, StoreError> {
        let rows: Vec<BurstRaw> = with_pool!(self, |p| {
            sqlx::query_as(
                "SELECT talkgroup, party, start_ms, end_ms, duration_ms, outcome, data \
                 FROM talk_bursts WHERE talkgroup = $1 AND start_ms >= $2 AND start_ms < $3 \
                 ORDER BY start_ms, id LIMIT $4",
            )
            .bind(talkgroup)
            .bind(from.as_millis())
            .bind(to.as_millis())
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
        })
        .map_err(StoreError::db(format!(
            "reading the talk-burst log of {talkgroup}"
        )))?;
        (rows.into_iter())
            .map(
                |(talkgroup, party, start, end, duration_ms, outcome, data)| {
                    Ok(BurstRow {
                        data: parse_json("talk burst", &talkgroup, &data)?,
                        talkgroup,
                        party,
                        start: Timestamp::from_millis(start),
                        end: Timestamp::from_millis(end),
                        duration_ms,
                        outcome,
                    })
                },
            )
            .collect()
    }
}

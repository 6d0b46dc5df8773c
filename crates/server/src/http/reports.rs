//! `/api/v1/reports/sla`: the supervision report (督导考评) over the live dispatch state.
//!
//! The core computes it (`fieldlink_dispatch::supervision_report`) from the incidents created in
//! `[from, to)` and the timestamps their orders carry; this handler only parses the period, the
//! grouping and the format, and answers JSON or CSV (`text/csv`).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use fieldlink_dispatch::{GroupBy, supervision_report};
use fieldlink_store::Role;
use serde::Deserialize;

use super::auth::Authenticated;
use super::error::ApiError;
use super::extract::Query;
use crate::state::AppState;

/// The period answered when `from` is not given: this long before `to`.
const DEFAULT_PERIOD: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `GET /api/v1/reports/sla` query.
#[derive(Debug, Deserialize)]
pub struct SlaQuery {
    /// Start (RFC 3339, inclusive); default `to` minus 24 h.
    from: Option<String>,
    /// End (RFC 3339, exclusive); default now.
    to: Option<String>,
    /// `unit`, `grid` or `kind` (default `unit`).
    group_by: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// `GET /api/v1/reports/sla?from&to&group_by=unit|grid|kind&format=json|csv` (viewer).
pub async fn sla(
    State(state): State<AppState>,
    auth: Authenticated,
    Query(q): Query<SlaQuery>,
) -> Result<Response, ApiError> {
    auth.require(Role::Viewer)?;
    let to = super::params::time(q.to.as_deref(), "to")?.unwrap_or_else(|| state.clock.now());
    let from =
        super::params::time(q.from.as_deref(), "from")?.unwrap_or_else(|| to.minus(DEFAULT_PERIOD));
    if from > to {
        return Err(ApiError::bad_request(
            "bad_period",
            format!(
                "from ({}) is after to ({}): give the earlier time as from",
                from.to_rfc3339(),
                to.to_rfc3339()
            ),
        ));
    }
    let group_by = match q.group_by.as_deref() {
        None | Some("") | Some("unit") => GroupBy::Unit,
        Some("grid") => GroupBy::Grid,
        Some("kind") => GroupBy::Kind,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_group_by",
                format!("group_by {other:?} is not unit, grid or kind"),
            ));
        }
    };
    let csv = match q.format.as_deref() {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_format",
                format!("format {other:?} is not json or csv"),
            ));
        }
    };
    let report = {
        let core = state.dispatch.read().await;
        supervision_report(core.state(), core.config(), from, to, group_by)
    };
    if csv {
        let headers = [(header::CONTENT_TYPE, "text/csv; charset=utf-8")];
        Ok((headers, report.to_csv()).into_response())
    } else {
        Ok(Json(report).into_response())
    }
}

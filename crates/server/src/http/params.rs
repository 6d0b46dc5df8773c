//! Request parts several endpoints read the same way: RFC 3339 times in a query. (Bodies are
//! read by the extractors of `extract.rs`.)

use fieldlink_clock::Timestamp;

use super::error::ApiError;

/// An optional RFC 3339 time from the query parameter `name` (blank counts as absent).
pub fn time(raw: Option<&str>, name: &str) -> Result<Option<Timestamp>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Timestamp::parse_rfc3339(s).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "bad_time",
                format!("{name} {s:?} is not a date and time like 2026-05-01T08:00:00Z"),
            )
        }),
    }
}

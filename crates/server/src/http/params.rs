//! Request parts several endpoints read the same way: RFC 3339 times in a query, and an
//! optional JSON body (absent or blank means the defaults).

use axum::body::Bytes;
use fieldlink_clock::Timestamp;
use serde::de::DeserializeOwned;

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

/// A JSON body that may be left out: absent or blank is `T::default()`.
pub fn optional_body<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    body(bytes)
}

/// A JSON body, required.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request("bad_body", e.to_string()))
}

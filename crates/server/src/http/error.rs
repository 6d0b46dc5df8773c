//! API errors: one type, mapped to a JSON response in one place.
//!
//! Every error has a stable machine `code` and a `message` in words a dispatcher understands:
//! `{"error": {"code": "unit_not_found", "message": "no unit has the id \"x\""}}`, plus `field`
//! when one field of a body or query was wrong. axum's own refusals (a body that is not JSON,
//! a wrong method, an unknown path) come here too, through the extractors of `extract.rs` and
//! the router's fallbacks, so every error answer of the API has this one shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fieldlink_dispatch::DispatchError;
use fieldlink_store::StoreError;
use serde_json::json;

use crate::dispatch::CommandError;

/// An error answered to an API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable, machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The field of the body or query that was wrong (`units[0]`, `filter.bbox`), if one was.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with the given parts.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, naming the field that was wrong.
    pub fn with_field(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with a code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 401: no usable token.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: a token without the role.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 for a store failure; the detail goes to the log, the caller gets a plain sentence.
    pub fn store(err: StoreError) -> Self {
        tracing::error!(error = %err, "store operation failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the database could not complete the request; try again shortly",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => ApiError::not_found("not_found", err.to_string()),
            StoreError::AlreadyExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", err.to_string())
            }
            other => ApiError::store(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

/// The dispatch core's refusals keep its stable codes: unknown records 404, conflicts with the
/// current state 409, the rest 400.
impl From<DispatchError> for ApiError {
    fn from(e: DispatchError) -> Self {
        let status = match e {
            DispatchError::UnknownIncident(_)
            | DispatchError::UnknownOrder(_)
            | DispatchError::UnknownAlarm(_) => StatusCode::NOT_FOUND,
            DispatchError::IllegalTransition { .. }
            | DispatchError::IncidentClosed(_)
            | DispatchError::OrdersOpen { .. }
            | DispatchError::UnitUnavailable { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Refused(e) => e.into(),
            CommandError::Store(e) => ApiError::store(e),
        }
    }
}

impl From<fieldlink_intercom::IntercomError> for ApiError {
    fn from(e: fieldlink_intercom::IntercomError) -> Self {
        use fieldlink_intercom::IntercomError as E;
        let status = match e {
            E::UnknownGroup(_) => StatusCode::NOT_FOUND,
            E::NotMember { .. } => StatusCode::FORBIDDEN,
            E::WrongMode { .. } | E::GroupInUse(_) => StatusCode::CONFLICT,
            E::InvalidBurst { .. } | E::InvalidGroup(_) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<crate::intercom::IntercomCommandError> for ApiError {
    fn from(e: crate::intercom::IntercomCommandError) -> Self {
        match e {
            crate::intercom::IntercomCommandError::Refused(e) => e.into(),
            crate::intercom::IntercomCommandError::Store(e) => ApiError::store(e),
        }
    }
}

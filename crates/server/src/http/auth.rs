//! Bearer-token authentication for the API, as an extractor.
//!
//! Handlers take an [`Authenticated`] and call [`Authenticated::require`] with the least role the
//! call needs; refusals are counted in `fieldlink_http_auth_refused_total` and logged with the peer.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use fieldlink_store::Role;

use super::error::ApiError;
use crate::credentials::Caller;
use crate::state::AppState;

/// A caller whose token checked out.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl Authenticated {
    /// Refuses the call unless the caller's role allows `needed`.
    pub fn require(&self, needed: Role) -> Result<&Caller, ApiError> {
        if self.0.role.allows(needed) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(format!(
                "this needs a {needed} token; yours ({}) is {}",
                self.0.name, self.0.role
            )))
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthenticated(
                    "send your API token as `Authorization: Bearer <token>` (the first start printed an admin token and saved it in the data directory)",
                )
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthenticated("the Authorization header must be `Bearer <token>`")
            })?;
        match state.credentials.authenticate_token_fresh(token).await {
            Some(caller) => Ok(Authenticated(caller)),
            None => {
                state.metrics.auth_refused.inc();
                tracing::warn!(path = %parts.uri.path(), "API call refused: unknown, revoked or wrong token");
                Err(ApiError::unauthenticated(
                    "this token is unknown, revoked or wrong",
                ))
            }
        }
    }
}

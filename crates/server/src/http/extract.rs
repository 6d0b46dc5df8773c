//! The request extractors of the API, whose refusals are [`ApiError`]s: the one error shape
//! (`error.rs`) even when the body is not JSON, does not fit its type, is too large, or the
//! query or path does not parse. axum's own extractors answer those in plain text.
//!
//! Codes: 415 `unsupported_media_type`, 413 `body_too_large`, 400 `bad_json` (not JSON at all),
//! 422 `bad_body` (JSON of the wrong shape: a missing or unknown field, a wrong type, a value
//! not among the allowed ones), 400 `bad_query`, 400 `bad_path`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::reject::{self, Place};

/// The largest body the API reads (axum's default, made explicit so refusals can name it).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A JSON body, required, with `Content-Type: application/json` (or any `+json` type).
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

/// A JSON body that may be left out: an absent or blank body is `T::default()` whatever its
/// Content-Type; any other body is read as [`Json`] is.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

/// The bytes of a JSON body (GeoJSON included), its Content-Type checked, for handlers that
/// read it their own way.
#[derive(Debug, Clone)]
pub struct JsonBytes(pub Bytes);

/// The bytes of a body of any type, within the size limit.
#[derive(Debug, Clone)]
pub struct Body(pub Bytes);

/// A query string decoded into `T`.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

/// Path parameters decoded into `T`.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        if is_blank(&bytes) {
            return Err(ApiError::bad_request(
                "bad_json",
                "the body is empty; send a JSON object",
            ));
        }
        parse(&bytes).map(Json)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default + Send> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let Body(bytes) = Body::from_request(req, state).await?;
        if is_blank(&bytes) {
            return Ok(OptionalJson(T::default()));
        }
        require_json(&headers)?;
        parse(&bytes).map(OptionalJson)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let Body(bytes) = Body::from_request(req, state).await?;
        Ok(JsonBytes(bytes))
    }
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the body is larger than {} MiB, the most this API reads",
                    MAX_BODY_BYTES / (1024 * 1024)
                ),
            )),
            Err(e) => Err(ApiError::bad_request(
                "unreadable_body",
                format!("the body could not be read: {}", e.body_text()),
            )),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let value_of = |name: &str| {
                    form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.into_owned())
                };
                let d = reject::describe(Place::Query, e.path(), &e.inner().to_string(), value_of);
                ApiError::bad_request("bad_query", d.message).with_field(d.field)
            })
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let message = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        format!("the path's `{key}` is not UTF-8 text once percent-decoded")
                    }
                    ErrorKind::ParseErrorAtKey { key, value, .. } => {
                        let value = serde_json::Value::from(value.as_str());
                        format!("the path's `{key}` is not valid here; got {value}")
                    }
                    _ => format!("the path does not fit this endpoint: {}", e.body_text()),
                };
                Err(ApiError::bad_request("bad_path", message))
            }
            Err(e) => {
                tracing::error!(error = %e.body_text(), "a route's path parameters do not fit its handler");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server could not read this path",
                ))
            }
        }
    }
}

/// Reads a JSON body into `T`, or says in words why not: 400 `bad_json` when it is not JSON,
/// 422 `bad_body` when it does not fit `T`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value =
        serde_path_to_error::deserialize(&mut *de).map_err(|e| json_error(e.path(), e.inner()))?;
    de.end().map_err(|e| {
        let raw = e.to_string();
        let message = reject::syntax(reject::without_position(&raw), e.line(), e.column());
        ApiError::bad_request("bad_json", message)
    })?;
    Ok(value)
}

/// Reads an already parsed JSON value into `T` (a WebSocket command's arguments, a body the
/// handler completed), with [`parse`]'s refusals.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| json_error(e.path(), e.inner()))
}

fn json_error(path: &serde_path_to_error::Path, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let raw = e.to_string();
    let raw = reject::without_position(&raw);
    // serde_json reports a number or object where an enum's name belongs as "expected ident",
    // a syntax error; it is a value of the wrong shape.
    let shape = matches!(e.classify(), Category::Data) || raw == "expected ident";
    if !shape {
        return ApiError::bad_request("bad_json", reject::syntax(raw, e.line(), e.column()));
    }
    let raw = if raw == "expected ident" {
        "invalid type: another value, expected one of its names, as a string"
    } else {
        raw
    };
    let d = reject::describe(Place::Body, path, raw, |_| None);
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_body", d.message).with_field(d.field)
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// 415 unless the Content-Type is `application/json` or a `+json` type (`application/geo+json`).
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = (headers.get(header::CONTENT_TYPE)).map(|v| String::from_utf8_lossy(v.as_bytes()));
    let essence = (given.as_deref())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let json = essence.as_deref().is_some_and(|m| {
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    });
    if json {
        return Ok(());
    }
    let got = match given {
        Some(v) => format!("got {v}"),
        None => "the request has none".to_owned(),
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("send the body as JSON with the header Content-Type: application/json; {got}"),
    ))
}

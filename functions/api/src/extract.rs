//! Extractors whose rejections are JSON errors in the API's shape, with messages that say what
//! to fix (axum's defaults answer plain text).

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body with API errors: 400 for bad JSON, unknown fields or NUL characters, 413 for
/// oversize bodies, 415 without a JSON content type.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than this server accepts (WEFT_MAX_BODY_BYTES)",
                ));
            }
            Err(_) => return Err(ApiError::bad_request("the request body could not be read")),
        };
        // Postgres cannot store U+0000 in text or JSONB; refuse it here with a clear message
        // rather than failing at the database.
        if has_nul_escape(&bytes) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                r"strings must not contain the NUL character (\u0000)",
            ));
        }
        serde_json::from_slice::<T>(&bytes).map(Json).map_err(|err| match err.classify() {
            serde_json::error::Category::Data => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the request body does not match the expected shape: {}", truncate(&err.to_string())),
            ),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the request body is not valid JSON: {}", truncate(&err.to_string())),
            ),
        })
    }
}

fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// True if a JSON text holds the escape `\u0000` (an even run of backslashes before the `u`
/// means the backslash itself was escaped and the text is harmless).
pub(crate) fn has_nul_escape(bytes: &[u8]) -> bool {
    let needle = b"u0000";
    (0..bytes.len().saturating_sub(needle.len() - 1)).any(|i| {
        bytes[i..i + needle.len()].eq_ignore_ascii_case(needle)
            && bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    })
}

fn truncate(msg: &str) -> String {
    msg.chars().take(300).collect()
}

// axum prefixes serde's message with its own ("Failed to deserialize the JSON body into the
// target type: "); keep only serde's part, which names the field and position.
fn inner_message(text: &str) -> String {
    let msg = text.split_once(": ").map_or(text, |(_, rest)| rest);
    let mut msg: String = msg.chars().take(300).collect();
    if msg.is_empty() {
        msg.push_str("unreadable body");
    }
    msg
}

/// `axum::extract::Path` answering 400 with the parameter problem.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                format!("invalid path parameter: {}", e.body_text().rsplit(": ").next().unwrap_or("bad value")),
            )),
            Err(_) => Err(ApiError::bad_request("invalid path")),
        }
    }
}

/// `axum::extract::Query` answering 400 with the parameter problem.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("invalid query string: {}", inner_message(&e.body_text())),
            )),
            Err(_) => Err(ApiError::bad_request("invalid query string")),
        }
    }
}

/// The authenticated caller, put in the request by the auth middleware.
pub struct Caller(pub auth::Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<auth::Principal>().cloned().map(Caller).ok_or_else(|| auth::AuthError::Missing.into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_escapes_are_found_but_escaped_backslashes_are_not() {
        assert!(super::has_nul_escape(br#"{"a": "x\u0000"}"#));
        assert!(super::has_nul_escape(br#"{"a": "\\\U0000"}"#));
        assert!(!super::has_nul_escape(br#"{"a": "\\u0000"}"#));
        assert!(!super::has_nul_escape(br#"{"u0000": 1}"#));
        assert!(!super::has_nul_escape(b""));
    }
}

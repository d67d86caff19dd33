//! Extractors whose rejections are JSON errors in the API's shape, with messages that say what
//! to fix (axum's defaults answer plain text).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json` with API errors: 400 for bad JSON or unknown fields, 413 for oversize bodies,
/// 415 without a JSON content type.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the request body does not match the expected shape: {}", inner_message(&e.body_text())),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {}", inner_message(&e.body_text())),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this server accepts (WEFT_MAX_BODY_BYTES)",
        ),
        _ => ApiError::bad_request("the request body could not be read"),
    }
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
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", format!("invalid path parameter: {}", e.body_text().rsplit(": ").next().unwrap_or("bad value"))))
            }
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
        parts
            .extensions
            .get::<auth::Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| auth::AuthError::Missing.into())
    }
}

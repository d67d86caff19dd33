//! The API's error type: a stable `code`, a message that is safe to show, and the HTTP status.
//!
//! Internal failures (database, Step Functions) are logged with their detail and answered with
//! a generic message that says whether retrying helps; SQL and internals never reach clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::dto::DiagnosticDto;

/// `{"error": {"code", "message"}}`, plus `diagnostics` when a graph is invalid.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<DiagnosticDto>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; clients may match on it.
    pub code: String,
    /// For humans; may change between releases.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
    pub diagnostics: Option<Vec<DiagnosticDto>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, diagnostics: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn invalid_graph(diagnostics: Vec<compiler::Diagnostic>) -> Self {
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_graph",
            format!("the graph has {errors} error(s); see `diagnostics`"),
        );
        e.diagnostics = Some(diagnostics.into_iter().map(DiagnosticDto::from).collect());
        e
    }

    /// Logs `detail` and answers 500 without it.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; retrying may help")
    }

    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "dependency unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "a dependency is unavailable; retry shortly")
    }

    /// Maps a store error, naming the thing that was looked for.
    pub fn store(what: &'static str) -> impl Fn(store::StoreError) -> ApiError {
        move |err| match err {
            store::StoreError::NotFound => ApiError::not_found(what),
            store::StoreError::Conflict(msg) => ApiError::new(StatusCode::CONFLICT, "conflict", msg),
            store::StoreError::BadCursor => ApiError::bad_request(store::StoreError::BadCursor.to_string()),
            e if e.is_transient() => ApiError::unavailable(e),
            e => ApiError::internal(e),
        }
    }
}

impl From<auth::AuthError> for ApiError {
    fn from(err: auth::AuthError) -> Self {
        let status = match err {
            auth::AuthError::Forbidden { .. } => StatusCode::FORBIDDEN,
            auth::AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        Self::new(status, err.code(), err.to_string())
    }
}

impl From<store::StoreError> for ApiError {
    fn from(err: store::StoreError) -> Self {
        ApiError::store("resource")(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.to_owned(), message: self.message },
            diagnostics: self.diagnostics,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

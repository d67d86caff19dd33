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

/// The execution domain's errors at the HTTP edge: the client's mistakes are 4xx, unavailable
/// dependencies 503 (or 429 when Step Functions throttles), broken invariants 500.
impl From<executions::ExecError> for ApiError {
    fn from(err: executions::ExecError) -> Self {
        use executions::ExecError as E;
        let message = err.to_string();
        match err {
            E::NotFound(what) => ApiError::not_found(what),
            E::Disabled => ApiError::new(StatusCode::CONFLICT, "executions_disabled", message),
            E::InputTooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message),
            E::NotPublished(_) => ApiError::new(StatusCode::CONFLICT, "not_published", message),
            E::InvalidInput(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message),
            E::BadRequest(_) | E::NotExpress => ApiError::bad_request(message),
            E::IdempotencyConflict => ApiError::new(StatusCode::CONFLICT, "idempotency_conflict", message),
            E::NotStarted => ApiError::new(StatusCode::CONFLICT, "not_started", message),
            E::NotRunning(_) => ApiError::new(StatusCode::CONFLICT, "not_running", message),
            E::NotRedrivable(_) => ApiError::new(StatusCode::CONFLICT, "not_redrivable", message),
            E::Throttled => {
                let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "throttled", message);
                e.retry_after = Some(1);
                e
            }
            E::Store(e) => ApiError::from(e),
            E::Database(_) | E::StepFunctions(_) => ApiError::unavailable(message),
            E::Internal(_) => ApiError::internal(message),
        }
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

//! AWS's error shapes: `{"__type": "com.amazonaws.swf.service.v2.model#<Code>", "message": ...}`
//! with HTTP 400. The SDKs keep what follows `#` (aws-sdk-sfn's `sanitize_error_code`, botocore's
//! JSON parser), so `<Code>` is what maps to their typed errors (e.g.
//! `StartExecutionError::ExecutionAlreadyExists`, `SFN.Client.exceptions.ExecutionAlreadyExists`).
//!
//! Authentication failures ([`AuthError`]) come from AWS's front end rather than the service, so
//! their `__type` is in [`AUTH_ERROR_NAMESPACE`] and their status is the one AWS uses (403 for a
//! missing signature, 400 otherwise).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sigv4::AuthError;
use crate::store::StoreError;

/// The namespace AWS Step Functions puts before its error codes.
pub const ERROR_NAMESPACE: &str = "com.amazonaws.swf.service.v2.model";
/// The namespace of AWS's authentication errors (`UnrecognizedClientException`, ...).
pub const AUTH_ERROR_NAMESPACE: &str = "com.amazon.coral.service";

/// An action's failure, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum SfnError {
    /// A modeled AWS error: `code` is one of the service's error shape names.
    #[error("{code}: {message}")]
    Aws { code: &'static str, message: String },
    /// Storage failed: answered as a 500 `InternalFailure` (the SDKs retry it); the detail is
    /// logged, not sent.
    #[error("internal failure: {0}")]
    Internal(String),
}

impl SfnError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        SfnError::Aws { code, message: message.into() }
    }

    /// The AWS error code (`InternalFailure` for internal errors).
    pub fn code(&self) -> &'static str {
        match self {
            SfnError::Aws { code, .. } => code,
            SfnError::Internal(_) => "InternalFailure",
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    pub fn invalid_arn(arn: &str) -> Self {
        Self::new("InvalidArn", format!("Invalid Arn: '{arn}'"))
    }

    pub fn state_machine_does_not_exist(arn: &str) -> Self {
        Self::new("StateMachineDoesNotExist", format!("State Machine Does Not Exist: '{arn}'"))
    }

    pub fn execution_does_not_exist(arn: &str) -> Self {
        Self::new("ExecutionDoesNotExist", format!("Execution Does Not Exist: '{arn}'"))
    }
}

impl From<StoreError> for SfnError {
    fn from(e: StoreError) -> Self {
        SfnError::Internal(e.to_string())
    }
}

impl IntoResponse for SfnError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            SfnError::Aws { code, message } => {
                (StatusCode::BAD_REQUEST, json!({"__type": format!("{ERROR_NAMESPACE}#{code}"), "message": message}))
            }
            SfnError::Internal(detail) => {
                tracing::error!(%detail, "sfn endpoint internal failure");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"__type": format!("{ERROR_NAMESPACE}#InternalFailure"), "message": "The request failed because of an internal storage error; retrying may help."}),
                )
            }
        };
        json_response(status, &body)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // The message never holds a secret or the expected signature; debug level, since anyone
        // who reaches the port can produce these.
        tracing::debug!(code = self.code(), message = %self, "refused a Step Functions request");
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        json_response(
            status,
            &json!({"__type": format!("{AUTH_ERROR_NAMESPACE}#{}", self.code()), "message": self.to_string()}),
        )
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::CONTENT_TYPE));
    resp
}

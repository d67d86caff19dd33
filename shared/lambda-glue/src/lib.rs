//! The Lambda glue shared by every node function, so each `main.rs` is a few lines:
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_glue::Error> {
//!     lambda_glue::init_tracing();
//!     lambda_glue::run(fn_code::CodeFunction::from_env()?).await
//! }
//! ```
//!
//! The handler (and whatever clients it holds) is built once per process, before the first
//! event, and shared by every invocation. The raw payload is parsed into a
//! [`node_contract::NodeEvent`] here, and a [`node_contract::NodeError`] becomes the Lambda error
//! document `{"errorType": name, "errorMessage": message}`, so Step Functions sees the stable
//! error name as the state's `Error` and Retry/Catch match it.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use node_contract::{NodeError, NodeEvent, NodeFunction};
use serde_json::Value;

/// What a bootstrap's `main` returns: any error, shown as its message and causes. Rust prints
/// the error a `main` returns with `Debug`, which for a derived type is the variant's name
/// (`MissingDatabase`) rather than the message saying what to set; this `Debug` is the message.
pub struct Error(lambda_runtime::Error);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Self(Box::new(error))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Causes the message does not already quote (thiserror's `{0}` often does) are appended.
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text = format!("{text}: {cause_text}");
            }
            source = cause.source();
        }
        f.write_str(&text)
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(feature = "runtime-api-server")]
pub mod runtime_api;

/// Logs as JSON lines on stdout (CloudWatch parses them), level from `RUST_LOG` (default `info`),
/// without ANSI colours or timestamps (CloudWatch adds its own).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second init (e.g. in tests) keeps the first subscriber; that is not an error worth failing on.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// The Lambda error document for a node failure.
pub fn diagnostic(error: NodeError) -> Diagnostic {
    Diagnostic { error_type: error.name, error_message: error.message }
}

/// Serves `function` under the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) until the process ends.
pub async fn run<F: NodeFunction>(function: F) -> Result<(), Error> {
    let function = Arc::new(function);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = function.clone();
        async move {
            let outcome = match NodeEvent::from_value(event.payload) {
                Ok(node_event) => {
                    let node = node_event.node.id.clone();
                    let outcome = function.handle(node_event).await;
                    if let Err(e) = &outcome {
                        // `error_message`, not `message`: that key is the log line's own message.
                        tracing::warn!(node = %node, error = %e.name, error_message = %e.message, "node failed");
                    }
                    outcome
                }
                Err(e) => Err(e),
            };
            outcome.map_err(diagnostic)
        }
    }))
    .await
    .map_err(Error)
}

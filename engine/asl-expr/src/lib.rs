//! The expression languages of Amazon States Language: intrinsic functions and JSONata.
//!
//! Pure: no IO, no async. Both languages are parsed once ([`intrinsics::parse`],
//! [`jsonata::compile`]) and evaluated many times.

pub mod intrinsics;
pub mod jsonata;

/// An error as AWS Step Functions reports it: an error name such as `States.Runtime` and a cause.
///
/// `cause` is AWS's text without the prefix "An error occurred while executing the state 'X'
/// (entered at the event id #N). " which only the engine knows how to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct ExprError {
    pub error: String,
    pub cause: String,
}

impl ExprError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }

    /// `States.Runtime`, the error AWS raises for most bad intrinsic calls.
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new("States.Runtime", cause)
    }

    /// `States.QueryEvaluationError`, the error AWS raises when a JSONata expression fails.
    pub fn query(cause: impl Into<String>) -> Self {
        Self::new("States.QueryEvaluationError", cause)
    }
}

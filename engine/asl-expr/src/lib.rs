//! The expression languages of Amazon States Language, with AWS Step Functions' behaviour:
//! intrinsic functions for JSONPath states and JSONata for JSONata states.
//!
//! Pure: no IO, no async, no global state. Both languages are parsed once and evaluated many
//! times, and the parsed forms are `Send + Sync` so one definition serves concurrent executions.
//!
//! - [`intrinsics`]: [`intrinsics::parse`] a `States.*` call (syntax only, as AWS checks it when
//!   it accepts a definition; [`intrinsics::Intrinsic::check`] adds the arity and template checks
//!   AWS only makes at run time), then [`intrinsics::Intrinsic::eval`] it with a callback that
//!   resolves its path arguments (`$.a`, `$$.Execution.Id`, `$var.x`). Run-time failures are
//!   `States.Runtime` with AWS's cause `Invalid arguments in States.X`.
//! - [`jsonata`]: [`jsonata::compile`] the inside of `{% ... %}` (refusing what AWS refuses at
//!   definition time), then [`jsonata::Jsonata::eval`] it with the `$states` object and a
//!   lookup for Assign variables; `Ok(None)` is an undefined result. Built on `jsonata-core`;
//!   the module docs say why.
//!
//! Every error is an [`ExprError`]: AWS's error name and AWS's cause text without the
//! "An error occurred while executing the state 'X' (entered at the event id #N). " prefix, which
//! only the engine can write. The engine also adds the field-specific wording for JSONata
//! ([`jsonata::undefined_cause`], [`jsonata::eval_error_cause`]).

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
        Self { error: error.into(), cause: cause.into() }
    }

    /// `States.Runtime`, the error AWS raises for bad intrinsic calls and missing paths.
    pub fn runtime(cause: impl Into<String>) -> Self {
        Self::new("States.Runtime", cause)
    }

    /// `States.QueryEvaluationError`, the error AWS raises when a JSONata expression fails.
    pub fn query(cause: impl Into<String>) -> Self {
        Self::new("States.QueryEvaluationError", cause)
    }
}

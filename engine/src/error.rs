//! Errors: definition validation errors and the runtime failures of an execution.

use std::fmt;

/// AWS's predefined error names.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
    pub const PERMISSIONS: &str = "States.Permissions";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
}

/// One problem in a state machine definition. `location` is a JSON pointer into the definition
/// (e.g. `/States/Check/Choices/0/Next`), `state` and `field` name the culprit when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// A stable code in the style of ValidateStateMachineDefinition, e.g.
    /// `SCHEMA_VALIDATION_FAILED`, `MISSING_TRANSITION_TARGET`, `UNREACHABLE_STATE`.
    pub code: &'static str,
    pub location: String,
    pub state: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.code, self.location, self.message)
    }
}

/// All problems found in a definition (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A runtime failure travelling through an execution: the `Error` and `Cause` that Catch sees
/// and that end up in `ExecutionFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure { error: Some(error.into()), cause: Some(cause.into()) }
    }

    pub fn error_name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// The `{"Error": ..., "Cause": ...}` object a Catch passes on.
    pub fn to_error_output(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(e) = &self.error {
            m.insert("Error".into(), e.clone().into());
        }
        if let Some(c) = &self.cause {
            m.insert("Cause".into(), c.clone().into());
        }
        serde_json::Value::Object(m)
    }

    /// Whether a Retry or Catch with `ErrorEquals` list `names` handles this failure.
    /// `States.ALL` matches everything but `States.Runtime` (which AWS never lets a state
    /// handle) and `States.DataLimitExceeded` (handled only when named).
    pub fn matches(&self, names: &[String]) -> bool {
        let err = self.error_name();
        if err == names::RUNTIME {
            return false;
        }
        // States.TaskFailed acts as a wildcard for everything but States.Timeout (AWS docs).
        names.iter().any(|n| {
            n == err
                || (n == names::ALL && err != names::DATA_LIMIT_EXCEEDED)
                || (n == names::TASK_FAILED && err != names::TIMEOUT && err != names::DATA_LIMIT_EXCEEDED)
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error.as_deref().unwrap_or("-"), self.cause.as_deref().unwrap_or("-"))
    }
}

/// Why a callback (`send_task_success` etc.) was refused; the names are AWS's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("TaskDoesNotExist: no running task has this token (it finished, timed out or never existed)")]
    TaskDoesNotExist,
    #[error("InvalidOutput: the output is not valid JSON or exceeds 256 KiB")]
    InvalidOutput,
}

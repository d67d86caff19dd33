//! What can go wrong with an execution operation, and whether retrying is safe.
//!
//! The variants are domain facts, not HTTP statuses: the api maps them at its edge
//! (`fn-api`'s `error.rs`), the trigger function and the scheduler decide retry-or-poison with
//! [`ExecError::is_retryable`].

/// Why an execution operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A workflow, version or execution the caller's tenant does not have.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No Step Functions endpoint is configured, so nothing can run.
    #[error("executions need a Step Functions endpoint (set WEFT_SFN_ENDPOINT or WEFT_SFN_ENABLED)")]
    Disabled,
    /// The input is larger than Step Functions accepts.
    #[error(
        "the execution input is {size} bytes; Step Functions accepts at most {max} bytes (256 KiB)",
        max = crate::MAX_INPUT_BYTES
    )]
    InputTooLarge { size: usize },
    /// The workflow has no runnable published version (never published, or its state machine
    /// is gone); the text says which.
    #[error("{0}")]
    NotPublished(&'static str),
    /// The input does not match the start node's `input_schema`, or Step Functions refused it.
    #[error("{0}")]
    InvalidInput(String),
    /// A malformed request: an `Idempotency-Key` of the wrong length, a bad list filter or cursor.
    #[error("{0}")]
    BadRequest(String),
    /// The `Idempotency-Key` was used before with another input.
    #[error("this Idempotency-Key was used with a different input")]
    IdempotencyConflict,
    /// `?wait=true` on a STANDARD workflow.
    #[error("wait=true runs EXPRESS workflows only; this one is STANDARD")]
    NotExpress,
    /// Stop or redrive of an execution that has no execution ARN yet.
    #[error("the execution has not started yet")]
    NotStarted,
    /// Stop of an execution that is over; the status it has.
    #[error("the execution is already {0}")]
    NotRunning(String),
    /// Redrive of an execution that cannot be redriven; why.
    #[error("{0}")]
    NotRedrivable(String),
    /// Step Functions throttled the start (too many executions): retry shortly.
    #[error("too many executions; retry shortly")]
    Throttled,
    /// The database is unavailable or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A store (tenant repository) failure that is not a missing row.
    #[error("store: {0}")]
    Store(store::StoreError),
    /// Step Functions did not answer or failed (its error code and message).
    #[error("Step Functions: {0}")]
    StepFunctions(String),
    /// A broken invariant (a bug, or data edited by hand).
    #[error("internal: {0}")]
    Internal(String),
}

impl ExecError {
    /// Whether the same request may succeed later (a dependency was unavailable or throttled).
    /// `false` means retrying the same request fails the same way: the caller must change it.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled | Self::Database(_) | Self::StepFunctions(_) | Self::Internal(_) => true,
            Self::Store(e) => e.is_transient(),
            _ => false,
        }
    }

    /// Maps a store error, naming what was looked for.
    pub(crate) fn store(what: &'static str) -> impl Fn(store::StoreError) -> ExecError {
        move |err| match err {
            store::StoreError::NotFound => ExecError::NotFound(what),
            e => ExecError::Store(e),
        }
    }

    pub(crate) fn sdk<E: aws_sdk_sfn::error::ProvideErrorMetadata + std::fmt::Debug>(e: E) -> ExecError {
        ExecError::StepFunctions(format!("{:?}: {:?}", e.code(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::ExecError;

    #[test]
    fn only_unavailable_dependencies_are_retryable() {
        assert!(ExecError::Throttled.is_retryable());
        assert!(ExecError::StepFunctions("ServiceUnavailable".into()).is_retryable());
        assert!(ExecError::Database(sqlx::Error::PoolTimedOut).is_retryable());
        for e in [
            ExecError::NotFound("workflow"),
            ExecError::InvalidInput("no".into()),
            ExecError::IdempotencyConflict,
            ExecError::NotPublished("publish"),
            ExecError::InputTooLarge { size: 300_000 },
            ExecError::BadRequest("limit".into()),
        ] {
            assert!(!e.is_retryable(), "{e:?}");
        }
    }
}

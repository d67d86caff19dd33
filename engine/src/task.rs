//! The boundary between the engine and whatever executes Task states.
//!
//! The engine owns the Step Functions semantics of a Task (resource ARNs, `Parameters`, retries,
//! timeouts, heartbeats, `.waitForTaskToken`, `.sync`); a [`TaskInvoker`] only runs one function
//! invocation and reports its JSON result or a named failure. Implementations: in-process node
//! functions (for `weft run`), and the Lambda HTTP Invoke API (`cargo lambda watch`, LocalStack,
//! AWS; `LambdaHttpInvoker`, feature `lambda-invoke`).

use serde_json::Value;

/// One invocation of a function by a Task state.
#[derive(Debug, Clone)]
pub struct TaskCall {
    /// The state's `Resource`, e.g. `arn:aws:states:::lambda:invoke` or a bare Lambda ARN.
    pub resource: String,
    /// The function to call: `Parameters.FunctionName` for `lambda:invoke`, or the bare ARN.
    pub function_name: String,
    /// The event handed to the function: `Parameters.Payload` for `lambda:invoke`, or the
    /// effective input of the state for a bare ARN.
    pub payload: Value,
    pub context: TaskContext,
}

/// Where the invocation comes from; useful for logs, metrics and callbacks.
#[derive(Debug, Clone, Default)]
pub struct TaskContext {
    pub execution_arn: String,
    pub state_name: String,
    /// 0 for the first attempt, then 1, 2, ... for retries (`$$.State.RetryCount`).
    pub retry_count: u32,
    /// Set for `.waitForTaskToken` tasks: the token the engine waits on.
    pub task_token: Option<String>,
}

/// A failed invocation, named the way Step Functions names Lambda failures: `error` is the
/// function's `errorType` (e.g. `Http.Timeout`) and `cause` its message or JSON error document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    pub error: String,
    pub cause: String,
}

/// Executes function invocations on behalf of Task states.
#[async_trait::async_trait]
pub trait TaskInvoker: Send + Sync + 'static {
    /// Runs one invocation to completion. The returned value is the function's own output (the
    /// engine wraps it as `lambda:invoke` does: `{"Payload": ..., "StatusCode": 200, ...}`).
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure>;
}

/// An invoker for definitions without Tasks: every invocation fails with
/// `States.TaskFailed`, naming the function. Used by `weft exec` without `--lambda-endpoint`
/// and by the conformance runner.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInvoker;

#[async_trait::async_trait]
impl TaskInvoker for NoInvoker {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        Err(TaskFailure {
            error: "States.TaskFailed".into(),
            cause: format!(
                "no task invoker is configured, so '{}' ({}) cannot be called",
                call.function_name, call.resource
            ),
        })
    }
}

//! The engine's in-process [`TaskInvoker`]: runs node functions' handlers directly, so a local run
//! executes exactly the logic that is deployed as Lambdas.
//!
//! A Task's `FunctionName` is mapped to a node type with
//! [`node_contract::node_type_of_function`] (the same names the compiler emits: `${HttpFunctionArn}`,
//! a deployed ARN, ...), then the payload is handed to that type's handler. Failures come back
//! the way Step Functions reports a failed `lambda:invoke`: `error` is the function's `errorType`
//! (the stable [`node_contract::error_names`]) and `cause` the Lambda error document
//! `{"errorMessage": ..., "errorType": ...}` as a JSON string.
//!
//! The event's `execution.id` is always the engine's own execution ARN (`TaskContext`), whatever
//! the payload says, since functions find the execution's tenant (and its secrets) from it.

use engine::{TaskCall, TaskFailure, TaskInvoker};
use fn_approval::ApprovalFunction;
use fn_code::CodeFunction;
use fn_http::HttpFunction;
use node_contract::{NodeError, NodeEvent, NodeFunction};
use serde_json::Value;
use std::sync::Arc;

// Re-exported so callers (the CLI, tests) can configure the handlers without naming each crate.
pub use {fn_approval, fn_code, fn_http, tenant_secrets};

/// The node types whose functions exist and run in-process.
///
/// `approval` is not among them: its function stores a pending approval in Postgres and the
/// decision arrives through the api, so it runs only where both exist (`weft serve`, which adds it
/// with [`LocalFunctions::with_approval`]). `weft run` refuses a graph with an approval node
/// before starting, naming the node.
pub const AVAILABLE: &[&str] = &["http", "code"];

/// Whether `node_type`'s function can run locally.
pub fn is_available(node_type: &str) -> bool {
    AVAILABLE.contains(&node_type)
}

/// The handlers, built once (the http client and its pool are shared by every invocation).
#[derive(Clone)]
pub struct LocalFunctions {
    http: HttpFunction,
    code: CodeFunction,
    approval: Option<ApprovalFunction>,
}

/// A local function could not be set up from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("http function settings: {0}")]
    Http(#[from] fn_http::SettingsError),
    #[error("code function settings: {0}")]
    Code(#[from] fn_code::SettingsError),
}

impl LocalFunctions {
    pub fn new(http: HttpFunction, code: CodeFunction) -> Self {
        Self { http, code, approval: None }
    }

    /// Resolves `{{ secrets.NAME }}` through `resolver` in every function that takes secrets
    /// (`weft serve`: the tenant's secrets in Postgres; `weft run`: a `--secrets` file).
    pub fn with_secrets(mut self, resolver: Arc<dyn tenant_secrets::SecretResolver>) -> Self {
        self.http = self.http.with_secrets(resolver);
        self
    }

    /// Adds the approval function (it needs the api's database).
    pub fn with_approval(mut self, approval: ApprovalFunction) -> Self {
        self.approval = Some(approval);
        self
    }

    /// Each function reads its own settings from the environment, as its Lambda would.
    pub fn from_env() -> Result<Self, SetupError> {
        Ok(Self::new(HttpFunction::from_env()?, CodeFunction::from_env()?))
    }

    /// Runs one node event through the handler for `node_type`.
    pub async fn call(&self, node_type: &str, event: NodeEvent) -> Result<Value, NodeError> {
        match node_type {
            "http" => self.http.handle(event).await,
            "code" => self.code.handle(event).await,
            "approval" => match &self.approval {
                Some(approval) => approval.handle(event).await,
                None => Err(NodeError::new(
                    "Weft.FunctionNotAvailable",
                    format!(
                        "approval node `{}` needs `weft serve` (Postgres and the api) to wait for a decision",
                        event.node.id
                    ),
                )),
            },
            other => Err(NodeError::new(
                "Weft.FunctionNotAvailable",
                format!("the `{other}` node function is not available for local runs yet"),
            )),
        }
    }
}

/// The cause text of a failed `lambda:invoke`, as Step Functions records it.
pub fn lambda_cause(error: &NodeError) -> String {
    serde_json::json!({"errorMessage": error.message, "errorType": error.name}).to_string()
}

#[async_trait::async_trait]
impl TaskInvoker for LocalFunctions {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let Some(node_type) = node_contract::node_type_of_function(&call.function_name) else {
            // What Lambda answers for a function that does not exist.
            return Err(TaskFailure {
                error: "Lambda.ResourceNotFoundException".to_owned(),
                cause: format!("Function not found: {}", call.function_name),
            });
        };
        let fail = |e: NodeError| TaskFailure { error: e.name.clone(), cause: lambda_cause(&e) };
        let mut event = NodeEvent::from_value(call.payload).map_err(fail)?;
        // The engine knows the retry count even when the Payload did not ask for it.
        if event.attempt == 0 {
            event.attempt = call.context.retry_count;
        }
        // The engine's ARN, not the payload's: a function's tenant comes from it, so nothing a
        // graph put into the payload may choose it.
        event.execution.id = call.context.execution_arn.clone();
        if event.task_token.is_none() {
            event.task_token = call.context.task_token.clone();
        }
        self.call(node_type, event).await.map_err(fail)
    }
}

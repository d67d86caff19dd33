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
use fn_agent::AgentFunction;
use fn_approval::ApprovalFunction;
use fn_code::CodeFunction;
use fn_database::DatabaseFunction;
use fn_email::EmailFunction;
use fn_http::HttpFunction;
use fn_llm::LlmFunction;
use fn_slack::SlackFunction;
use fn_vector::{TenantResolver, VectorFunction};
use node_contract::{NodeError, NodeEvent, NodeFunction};
use serde_json::Value;
use std::sync::Arc;

// Re-exported so callers (the CLI, tests) can configure the handlers without naming each crate.
pub use {fn_agent, fn_approval, fn_code, fn_database, fn_email, fn_http, fn_llm, fn_slack, fn_vector, tenant_secrets};

/// The node types whose functions exist and run in-process.
///
/// `approval` is not among them: its function stores a pending approval in Postgres and the
/// decision arrives through the api, so it runs only where both exist (`weft serve`, which adds it
/// with [`LocalFunctions::with_approval`]). `weft run` refuses a graph with an approval node
/// before starting, naming the node.
///
/// The AI nodes ([`Ai`]) run against the model provider and Milvus of the environment
/// (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `WEFT_MILVUS_URL`). `multi_agent` has no function of its
/// own: the compiler runs each of its agents' turns on the `agent` function, so it runs wherever
/// `agent` does ([`function_of`]).
pub const AVAILABLE: &[&str] =
    &["http", "code", "database", "email", "slack", "llm", "agent", "multi_agent", "vector_search", "vector_upsert"];

/// The node type whose handler runs `node_type`'s Tasks: `multi_agent` turns run on the `agent`
/// function (state machines compiled before agents were lowered into states may still name
/// `MultiAgentFunction`; it is the same handler).
pub fn function_of(node_type: &str) -> &str {
    if node_type == "multi_agent" { "agent" } else { node_type }
}

/// Whether `node_type`'s function can run locally.
pub fn is_available(node_type: &str) -> bool {
    AVAILABLE.contains(&node_type)
}

/// The handlers, built once (the http client and its pool are shared by every invocation).
#[derive(Clone)]
pub struct LocalFunctions {
    http: HttpFunction,
    code: CodeFunction,
    integrations: Option<Integrations>,
    ai: Option<Ai>,
    approval: Option<ApprovalFunction>,
}

/// The functions that connect to a tenant's own systems (`database`, `email`, `slack`).
#[derive(Clone)]
pub struct Integrations {
    pub database: DatabaseFunction,
    pub email: EmailFunction,
    pub slack: SlackFunction,
}

impl Integrations {
    /// Each from its own settings in the environment, as its Lambda reads them.
    pub fn from_env() -> Result<Self, SetupError> {
        Ok(Self {
            database: DatabaseFunction::from_env()?,
            email: EmailFunction::from_env()?,
            slack: SlackFunction::from_env()?,
        })
    }

    fn with_secrets(self, resolver: Arc<dyn tenant_secrets::SecretResolver>) -> Self {
        Self {
            database: self.database.with_secrets(resolver.clone()),
            email: self.email.with_secrets(resolver.clone()),
            slack: self.slack.with_secrets(resolver),
        }
    }
}

/// The functions that call the model provider and the vector store: `llm`, `agent` (which also
/// runs `multi_agent` turns), `vector_search` and `vector_upsert` (one function for both).
#[derive(Clone)]
pub struct Ai {
    pub llm: LlmFunction,
    pub agent: AgentFunction,
    pub vector: VectorFunction,
}

impl Ai {
    /// Each from its own settings in the environment, as its Lambda reads them (`OPENAI_BASE_URL`,
    /// `OPENAI_API_KEY`, `WEFT_HTTP_ALLOW`, `WEFT_MODEL_PRICES`, `WEFT_LLM_MAX_RETRY_AFTER_SECONDS`;
    /// `WEFT_MILVUS_URL`, `WEFT_MILVUS_TOKEN`). Tokens go nowhere until [`LocalFunctions::with_token_sink`];
    /// vector nodes fail with `Vector.NoTenant` until [`LocalFunctions::with_tenants`].
    pub fn from_env() -> Result<Self, SetupError> {
        Ok(Self {
            llm: LlmFunction::from_env()?,
            agent: AgentFunction::from_env()?,
            vector: VectorFunction::from_env()?,
        })
    }

    fn with_secrets(self, resolver: Arc<dyn tenant_secrets::SecretResolver>) -> Self {
        Self {
            llm: self.llm.with_secrets(resolver.clone()),
            agent: self.agent.with_secrets(resolver.clone()),
            vector: self.vector.with_secrets(resolver),
        }
    }

    fn with_sink(self, sink: Arc<dyn fn_llm::TokenSink>) -> Self {
        Self { llm: self.llm.with_sink(sink.clone()), agent: self.agent.with_sink(sink), ..self }
    }

    fn with_tenants(self, tenants: Arc<dyn TenantResolver>) -> Self {
        Self { vector: self.vector.with_tenants(tenants), ..self }
    }
}

/// A local function could not be set up from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("http function settings: {0}")]
    Http(#[from] fn_http::SettingsError),
    #[error("code function settings: {0}")]
    Code(#[from] fn_code::SettingsError),
    #[error("database function settings: {0}")]
    Database(#[from] fn_database::SettingsError),
    #[error("email function settings: {0}")]
    Email(#[from] fn_email::SettingsError),
    #[error("slack function settings: {0}")]
    Slack(#[from] fn_slack::SettingsError),
    #[error("llm and agent function settings: {0}")]
    Llm(#[from] fn_llm::SettingsError),
    #[error("vector function settings: {0}")]
    Vector(#[from] fn_vector::SettingsError),
}

impl LocalFunctions {
    /// The `http` and `code` functions; add the others with [`Self::with_integrations`] and
    /// [`Self::with_ai`].
    pub fn new(http: HttpFunction, code: CodeFunction) -> Self {
        Self { http, code, integrations: None, ai: None, approval: None }
    }

    /// Adds the `llm`, `agent`/`multi_agent` and `vector_*` functions.
    pub fn with_ai(mut self, ai: Ai) -> Self {
        self.ai = Some(ai);
        self
    }

    /// Where the `llm` and `agent` functions' tokens go as they arrive: stderr for `weft run`
    /// ([`fn_llm::StderrSink`]), the execution's Redis token stream for `weft serve`
    /// ([`fn_llm::RedisSink`]). Call it after [`Self::with_ai`].
    pub fn with_token_sink(mut self, sink: Arc<dyn fn_llm::TokenSink>) -> Self {
        self.ai = self.ai.map(|a| a.with_sink(sink));
        self
    }

    /// How the vector functions find the tenant owning an execution (their data is scoped by
    /// it): `weft serve` the api's records in Postgres, `weft run` one fixed local tenant. Call
    /// it after [`Self::with_ai`].
    pub fn with_tenants(mut self, tenants: Arc<dyn TenantResolver>) -> Self {
        self.ai = self.ai.map(|a| a.with_tenants(tenants));
        self
    }

    /// Adds the `database`, `email` and `slack` functions.
    pub fn with_integrations(mut self, integrations: Integrations) -> Self {
        self.integrations = Some(integrations);
        self
    }

    /// Resolves secrets (`{{ secrets.NAME }}`, and the `connection` a database, email or slack
    /// node names) through `resolver` in every function that takes secrets (`weft serve`: the
    /// tenant's secrets in Postgres; `weft run`: a `--secrets` file). Call it after
    /// [`Self::with_integrations`] and [`Self::with_ai`].
    pub fn with_secrets(mut self, resolver: Arc<dyn tenant_secrets::SecretResolver>) -> Self {
        self.http = self.http.with_secrets(resolver.clone());
        self.integrations = self.integrations.map(|i| i.with_secrets(resolver.clone()));
        self.ai = self.ai.map(|a| a.with_secrets(resolver));
        self
    }

    /// Adds the approval function (it needs the api's database).
    pub fn with_approval(mut self, approval: ApprovalFunction) -> Self {
        self.approval = Some(approval);
        self
    }

    /// Each function reads its own settings from the environment, as its Lambda would.
    pub fn from_env() -> Result<Self, SetupError> {
        Ok(Self::new(HttpFunction::from_env()?, CodeFunction::from_env()?)
            .with_integrations(Integrations::from_env()?)
            .with_ai(Ai::from_env()?))
    }

    /// Runs one node event through the handler for `node_type`.
    pub async fn call(&self, node_type: &str, event: NodeEvent) -> Result<Value, NodeError> {
        match node_type {
            "http" => self.http.handle(event).await,
            "code" => self.code.handle(event).await,
            "llm" | "agent" | "multi_agent" | "vector_search" | "vector_upsert" => match &self.ai {
                Some(ai) if node_type == "llm" => ai.llm.handle(event).await,
                Some(ai) if function_of(node_type) == "agent" => ai.agent.handle(event).await,
                // One handler for both: the event's `node.type` picks the operation.
                Some(ai) => ai.vector.handle(event).await,
                None => Err(NodeError::new(
                    "Weft.FunctionNotAvailable",
                    format!("the `{node_type}` function is not configured in this process"),
                )),
            },
            "database" | "email" | "slack" => match &self.integrations {
                Some(i) if node_type == "database" => i.database.handle(event).await,
                Some(i) if node_type == "email" => i.email.handle(event).await,
                Some(i) => i.slack.handle(event).await,
                None => Err(NodeError::new(
                    "Weft.FunctionNotAvailable",
                    format!("the `{node_type}` function is not configured in this process"),
                )),
            },
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

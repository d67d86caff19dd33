//! The `approval` node's function.
//!
//! The compiler makes an approval node a `lambda:invoke.waitForTaskToken` Task whose payload
//! carries `task_token` (`$$.Task.Token`), the node's `config` (`message`, `timeout_seconds`) and
//! the execution ARN. This function stores a pending approval (tenant and execution found from
//! the ARN, expiry from `timeout_seconds`) and returns at once; the execution stays in the Task
//! until the api's `POST /v1/approvals/{id}` sends SendTaskSuccess or SendTaskFailure with the
//! token, or until the Task's `TimeoutSeconds` (the same `timeout_seconds`) fails it with
//! `States.Timeout`.

use std::time::Duration;

use chrono::Utc;
use node_contract::{NodeError, NodeEvent, NodeFunction, error_names};
use serde_json::{Value, json};
use triggers::approvals::{Approvals, NewApproval};

/// The error names this function fails with.
pub mod errors {
    /// The execution ARN has no `executions` row (it was not started through Weft's api).
    pub const UNKNOWN_EXECUTION: &str = "Approval.UnknownExecution";
    /// Postgres is unreachable (transient).
    pub const STORE: &str = "Approval.StoreUnavailable";
    /// The payload has no `task_token` (the Task is not `.waitForTaskToken`).
    pub const NO_TOKEN: &str = "Approval.NoTaskToken";
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("WEFT_DATABASE_URL must be set for the approval function")]
    MissingDatabase,
    #[error("cannot connect to Postgres: {0}")]
    Connect(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct ApprovalFunction {
    approvals: Approvals,
    /// How long to wait for the execution's row to carry its ARN (the api records it right after
    /// StartExecution returns, and the approval node can run before that).
    lookup_wait: Duration,
}

impl ApprovalFunction {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { approvals: Approvals::new(pool), lookup_wait: Duration::from_secs(10) }
    }

    /// Connects lazily to `WEFT_DATABASE_URL` (the first invocation opens the connection).
    pub fn from_env() -> Result<Self, SettingsError> {
        let url = std::env::var("WEFT_DATABASE_URL").map_err(|_| SettingsError::MissingDatabase)?;
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_lazy(&url)?;
        Ok(Self::new(pool))
    }

    pub fn with_lookup_wait(mut self, wait: Duration) -> Self {
        self.lookup_wait = wait;
        self
    }
}

fn store_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::new(errors::STORE, format!("cannot store the approval: {e}"))
}

impl NodeFunction for ApprovalFunction {
    async fn handle(&self, event: NodeEvent) -> Result<Value, NodeError> {
        let config = event.config_object()?;
        let message = match config.get("message") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(NodeError::config(
                    "message",
                    format!("expected a string, got {}", node_contract::kind_of(other)),
                ));
            }
            None => return Err(NodeError::config("message", "missing")),
        };
        let timeout_seconds = match config.get("timeout_seconds") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => return Err(NodeError::config("timeout_seconds", "must be a positive integer")),
            },
        };
        let token = event.task_token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            NodeError::new(
                errors::NO_TOKEN,
                "the event has no task_token; approval Tasks use lambda:invoke.waitForTaskToken",
            )
        })?;
        if event.execution.id.is_empty() {
            return Err(NodeError::new(error_names::CONFIG_INVALID, "execution.id: missing (the execution ARN)"));
        }
        let started = tokio::time::Instant::now();
        let (execution_id, tenant) = loop {
            match self.approvals.execution_of(&event.execution.id).await.map_err(store_error)? {
                Some(found) => break found,
                None if started.elapsed() < self.lookup_wait => tokio::time::sleep(Duration::from_millis(200)).await,
                None => {
                    return Err(NodeError::new(
                        errors::UNKNOWN_EXECUTION,
                        format!(
                            "execution {} was not started through Weft's api, so the approval has no tenant",
                            event.execution.id
                        ),
                    ));
                }
            }
        };
        let timeout_at =
            timeout_seconds.and_then(|s| i64::try_from(s).ok()).map(|s| Utc::now() + chrono::Duration::seconds(s));
        let approval = self
            .approvals
            .create(NewApproval {
                tenant,
                execution_id,
                node_id: event.node.id.clone(),
                task_token: token,
                message,
                timeout_at,
            })
            .await
            .map_err(store_error)?;
        tracing::info!(approval = %approval.id, execution = %execution_id, node = %event.node.id, "approval pending");
        Ok(json!({"approval_id": approval.id, "status": approval.status}))
    }
}

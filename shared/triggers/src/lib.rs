//! Approvals and triggers: their Postgres repositories, the [`Starter`] seam through which a
//! trigger starts an execution, a cron parser and webhook signatures. Shared by `fn-api` (the
//! `/v1/approvals` and `/v1/hooks` routes, the scheduler of `weft serve`), `fn-approval` (the
//! approval node's function) and `fn-trigger` (the SQS consumer), whose consumer code
//! ([`queue`]) `weft serve` also runs in-process for `POST /v1/events`.
//!
//! Architecture invariants:
//! - every query that serves a caller filters on the caller's tenant; the documented exceptions
//!   are lookups that *find* the tenant from something the caller cannot forge: a workflow id
//!   whose webhook signature is then verified ([`Registry::webhook`]), an execution ARN handed
//!   to the approval function by Step Functions ([`Approvals::execution_of`]), the queue event
//!   name of a message on Weft's own queue ([`Registry::queue_targets`], scoped to the
//!   message's tenant when it names one, as `POST /v1/events` always does) and the scheduler's
//!   scan of due schedules;
//! - a decided approval never changes again (updates are guarded by `status = 'pending'`);
//! - a schedule's due time is fired at most once per trigger row: `last_fired_at` advances by
//!   compare-and-set, and the start carries an idempotency key made of the trigger and due time.

pub mod approvals;
pub mod cron;
pub mod queue;
pub mod registry;
pub mod signature;

use serde_json::Value;
use uuid::Uuid;

pub use approvals::{Approval, Approvals, Claim, DecideError, Decision};
pub use registry::{GraphTrigger, Registry, TriggerRow};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot seal or open a webhook secret: {0}")]
    Secret(#[from] secrets::SecretsError),
    #[error("this process has no secrets key (WEFT_SECRETS_KEY), which webhook secrets need")]
    NoSecretsKey,
}

/// What starting an execution needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    pub tenant: String,
    pub workflow_id: Uuid,
    pub input: Value,
    /// Makes a retried start (an SQS redelivery, a scheduler restart) return the first execution.
    pub idempotency_key: Option<String>,
    /// Recorded as `started_by`, e.g. `trigger:webhook:<id>`.
    pub started_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub id: Uuid,
    pub status: String,
}

/// Why a start failed, split by whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The workflow does not exist, is not published, or the input is invalid: retrying the same
    /// request fails again (an SQS message with this outcome is poison).
    #[error("{0}")]
    Rejected(String),
    /// Storage or Step Functions is unavailable: retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
}

/// Starts executions the way `POST /v1/workflows/{id}/executions` does; implemented by `fn-api`.
#[async_trait::async_trait]
pub trait Starter: Send + Sync {
    async fn start(&self, request: StartRequest) -> Result<Started, StartError>;
}

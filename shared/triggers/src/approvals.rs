//! Pending human decisions of `approval` nodes.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::Error;

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Approval {
    pub id: Uuid,
    pub tenant_id: String,
    pub execution_id: Uuid,
    pub node_id: String,
    pub task_token: String,
    pub message: String,
    pub status: String,
    pub timeout_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub output: Option<Value>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn status(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no such approval")]
    NotFound,
    #[error("the approval was already {0}")]
    AlreadyDecided(String),
    #[error("the approval timed out at {0}")]
    Expired(DateTime<Utc>),
    #[error(transparent)]
    Store(#[from] Error),
}

/// A decision being claimed.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub decision: Decision,
    pub by: &'a str,
    pub comment: Option<&'a str>,
    /// The output SendTaskSuccess will carry (approvals only).
    pub output: Option<&'a Value>,
    pub now: DateTime<Utc>,
}

/// A new pending approval, as the approval function writes it.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub tenant: String,
    pub execution_id: Uuid,
    pub node_id: String,
    pub task_token: String,
    pub message: String,
    pub timeout_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, tenant_id, execution_id, node_id, task_token, message, status, timeout_at, decided_by, decided_at, comment, output, created_at";

#[derive(Clone)]
pub struct Approvals {
    pool: PgPool,
}

impl Approvals {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The execution row (id, tenant) of an execution ARN. Not tenant-scoped: the ARN comes from
    /// Step Functions (`$$.Execution.Id`), and this is how the approval's tenant is found. The
    /// execution's name is tried as the row id too, for rows whose ARN is not recorded yet.
    pub async fn execution_of(&self, execution_arn: &str) -> Result<Option<(Uuid, String)>, Error> {
        let by_name = arn::ExecutionArn::parse(execution_arn).ok().and_then(|a| Uuid::parse_str(a.name).ok());
        let row: Option<(Uuid, String)> = sqlx::query_as(
            "SELECT id, tenant_id FROM executions WHERE execution_arn = $1 OR id = $2 ORDER BY (execution_arn = $1) DESC LIMIT 1",
        )
        .bind(execution_arn)
        .bind(by_name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Stores a pending approval; a retried call with the same task token returns the first row.
    pub async fn create(&self, new: NewApproval) -> Result<Approval, Error> {
        let inserted: Option<Approval> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO approvals (id, tenant_id, execution_id, node_id, task_token, message, timeout_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT ((md5(task_token))) DO NOTHING
             RETURNING {COLUMNS}"
        )))
        .bind(Uuid::new_v4())
        .bind(&new.tenant)
        .bind(new.execution_id)
        .bind(&new.node_id)
        .bind(&new.task_token)
        .bind(&new.message)
        .bind(new.timeout_at)
        .fetch_optional(&self.pool)
        .await?;
        match inserted {
            Some(a) => Ok(a),
            None => Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM approvals WHERE md5(task_token) = md5($1)"
            )))
            .bind(&new.task_token)
            .fetch_one(&self.pool)
            .await?),
        }
    }

    /// Pending approvals of `tenant` that have not expired at `now` and whose execution still
    /// runs (a stopped or failed execution's approval can no longer be decided), newest first.
    pub async fn list_pending(&self, tenant: &str, now: DateTime<Utc>, limit: i64) -> Result<Vec<Approval>, Error> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals
             WHERE tenant_id = $1 AND status = 'pending' AND (timeout_at IS NULL OR timeout_at > $2)
               AND EXISTS (SELECT 1 FROM executions e WHERE e.id = approvals.execution_id AND e.status IN ('PENDING', 'RUNNING'))
             ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(tenant)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Approval>, Error> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The status of the execution an approval of `tenant` belongs to (`None`: no such approval).
    pub async fn execution_status(&self, tenant: &str, id: Uuid) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT e.status FROM approvals a JOIN executions e ON e.id = a.execution_id AND e.tenant_id = a.tenant_id
             WHERE a.tenant_id = $1 AND a.id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Claims a pending, unexpired approval for `decision`. An expired one is marked `timed_out`.
    pub async fn claim(&self, tenant: &str, id: Uuid, claim: Claim<'_>) -> Result<Approval, DecideError> {
        let Claim { decision, by, comment, output, now } = claim;
        let claimed: Option<Approval> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE approvals SET status = $3, decided_by = $4, decided_at = $5, comment = $6, output = $7
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending' AND (timeout_at IS NULL OR timeout_at > $5)
             RETURNING {COLUMNS}"
        )))
        .bind(tenant)
        .bind(id)
        .bind(decision.status())
        .bind(by)
        .bind(now)
        .bind(comment)
        .bind(output)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::from)?;
        if let Some(a) = claimed {
            return Ok(a);
        }
        let current = self.get(tenant, id).await?.ok_or(DecideError::NotFound)?;
        match (current.status.as_str(), current.timeout_at) {
            ("pending", Some(at)) => {
                self.mark_timed_out(tenant, id).await?;
                Err(DecideError::Expired(at))
            }
            ("timed_out", Some(at)) => Err(DecideError::Expired(at)),
            (status, _) => Err(DecideError::AlreadyDecided(status.to_owned())),
        }
    }

    /// Puts a claimed approval back to pending (the decision could not be delivered, retryable).
    pub async fn release(&self, tenant: &str, id: Uuid) -> Result<(), Error> {
        sqlx::query(
            "UPDATE approvals SET status = 'pending', decided_by = NULL, decided_at = NULL, comment = NULL, output = NULL
             WHERE tenant_id = $1 AND id = $2 AND status IN ('approved', 'rejected')",
        )
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks an approval whose task no longer waits (timed out or the execution ended).
    pub async fn mark_timed_out(&self, tenant: &str, id: Uuid) -> Result<(), Error> {
        sqlx::query("UPDATE approvals SET status = 'timed_out' WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

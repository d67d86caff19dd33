//! Interrupted starts: rows whose process died between the INSERT and recording the ARN.

use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use sqlx::Row as _;
use uuid::Uuid;

use crate::{ExecError, Executions};

/// How long a start may take before [`Executions::sweep_orphans`] treats its row as orphaned: far more than
/// an INSERT and a `StartExecution` call need, so only starts whose process died are swept.
pub const START_GRACE: Duration = Duration::from_secs(30);

/// The error of a row whose start was interrupted and did not start.
const INTERRUPTED: &str = "Weft.StartInterrupted";

impl Executions {
    /// Resolves executions whose start was interrupted (the process died between the row's INSERT
    /// and recording the execution's ARN; a client hanging up no longer does it, see `Executions::start`):
    /// rows PENDING, or RUNNING without an ARN (a `?wait=true` start), that started before `cutoff`.
    /// If Step Functions did start the execution (it is named after the row), the row gets its ARN
    /// and the recorder takes it from there; otherwise it becomes FAILED with
    /// `Weft.StartInterrupted`, visibly. Every Step Functions call is bounded by `call_timeout`.
    /// Returns how many rows were resolved. `weft serve` runs it at start-up (cutoff: its own start)
    /// and then every few seconds (cutoff: now minus [`START_GRACE`], or the sync wait for sync rows).
    pub async fn sweep_orphans(
        &self,
        cutoff: DateTime<Utc>,
        sync_cutoff: DateTime<Utc>,
        call_timeout: Duration,
    ) -> Result<usize, ExecError> {
        let pool = self.pool();
        let rows = sqlx::query(
            "SELECT e.id, e.workflow_id, e.status, w.state_machine_arn FROM executions e JOIN workflows w ON w.id = e.workflow_id \
             WHERE e.execution_arn IS NULL AND ((e.status = 'PENDING' AND e.started_at < $1) \
                OR (e.status = 'RUNNING' AND e.started_at < $2)) \
             ORDER BY e.started_at LIMIT 1000",
        )
        .bind(cutoff)
        .bind(sync_cutoff)
        .fetch_all(pool)
        .await?;
        let mut resolved = 0;
        for row in rows {
            let id: Uuid = row.try_get("id")?;
            let workflow_id: Uuid = row.try_get("workflow_id")?;
            let status: String = row.try_get("status")?;
            let machine: Option<String> = row.try_get("state_machine_arn")?;
            let mut found = None;
            // A stored state machine ARN that does not parse cannot have started anything.
            let arn = machine.as_deref().and_then(|m| execution_arn(m, id));
            if let (Some(arn), Some(client)) = (arn, self.sfn_client()) {
                let described =
                    tokio::time::timeout(call_timeout, client.describe_execution().execution_arn(&arn).send()).await;
                match described {
                    Ok(Ok(_)) => found = Some(arn),
                    Ok(Err(err)) if err.code() == Some("ExecutionDoesNotExist") => {}
                    // Step Functions did not answer: a PENDING row waits for the next sweep; a sync
                    // row is past any wait its process could still be in, so it fails below.
                    Ok(Err(err)) if status == "PENDING" => {
                        tracing::warn!(execution = %id, error = ?err.code(), "cannot tell whether an interrupted start ran; will retry");
                        continue;
                    }
                    Err(_) if status == "PENDING" => {
                        tracing::warn!(execution = %id, "Step Functions did not answer within {call_timeout:?}; will retry");
                        continue;
                    }
                    Ok(Err(_)) | Err(_) => {}
                }
            }
            let adopted = found.is_some();
            // Each resolution records its domain event in its statement: the adopted execution
            // has started (it gets its ARN now), the other one failed.
            let mut domain = domain_events::Batch::new();
            let changed: i64 = match found {
                Some(arn) => {
                    domain.push(crate::outbox::started(id, workflow_id));
                    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "WITH upd AS (UPDATE executions SET status = CASE WHEN status = 'PENDING' THEN 'RUNNING' ELSE status END, \
                           execution_arn = $2 WHERE id = $1 AND status = $3 AND execution_arn IS NULL RETURNING tenant_id), \
                         ev AS ({}) SELECT count(*) FROM upd",
                        domain_events::insert_sql("upd", "upd.tenant_id", "$4")
                    )))
                    .bind(id)
                    .bind(arn)
                    .bind(&status)
                    .bind(domain.to_param())
                    .fetch_one(pool)
                    .await?
                }
                None => {
                    domain.extend(crate::outbox::ended(id, workflow_id, "FAILED", Some(INTERRUPTED)));
                    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "WITH upd AS (UPDATE executions SET status = 'FAILED', error = $4, cause = $3, \
                           stopped_at = now() WHERE id = $1 AND status = $2 AND execution_arn IS NULL RETURNING tenant_id), \
                         ev AS ({}) SELECT count(*) FROM upd",
                        domain_events::insert_sql("upd", "upd.tenant_id", "$5")
                    )))
                    .bind(id)
                    .bind(&status)
                    .bind(if status == "PENDING" {
                        "the process starting this execution stopped before Step Functions started it; start it again"
                    } else {
                        "the process running this synchronous execution stopped before recording its result; it may have run partly"
                    })
                    .bind(INTERRUPTED)
                    .bind(domain.to_param())
                    .fetch_one(pool)
                    .await?
                }
            };
            if changed > 0 {
                resolved += 1;
                if adopted {
                    let _ = self.record(id).await;
                }
            }
        }
        Ok(resolved)
    }

    /// The database's clock (row timestamps come from it, so cut-offs must too).
    pub async fn db_now(&self) -> Result<DateTime<Utc>, ExecError> {
        Ok(sqlx::query_scalar("SELECT now()").fetch_one(self.pool()).await?)
    }
}

/// The ARN Step Functions gives execution `id` (executions are named after their row) of
/// `state_machine`; `None` when the stored state machine ARN is not one.
fn execution_arn(state_machine: &str, id: Uuid) -> Option<String> {
    let name = id.to_string();
    arn::StateMachineArn::parse(state_machine).ok().map(|m| m.unqualified().execution(&name).to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn execution_arns_follow_the_unqualified_state_machine() {
        let id = uuid::Uuid::nil();
        let want = format!("arn:aws:states:us-east-1:123456789012:execution:weft-w:{id}");
        for machine in [
            "arn:aws:states:us-east-1:123456789012:stateMachine:weft-w",
            "arn:aws:states:us-east-1:123456789012:stateMachine:weft-w:3",
            "arn:aws:states:us-east-1:123456789012:stateMachine:weft-w:live",
        ] {
            assert_eq!(super::execution_arn(machine, id).as_deref(), Some(want.as_str()), "{machine}");
        }
        assert_eq!(super::execution_arn("not an arn", id), None);
    }
}

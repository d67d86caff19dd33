//! Stop and redrive: Step Functions acts, then the row follows the recorded history.

use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use sqlx::Row as _;
use uuid::Uuid;

use crate::{ExecError, Execution, Executions, is_terminal};

impl Executions {
    /// The execution's ARN and status.
    async fn arn_of(&self, tenant: &str, id: Uuid) -> Result<(String, String), ExecError> {
        let row = sqlx::query("SELECT execution_arn, status FROM executions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(ExecError::NotFound("execution"))?;
        let arn: Option<String> = row.try_get("execution_arn")?;
        let status: String = row.try_get("status")?;
        Ok((arn.ok_or(ExecError::NotStarted)?, status))
    }

    /// Stops a running execution (ABORTED).
    pub async fn stop(
        &self,
        tenant: &str,
        id: Uuid,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<Execution, ExecError> {
        let client = self.sfn()?;
        let (arn, status) = self.arn_of(tenant, id).await?;
        if is_terminal(&status) {
            return Err(ExecError::NotRunning(status));
        }
        client
            .stop_execution()
            .execution_arn(&arn)
            .set_error(error)
            .set_cause(cause)
            .send()
            .await
            .map_err(ExecError::sdk)?;
        if !self.wait_recorded(id, is_terminal).await {
            // Step Functions has stopped it (or it had ended), but its history could not be
            // recorded: the row still ends, with Step Functions' own status, so a stop is never a
            // no-op. The recorder adds the events when it can.
            let described = client.describe_execution().execution_arn(&arn).send().await.map_err(ExecError::sdk)?;
            let status = described.status().as_str().to_owned();
            if is_terminal(&status) {
                // The row ends here, so its outcome's domain event goes with this write (the
                // recording that follows finds the status unchanged and records none).
                let mut tx = self.pool().begin().await?;
                let ended: Option<Uuid> = sqlx::query_scalar(
                    "UPDATE executions SET status = $2, error = $3, cause = $4, stopped_at = now() \
                     WHERE id = $1 AND status IN ('PENDING', 'RUNNING') RETURNING workflow_id",
                )
                .bind(id)
                .bind(&status)
                .bind(described.error())
                .bind(described.cause())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(event) = ended.and_then(|w| crate::outbox::ended(id, w, &status, described.error())) {
                    domain_events::record(&mut tx, tenant, &event).await?;
                }
                tx.commit().await?;
            }
        }
        self.get(tenant, id).await
    }

    /// Redrives a FAILED, ABORTED or TIMED_OUT execution from the state that failed.
    pub async fn redrive(&self, tenant: &str, id: Uuid) -> Result<Execution, ExecError> {
        let client = self.sfn()?;
        let (arn, status) = self.arn_of(tenant, id).await?;
        if !matches!(status.as_str(), "FAILED" | "ABORTED" | "TIMED_OUT") {
            return Err(ExecError::NotRedrivable(format!(
                "only FAILED, ABORTED or TIMED_OUT executions can be redriven; this one is {status}"
            )));
        }
        match client.redrive_execution().execution_arn(arn).send().await {
            Ok(_) => {}
            Err(err) if err.code() == Some("ExecutionNotRedrivable") => {
                return Err(ExecError::NotRedrivable(
                    err.message().unwrap_or("Step Functions cannot redrive this execution").to_owned(),
                ));
            }
            Err(err) => return Err(ExecError::sdk(err)),
        }
        // The row follows the history: RUNNING again once ExecutionRedriven is recorded.
        let _ = self.wait_recorded(id, |s| s != status).await;
        self.get(tenant, id).await
    }

    /// Records until `done(status)` or about two seconds pass; returns whether `done` held.
    async fn wait_recorded(&self, id: Uuid, done: impl Fn(&str) -> bool) -> bool {
        for _ in 0..40 {
            let _ = self.record(id).await;
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM executions WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .ok()
                .flatten();
            if status.as_deref().is_some_and(&done) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

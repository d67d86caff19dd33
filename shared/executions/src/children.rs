//! Child executions of `workflow` nodes (`states:startExecution.sync:2`): before the endpoint
//! starts one, [`Executions::adopt_child`] gives it a row of its own, in its parent's tenant.
//!
//! The row makes the child a Weft execution like any other: it is listed by `GET
//! /v1/executions` (with `parent_execution_id`), the recorder records its events and outcome,
//! and its node functions find its tenant (and secrets) from its ARN, since the child is named
//! after the row id exactly as the api names the executions it starts.
//!
//! Tenant isolation: the child's state machine version must be a published version of a workflow
//! in the *parent's* tenant; a graph whose `workflow` node names another tenant's state machine
//! (whatever ARN it writes) gets [`ChildRefused`] instead of a start.

use uuid::Uuid;

use crate::{ExecError, Executions};

/// What the endpoint passes on about a child it is about to start.
#[derive(Debug, Clone, Copy)]
pub struct Child<'a> {
    pub parent_execution_arn: &'a str,
    /// The unqualified state machine ARN.
    pub state_machine_arn: &'a str,
    /// The version that will run (an alias start has picked one).
    pub version_arn: Option<&'a str>,
    pub input: &'a str,
}

/// Why a child execution may not start.
#[derive(Debug, thiserror::Error)]
pub enum ChildRefused {
    /// The parent is not an execution Weft started (so it has no tenant to give the child).
    #[error("execution {0} was not started through Weft, so its child has no tenant")]
    UnknownParent(String),
    /// The state machine is not a published workflow version of the parent's tenant.
    #[error("{0} is not a published workflow of this execution's tenant")]
    NotAWorkflow(String),
    #[error(transparent)]
    Store(#[from] ExecError),
}

impl ChildRefused {
    /// The error name the parent's `workflow` Task fails with.
    pub fn error_name(&self) -> &'static str {
        match self {
            Self::Store(e) if e.is_retryable() => "Weft.Unavailable",
            _ => "Weft.ChildNotAllowed",
        }
    }
}

impl Executions {
    /// Inserts the RUNNING row of a child execution and returns its id, the name the child must
    /// be started with (its ARN is then `<state machine ARN>:<id>` in execution form, stored on
    /// the row so the recorder finds it).
    pub async fn adopt_child(&self, child: Child<'_>) -> Result<Uuid, ChildRefused> {
        let parent = arn::ExecutionArn::parse(child.parent_execution_arn)
            .ok()
            .and_then(|a| Uuid::parse_str(a.name).ok())
            .ok_or_else(|| ChildRefused::UnknownParent(child.parent_execution_arn.to_owned()))?;
        let sm = arn::StateMachineArn::parse(child.state_machine_arn)
            .map_err(|_| ChildRefused::NotAWorkflow(child.state_machine_arn.to_owned()))?;
        let id = Uuid::new_v4();
        let name = id.to_string();
        let execution_arn = sm.execution(&name).to_string();
        // The version: the one the start resolved to, or the workflow's live one for an
        // unqualified start; either way a version of a workflow in the parent's tenant. The row
        // has its ARN from the start, so its `ExecutionStarted` goes with it.
        let mut tx = self.pool().begin().await.map_err(ExecError::from)?;
        let inserted: Option<(String, Uuid)> = sqlx::query_as(
            "INSERT INTO executions (id, tenant_id, workflow_id, version, execution_arn, status, input, started_by, \
                                     parent_execution_id) \
             SELECT $1, p.tenant_id, v.workflow_id, v.version, $2, 'RUNNING', $3::text::json, 'workflow:' || p.id::text, p.id \
             FROM executions p \
             JOIN workflow_versions v ON v.tenant_id = p.tenant_id \
             JOIN workflows w ON w.id = v.workflow_id AND w.tenant_id = p.tenant_id AND w.deleted_at IS NULL \
             WHERE p.id = $4 \
               AND (($5::text IS NOT NULL AND v.state_machine_version_arn = $5) \
                 OR ($5::text IS NULL AND v.state_machine_arn = $6 AND v.version = w.live_version)) \
             LIMIT 1 \
             RETURNING tenant_id, workflow_id",
        )
        .bind(id)
        .bind(&execution_arn)
        .bind(child.input)
        .bind(parent)
        .bind(child.version_arn)
        .bind(child.state_machine_arn)
        .fetch_optional(&mut *tx)
        .await
        .map_err(ExecError::from)?;
        match inserted {
            Some((tenant, workflow_id)) => {
                let event = crate::outbox::started(id, workflow_id);
                domain_events::record(&mut tx, &tenant, &event).await.map_err(ExecError::from)?;
                tx.commit().await.map_err(ExecError::from)?;
                Ok(id)
            }
            None => {
                let known: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM executions WHERE id = $1")
                    .bind(parent)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(ExecError::from)?;
                Err(match known {
                    None => ChildRefused::UnknownParent(child.parent_execution_arn.to_owned()),
                    Some(_) => {
                        ChildRefused::NotAWorkflow(child.version_arn.unwrap_or(child.state_machine_arn).to_owned())
                    }
                })
            }
        }
    }
}

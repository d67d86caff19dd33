//! Child executions: the `states:startExecution[.sync[:2]]` Tasks of executions on this endpoint
//! start their children here ([`Children`], the engine's `ChildStarter`), exactly as
//! StartExecution starts an execution: the state machine ARN resolved by [`Service::target`]
//! (unqualified: the latest revision; a version; an alias, by its weights), the same name and
//! payload checks, an execution record with its version and alias ARNs, the history stored by
//! [`Service::drive`] and the end announced on `ended_executions`. So a child is listed,
//! described, stopped and redriven like any execution, and whoever follows the announcements
//! records it.
//!
//! The host may name children ([`ChildNamer`], `SfnState::set_child_namer`): Weft's execution
//! domain gives each child a row of its own, and the name is that row's id. Without a namer, a
//! child is named as the Task asked (`Parameters.Name`) or with a UUID.
//!
//! Failures to start fail the parent's Task as AWS reports them: `StepFunctions.<Code>Exception`
//! (e.g. `StepFunctions.StateMachineDoesNotExistException`) with the service's message and its
//! request details as the cause; a namer's error as the namer gave it.

use std::sync::{Arc, Weak};

use engine::{ChildExecution, ChildRequest, ChildStarter, TaskFailure};

use super::Service;
use super::executions::Launched;
use crate::error::SfnError;

/// What a [`ChildNamer`] is told about a child execution about to start.
#[derive(Debug, Clone, Copy)]
pub struct ChildStart<'a> {
    /// The execution whose Task starts the child.
    pub parent_execution_arn: &'a str,
    /// The child's state machine, unqualified (whatever version or alias the Task named).
    pub state_machine_arn: &'a str,
    /// The version that will run, when the Task named a version or an alias.
    pub version_arn: Option<&'a str>,
    /// The alias the Task named, if it did.
    pub alias_arn: Option<&'a str>,
    /// `Parameters.Name` of the Task, if any.
    pub requested_name: Option<&'a str>,
    /// The child's input, as JSON text (within the payload limit: checked before the namer runs).
    pub input: &'a str,
}

/// Names child executions for the host (see the module docs).
#[async_trait::async_trait]
pub trait ChildNamer: Send + Sync + 'static {
    /// The name the child execution gets (None: the requested name, or a UUID). Err(error, cause)
    /// fails the parent's Task with that error.
    async fn name_child(&self, start: ChildStart<'_>) -> Result<Option<String>, (String, String)>;
}

/// The engine's way back to the service that owns it: a weak reference, since the service owns
/// the engine (the service is built with `Arc::new_cyclic`).
pub(super) struct Children {
    pub(super) svc: Weak<Service>,
}

#[async_trait::async_trait]
impl ChildStarter for Children {
    async fn start_child(&self, request: ChildRequest) -> Result<ChildExecution, TaskFailure> {
        let Some(svc) = self.svc.upgrade() else {
            return Err(TaskFailure {
                error: "States.Runtime".into(),
                cause: "the Step Functions endpoint running this execution has shut down".into(),
            });
        };
        svc.start_child(request).await
    }
}

/// A start's failure as the parent's Task sees it: AWS's SDK-integration error name and cause.
fn task_failure(e: SfnError) -> TaskFailure {
    let code = e.code();
    let (status, message) = match e {
        SfnError::Aws { message, .. } => (400, message),
        SfnError::Internal(detail) => {
            tracing::error!(%detail, "could not start a child execution");
            (500, "The request failed because of an internal storage error; retrying may help.".to_owned())
        }
    };
    let error = if code.ends_with("Exception") {
        format!("StepFunctions.{code}")
    } else {
        format!("StepFunctions.{code}Exception")
    };
    let request_id = uuid::Uuid::new_v4();
    TaskFailure {
        error,
        cause: format!(
            "{message} (Service: AWSStepFunctions; Status Code: {status}; Error Code: {code}; Request ID: {request_id}; Proxy: null)"
        ),
    }
}

impl Service {
    pub(crate) fn set_child_namer(&self, namer: Arc<dyn ChildNamer>) {
        *self.namer.write().unwrap_or_else(|p| p.into_inner()) = Some(namer);
    }

    async fn start_child(self: &Arc<Self>, req: ChildRequest) -> Result<ChildExecution, TaskFailure> {
        let target = self.target(&req.state_machine_arn).await.map_err(task_failure)?;
        // AWS passes `Input` on as given (`AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID` included).
        let input_text = req.input.to_string();
        // Refused before the namer runs, so a host that keeps its own row per child (Weft's
        // executions) is not left with one for a child that never started.
        super::executions::check_payload(&input_text).map_err(task_failure)?;
        let namer = self.namer.read().unwrap_or_else(|p| p.into_inner()).clone();
        let named = match namer {
            Some(namer) => {
                let start = ChildStart {
                    parent_execution_arn: &req.parent_execution_arn,
                    state_machine_arn: &target.sm.arn,
                    version_arn: target.version_arn.as_deref(),
                    alias_arn: target.alias_arn.as_deref(),
                    requested_name: req.name.as_deref(),
                    input: &input_text,
                };
                namer.name_child(start).await.map_err(|(error, cause)| TaskFailure { error, cause })?
            }
            None => None,
        };
        let name = named.or(req.name).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let (version_arn, alias_arn) = (target.version_arn.clone(), target.alias_arn.clone());
        match self.launch(target, name, input_text, Some(req.input), true).await.map_err(task_failure)? {
            Launched::Started { exec, .. } => Ok(ChildExecution { execution: exec, version_arn, alias_arn }),
            Launched::Existing(existing, input_text) => {
                // StartExecution's idempotency: the same name and input while it runs is that
                // execution, which the Task then waits for.
                self.existing((*existing).clone(), &input_text).map_err(task_failure)?;
                let running =
                    self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&existing.arn).map(|r| r.exec.clone());
                match running {
                    Some(execution) => Ok(ChildExecution {
                        execution,
                        version_arn: existing.version_arn,
                        alias_arn: existing.alias_arn,
                    }),
                    None => Err(task_failure(SfnError::new(
                        "ExecutionAlreadyExists",
                        format!("Execution Already Exists: '{}'", existing.arn),
                    ))),
                }
            }
        }
    }
}

//! The boundary between the engine and whoever stores executions, for the child executions that
//! `arn:aws:states:::states:startExecution[.sync[:2]]` Tasks start.
//!
//! Without a [`ChildStarter`] (`EngineConfig::children` is `None`), the engine runs a child itself
//! from the definitions registered with `Engine::register_state_machine`, by name or unqualified
//! ARN, and nothing outside the engine sees it. A host that stores executions (the Step Functions
//! endpoint) sets a starter instead: it resolves the state machine ARN as `StartExecution` does
//! (versions, aliases), stores the child like any execution, and hands back the engine's handle.
//! Either way, what the Task does after the start is the engine's: `startExecution` answers
//! `{ExecutionArn, StartDate}`, `.sync` and `.sync:2` wait for the child and answer its
//! DescribeExecution document (`Input`/`Output` as JSON text for `.sync`, as JSON for `.sync:2`),
//! or fail with `States.TaskFailed` (`States.Timeout` when the child TIMED_OUT) and that
//! document as the cause.

use serde_json::Value;

use crate::engine::Execution;
use crate::task::TaskFailure;

/// A child execution a Task asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRequest {
    /// The execution whose Task starts the child (`$$.Execution.Id`).
    pub parent_execution_arn: String,
    /// `Parameters.StateMachineArn` as the Task gave it: unqualified, version or alias ARN.
    pub state_machine_arn: String,
    /// `Parameters.Input` (a JSON text is parsed; `{}` when absent). A field
    /// `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID` stays in it, as in AWS.
    pub input: Value,
    /// `Parameters.Name`, if given.
    pub name: Option<String>,
}

/// A started child: the engine's handle, plus what DescribeExecution reports beside it.
#[derive(Debug, Clone)]
pub struct ChildExecution {
    pub execution: Execution,
    /// The version that runs, when the child was started by a version or alias ARN
    /// (`StateMachineVersionArn` of the `.sync` answer).
    pub version_arn: Option<String>,
    /// The alias it was started by (`StateMachineAliasArn`).
    pub alias_arn: Option<String>,
}

impl From<Execution> for ChildExecution {
    fn from(execution: Execution) -> Self {
        ChildExecution { execution, version_arn: None, alias_arn: None }
    }
}

/// Starts child executions for the engine (see the module docs).
#[async_trait::async_trait]
pub trait ChildStarter: Send + Sync + 'static {
    /// Starts the child and returns the engine's handle to it (the host stores it as it stores
    /// any execution). An error fails the parent's Task with its `error` and `cause` (AWS names
    /// them `StepFunctions.<Code>Exception`, e.g. `StepFunctions.StateMachineDoesNotExistException`).
    async fn start_child(&self, request: ChildRequest) -> Result<ChildExecution, TaskFailure>;
}

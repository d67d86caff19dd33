//! Child executions through the host's `ChildStarter` (`EngineConfig::with_children`): what the
//! hook is asked, how its errors fail the Task, and the answers of `startExecution`, `.sync` and
//! `.sync:2`, which stay the engine's.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use engine::{
    ChildExecution, ChildRequest, ChildStarter, Definition, Engine, EngineConfig, EventType, StartOptions, Status,
    TaskFailure,
};
use serde_json::{Value, json};

const ALIAS: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:kid:live";
const VERSION: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:kid:3";
const FAILING: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:failing";

fn def(v: Value) -> Arc<Definition> {
    Arc::new(Definition::parse(&v).unwrap())
}

/// A host: starts `kid` (doubles `$.n`) and `failing` on an engine of its own, as a store-backed
/// host would, and refuses any other machine.
struct Host {
    engine: Engine,
    seen: Mutex<Vec<ChildRequest>>,
}

#[async_trait::async_trait]
impl ChildStarter for Host {
    async fn start_child(&self, request: ChildRequest) -> Result<ChildExecution, TaskFailure> {
        self.seen.lock().unwrap().push(request.clone());
        let (machine, definition, version_arn, alias_arn) = match request.state_machine_arn.as_str() {
            ALIAS => (
                "kid",
                def(json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
                    "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)"}, "End": true}}})),
                Some(VERSION.to_owned()),
                Some(ALIAS.to_owned()),
            ),
            FAILING => (
                "failing",
                def(json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Kid.Broke", "Cause": "no"}}})),
                None,
                None,
            ),
            other => {
                return Err(TaskFailure {
                    error: "StepFunctions.StateMachineDoesNotExistException".into(),
                    cause: format!("State Machine Does Not Exist: '{other}'"),
                });
            }
        };
        let options = StartOptions { name: request.name, state_machine_name: Some(machine.into()) };
        let execution = self.engine.start(definition, request.input, options);
        Ok(ChildExecution { execution, version_arn, alias_arn })
    }
}

fn setup() -> (Engine, Arc<Host>) {
    let host = Arc::new(Host {
        engine: Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker))),
        seen: Mutex::new(vec![]),
    });
    let engine = Engine::new(EngineConfig::new(Arc::new(engine::task::NoInvoker)).with_children(host.clone()));
    (engine, host)
}

fn parent(resource: &str, parameters: Value) -> Arc<Definition> {
    def(json!({"StartAt": "Run", "States": {"Run": {
        "Type": "Task", "Resource": resource, "Parameters": parameters, "End": true}}}))
}

#[tokio::test]
async fn sync_2_asks_the_host_and_answers_the_childs_describe_document() {
    let (engine, host) = setup();
    let d = parent(
        "arn:aws:states:::states:startExecution.sync:2",
        json!({"StateMachineArn": ALIAS, "Name": "kid-1",
               "Input": {"n.$": "$.n", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}}),
    );
    let exec = engine.start(d, json!({"n": 21}), StartOptions { name: Some("mum".into()), ..Default::default() });
    let o = exec.wait().await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");

    let seen = host.seen.lock().unwrap().clone();
    let expected_input = json!({"n": 21, "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": exec.arn()});
    assert_eq!(
        seen,
        [ChildRequest {
            parent_execution_arn: exec.arn().to_owned(),
            state_machine_arn: ALIAS.into(),
            input: expected_input.clone(),
            name: Some("kid-1".into()),
        }]
    );
    let out = o.output.unwrap();
    assert_eq!(out["Output"], json!({"doubled": 42}), "{out}");
    assert_eq!(out["Input"], expected_input);
    assert_eq!(out["Status"], "SUCCEEDED");
    assert_eq!(out["Name"], "kid-1");
    assert_eq!(out["ExecutionArn"], "arn:aws:states:us-east-1:123456789012:execution:kid:kid-1");
    assert_eq!(out["StateMachineArn"], "arn:aws:states:us-east-1:123456789012:stateMachine:kid");
    assert_eq!(
        (out["StateMachineAliasArn"].as_str(), out["StateMachineVersionArn"].as_str()),
        (Some(ALIAS), Some(VERSION))
    );
}

#[tokio::test]
async fn sync_gives_input_and_output_as_json_text_and_plain_start_answers_at_once() {
    let (engine, _) = setup();
    let d =
        parent("arn:aws:states:::states:startExecution.sync", json!({"StateMachineArn": ALIAS, "Input": "{\"n\": 2}"}));
    let out = engine.run(d, json!({})).await.output.unwrap();
    assert_eq!((out["Input"].as_str(), out["Output"].as_str()), (Some(r#"{"n":2}"#), Some(r#"{"doubled":4}"#)));

    let d = parent("arn:aws:states:::states:startExecution", json!({"StateMachineArn": ALIAS, "Name": "bg"}));
    let out = engine.run(d, json!({})).await.output.unwrap();
    let keys: Vec<&str> = out.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["ExecutionArn", "StartDate"]);
    assert_eq!(out["ExecutionArn"], "arn:aws:states:us-east-1:123456789012:execution:kid:bg");
}

#[tokio::test]
async fn a_host_error_fails_the_task_with_its_error_and_cause() {
    let (engine, _) = setup();
    let missing = "arn:aws:states:us-east-1:123456789012:stateMachine:nope";
    let d = parent("arn:aws:states:::states:startExecution.sync:2", json!({"StateMachineArn": missing}));
    let exec = engine.start(d, json!({}), StartOptions::default());
    let o = exec.wait().await;
    assert_eq!(o.status, Status::Failed);
    assert_eq!(o.error.as_deref(), Some("StepFunctions.StateMachineDoesNotExistException"));
    let cause = format!("State Machine Does Not Exist: '{missing}'");
    assert_eq!(o.cause.as_deref(), Some(cause.as_str()));
    let failed = exec.history_snapshot().into_iter().find(|e| e.event_type == EventType::TaskFailed).unwrap();
    let details = failed.to_aws_json()["taskFailedEventDetails"].clone();
    assert_eq!(details["error"], "StepFunctions.StateMachineDoesNotExistException");
    assert_eq!(details["cause"], cause.as_str());
    assert_eq!(details["resource"], "startExecution.sync:2");
}

#[tokio::test]
async fn a_failing_child_fails_the_task_with_its_describe_document_as_the_cause() {
    let (engine, _) = setup();
    let d = parent("arn:aws:states:::states:startExecution.sync:2", json!({"StateMachineArn": FAILING}));
    let o = engine.run(d, json!({})).await;
    assert_eq!(o.error.as_deref(), Some("States.TaskFailed"));
    let cause: Value = serde_json::from_str(o.cause.as_deref().unwrap()).unwrap();
    assert_eq!((cause["Status"].as_str(), cause["Error"].as_str()), (Some("FAILED"), Some("Kid.Broke")));
    assert_eq!(cause["Cause"], "no");
    assert!(cause.get("StateMachineAliasArn").is_none(), "{cause}");
}

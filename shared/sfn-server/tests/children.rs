//! Child executions of `states:startExecution.sync:2` Tasks on the Postgres store: started as
//! StartExecution starts executions (alias and version ARNs resolved), stored, listed, described
//! with their history, announced as they end, named by the host's `ChildNamer`; start failures
//! and failing children fail the parent's Task as in AWS. Needs `WEFT_TEST_DATABASE_URL` (skips
//! with a note when unset, unless `WEFT_TEST_STRICT=1`); each test uses a fresh database.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType, RoutingConfigurationListItem};
use common::*;
use serde_json::{Value, json};
use sfn_server::{ChildNamer, ChildStart, PgStore, SfnState};

async fn pg_server() -> Option<Server> {
    let admin = migrations::testing::service_url("WEFT_TEST_DATABASE_URL")?;
    let url = migrations::testing::create_database(&admin).await.unwrap();
    let pg = PgStore::connect(&url, 10).await.unwrap();
    pg.migrate().await.unwrap();
    Some(serve(SfnState::open(Arc::new(pg), config()).await.unwrap()).await)
}

fn doubling_machine() -> Value {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
        "Parameters": {"doubled.$": "States.MathAdd($.n, $.n)", "by.$": "$.AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"},
        "End": true}}})
}

/// A state machine `name` of one `startExecution.sync:2` Task with `parameters`; its ARN.
async fn parent(c: &aws_sdk_sfn::Client, name: &str, parameters: Value, output_path: &str) -> String {
    let def = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": parameters, "OutputPath": output_path, "End": true}}});
    create(c, name, &def).await
}

/// `kid` (the doubling machine), published as version 1 with alias `live`: (machine, version,
/// alias) ARNs.
async fn kid_with_alias(c: &aws_sdk_sfn::Client) -> (String, String, String) {
    let created = c
        .create_state_machine()
        .name("kid")
        .definition(doubling_machine().to_string())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap();
    let version = c
        .publish_state_machine_version()
        .state_machine_arn(&created.state_machine_arn)
        .send()
        .await
        .unwrap()
        .state_machine_version_arn;
    let route =
        RoutingConfigurationListItem::builder().state_machine_version_arn(&version).weight(100).build().unwrap();
    let alias = c
        .create_state_machine_alias()
        .name("live")
        .routing_configuration(route)
        .send()
        .await
        .unwrap()
        .state_machine_alias_arn;
    (created.state_machine_arn, version, alias)
}

async fn start(c: &aws_sdk_sfn::Client, machine: &str, input: &str) -> String {
    c.start_execution().state_machine_arn(machine).input(input).send().await.unwrap().execution_arn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_2_children_are_stored_listed_described_and_announced() {
    let Some(s) = pg_server().await else { return };
    let c = &s.client;
    let mut ended = s.state.ended_executions();
    let (kid, version, alias) = kid_with_alias(c).await;
    let mum = parent(
        c,
        "mum",
        json!({"StateMachineArn": alias, "Name": "kid-of-mum",
               "Input": {"n.$": "$.n", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}}),
        "$.Output",
    )
    .await;
    let mum_exec = start(c, &mum, r#"{"n": 5}"#).await;
    let d = finished(c, &mum_exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    let output: Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!({"doubled": 10, "by": mum_exec}));

    // The child is an execution of the endpoint like any other.
    let child = "arn:aws:states:us-east-1:123456789012:execution:kid:kid-of-mum";
    for listed_by in [&kid, &version, &alias] {
        let listed = c.list_executions().state_machine_arn(listed_by).send().await.unwrap().executions;
        let arns: Vec<&str> = listed.iter().map(|e| e.execution_arn.as_str()).collect();
        assert_eq!(arns, [child], "listed by {listed_by}");
        assert_eq!(listed[0].state_machine_alias_arn.as_deref(), Some(alias.as_str()));
        assert_eq!(listed[0].state_machine_version_arn.as_deref(), Some(version.as_str()));
    }
    let cd = c.describe_execution().execution_arn(child).send().await.unwrap();
    assert_eq!(cd.status, ExecutionStatus::Succeeded);
    assert_eq!(cd.state_machine_arn, kid);
    assert_eq!(cd.state_machine_version_arn.as_deref(), Some(version.as_str()));
    assert_eq!(cd.state_machine_alias_arn.as_deref(), Some(alias.as_str()));
    let input: Value = serde_json::from_str(cd.input.as_deref().unwrap()).unwrap();
    assert_eq!(input, json!({"n": 5, "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": mum_exec}));
    let events = history(c, child).await;
    let types: Vec<_> = events.iter().map(|e| e.r#type.clone()).collect();
    assert_eq!(
        types,
        [
            HistoryEventType::ExecutionStarted,
            HistoryEventType::PassStateEntered,
            HistoryEventType::PassStateExited,
            HistoryEventType::ExecutionSucceeded
        ]
    );
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3, 4]);

    // Both ends are announced, the child's too (the recorder follows these).
    let mut seen = HashSet::new();
    while !(seen.contains(child) && seen.contains(&mum_exec)) {
        let arn = tokio::time::timeout(Duration::from_secs(30), ended.recv()).await.unwrap().unwrap();
        seen.insert(arn);
    }

    // A failing child fails the Task with States.TaskFailed, the child's describe document as
    // the cause; the child is stored FAILED.
    create(
        c,
        "broken",
        &json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Kid.Broke", "Cause": "nope"}}}),
    )
    .await;
    let broken = "arn:aws:states:us-east-1:123456789012:stateMachine:broken";
    let dad = parent(c, "dad", json!({"StateMachineArn": broken}), "$").await;
    let d = finished(c, &start(c, &dad, "{}").await).await;
    assert_eq!((&d.status, d.error.as_deref()), (&ExecutionStatus::Failed, Some("States.TaskFailed")), "{d:?}");
    let cause: Value = serde_json::from_str(d.cause.as_deref().unwrap()).unwrap();
    assert_eq!((cause["Status"].as_str(), cause["Error"].as_str()), (Some("FAILED"), Some("Kid.Broke")), "{cause}");
    let listed = c.list_executions().state_machine_arn(broken).send().await.unwrap().executions;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, ExecutionStatus::Failed);
    assert_eq!(cause["ExecutionArn"].as_str(), Some(listed[0].execution_arn.as_str()));

    // A machine that does not exist (or a version that does not): AWS's SDK-integration error.
    let missing_ones = [
        "arn:aws:states:us-east-1:123456789012:stateMachine:ghost".to_owned(),
        format!("{kid}:7"),
        format!("{kid}:nope"),
    ];
    for (i, missing) in missing_ones.iter().enumerate() {
        let orphan = parent(c, &format!("orphan-{i}"), json!({"StateMachineArn": missing}), "$").await;
        let d = finished(c, &start(c, &orphan, "{}").await).await;
        assert_eq!(d.status, ExecutionStatus::Failed);
        assert_eq!(d.error.as_deref(), Some("StepFunctions.StateMachineDoesNotExistException"), "{d:?}");
        let cause = d.cause.unwrap();
        assert!(
            cause.starts_with(&format!("State Machine Does Not Exist: '{missing}' (Service: AWSStepFunctions;")),
            "{cause}"
        );
    }
}

/// Names children `row-<n>` and refuses those whose Task asks for the name `refuse`, recording
/// what it was told.
#[derive(Default)]
struct Rows {
    seen: Mutex<Vec<Told>>,
}

/// A `ChildStart`, owned.
#[derive(Debug, PartialEq)]
struct Told {
    parent: String,
    machine: String,
    version: Option<String>,
    alias: Option<String>,
    requested: Option<String>,
}

#[async_trait::async_trait]
impl ChildNamer for Rows {
    async fn name_child(&self, start: ChildStart<'_>) -> Result<Option<String>, (String, String)> {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Told {
            parent: start.parent_execution_arn.to_owned(),
            machine: start.state_machine_arn.to_owned(),
            version: start.version_arn.map(str::to_owned),
            alias: start.alias_arn.map(str::to_owned),
            requested: start.requested_name.map(str::to_owned),
        });
        if start.requested_name == Some("refuse") {
            return Err(("Weft.ChildRefused".into(), "no row for this child".into()));
        }
        Ok(Some(format!("row-{}", seen.len())))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_namer_names_children_and_its_errors_fail_the_task() {
    let Some(s) = pg_server().await else { return };
    let c = &s.client;
    let rows = Arc::new(Rows::default());
    s.state.set_child_namer(rows.clone());
    let (kid, version, alias) = kid_with_alias(c).await;
    let mum = parent(
        c,
        "mum",
        json!({"StateMachineArn": alias, "Name.$": "$.name",
        "Input": {"n": 1, "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}}),
        "$",
    )
    .await;

    let mum_exec = start(c, &mum, r#"{"name": "asked"}"#).await;
    let d = finished(c, &mum_exec).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{:?} {:?}", d.error, d.cause);
    let out: Value = serde_json::from_str(d.output.as_deref().unwrap()).unwrap();
    let child = out["ExecutionArn"].as_str().unwrap();
    assert!(child.ends_with(":execution:kid:row-1"), "{child}");
    assert_eq!(out["Name"], "row-1");
    assert_eq!(
        (out["StateMachineAliasArn"].as_str(), out["StateMachineVersionArn"].as_str()),
        (Some(alias.as_str()), Some(version.as_str()))
    );
    assert_eq!(c.describe_execution().execution_arn(child).send().await.unwrap().status, ExecutionStatus::Succeeded);
    assert_eq!(
        rows.seen.lock().unwrap()[0],
        Told {
            parent: mum_exec.clone(),
            machine: kid.clone(),
            version: Some(version.clone()),
            alias: Some(alias.clone()),
            requested: Some("asked".into())
        }
    );

    let refused = start(c, &mum, r#"{"name": "refuse"}"#).await;
    let d = finished(c, &refused).await;
    assert_eq!(d.status, ExecutionStatus::Failed);
    assert_eq!((d.error.as_deref(), d.cause.as_deref()), (Some("Weft.ChildRefused"), Some("no row for this child")));
    // Nothing was started for the refused child.
    let listed = c.list_executions().state_machine_arn(&kid).send().await.unwrap().executions;
    assert_eq!(listed.iter().map(|e| e.execution_arn.as_str()).collect::<Vec<_>>(), [child]);
}

//! The endpoint driven through `aws-sdk-sfn` over real HTTP on 127.0.0.1 (and once through the
//! in-process transport), with the in-process node functions and the in-memory store.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata as _;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType, RoutingConfigurationListItem, StateMachineType};
use common::*;
use serde_json::{Value, json};

fn pass_machine() -> Value {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"got.$": "$.x"}, "End": true}}})
}

/// An EXPRESS state machine `quick` running [`pass_machine`]; its ARN.
async fn express_pass_machine(c: &aws_sdk_sfn::Client) -> String {
    c.create_state_machine()
        .name("quick")
        .r#type(StateMachineType::Express)
        .definition(pass_machine().to_string())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

fn wait_machine(seconds: u64) -> Value {
    json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": true}}})
}

#[tokio::test]
async fn state_machines_versions_and_aliases() {
    let s = memory_server().await;
    let c = &s.client;
    let created = c
        .create_state_machine()
        .name("orders")
        .definition(pass_machine().to_string())
        .role_arn(ROLE)
        .publish(true)
        .version_description("first")
        .send()
        .await
        .unwrap();
    let arn = created.state_machine_arn.clone();
    assert_eq!(arn, "arn:aws:states:us-east-1:123456789012:stateMachine:orders");
    assert_eq!(
        created.state_machine_version_arn.as_deref(),
        Some("arn:aws:states:us-east-1:123456789012:stateMachine:orders:1")
    );

    // Identical re-creation is idempotent; a different definition under the same name is not.
    let again = c
        .create_state_machine()
        .name("orders")
        .definition(pass_machine().to_string())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap();
    assert_eq!(again.state_machine_arn, arn);
    let err = c
        .create_state_machine()
        .name("orders")
        .definition(wait_machine(1).to_string())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_state_machine_already_exists(), "{err:?}");

    let err = c
        .create_state_machine()
        .name("bad")
        .definition(r#"{"StartAt": "Nope", "States": {}}"#)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_definition(), "{err:?}");
    let err = c
        .create_state_machine()
        .name("has space")
        .definition(pass_machine().to_string())
        .role_arn(ROLE)
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_name(), "{err:?}");
    let err = c
        .create_state_machine()
        .name("t")
        .definition(pass_machine().to_string())
        .role_arn(ROLE)
        .r#type(StateMachineType::from("BATCH"))
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_validation_exception(), "{err:?}");

    let d = c.describe_state_machine().state_machine_arn(&arn).send().await.unwrap();
    assert_eq!(d.name, "orders");
    assert_eq!(d.r#type, StateMachineType::Standard);
    assert_eq!(serde_json::from_str::<Value>(&d.definition).unwrap(), pass_machine());
    let rev1 = d.revision_id.clone().unwrap();

    // Update: a new revision; publishing it makes version 2, publishing again returns version 2.
    let upd = c
        .update_state_machine()
        .state_machine_arn(&arn)
        .definition(wait_machine(0).to_string())
        .publish(true)
        .send()
        .await
        .unwrap();
    assert_ne!(upd.revision_id.as_deref(), Some(rev1.as_str()));
    assert_eq!(upd.state_machine_version_arn.as_deref(), Some(format!("{arn}:2").as_str()));
    let p = c.publish_state_machine_version().state_machine_arn(&arn).send().await.unwrap();
    assert_eq!(p.state_machine_version_arn, format!("{arn}:2"));
    let err = c.publish_state_machine_version().state_machine_arn(&arn).revision_id(&rev1).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_conflict_exception(), "{err:?}");
    let v1 = c.describe_state_machine().state_machine_arn(format!("{arn}:1")).send().await.unwrap();
    assert_eq!(v1.state_machine_arn, format!("{arn}:1"));
    assert_eq!(serde_json::from_str::<Value>(&v1.definition).unwrap(), pass_machine());
    assert_eq!(v1.revision_id.as_deref(), Some(rev1.as_str()));

    // An alias routes to version 1, then is moved to version 2.
    let route = |v: u32| {
        RoutingConfigurationListItem::builder()
            .state_machine_version_arn(format!("{arn}:{v}"))
            .weight(100)
            .build()
            .unwrap()
    };
    let alias = c.create_state_machine_alias().name("live").routing_configuration(route(1)).send().await.unwrap();
    assert_eq!(alias.state_machine_alias_arn, format!("{arn}:live"));
    let run = c
        .start_execution()
        .state_machine_arn(&alias.state_machine_alias_arn)
        .input(r#"{"x": 7}"#)
        .send()
        .await
        .unwrap();
    let done = finished(c, &run.execution_arn).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.as_deref(), Some(r#"{"got":7}"#));
    assert_eq!(done.state_machine_version_arn.as_deref(), Some(format!("{arn}:1").as_str()));
    assert_eq!(done.state_machine_alias_arn.as_deref(), Some(alias.state_machine_alias_arn.as_str()));
    c.update_state_machine_alias()
        .state_machine_alias_arn(&alias.state_machine_alias_arn)
        .routing_configuration(route(2))
        .send()
        .await
        .unwrap();
    let run2 = c.start_execution().state_machine_arn(&alias.state_machine_alias_arn).send().await.unwrap();
    assert_eq!(
        finished(c, &run2.execution_arn).await.state_machine_version_arn.as_deref(),
        Some(format!("{arn}:2").as_str())
    );
    let bad = RoutingConfigurationListItem::builder()
        .state_machine_version_arn(format!("{arn}:9"))
        .weight(100)
        .build()
        .unwrap();
    let err = c.create_state_machine_alias().name("ghost").routing_configuration(bad).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_resource_not_found(), "{err:?}");
    let err = c
        .update_state_machine_alias()
        .state_machine_alias_arn(format!("{arn}:nope"))
        .description("x")
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_resource_not_found(), "{err:?}");

    // Listing pages through every machine exactly once.
    for n in ["a1", "a2", "a3"] {
        create(c, n, &pass_machine()).await;
    }
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = c.list_state_machines().max_results(2).set_next_token(token).send().await.unwrap();
        assert!(page.state_machines.len() <= 2);
        names.extend(page.state_machines.into_iter().map(|m| m.name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, ["a1", "a2", "a3", "orders"]);

    let err = c.describe_state_machine().state_machine_arn(format!("{arn}-missing")).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_state_machine_does_not_exist(), "{err:?}");
    let err = c.describe_state_machine().state_machine_arn("not-an-arn").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_arn(), "{err:?}");
    assert_eq!(err.code(), Some("InvalidArn"));
}

#[tokio::test]
async fn executions_history_and_listing() {
    let s = memory_server().await;
    let c = &s.client;
    let def = json!({"StartAt": "Double", "States": {
        "Double": with(code_task("double", "return input.n * 2;", json!({"n.$": "$.n"})), "Next", json!("Shape")),
        "Shape": {"Type": "Pass", "Parameters": {"doubled.$": "$"}, "End": true}
    }});
    let arn = create(c, "doubler", &def).await;
    let mut started = Vec::new();
    for i in 0..5 {
        let r = c
            .start_execution()
            .state_machine_arn(&arn)
            .name(format!("run-{i}"))
            .input(json!({"n": i}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.execution_arn, format!("arn:aws:states:us-east-1:123456789012:execution:doubler:run-{i}"));
        started.push(r.execution_arn);
    }
    for (i, e) in started.iter().enumerate() {
        let d = finished(c, e).await;
        assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
        assert_eq!(serde_json::from_str::<Value>(d.output.as_deref().unwrap()).unwrap(), json!({"doubled": i * 2}));
        assert_eq!(d.input.as_deref(), Some(json!({"n": i}).to_string().as_str()));
        assert!(d.stop_date.is_some());
    }

    // Same name: the same input while running is an idempotent retry, anything else a conflict.
    let err = c.start_execution().state_machine_arn(&arn).name("run-0").input(r#"{"n": 0}"#).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_execution_already_exists(), "{err:?}");
    let waiter = create(c, "waiter", &wait_machine(30)).await;
    let a = c.start_execution().state_machine_arn(&waiter).name("same").input("{}").send().await.unwrap();
    let b = c.start_execution().state_machine_arn(&waiter).name("same").input("{}").send().await.unwrap();
    assert_eq!(a.execution_arn, b.execution_arn);
    let err =
        c.start_execution().state_machine_arn(&waiter).name("same").input(r#"{"other": 1}"#).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_execution_already_exists(), "{err:?}");
    let err = c.start_execution().state_machine_arn(&waiter).input("not json").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_execution_input(), "{err:?}");
    let err = c.start_execution().state_machine_arn(&waiter).name("a/b").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_name(), "{err:?}");
    let err = c.start_execution().state_machine_arn(format!("{waiter}x")).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_state_machine_does_not_exist(), "{err:?}");

    // Listing: filters and pages.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_executions()
            .state_machine_arn(&arn)
            .status_filter(ExecutionStatus::Succeeded)
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        seen.extend(page.executions.into_iter().map(|e| e.execution_arn));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, started);
    let running =
        c.list_executions().state_machine_arn(&waiter).status_filter(ExecutionStatus::Running).send().await.unwrap();
    assert_eq!(running.executions.len(), 1);
    let none = c.list_executions().state_machine_arn(&arn).status_filter(ExecutionStatus::Failed).send().await.unwrap();
    assert!(none.executions.is_empty());
    let err = c.list_executions().state_machine_arn(&arn).next_token("garbage").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_token(), "{err:?}");

    // History: AWS event types, dense ids, pages forward and backward, data optional.
    let events = history(c, &started[3]).await;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "PassStateEntered",
            "PassStateExited",
            "ExecutionSucceeded"
        ]
    );
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=9).collect::<Vec<i64>>());
    let started_ev = events[0].execution_started_event_details.as_ref().unwrap();
    assert_eq!(started_ev.input.as_deref(), Some(r#"{"n":3}"#));
    let mut back = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .get_execution_history()
            .execution_arn(&started[3])
            .reverse_order(true)
            .max_results(4)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        back.extend(page.events.into_iter().map(|e| e.id));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(back, (1..=9).rev().collect::<Vec<i64>>());
    let lean = c.get_execution_history().execution_arn(&started[3]).include_execution_data(false).send().await.unwrap();
    assert!(lean.events[0].execution_started_event_details.as_ref().unwrap().input.is_none());
    let err = c.get_execution_history().execution_arn(format!("{}-missing", started[0])).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_execution_does_not_exist(), "{err:?}");
    let err = c.describe_execution().execution_arn("arn:aws:states:us-east-1:1:execution:x").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_arn(), "{err:?}");
}

fn token_of(events: &[aws_sdk_sfn::types::HistoryEvent]) -> String {
    let scheduled = events.iter().find(|e| e.r#type == HistoryEventType::TaskScheduled).unwrap();
    let params: Value =
        serde_json::from_str(&scheduled.task_scheduled_event_details.as_ref().unwrap().parameters).unwrap();
    params["Payload"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn callbacks_complete_wait_for_task_token_tasks() {
    let s = memory_server().await;
    let c = &s.client;
    let def = json!({"StartAt": "Approve", "States": {"Approve": {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": "${CodeFunctionArn}",
            "Payload": {"node": {"id": "approve", "type": "code"}, "config": {"source": "return 1;"}, "token.$": "$$.Task.Token"}
        },
        "HeartbeatSeconds": 60,
        "End": true
    }}});
    let arn = create(c, "approvals", &def).await;

    let ok = c.start_execution().state_machine_arn(&arn).send().await.unwrap().execution_arn;
    let token = token_of(&wait_for_event(c, &ok, HistoryEventType::TaskScheduled).await);
    c.send_task_heartbeat().task_token(&token).send().await.unwrap();
    let err = c.send_task_success().task_token(&token).output("{not json").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_output(), "{err:?}");
    c.send_task_success().task_token(&token).output(r#"{"approved": true}"#).send().await.unwrap();
    let d = finished(c, &ok).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded);
    assert_eq!(d.output.as_deref(), Some(r#"{"approved":true}"#));
    // The token is spent.
    let err = c.send_task_success().task_token(&token).output("{}").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_task_does_not_exist(), "{err:?}");

    let no = c.start_execution().state_machine_arn(&arn).send().await.unwrap().execution_arn;
    let token = token_of(&wait_for_event(c, &no, HistoryEventType::TaskScheduled).await);
    c.send_task_failure().task_token(&token).error("Approval.Rejected").cause("nope").send().await.unwrap();
    let d = finished(c, &no).await;
    assert_eq!(d.status, ExecutionStatus::Failed);
    assert_eq!(d.error.as_deref(), Some("Approval.Rejected"));
    assert_eq!(d.cause.as_deref(), Some("nope"));

    let err = c.send_task_failure().task_token("unknown-token").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_task_does_not_exist(), "{err:?}");
    let err = c.send_task_heartbeat().task_token("").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_token(), "{err:?}");
}

#[tokio::test]
async fn stop_sync_and_redrive_of_a_failed_execution() {
    let s = memory_server().await;
    let c = &s.client;

    let waiter = create(c, "long", &wait_machine(3600)).await;
    let e = c.start_execution().state_machine_arn(&waiter).send().await.unwrap().execution_arn;
    wait_for_event(c, &e, HistoryEventType::WaitStateEntered).await;
    c.stop_execution().execution_arn(&e).error("User.Cancelled").cause("changed my mind").send().await.unwrap();
    let d = c.describe_execution().execution_arn(&e).send().await.unwrap();
    assert_eq!(d.status, ExecutionStatus::Aborted);
    assert_eq!(d.error.as_deref(), Some("User.Cancelled"));
    assert_eq!(history(c, &e).await.last().unwrap().r#type, HistoryEventType::ExecutionAborted);
    let err = c.start_sync_execution().state_machine_arn(&waiter).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_state_machine_type_not_supported(), "{err:?}");

    let express = express_pass_machine(c).await;
    let sync = c.start_sync_execution().state_machine_arn(&express).input(r#"{"x": "hi"}"#).send().await.unwrap();
    assert_eq!(sync.status, aws_sdk_sfn::types::SyncExecutionStatus::Succeeded);
    assert_eq!(sync.output.as_deref(), Some(r#"{"got":"hi"}"#));

    // A Task that fails until the execution has been redriven once.
    let def = json!({"StartAt": "Prep", "States": {
        "Prep": {"Type": "Pass", "Result": 21, "ResultPath": "$.n", "Next": "Flaky"},
        "Flaky": with(code_task(
            "flaky",
            "if (input.rc == 0) { throw new Error('first run fails'); } return {n: input.n * 2, rc: input.rc};",
            json!({"n.$": "$.n", "rc.$": "$$.Execution.RedriveCount"}),
        ), "End", json!(true))
    }});
    let arn = create(c, "flaky", &def).await;
    let e = c.start_execution().state_machine_arn(&arn).send().await.unwrap().execution_arn;
    let d = finished(c, &e).await;
    assert_eq!(d.status, ExecutionStatus::Failed);
    assert_eq!(d.error.as_deref(), Some("Code.Error"));
    assert_eq!(d.redrive_status, Some(aws_sdk_sfn::types::ExecutionRedriveStatus::Redrivable));
    let before = history(c, &e).await.len() as i64;
    c.redrive_execution().execution_arn(&e).send().await.unwrap();
    let d = finished(c, &e).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(serde_json::from_str::<Value>(d.output.as_deref().unwrap()).unwrap(), json!({"n": 42, "rc": 1}));
    assert_eq!(d.redrive_count, Some(1));
    assert!(d.redrive_date.is_some());
    let events = history(c, &e).await;
    assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), (1..=events.len() as i64).collect::<Vec<_>>());
    let redriven = &events[before as usize];
    assert_eq!(redriven.r#type, HistoryEventType::ExecutionRedriven);
    assert_eq!(redriven.execution_redriven_event_details.as_ref().unwrap().redrive_count, Some(1));
    // The redrive resumed at the failed state: Prep did not run again.
    assert_eq!(events.iter().filter(|e| e.r#type == HistoryEventType::PassStateEntered).count(), 1);
    assert_eq!(events[before as usize + 1].previous_event_id, before + 1);
    let err = c.redrive_execution().execution_arn(&e).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_execution_not_redrivable(), "{err:?}");
    let listed = c
        .list_executions()
        .state_machine_arn(&arn)
        .redrive_filter(aws_sdk_sfn::types::ExecutionRedriveFilter::Redriven)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.executions.len(), 1);
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test]
async fn start_execution_sync_tasks_run_machines_created_through_the_endpoint() {
    let s = memory_server().await;
    let c = &s.client;
    let child = create(c, "child", &json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"twice.$": "States.MathAdd($.n, $.n)"}, "End": true}}})).await;
    let parent = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": child, "Input": {"n.$": "$.n"}},
        "OutputPath": "$.Output",
        "End": true
    }}});
    let parent = create(c, "parent", &parent).await;
    let e = c.start_execution().state_machine_arn(&parent).input(r#"{"n": 5}"#).send().await.unwrap().execution_arn;
    let d = finished(c, &e).await;
    assert_eq!(d.status, ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(d.output.as_deref(), Some(r#"{"twice":10}"#));
}

/// Replaces the body of every request after it was signed, as a replay of a captured signature
/// with another body would.
#[derive(Debug)]
struct SwapBodyAfterSigning(String);

impl aws_sdk_sfn::config::Intercept for SwapBodyAfterSigning {
    fn name(&self) -> &'static str {
        "SwapBodyAfterSigning"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_sfn::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &aws_sdk_sfn::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sfn::config::ConfigBag,
    ) -> Result<(), aws_sdk_sfn::error::BoxError> {
        let req = context.request_mut();
        *req.body_mut() = self.0.clone().into();
        req.headers_mut().insert("content-length", self.0.len().to_string());
        Ok(())
    }
}

fn status_of<E>(err: &aws_sdk_sfn::error::SdkError<E, aws_sdk_sfn::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn auth_only_requests_signed_with_the_configured_credentials_run() {
    let s = memory_server().await;
    let arn = create(&s.client, "guarded", &wait_machine(600)).await;
    let victim = s.client.start_execution().state_machine_arn(&arn).name("victim").send().await.unwrap().execution_arn;

    let stranger =
        sfn_server::sdk::local_client(&s.url, &sfn_server::Credentials::new("AKIDSTRANGER0000", SECRET_ACCESS_KEY));
    let err = stranger.list_executions().state_machine_arn(&arn).send().await.unwrap_err();
    assert_eq!((err.code(), status_of(&err)), (Some("UnrecognizedClientException"), Some(400)), "{err:?}");
    assert_eq!(err.message(), Some("The security token included in the request is invalid."));

    let guesser =
        sfn_server::sdk::local_client(&s.url, &sfn_server::Credentials::new(ACCESS_KEY_ID, "weft-test-secret-guessed"));
    let err = guesser.stop_execution().execution_arn(&victim).send().await.unwrap_err();
    assert_eq!((err.code(), status_of(&err)), (Some("InvalidSignatureException"), Some(400)), "{err:?}");
    assert!(err.message().unwrap().starts_with("The request signature we calculated does not match"), "{err:?}");

    // The SDK's own signer with a clock 20 minutes behind: refused on the first attempt...
    let stale = std::time::SystemTime::now() - Duration::from_secs(20 * 60);
    let late = || {
        sfn_server::sdk::local_config(&s.url, &credentials())
            .time_source(aws_smithy_async::time::StaticTimeSource::new(stale))
    };
    let once = late().retry_config(aws_sdk_sfn::config::retry::RetryConfig::disabled()).build();
    let err =
        aws_sdk_sfn::Client::from_conf(once).describe_execution().execution_arn(&victim).send().await.unwrap_err();
    assert_eq!((err.code(), status_of(&err)), (Some("InvalidSignatureException"), Some(400)), "{err:?}");
    assert!(err.message().unwrap().starts_with("Signature expired: "), "{err:?}");
    // ... and, as against AWS, the SDK then corrects its clock from the response's `Date` and
    // retries with a fresh signature.
    let d = aws_sdk_sfn::Client::from_conf(late().build())
        .describe_execution()
        .execution_arn(&victim)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status, ExecutionStatus::Running);

    // A signature computed for another body: StopExecution of a harmless ARN, sent with the
    // victim's ARN instead.
    let swapped = sfn_server::sdk::local_config(&s.url, &credentials())
        .interceptor(SwapBodyAfterSigning(json!({"executionArn": victim}).to_string()))
        .build();
    let err = aws_sdk_sfn::Client::from_conf(swapped)
        .stop_execution()
        .execution_arn(arn::StateMachineArn::parse(&arn).expect("a state machine ARN").execution("nothing").to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!((err.code(), status_of(&err)), (Some("InvalidSignatureException"), Some(400)), "{err:?}");

    // None of it touched the execution; the configured credentials still work.
    let d = s.client.describe_execution().execution_arn(&victim).send().await.unwrap();
    assert_eq!(d.status, ExecutionStatus::Running);
    s.client.stop_execution().execution_arn(&victim).send().await.unwrap();
}

#[tokio::test]
async fn the_in_process_transport_verifies_signatures_and_asynchronous_ends_are_announced() {
    let state =
        sfn_server::SfnState::open(std::sync::Arc::new(sfn_server::MemoryStore::new()), config()).await.unwrap();
    let transport = sfn_server::sdk::InProcess::new();
    let once = |c: &sfn_server::Credentials| {
        let conf = sfn_server::sdk::local_config(sfn_server::sdk::IN_PROCESS_ENDPOINT, c)
            .http_client(transport.clone())
            .retry_config(aws_sdk_sfn::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_sfn::Client::from_conf(conf)
    };
    let client = once(&credentials());
    // Before the endpoint opens: a transport failure, as an unanswered connection would be.
    let err = client.list_state_machines().send().await.unwrap_err();
    assert!(matches!(err, aws_sdk_sfn::error::SdkError::DispatchFailure(_)), "{err:?}");
    assert!(transport.serve(sfn_server::router(state.clone(), sfn_server::Verifier::new([credentials()]))));
    assert!(
        !transport.serve(sfn_server::router(state.clone(), sfn_server::Verifier::new([]))),
        "the first router stays"
    );

    // Requests are verified exactly as over HTTP.
    let guesser = once(&sfn_server::Credentials::new(ACCESS_KEY_ID, "weft-test-secret-guessed"));
    let err = guesser.list_state_machines().send().await.unwrap_err();
    assert_eq!((err.code(), status_of(&err)), (Some("InvalidSignatureException"), Some(400)), "{err:?}");

    let express = express_pass_machine(&client).await;
    let mut ended = state.ended_executions();
    let sync = client.start_sync_execution().state_machine_arn(&express).input(r#"{"x": "hi"}"#).send().await.unwrap();
    assert_eq!(sync.output.as_deref(), Some(r#"{"got":"hi"}"#));
    // Its history is readable right after the answer (from memory), in full and in pages.
    let all = client.get_execution_history().execution_arn(&sync.execution_arn).send().await.unwrap().events;
    assert_eq!(all.first().map(|e| e.r#type.clone()), Some(HistoryEventType::ExecutionStarted));
    assert_eq!(all.last().map(|e| e.r#type.clone()), Some(HistoryEventType::ExecutionSucceeded));
    let last = client
        .get_execution_history()
        .execution_arn(&sync.execution_arn)
        .reverse_order(true)
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(last.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![all.len() as i64]);
    let page = client
        .get_execution_history()
        .execution_arn(&sync.execution_arn)
        .max_results(2)
        .next_token("2")
        .send()
        .await
        .unwrap();
    assert_eq!(page.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 3]);

    // Only the asynchronous start is announced (a synchronous caller has its outcome).
    let started = client.start_execution().state_machine_arn(&express).input(r#"{"x": "yo"}"#).send().await.unwrap();
    let announced = tokio::time::timeout(Duration::from_secs(30), ended.recv()).await.unwrap().unwrap();
    assert_eq!(announced, started.execution_arn);
    assert!(ended.try_recv().is_err(), "one announcement per asynchronous end");
}

//! The AWS recorder path against real components: executions started through the api on a real
//! `sfn-server` (over HTTP on 127.0.0.1, through `aws-sdk-sfn`), real Postgres and Redis, and NO
//! recorder loop. Only the EventBridge "Step Functions Execution Status Change" events, delivered
//! to [`fn_recorder::handle`] as the Lambda runtime would, put the history on the `executions`
//! row, in `execution_events` and in the Redis stream. Nothing here reads an execution through
//! the api before the event is handled, because the api records on read.
//!
//! Needs `WEFT_TEST_DATABASE_URL` and `WEFT_TEST_REDIS_URL`; without them each test prints a note
//! and passes, unless `WEFT_TEST_STRICT=1`.

#[path = "../../api/tests/common/mod.rs"]
mod common;
#[path = "../../api/tests/trig_support/mod.rs"]
mod trig_support;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use sqlx::Row as _;
use trig_support::*;

/// The api and sfn-server of `trig_support`, with the Redis connection for event streams that
/// `AppState::connect` gives the recorder Lambda (the test harness builds its state without one).
async fn aws_env() -> Option<Env> {
    let env = env().await?;
    env.app.state.set_redis(cache::connect(&env.app.redis_url).await.expect("redis"));
    Some(env)
}

const FIXTURE: &str = include_str!("data/status_change_succeeded.json");

/// The recorded EventBridge event, rewritten for a real execution and status.
fn status_change(execution_arn: &str, state_machine_arn: &str, status: &str) -> Value {
    let mut event: Value = serde_json::from_str(FIXTURE).expect("fixture");
    let name = execution_arn.rsplit(':').next().unwrap_or_default().to_owned();
    event["resources"] = json!([execution_arn]);
    event["detail"]["executionArn"] = json!(execution_arn);
    event["detail"]["stateMachineArn"] = json!(state_machine_arn);
    event["detail"]["name"] = json!(name);
    event["detail"]["status"] = json!(status);
    event
}

struct Row {
    status: String,
    arn: String,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
}

async fn row(env: &Env, id: &str) -> Row {
    let r = sqlx::query("SELECT status, execution_arn, output, error, cause FROM executions WHERE id = $1")
        .bind(uuid::Uuid::parse_str(id).expect("uuid"))
        .fetch_one(env.app.state.store().pool())
        .await
        .expect("executions row");
    Row {
        status: r.get("status"),
        arn: r.get::<Option<String>, _>("execution_arn").expect("the api stores the ARN at start"),
        output: r.get("output"),
        error: r.get("error"),
        cause: r.get("cause"),
    }
}

/// `(seq, type, node_id)` of the execution's `execution_events`, in order.
async fn events(env: &Env, id: &str) -> Vec<(i64, String, Option<String>)> {
    sqlx::query("SELECT seq, type, node_id FROM execution_events WHERE execution_id = $1 ORDER BY seq")
        .bind(uuid::Uuid::parse_str(id).expect("uuid"))
        .fetch_all(env.app.state.store().pool())
        .await
        .expect("events")
        .into_iter()
        .map(|r| (r.get("seq"), r.get("type"), r.get("node_id")))
        .collect()
}

async fn stream_len(env: &Env, tenant: &str, id: &str) -> i64 {
    let client = redis::Client::open(env.app.redis_url.as_str()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let key = executions::stream_key(tenant, uuid::Uuid::parse_str(id).expect("uuid"));
    redis::cmd("XLEN").arg(key).query_async(&mut conn).await.expect("XLEN")
}

/// Waits on Step Functions itself (not the api) until the execution leaves `RUNNING`.
async fn sfn_status(env: &Env, arn: &str, until_not_running: bool) -> String {
    let client = sfn_server::sdk::local_client(&env.sfn_url, &env.sfn_credentials);
    for _ in 0..200 {
        let d = client.describe_execution().execution_arn(arn).send().await.expect("DescribeExecution");
        let status = d.status().as_str().to_owned();
        if !until_not_running || status != "RUNNING" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn} did not finish");
}

/// Waits until Step Functions' history of `arn` shows state `state` entered (the endpoint stores
/// history asynchronously, as AWS makes it visible eventually).
async fn history_entered(env: &Env, arn: &str, state: &str) {
    let client = sfn_server::sdk::local_client(&env.sfn_url, &env.sfn_credentials);
    for _ in 0..200 {
        let h = client.get_execution_history().execution_arn(arn).send().await.expect("GetExecutionHistory");
        if h.events().iter().any(|e| e.state_entered_event_details().is_some_and(|d| d.name() == state)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn} never entered {state}");
}

#[tokio::test]
async fn status_change_event_records_a_finished_execution() {
    let Some(env) = aws_env().await else { return };
    let wf = env.publish("acme", graph("recorded")).await;
    let id = env.start("acme", &wf, json!({"name": "ada"})).await;
    let before = row(&env, &id).await;
    assert_eq!(before.status, "RUNNING", "only the start is recorded before any event");
    assert!(events(&env, &id).await.is_empty(), "no recorder loop runs, so no events yet");
    assert_eq!(sfn_status(&env, &before.arn, true).await, "SUCCEEDED");
    assert_eq!(row(&env, &id).await.status, "RUNNING", "finished in Step Functions, not yet recorded");

    let machine = before.arn.replacen(":execution:", ":stateMachine:", 1);
    let machine = machine.rsplit_once(':').map(|(m, _)| m.to_owned()).expect("machine arn");
    let event = status_change(&before.arn, &machine, "SUCCEEDED");
    assert!(fn_recorder::handle(env.app.state.executions(), &event).await.expect("recorded"));

    let after = row(&env, &id).await;
    assert_eq!(after.status, "SUCCEEDED");
    assert_eq!(after.output, Some(json!("ada")), "the end node outputs input.name");
    assert_eq!((after.error, after.cause), (None, None));
    let expected: Vec<(i64, String, Option<String>)> = [
        ("execution_started", None),
        ("node_started", Some("start")),
        ("node_succeeded", Some("start")),
        ("node_started", Some("done")),
        ("node_succeeded", Some("done")),
        ("execution_succeeded", None),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (t, n))| (i as i64 + 1, t.to_owned(), n.map(str::to_owned)))
    .collect();
    assert_eq!(events(&env, &id).await, expected);
    assert_eq!(stream_len(&env, "acme", &id).await, expected.len() as i64, "every event is on the Redis stream too");

    // EventBridge delivers at least once: a redelivery (and a late RUNNING event) adds nothing.
    fn_recorder::handle(env.app.state.executions(), &event).await.expect("redelivery");
    fn_recorder::handle(env.app.state.executions(), &status_change(&before.arn, &machine, "RUNNING"))
        .await
        .expect("late RUNNING");
    assert_eq!(events(&env, &id).await, expected);
    assert_eq!(stream_len(&env, "acme", &id).await, expected.len() as i64);
    assert_eq!(row(&env, &id).await.status, "SUCCEEDED");

    // The api reads what the recorder wrote.
    let r = env.app.call("GET", &format!("/v1/executions/{id}"), Some(&token("acme", "viewer")), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["status"].clone(), r.body["output"].clone()), (json!("SUCCEEDED"), json!("ada")));
}

#[tokio::test]
async fn running_then_aborted_events_record_incrementally() {
    let Some(env) = aws_env().await else { return };
    let wf = env.publish("acme", approval_graph(600)).await;
    let id = env.start("acme", &wf, json!({"item": "a box"})).await;
    // The approval node is waiting once its pending approval exists (GET /v1/approvals does not record).
    env.pending_approval("acme", &id).await;
    let arn = row(&env, &id).await.arn;
    let machine =
        arn.replacen(":execution:", ":stateMachine:", 1).rsplit_once(':').map(|(m, _)| m.to_owned()).expect("machine");
    history_entered(&env, &arn, "review").await;

    assert!(
        fn_recorder::handle(env.app.state.executions(), &status_change(&arn, &machine, "RUNNING"))
            .await
            .expect("RUNNING")
    );
    let running = events(&env, &id).await;
    assert_eq!(row(&env, &id).await.status, "RUNNING");
    let kinds: Vec<(&str, Option<&str>)> = running.iter().map(|(_, t, n)| (t.as_str(), n.as_deref())).collect();
    assert_eq!(
        kinds,
        [
            ("execution_started", None),
            ("node_started", Some("start")),
            ("node_succeeded", Some("start")),
            ("node_started", Some("review"))
        ]
    );

    // Stopped in Step Functions directly (an operator in the AWS console), then the ABORTED event.
    sfn_server::sdk::local_client(&env.sfn_url, &env.sfn_credentials)
        .stop_execution()
        .execution_arn(&arn)
        .error("Ops.Cancelled")
        .cause("stopped from the console")
        .send()
        .await
        .expect("StopExecution");
    assert_eq!(sfn_status(&env, &arn, false).await, "ABORTED");
    assert!(
        fn_recorder::handle(env.app.state.executions(), &status_change(&arn, &machine, "ABORTED"))
            .await
            .expect("ABORTED")
    );

    let done = row(&env, &id).await;
    assert_eq!(
        (done.status.as_str(), done.error.as_deref(), done.cause.as_deref()),
        ("ABORTED", Some("Ops.Cancelled"), Some("stopped from the console"))
    );
    let all = events(&env, &id).await;
    assert_eq!(&all[..running.len()], &running[..], "earlier events keep their ids");
    assert_eq!(all.last().map(|(_, t, _)| t.as_str()), Some("execution_aborted"), "{all:?}");
    let seqs: Vec<i64> = all.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(seqs, (1..=all.len() as i64).collect::<Vec<_>>(), "ids are dense and ordered");
    assert_eq!(stream_len(&env, "acme", &id).await, all.len() as i64);
}

#[tokio::test]
async fn events_for_other_executions_are_ignored() {
    let Some(env) = aws_env().await else { return };
    let foreign = "arn:aws:states:us-east-1:123456789012:execution:not-weft:run-1";
    let event = status_change(foreign, "arn:aws:states:us-east-1:123456789012:stateMachine:not-weft", "SUCCEEDED");
    assert!(!fn_recorder::handle(env.app.state.executions(), &event).await.expect("ignored"));
    let mut other = event.clone();
    other["detail-type"] = json!("Step Functions State Machine Version Change");
    assert!(!fn_recorder::handle(env.app.state.executions(), &other).await.expect("ignored"));
}

#[tokio::test]
async fn concurrent_deliveries_record_each_event_once() {
    let Some(env) = aws_env().await else { return };
    let wf = env.publish("acme", graph("raced")).await;
    for round in 0..5 {
        let id = env.start("acme", &wf, json!({"name": format!("r{round}")})).await;
        let arn = row(&env, &id).await.arn;
        assert_eq!(sfn_status(&env, &arn, true).await, "SUCCEEDED");
        let machine = arn.replacen(":execution:", ":stateMachine:", 1);
        let machine = machine.rsplit_once(':').map(|(m, _)| m.to_owned()).expect("machine arn");
        let event = status_change(&arn, &machine, "SUCCEEDED");
        // Eight deliveries at once race for the same row: one writes (without the lock, or under
        // it after losing the race), the others find nothing new.
        let executions = env.app.state.executions();
        let results = futures::future::join_all((0..8).map(|_| fn_recorder::handle(executions, &event))).await;
        let written = results.into_iter().map(|r| r.expect("recorded")).filter(|w| *w).count();
        assert_eq!(written, 1, "round {round}: exactly one delivery changes the row");
        let seqs: Vec<i64> = events(&env, &id).await.into_iter().map(|(seq, _, _)| seq).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<i64>>(), "round {round}: each event once, in order");
        assert_eq!(stream_len(&env, "acme", &id).await, 6, "round {round}");
        assert_eq!(row(&env, &id).await.status, "SUCCEEDED");
    }
}

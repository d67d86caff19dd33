//! Execution domain events against real components (the api and a real `sfn-server` of
//! `trig_support`, real Postgres and Redis, no recorder loop): a start records
//! `ExecutionStarted`, and recording the history (the recorder Lambda's status-change events)
//! records `NodeSucceeded`/`NodeFailed` and the outcome, each once however often and however
//! concurrently the same history is recorded; a `?wait=true` start records them with its answer.
//! Events carry error names only, never inputs, outputs or causes. With a sink, the recorder
//! publishes them after recording.
//!
//! Needs `WEFT_TEST_DATABASE_URL` and `WEFT_TEST_REDIS_URL`; without them each test skips (a
//! `SKIPPED:` line), unless `WEFT_TEST_STRICT=1`, when it fails.

#[path = "../../api/tests/common/mod.rs"]
mod common;
#[path = "../../api/tests/trig_support/mod.rs"]
mod trig_support;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use trig_support::*;

const FIXTURE: &str = include_str!("data/status_change_succeeded.json");

/// The recorded EventBridge status-change event, for the execution `arn`.
fn status_change(arn: &str, status: &str) -> Value {
    let mut event: Value = serde_json::from_str(FIXTURE).expect("fixture");
    event["resources"] = json!([arn]);
    event["detail"]["executionArn"] = json!(arn);
    event["detail"]["status"] = json!(status);
    event
}

/// `(kind, detail)` of the outbox rows of execution `id` (or of events naming no execution:
/// none here), in id order.
async fn events_of(env: &Env, id: &str) -> Vec<(String, Value)> {
    sqlx::query_as("SELECT kind, detail FROM domain_events WHERE detail ->> 'execution_id' = $1 ORDER BY id")
        .bind(id)
        .fetch_all(env.app.state.store().pool())
        .await
        .expect("outbox")
}

async fn arn_of(env: &Env, id: &str) -> String {
    sqlx::query_scalar("SELECT execution_arn FROM executions WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(env.app.state.store().pool())
        .await
        .expect("the api stores the ARN at start")
}

/// Waits on Step Functions itself until the execution is over.
async fn ended_in_sfn(env: &Env, arn: &str) -> String {
    let client = sfn_server::sdk::local_client(&env.sfn_url, &env.sfn_credentials);
    for _ in 0..400 {
        let d = client.describe_execution().execution_arn(arn).send().await.expect("DescribeExecution");
        if d.status().as_str() != "RUNNING" {
            return d.status().as_str().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{arn} did not finish");
}

#[tokio::test]
async fn recording_the_same_history_again_records_each_event_once() {
    let Some(env) = env().await else { return };
    env.app.state.set_redis(cache::connect(&env.app.redis_url).await.expect("redis"));
    let wf = env.publish("acme", graph("recorded")).await;
    let id = env.start("acme", &wf, json!({"name": "ada"})).await;
    let started = json!({"execution_id": id, "workflow_id": wf, "status": "RUNNING"});
    assert_eq!(events_of(&env, &id).await, [("ExecutionStarted".to_owned(), started.clone())], "recorded by the start");

    let arn = arn_of(&env, &id).await;
    assert_eq!(ended_in_sfn(&env, &arn).await, "SUCCEEDED");
    let event = status_change(&arn, "SUCCEEDED");
    assert!(fn_recorder::handle(env.app.state.executions(), &event).await.expect("recorded"));
    let expected = vec![
        ("ExecutionStarted".to_owned(), started),
        ("NodeSucceeded".to_owned(), json!({"execution_id": id, "node_id": "start"})),
        ("NodeSucceeded".to_owned(), json!({"execution_id": id, "node_id": "done"})),
        ("ExecutionSucceeded".to_owned(), json!({"execution_id": id, "workflow_id": wf, "status": "SUCCEEDED"})),
    ];
    assert_eq!(events_of(&env, &id).await, expected);

    // Redelivered, late and concurrent deliveries, and a reader recording on GET: nothing twice.
    fn_recorder::handle(env.app.state.executions(), &event).await.expect("redelivery");
    fn_recorder::handle(env.app.state.executions(), &status_change(&arn, "RUNNING")).await.expect("late RUNNING");
    let executions = env.app.state.executions();
    for r in futures::future::join_all((0..8).map(|_| fn_recorder::handle(executions, &event))).await {
        r.expect("recorded");
    }
    let r = env.app.call("GET", &format!("/v1/executions/{id}"), Some(&token("acme", "viewer")), None).await;
    assert_eq!((r.status, r.body["status"].clone()), (StatusCode::OK, json!("SUCCEEDED")));
    assert_eq!(events_of(&env, &id).await, expected);
    let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM domain_events")
        .fetch_all(env.app.state.store().pool())
        .await
        .expect("tenants");
    assert_eq!(tenants, ["acme"]);
}

#[tokio::test]
async fn a_failed_node_and_execution_carry_the_error_name_and_nothing_of_the_data() {
    let Some(env) = env().await else { return };
    let g = json!({"format": "weft/v1", "id": "g", "name": "fails",
        "nodes": [{"id": "start", "type": "start", "data": {}},
                  {"id": "explode", "type": "code", "data": {"source": "throw new Error('the cause with ' + input.card)"}},
                  {"id": "done", "type": "end", "data": {}}],
        "edges": [{"id": "e1", "source": "start", "target": "explode"}, {"id": "e2", "source": "explode", "target": "done"}]});
    let wf = env.publish("acme", g).await;
    let id = env.start("acme", &wf, json!({"card": "4111-1111"})).await;
    let arn = arn_of(&env, &id).await;
    assert_eq!(ended_in_sfn(&env, &arn).await, "FAILED");
    for _ in 0..2 {
        fn_recorder::handle(env.app.state.executions(), &status_change(&arn, "FAILED")).await.expect("recorded");
    }
    let events = events_of(&env, &id).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["ExecutionStarted", "NodeSucceeded", "NodeFailed", "ExecutionFailed"], "{events:?}");
    assert_eq!(events[2].1, json!({"execution_id": id, "node_id": "explode", "error": "Code.Error"}));
    let failed = &events[3].1;
    assert_eq!((&failed["status"], &failed["workflow_id"]), (&json!("FAILED"), &json!(wf)));
    assert!(failed["error"].is_string(), "{failed}");
    let text = serde_json::to_string(&events).expect("json");
    assert!(!text.contains("4111") && !text.contains("the cause"), "no input or cause in events: {text}");
}

#[tokio::test]
async fn a_synchronous_start_records_its_events_with_its_answer_once() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", graph("sync")).await;
    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/workflows/{wf}/executions?wait=true"),
            Some(&token("acme", "editor")),
            Some(json!({"input": {"name": "ada"}})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(r.body["status"], "SUCCEEDED", "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let kinds = |events: Vec<(String, Value)>| events.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    let expected = ["ExecutionStarted", "NodeSucceeded", "NodeSucceeded", "ExecutionSucceeded"];
    assert_eq!(kinds(events_of(&env, &id).await), expected);
    // A status change for it later (the recorder Lambda) adds nothing.
    let arn = arn_of(&env, &id).await;
    fn_recorder::handle(env.app.state.executions(), &status_change(&arn, "SUCCEEDED")).await.expect("recorded");
    assert_eq!(kinds(events_of(&env, &id).await), expected);
}

#[tokio::test]
async fn with_a_sink_the_recorder_publishes_what_it_recorded() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", graph("published")).await;
    let id = env.start("acme", &wf, json!({"name": "ada"})).await;
    let arn = arn_of(&env, &id).await;
    assert_eq!(ended_in_sfn(&env, &arn).await, "SUCCEEDED");
    let client = redis::Client::open(env.app.redis_url.as_str()).expect("redis url");
    let key = format!("{}:domain-events", env.app.namespace);
    let sink =
        domain_events::RedisStreamSink::with_key(client.get_connection_manager().await.expect("redis"), key.clone());
    let event = status_change(&arn, "SUCCEEDED");
    for _ in 0..2 {
        fn_recorder::handle_and_publish(env.app.state.executions(), Some(&sink), &event).await.expect("recorded");
    }
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let entries: Vec<(String, Vec<(String, String)>)> =
        redis::cmd("XRANGE").arg(&key).arg("-").arg("+").query_async(&mut conn).await.expect("XRANGE");
    let published: Vec<Value> = entries.iter().map(|(_, f)| serde_json::from_str(&f[0].1).expect("event")).collect();
    // Everything the outbox holds: the workflow's events, the start's, and the recording's.
    let kinds: Vec<&str> = published.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "WorkflowCreated",
            "WorkflowPublished",
            "ExecutionStarted",
            "NodeSucceeded",
            "NodeSucceeded",
            "ExecutionSucceeded"
        ]
    );
    assert!(published.iter().all(|e| e["tenant_id"] == "acme" && e["version"] == 1));
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM domain_events WHERE published_at IS NULL")
        .fetch_one(env.app.state.store().pool())
        .await
        .expect("pending");
    assert_eq!(pending, 0);
}

//! Rolling the `live` alias back changes what runs, through every way Weft starts an execution:
//! `POST /v1/workflows/{id}/executions` (async and `?wait=true`), a signed webhook, a schedule and
//! a queue message. Each run must report `version == 1` and produce version 1's output.

#[path = "../../api/tests/common/mod.rs"]
mod common;
#[path = "../../api/tests/trig_support/mod.rs"]
mod trig_support;

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::*;
use serde_json::{Value, json};
use trig_support::*;
use triggers::cron::Cron;

const CRON: &str = "*/5 * * * *";

/// start -> end whose output names the version (`one` or `two`); every trigger kind declared.
fn versioned(output: &str) -> Value {
    let mut g = graph("rolled back");
    g["nodes"][1]["data"]["output"] = json!(output);
    g["triggers"] = json!([
        {"type": "webhook"},
        {"type": "schedule", "cron": CRON},
        {"type": "queue", "event": "alias.test"}
    ]);
    g
}

async fn executions(env: &Env, workflow: &str) -> Vec<Value> {
    let r = env
        .app
        .call("GET", &format!("/v1/executions?workflow_id={workflow}&limit=200"), Some(&token("acme", "viewer")), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

fn assert_v1(run: &Value, how: &str) {
    assert_eq!(run["status"], "SUCCEEDED", "{how}: {run}");
    assert_eq!(run["version"], 1, "{how} ran the alias's version: {run}");
    assert_eq!(run["output"], "one", "{how} produced version 1's output: {run}");
}

#[tokio::test]
async fn every_start_path_runs_the_alias_version() {
    let Some(env) = env().await else { return };
    let editor = token("acme", "editor");
    let wf = env.publish("acme", versioned("one")).await;
    let r = env
        .app
        .call("PUT", &format!("/v1/workflows/{wf}"), Some(&editor), Some(json!({"graph": versioned("two")})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env.app.call("POST", &format!("/v1/workflows/{wf}/versions"), Some(&editor), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["version"], 2);
    let r = env.app.call("PUT", &format!("/v1/workflows/{wf}/alias"), Some(&editor), Some(json!({"version": 1}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env.app.call("GET", &format!("/v1/workflows/{wf}"), Some(&editor), None).await;
    assert_eq!(r.body["live_version"], 1, "{}", r.body);
    assert_eq!(r.body["latest_version"], 2, "{}", r.body);

    // 1. The API, asynchronously.
    let id = env.start("acme", &wf, json!({})).await;
    assert_v1(&env.finish("acme", &id).await, "POST /executions");

    // 2. The API, synchronously.
    let r = env
        .app
        .call("POST", &format!("/v1/workflows/{wf}/executions?wait=true"), Some(&editor), Some(json!({"input": {}})))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_v1(&r.body, "POST /executions?wait=true");

    // 3. A signed webhook.
    let triggers = env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&editor), None).await;
    let items = triggers.body["items"].as_array().cloned().unwrap_or_default();
    let hook = items.iter().find(|t| t["kind"] == "webhook").expect("webhook trigger");
    let secret = hook["webhook"]["secret"].as_str().expect("secret").to_owned();
    let now = Utc::now().timestamp();
    let body = "{}";
    let signature = triggers::signature::sign(secret.as_bytes(), now, body.as_bytes());
    let r = env.app.raw(delivery(&wf, now, &signature, body)).await;
    assert!(r.status.is_success(), "{}", r.body);
    let hooked = r.body["execution_id"].as_str().or_else(|| r.body["id"].as_str()).expect("execution id").to_owned();
    assert_v1(&env.finish("acme", &hooked).await, "webhook");

    // 4. A schedule, at its next due time.
    let schedule = items.iter().find(|t| t["kind"] == "schedule").expect("schedule trigger");
    let since: DateTime<Utc> = schedule["last_fired_at"]
        .as_str()
        .or_else(|| schedule["registered_at"].as_str())
        .or_else(|| schedule["created_at"].as_str())
        .map_or_else(Utc::now, |s| s.parse().expect("time"));
    let due = Cron::parse(CRON).expect("cron").next_after(since).expect("next");
    let starter = env.app.state.executions().clone();
    assert_eq!(
        executions::schedules::tick(&fn_api::trigger_routes::registry(&env.app.state), &starter, due)
            .await
            .expect("tick"),
        1
    );

    // 5. A queue message.
    let function = fn_trigger::TriggerFunction::new(
        fn_api::trigger_routes::registry(&env.app.state),
        Arc::new(env.app.state.executions().clone()),
    );
    let batch: SqsEvent = serde_json::from_value(json!({"Records": [{
        "messageId": uuid::Uuid::new_v4().to_string(),
        "body": json!({"event": "alias.test", "input": {}}).to_string(),
        "eventSource": "aws:sqs"
    }]}))
    .expect("sqs event");
    let response = function.handle(batch).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);

    let runs = executions(&env, &wf).await;
    assert_eq!(runs.len(), 5, "{runs:?}");
    for run in &runs {
        let id = run["id"].as_str().expect("id");
        let how = run["started_by"].as_str().unwrap_or_default().to_owned();
        assert_v1(&env.finish("acme", id).await, &how);
    }
}

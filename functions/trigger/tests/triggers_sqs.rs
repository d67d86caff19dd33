//! The SQS consumer against the real api and Step Functions endpoint: a batch with one poison
//! message reports exactly that message as failed, the good one starts its workflow, and a
//! redelivered batch starts nothing twice.

#[path = "../../api/tests/common/mod.rs"]
mod common;
#[path = "../../api/tests/trig_support/mod.rs"]
mod trig_support;

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use trig_support::*;

const BATCH: &str = include_str!("data/sqs_batch.json");
const POISON_ID: &str = "2e1424d4-f796-459a-8184-9c92662be6da";

async fn executions(env: &Env, workflow: &str) -> Vec<Value> {
    let r = env
        .app
        .call("GET", &format!("/v1/executions?workflow_id={workflow}"), Some(&token("acme", "viewer")), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_poison_message_is_the_only_failure_in_its_batch() {
    let Some(env) = env().await else { return };
    let mut g = graph("on order");
    g["triggers"] = json!([{"type": "queue", "event": "order.created"}]);
    let wf = env.publish("acme", g).await;
    let function = fn_trigger::TriggerFunction::new(
        fn_api::trigger_routes::registry(&env.app.state),
        Arc::new(env.app.state.executions().clone()),
    );
    let batch: SqsEvent = serde_json::from_str(BATCH).expect("fixture");
    let fired = || async {
        let r =
            env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&token("acme", "editor")), None).await;
        r.body["items"][0].get("last_fired_at").cloned()
    };
    assert_eq!(fired().await, None, "published, not fired yet");

    let response = function.handle(batch.clone()).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, [POISON_ID], "exactly the poison message is reported");
    // The wire shape SQS reads.
    let wire = serde_json::to_value(&response).expect("json");
    assert_eq!(wire, json!({"batchItemFailures": [{"itemIdentifier": POISON_ID}]}));

    let runs = executions(&env, &wf).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0]["started_by"].as_str().is_some_and(|s| s.starts_with("queue:")));
    let done = env.finish("acme", runs[0]["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], "order 17", "the message's input reached the workflow");
    assert!(fired().await.is_some_and(|t| t.is_string()), "the queue trigger fired");

    // SQS redelivers the batch (say the Lambda timed out after starting): nothing starts twice.
    let response = function.handle(batch).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, [POISON_ID]);
    assert_eq!(executions(&env, &wf).await.len(), 1, "the start is idempotent per message and trigger");
}

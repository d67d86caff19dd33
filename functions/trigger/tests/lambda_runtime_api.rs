//! The real `fn-trigger` bootstrap under a Lambda Runtime API server on 127.0.0.1, against a real
//! Step Functions endpoint (`sfn-server` over HTTP, SigV4 with the credentials of its environment)
//! and Postgres: an SQS batch starts the workflow of its queue trigger, reports exactly the poison
//! message in SQS's wire shape, and the initialisation fails without its database.

#![allow(clippy::unwrap_used)]

#[path = "../../api/tests/common/mod.rs"]
mod common;
#[path = "../../api/tests/trig_support/mod.rs"]
mod trig_support;

use std::time::Duration;

use common::*;
use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};
use trig_support::*;

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-trigger");
const BATCH: &str = include_str!("data/sqs_batch.json");
const POISON_ID: &str = "2e1424d4-f796-459a-8184-9c92662be6da";
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

/// The bootstrap under a Runtime API server, against the environment's database and endpoint.
async fn start_bootstrap(env: &Env) -> (RuntimeApi, lambda_glue::runtime_api::Bootstrap) {
    let api = RuntimeApi::start().await.unwrap();
    let (key, secret) = (env.sfn_credentials.access_key_id(), env.sfn_credentials.secret_access_key());
    let vars = [
        ("WEFT_DATABASE_URL", env.app.db_url.as_str()),
        ("WEFT_SFN_ENDPOINT", env.sfn_url.as_str()),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];
    let bootstrap = api.spawn(BOOTSTRAP, "trigger", &vars).unwrap();
    (api, bootstrap)
}

#[tokio::test]
async fn bootstrap_starts_queue_triggers_and_reports_poison_messages() {
    let Some(env) = env().await else { return };
    let mut g = graph("on order");
    g["triggers"] = json!([{"type": "queue", "event": "order.created"}]);
    let wf = env.publish("acme", g).await;

    let (api, bootstrap) = start_bootstrap(&env).await;
    let batch: Value = serde_json::from_str(BATCH).unwrap();
    let expected = Some(Outcome::Response(json!({"batchItemFailures": [{"itemIdentifier": POISON_ID}]})));
    assert_eq!(api.invoke(batch.clone(), WAIT).await, expected);
    let started: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, started_by FROM executions WHERE workflow_id = $1::uuid")
            .bind(&wf)
            .fetch_all(env.app.state.store().pool())
            .await
            .unwrap();
    assert_eq!(started.len(), 1, "{started:?}");
    assert!(started[0].1.starts_with("queue:"), "{started:?}");
    let done = env.finish("acme", &started[0].0.to_string()).await;
    assert_eq!((done["status"].clone(), done["output"].clone()), (json!("SUCCEEDED"), json!("order 17")));

    // Redelivered: the same report, and nothing starts twice.
    assert_eq!(api.invoke(batch, WAIT).await, expected);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM executions WHERE workflow_id = $1::uuid")
        .bind(&wf)
        .fetch_one(env.app.state.store().pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.unwrap();
}

#[tokio::test]
async fn bootstrap_fails_its_initialisation_without_a_database() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = api.init_failure(BOOTSTRAP, "trigger", &[], WAIT).await.unwrap();
    assert!(stderr.contains("WEFT_DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn bootstrap_fires_due_cron_triggers_on_the_scheduled_event() {
    let Some(env) = env().await else { return };
    let mut g = graph("every minute");
    g["triggers"] = json!([{"type": "schedule", "cron": "* * * * *"}]);
    let wf = env.publish("acme", g).await;
    // Armed three minutes ago: the latest due minute is behind us, so one tick fires it once.
    sqlx::query("UPDATE triggers SET armed_at = now() - interval '3 minutes' WHERE workflow_id = $1::uuid")
        .bind(&wf)
        .execute(env.app.state.store().pool())
        .await
        .unwrap();

    let (api, bootstrap) = start_bootstrap(&env).await;
    // EventBridge's scheduled event, as the rule delivers it.
    let scheduled = json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-12-02T00:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/weft-scheduler"], "detail": {}});
    assert_eq!(api.invoke(scheduled.clone(), WAIT).await, Some(Outcome::Response(json!({"fired": 1}))));
    let started: Vec<String> = sqlx::query_scalar("SELECT started_by FROM executions WHERE workflow_id = $1::uuid")
        .bind(&wf)
        .fetch_all(env.app.state.store().pool())
        .await
        .unwrap();
    assert_eq!(started.len(), 1, "{started:?}");
    assert!(started[0].starts_with("schedule:"), "{started:?}");
    // The same minute again fires nothing; an event of another shape is refused by name.
    assert_eq!(api.invoke(scheduled, WAIT).await, Some(Outcome::Response(json!({"fired": 0}))));
    match api.invoke(json!({"hello": "world"}), WAIT).await {
        Some(Outcome::Error { error_type, .. }) => assert!(!error_type.is_empty()),
        other => panic!("expected an error, got {other:?}"),
    }
    bootstrap.stop().await.unwrap();
}

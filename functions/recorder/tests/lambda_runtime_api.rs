//! The real `fn-recorder` bootstrap under a Lambda Runtime API server on 127.0.0.1, against a real
//! Step Functions endpoint (`sfn-server` over HTTP, SigV4 with the credentials of its environment),
//! Postgres and Redis: a status-change event records its execution, events Weft did not start are
//! ignored, a failure is returned so EventBridge retries, and the initialisation fails without its
//! database.

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

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-recorder");
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn status_change(execution_arn: &str) -> Value {
    json!({"version": "0", "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
           "detail": {"executionArn": execution_arn, "status": "SUCCEEDED"}})
}

async fn status(env: &Env, id: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, execution_arn FROM executions WHERE id = $1")
        .bind(uuid::Uuid::parse_str(id).unwrap())
        .fetch_one(env.app.state.store().pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn bootstrap_records_status_change_events() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", graph("boot")).await;
    let id = env.start("acme", &wf, json!({"name": "ada"})).await;
    let (_, arn) = status(&env, &id).await;
    let arn = arn.expect("the start stores the ARN");
    let client = sfn_server::sdk::local_client(&env.sfn_url, &env.sfn_credentials);
    for _ in 0..600 {
        let d = client.describe_execution().execution_arn(&arn).send().await.unwrap();
        if d.status().as_str() != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let api = RuntimeApi::start().await.unwrap();
    let (key, secret) = (env.sfn_credentials.access_key_id(), env.sfn_credentials.secret_access_key());
    let vars = [
        ("WEFT_DATABASE_URL", env.app.db_url.as_str()),
        ("WEFT_REDIS_URL", env.app.redis_url.as_str()),
        ("WEFT_SFN_ENDPOINT", env.sfn_url.as_str()),
        ("AWS_ACCESS_KEY_ID", key),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];
    let bootstrap = api.spawn(BOOTSTRAP, "recorder", &vars).unwrap();
    assert_eq!(api.invoke(status_change(&arn), WAIT).await, Some(Outcome::Response(json!({"recorded": true}))));
    assert_eq!(status(&env, &id).await.0, "SUCCEEDED");
    // Redelivered: nothing new. Another execution, or another event: ignored.
    assert_eq!(api.invoke(status_change(&arn), WAIT).await, Some(Outcome::Response(json!({"recorded": false}))));
    let stranger = arn.rsplit_once(':').map(|(m, _)| format!("{m}:not-ours")).unwrap();
    assert_eq!(api.invoke(status_change(&stranger), WAIT).await, Some(Outcome::Response(json!({"recorded": false}))));
    let scheduled = json!({"detail-type": "Scheduled Event", "detail": {}});
    assert_eq!(api.invoke(scheduled, WAIT).await, Some(Outcome::Response(json!({"recorded": false}))));

    // A row whose execution Step Functions does not know: the failure goes back to EventBridge.
    let store = env.app.state.store();
    let workflow = store::testing::published_workflow(store, "acme").await.unwrap();
    let (_, lost) = store::testing::execution(store, "acme", workflow.id, true).await.unwrap();
    let failed = api.invoke(status_change(&lost), WAIT).await;
    let Some(Outcome::Error { error_message, .. }) = &failed else { panic!("expected an error, got {failed:?}") };
    assert!(error_message.contains("ExecutionDoesNotExist"), "{error_message}");
    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.unwrap();
}

#[tokio::test]
async fn bootstrap_fails_its_initialisation_without_a_database() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = api.init_failure(BOOTSTRAP, "recorder", &[], WAIT).await.unwrap();
    assert!(stderr.contains("WEFT_DATABASE_URL"), "{stderr}");
}

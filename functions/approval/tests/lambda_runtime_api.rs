//! The real `fn-approval` bootstrap under a Lambda Runtime API server on 127.0.0.1, on a real
//! Postgres: a pending approval stored for the execution's tenant, failures by their stable
//! names, and the initialisation failing without its database.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_fn-approval");
/// Generous: what comes back is the assertion, not how fast, on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn event(arn: &str, token: Option<&str>) -> Value {
    json!({"node": {"id": "review", "type": "approval"}, "config": {"message": "Ship it?", "timeout_seconds": 3600},
           "execution": {"id": arn}, "task_token": token})
}

#[tokio::test]
async fn bootstrap_stores_a_pending_approval_and_fails_by_name() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, db) = store::testing::fresh_store(&admin).await.unwrap();
    let workflow = store::testing::published_workflow(&store, "acme").await.unwrap();
    let (execution, arn) = store::testing::execution(&store, "acme", workflow.id, true).await.unwrap();

    let api = RuntimeApi::start().await.unwrap();
    let bootstrap = api.spawn(BOOTSTRAP, "approval", &[("WEFT_DATABASE_URL", &db)]).unwrap();

    let stored = api.invoke(event(&arn, Some("token-1")), WAIT).await;
    let Some(Outcome::Response(out)) = &stored else { panic!("expected a response, got {stored:?}") };
    assert_eq!(out["status"], "pending", "{out}");
    let id = uuid::Uuid::parse_str(out["approval_id"].as_str().unwrap()).unwrap();
    let row: (String, uuid::Uuid, String, String, String) =
        sqlx::query_as("SELECT tenant_id, execution_id, node_id, task_token, message FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(row, ("acme".into(), execution, "review".into(), "token-1".into(), "Ship it?".into()));

    // A retried invocation (same task token) finds the approval it stored.
    let again = api.invoke(event(&arn, Some("token-1")), WAIT).await;
    assert_eq!(again, stored);

    let no_token = api.invoke(event(&arn, None), WAIT).await;
    assert!(
        matches!(&no_token, Some(Outcome::Error { error_type, .. }) if error_type == "Approval.NoTaskToken"),
        "{no_token:?}"
    );
    let bad =
        api.invoke(json!({"node": {"id": "review", "type": "approval"}, "config": {}, "task_token": "t"}), WAIT).await;
    assert_eq!(
        bad,
        Some(Outcome::Error { error_type: "Config.Invalid".into(), error_message: "config.message: missing".into() })
    );
    assert_eq!(api.init_error(), None);
    bootstrap.stop().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM approvals").fetch_one(store.pool()).await.unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn bootstrap_fails_its_initialisation_without_a_database() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = api.init_failure(BOOTSTRAP, "approval", &[], WAIT).await.unwrap();
    assert!(stderr.contains("WEFT_DATABASE_URL must be set for the approval function"), "{stderr}");
}

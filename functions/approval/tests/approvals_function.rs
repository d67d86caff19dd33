//! The approval function's own failures, with their stable error names. The success path (a
//! stored approval that an execution waits on) is covered end to end in
//! `functions/api/tests/approvals_e2e.rs`.

use std::time::Duration;

use fn_approval::{ApprovalFunction, errors};
use node_contract::{NodeEvent, NodeFunction as _};
use serde_json::{Value, json};

fn event(config: Value, token: Option<&str>, execution: &str) -> NodeEvent {
    NodeEvent::from_value(json!({
        "node": {"id": "review", "type": "approval"},
        "config": config,
        "execution": {"id": execution},
        "task_token": token,
    }))
    .expect("event")
}

/// A pool that is never connected: these failures happen before any query.
fn offline() -> ApprovalFunction {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("lazy pool");
    ApprovalFunction::new(pool)
}

#[tokio::test]
async fn invalid_config_and_missing_token_fail_by_name() {
    let f = offline();
    let arn = "arn:aws:states:us-east-1:123456789012:execution:weft-x:run";
    let e = f.handle(event(json!({}), Some("t"), arn)).await.expect_err("no message");
    assert_eq!((e.name.as_str(), e.message.as_str()), ("Config.Invalid", "config.message: missing"));
    let e = f.handle(event(json!({"message": 3}), Some("t"), arn)).await.expect_err("message type");
    assert!(e.message.contains("config.message: expected a string"), "{e}");
    let e =
        f.handle(event(json!({"message": "ok?", "timeout_seconds": 0}), Some("t"), arn)).await.expect_err("timeout");
    assert_eq!(e.message, "config.timeout_seconds: must be a positive integer");
    let e = f.handle(event(json!({"message": "ok?"}), None, arn)).await.expect_err("token");
    assert_eq!(e.name, errors::NO_TOKEN);
    let e = f.handle(event(json!({"message": "ok?"}), Some("t"), "")).await.expect_err("execution");
    assert!(e.message.contains("execution.id"), "{e}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_store_failure() {
    let f = offline();
    let e = f
        .handle(event(json!({"message": "ok?"}), Some("t"), "arn:aws:states:us-east-1:1:execution:weft-x:run"))
        .await
        .expect_err("offline");
    assert_eq!(e.name, errors::STORE);
}

#[tokio::test]
async fn an_execution_not_started_through_the_api_has_no_tenant() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, _) = store::testing::fresh_store(&admin).await.expect("database");
    let f = ApprovalFunction::new(store.pool().clone()).with_lookup_wait(Duration::from_millis(300));
    let arn = format!("arn:aws:states:us-east-1:123456789012:execution:weft-x:{}", uuid::Uuid::new_v4());
    let e = f.handle(event(json!({"message": "ok?"}), Some("t"), &arn)).await.expect_err("unknown");
    assert_eq!(e.name, errors::UNKNOWN_EXECUTION);
    assert!(e.message.contains(&arn), "{e}");
}

//! Approvals end to end through HTTP: a published workflow with an approval node runs on
//! `sfn-server`, waits, its approval appears in `GET /v1/approvals`, and the decision resumes it.

mod common;
mod trig_support;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use trig_support::*;

#[tokio::test]
async fn approved_execution_succeeds_with_the_approvals_output() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", approval_graph(60)).await;
    let exec = env.start("acme", &wf, json!({"item": "the blue box"})).await;

    let approval = env.pending_approval("acme", &exec).await;
    assert_eq!(approval["message"], "Ship the blue box?");
    assert_eq!(approval["node_id"], "review");
    assert_eq!(approval["status"], "pending");
    assert!(approval.get("task_token").is_none(), "the token is never shown");
    assert!(approval["timeout_at"].is_string());
    let id = approval["id"].as_str().expect("id").to_owned();

    // The execution is waiting on the approval.
    let running = env.app.call("GET", &format!("/v1/executions/{exec}"), Some(&token("acme", "viewer")), None).await;
    assert_eq!(running.body["status"], "RUNNING", "{}", running.body);

    // Viewers cannot decide; another tenant cannot see it.
    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&token("acme", "viewer")),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = env.app.call("GET", &format!("/v1/approvals/{id}"), Some(&token("other", "admin")), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&token("acme", "editor")),
            Some(json!({"decision": "maybe"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    let output = json!({"approved": true, "note": "looks good"});
    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&token("acme", "editor")),
            Some(json!({"decision": "approve", "comment": "ok", "output": output})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "approved");
    assert_eq!(r.body["comment"], "ok");

    let done = env.finish("acme", &exec).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], output, "the end node outputs the approval's output");

    // Deciding twice is a conflict, and the approval is no longer pending.
    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&token("acme", "editor")),
            Some(json!({"decision": "reject"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "already_decided");
    let list = env.app.call("GET", "/v1/approvals", Some(&token("acme", "viewer")), None).await;
    assert!(list.body["items"].as_array().expect("items").is_empty(), "{}", list.body);
}

#[tokio::test]
async fn rejected_execution_fails_with_approval_rejected() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", approval_graph(60)).await;
    let exec = env.start("acme", &wf, json!({"item": "the red box"})).await;
    let approval = env.pending_approval("acme", &exec).await;
    let id = approval["id"].as_str().expect("id");

    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&token("acme", "editor")),
            Some(json!({"decision": "reject", "comment": "wrong colour"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "rejected");

    let done = env.finish("acme", &exec).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "Approval.Rejected", "{done}");
    assert_eq!(done["cause"], "wrong colour", "{done}");
}

#[tokio::test]
async fn expired_approval_answers_410_and_the_task_times_out() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", approval_graph(1)).await;
    let exec = env.start("acme", &wf, json!({"item": "late"})).await;
    let approval = env.pending_approval("acme", &exec).await;
    let id = approval["id"].as_str().expect("id").to_owned();

    // The node's timeout_seconds is the Task's TimeoutSeconds: Step Functions fails it.
    let done = env.finish("acme", &exec).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.Timeout", "{done}");

    let r = env
        .app
        .call(
            "POST",
            &format!("/v1/approvals/{id}"),
            Some(&token("acme", "editor")),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "approval_expired");
    let r = env.app.call("GET", &format!("/v1/approvals/{id}"), Some(&token("acme", "viewer")), None).await;
    assert_eq!(r.body["status"], "timed_out", "{}", r.body);
    let list = env.app.call("GET", "/v1/approvals", Some(&token("acme", "viewer")), None).await;
    assert!(
        list.body["items"].as_array().expect("items").is_empty(),
        "expired approvals are not pending: {}",
        list.body
    );
}

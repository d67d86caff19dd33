//! Webhooks: `POST /v1/hooks/{workflow_id}` signed with the trigger's secret starts the workflow;
//! a bad signature, a replay and a stale timestamp are refused, and none of them starts anything.

mod common;
mod trig_support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{Value, json};
use trig_support::*;
use triggers::signature::sign;

fn hook_graph() -> Value {
    let mut g = graph("hooked");
    g["triggers"] = json!([{"type": "webhook"}]);
    g
}

async fn executions(env: &Env, workflow: &str) -> Vec<Value> {
    let r = env
        .app
        .call("GET", &format!("/v1/executions?workflow_id={workflow}"), Some(&token("acme", "viewer")), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn signed_deliveries_start_once_and_bad_ones_are_refused() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", hook_graph()).await;

    // The secret is shown to editors with the trigger.
    let triggers =
        env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&token("acme", "editor")), None).await;
    assert_eq!(triggers.status, StatusCode::OK, "{}", triggers.body);
    let hook = &triggers.body["items"][0];
    assert_eq!(hook["kind"], "webhook");
    assert_eq!(hook["webhook"]["path"], format!("/v1/hooks/{wf}"));
    let secret = hook["webhook"]["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    let r = env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&token("acme", "viewer")), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "viewers do not see webhook secrets");

    let now = chrono::Utc::now().timestamp();
    let body = r#"{"name": "from a hook"}"#;

    // Wrong key, and the right key over a different body.
    let r = env.app.raw(delivery(&wf, now, &sign(b"not the secret", now, body.as_bytes()), body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "bad_signature");
    let r = env.app.raw(delivery(&wf, now, &sign(secret.as_bytes(), now, b"{}"), body)).await;
    assert_eq!(r.body["error"]["code"], "bad_signature", "{}", r.body);
    // Right key, but signed more than 5 minutes ago.
    let old = now - 301;
    let r = env.app.raw(delivery(&wf, old, &sign(secret.as_bytes(), old, body.as_bytes()), body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "signature_expired");
    // Missing headers.
    let req = Request::builder().method("POST").uri(format!("/v1/hooks/{wf}")).body(Body::from(body)).expect("request");
    assert_eq!(env.app.raw(req).await.status, StatusCode::BAD_REQUEST);
    assert!(executions(&env, &wf).await.is_empty(), "refused deliveries start nothing");

    // A valid delivery starts the workflow with the body as input.
    let signature = sign(secret.as_bytes(), now, body.as_bytes());
    let r = env.app.raw(delivery(&wf, now, &signature, body)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let exec = r.body["execution_id"].as_str().expect("execution id").to_owned();
    let done = env.finish("acme", &exec).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], "from a hook");
    assert!(done["started_by"].as_str().is_some_and(|s| s.starts_with("webhook:")), "{done}");

    // The same delivery again is a replay.
    let r = env.app.raw(delivery(&wf, now, &signature, body)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "replayed");
    assert_eq!(executions(&env, &wf).await.len(), 1, "exactly one execution");

    // A workflow without a webhook trigger, and one that does not exist, look like a bad signature.
    let plain = env.publish("acme", graph("no hook")).await;
    let r = env.app.raw(delivery(&plain, now, &sign(secret.as_bytes(), now, body.as_bytes()), body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "bad_signature");
    let r = env.app.raw(delivery(&uuid::Uuid::new_v4().to_string(), now, &signature, body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "bad_signature");
}

#[tokio::test]
async fn republishing_keeps_the_secret_and_removing_the_trigger_disables_it() {
    let Some(env) = env().await else { return };
    let wf = env.publish("acme", hook_graph()).await;
    let t = token("acme", "editor");
    let first = env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&t), None).await;
    let secret = first.body["items"][0]["webhook"]["secret"].clone();

    let r = env.app.call("POST", &format!("/v1/workflows/{wf}/versions"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let again = env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&t), None).await;
    assert_eq!(again.body["items"][0]["webhook"]["secret"], secret, "same trigger, same secret");
    assert_eq!(again.body["items"][0]["version"], 2);

    // Version 3 drops the webhook: deliveries are refused.
    let r =
        env.app.call("PUT", &format!("/v1/workflows/{wf}"), Some(&t), Some(json!({"graph": graph("hooked")}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = env.app.call("POST", &format!("/v1/workflows/{wf}/versions"), Some(&t), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let now = chrono::Utc::now().timestamp();
    let secret = secret.as_str().expect("secret");
    let r = env.app.raw(delivery(&wf, now, &sign(secret.as_bytes(), now, b"{}"), "{}")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let listed = env.app.call("GET", &format!("/v1/workflows/{wf}/triggers"), Some(&t), None).await;
    assert_eq!(listed.body["items"][0]["enabled"], false, "{}", listed.body);
}

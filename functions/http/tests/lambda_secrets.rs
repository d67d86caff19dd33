//! The real `fn-http` bootstrap under a Lambda Runtime API server on 127.0.0.1, with the secret
//! store in a real Postgres: the Lambda path resolves `{{ secrets.NAME }}` for the tenant owning
//! the execution ARN in the payload, and never from its environment.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::extract::Request;
use lambda_glue::runtime_api::{Outcome, RuntimeApi};
use secrets::SecretsKey;
use serde_json::{Value, json};
use tenant_secrets::testing::{execution, tenant};

const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ENV_VALUE: &str = "from-the-environment-9f2c";
const TENANT_VALUE: &str = "acme-token-5b1d77";

fn key() -> SecretsKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretsKey::new(&k)
}

/// Answers every request with the Authorization header it received.
async fn header_echo() -> String {
    let app = axum::Router::new().fallback(|r: Request| async move {
        r.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

fn event(url: &str, arn: &str) -> Value {
    json!({"node": {"id": "fetch", "type": "http"}, "execution": {"id": arn},
           "secrets": {"/headers/Authorization": ["TOKEN"]},
           "config": {"url": url, "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"}, "response_format": "text"}})
}

#[tokio::test]
async fn the_lambda_resolves_secrets_for_the_executions_tenant_only() {
    let Some(admin) = store::testing::service_url("WEFT_TEST_DATABASE_URL") else { return };
    let (store, db) = store::testing::fresh_store(&admin).await.unwrap();
    let pool = store.pool().clone();
    let wf_a = tenant(&pool, &key(), "acme", &[("TOKEN", TENANT_VALUE)]).await;
    let wf_b = tenant(&pool, &key(), "evil", &[]).await;
    let (_, arn_a) = execution(&pool, "acme", wf_a, false).await;
    let (_, arn_b) = execution(&pool, "evil", wf_b, true).await;
    let url = header_echo().await;

    let api = RuntimeApi::start().await.unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fn-http"))
        .envs(api.lambda_env("http"))
        .env("WEFT_DATABASE_URL", &db)
        .env("WEFT_SECRETS_KEY", KEY_B64)
        .env("WEFT_HTTP_ALLOW", "127.0.0.1")
        .env("WEFT_SECRET_TOKEN", ENV_VALUE)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let wait = Duration::from_secs(20);

    // Tenant A: the header reaches the server; the function's output has the value masked.
    let a = api.invoke(event(&url, &arn_a), wait).await;
    let Some(Outcome::Response(out)) = &a else { panic!("expected a response, got {a:?}") };
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"], "Bearer ***", "{out}");

    // Tenant B, same config: B has no TOKEN. The environment variable is no fallback.
    let b = api.invoke(event(&url, &arn_b), wait).await;
    match &b {
        Some(Outcome::Error { error_type, error_message }) => {
            assert_eq!(error_type, "Secret.NotFound");
            assert!(error_message.contains("TOKEN"), "{error_message}");
        }
        other => panic!("expected Secret.NotFound, got {other:?}"),
    }
    // An ARN Weft never started has no tenant at all.
    let forged = format!("arn:aws:states:us-east-1:123456789012:execution:weft-{wf_a}:{}", uuid::Uuid::new_v4());
    let c = api.invoke(event(&url, &forged), wait).await;
    assert!(matches!(&c, Some(Outcome::Error { error_type, .. }) if error_type == "Secret.NotFound"), "{c:?}");

    child.kill().await.unwrap();
    let logs = String::from_utf8_lossy(&child.wait_with_output().await.unwrap().stdout).into_owned();
    for shown in [format!("{a:?}"), format!("{b:?}"), format!("{c:?}"), logs] {
        assert!(!shown.contains(ENV_VALUE) && !shown.contains(TENANT_VALUE), "{shown}");
    }
}

#[tokio::test]
async fn the_lambda_refuses_to_start_without_its_secret_store() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fn-http"))
        .env_remove("WEFT_DATABASE_URL")
        .env("WEFT_SECRETS_KEY", KEY_B64)
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("WEFT_DATABASE_URL"), "{text}");
}
